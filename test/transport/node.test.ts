/**
 * node:net-specific behaviour: real socket backpressure, idle timeout,
 * bind errors, TCP_NODELAY.
 */
import * as Net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { TransportBindError } from "../../src/transport/errors.js"
import { MAX_QUEUED_RESPONSE_BYTES } from "../../src/transport/internal/connection.js"
import { eventually, makeHarness, TcpClient } from "./harness.js"

describe("KafkaTransport (node) sockets", () => {
  it.scopedLive("a client that never reads: reading pauses and server-side buffering stays bounded", () =>
    Effect.gen(function*() {
      const maxInFlight = 8
      const responseSize = 64 * 1024
      const h = yield* makeHarness("node", { maxInFlightPerConnection: maxInFlight })
      yield* h.transport.serve((_conn, frame) => {
        const out = Buffer.alloc(responseSize, 1)
        frame.copy(out, 0, 0, 4)
        return Effect.succeed(out)
      })
      const { port } = yield* h.transport.address
      const client = yield* TcpClient.connect(port)
      client.socket.pause()
      // 1000 requests of 8 bytes ask for 1000 * 64 KiB = 64 MiB of responses.
      const total = 1000
      const reqs = Buffer.alloc(total * 8)
      for (let i = 0; i < total; i++) {
        reqs.writeInt32BE(4, i * 8)
        reqs.writeInt32BE(i, i * 8 + 4)
      }
      client.socket.write(reqs)
      yield* eventually(() =>
        Effect.map(h.transport.connectionInfo, ([i]) => i !== undefined && i.readPaused && i.writeBlocked)
      )
      // Let it settle: nothing more should be handled while the client does not read.
      yield* Effect.sleep(200)
      const [a] = yield* h.transport.connectionInfo
      yield* Effect.sleep(200)
      const [b] = yield* h.transport.connectionInfo
      expect(b!.requests).toBe(a!.requests)
      expect(b!.requests).toBeLessThan(total)
      // Bounded: dispatch stops once MAX_QUEUED_RESPONSE_BYTES are queued, plus at most one in-flight window.
      expect(b!.queuedResponseBytes).toBeLessThanOrEqual(MAX_QUEUED_RESPONSE_BYTES + maxInFlight * (responseSize + 4))
      expect(b!.bufferedRequestBytes).toBeLessThan(total * 8)
      expect(b!.readPaused).toBe(true)
      const m = h.transport.metrics.snapshot()
      expect(m.writeBackpressure).toBeGreaterThan(0)
      expect(m.readPauses).toBeGreaterThan(0)

      // Reading resumes: every response arrives, in order.
      client.socket.resume()
      yield* client.waitFor(() => client.frames.length === total)
      for (let i = 0; i < total; i++) {
        expect(client.frames[i]!.length).toBe(responseSize)
        expect(client.frames[i]!.readInt32BE(0)).toBe(i)
      }
      const [c] = yield* h.transport.connectionInfo
      expect(c!.requests).toBe(total)
      expect(c!.readPaused).toBe(false)
      expect(c!.writeBlocked).toBe(false)
    }))

  it.scopedLive("closes connections idle for idleTimeoutMs, keeps busy ones", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness("node", { idleTimeoutMs: 400 })
      yield* h.transport.serve((_conn, frame) => Effect.succeed(frame))
      const { port } = yield* h.transport.address
      const idle = yield* TcpClient.connect(port)
      const busy = yield* TcpClient.connect(port)
      const start = Date.now()
      for (let i = 0; i < 10; i++) {
        busy.socket.write(Buffer.from([0, 0, 0, 1, i]))
        yield* Effect.sleep(50)
      }
      yield* idle.waitFor(() => idle.isClosed)
      expect(Date.now() - start).toBeGreaterThanOrEqual(390)
      expect(busy.isClosed).toBe(false)
      expect(busy.frames.length).toBe(10)
      yield* busy.waitFor(() => busy.isClosed)
      const m = h.transport.metrics.snapshot()
      expect(m.idleTimeouts).toBe(2)
      expect(m.connectionsActive).toBe(0)
    }))

  it.scopedLive("a long-running request is not an idle connection", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness("node", { idleTimeoutMs: 80 })
      yield* h.transport.serve((_conn, frame) => Effect.as(Effect.sleep(300), frame))
      const { port } = yield* h.transport.address
      const c = yield* TcpClient.connect(port)
      c.socket.write(Buffer.from([0, 0, 0, 1, 9]))
      yield* c.waitFor(() => c.frames.length === 1 || c.isClosed)
      expect(c.frames.length).toBe(1)
    }))

  it.scopedLive("fails with TransportBindError when the port is taken", () =>
    Effect.gen(function*() {
      const a = yield* makeHarness("node")
      const { port } = yield* a.transport.serve((_c, f) => Effect.succeed(f))
      const b = yield* makeHarness("node", { port })
      const err = yield* Effect.flip(b.transport.serve((_c, f) => Effect.succeed(f)))
      expect(err).toBeInstanceOf(TransportBindError)
      expect(err._tag === "TransportBindError" && err.port).toBe(port)
      // And b can still serve elsewhere afterwards.
      const b2 = yield* makeHarness("node")
      const addr = yield* b2.transport.serve((_c, f) => Effect.succeed(f))
      expect(addr.port).not.toBe(port)
    }))

  it.scopedLive("connections from many clients are independent", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness("node")
      yield* h.transport.serve((conn, frame) => Effect.succeed(Buffer.from(`${conn.id}:${frame.toString()}`)))
      const clients = yield* Effect.forEach(Array.from({ length: 10 }), () => h.connect)
      yield* Effect.forEach(clients, (c, i) => c.send(`m${i}`), { discard: true })
      const got = yield* Effect.forEach(clients, (c) => Effect.map(c.receive, (b) => b.toString()))
      const ids = got.map((s) => Number(s.split(":")[0]))
      expect(new Set(ids).size).toBe(10)
      expect(got.map((s) => s.split(":")[1])).toEqual(clients.map((_, i) => `m${i}`))
      expect(yield* h.transport.connections).toBe(10)
    }))

  it.scopedLive("stops listening when the serve scope closes", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness("node")
      const { port } = yield* Effect.scoped(h.transport.serve((_c, f) => Effect.succeed(f)))
      const refused = yield* Effect.either(
        Effect.async<void, Error>((resume) => {
          const s = Net.connect({ host: "127.0.0.1", port })
          s.once("connect", () => {
            s.destroy()
            resume(Effect.void)
          })
          s.once("error", (e) => resume(Effect.fail(e)))
        })
      )
      expect(refused._tag).toBe("Left")
    }))
})
