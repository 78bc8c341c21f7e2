/**
 * Memory-layer specifics: idle timeout on the Effect clock (TestClock),
 * backpressure accounting, client API edge cases.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, TestClock } from "effect"
import {
  KafkaTransport,
  layerMemory,
  layerServe,
  MemoryKafkaTransport,
  TransportConnectionClosed,
  TransportNotServing
} from "../../src/transport/KafkaTransport.js"
import { configLayer, eventually } from "./harness.js"

const build = (overrides: Parameters<typeof configLayer>[0] = {}, highWaterMark?: number) =>
  Effect.map(
    Layer.build(
      layerMemory(highWaterMark === undefined ? {} : { highWaterMark }).pipe(Layer.provide(configLayer(overrides)))
    ),
    (ctx) => ({ transport: Context.get(ctx, KafkaTransport), memory: Context.get(ctx, MemoryKafkaTransport) })
  )

describe("KafkaTransport (memory) specifics", () => {
  it.scoped("idle timeout follows the Effect clock (TestClock)", () =>
    Effect.gen(function*() {
      const { memory, transport } = yield* build({ idleTimeoutMs: 10_000 })
      yield* transport.serve((_c, f) => Effect.succeed(f))
      const idle = yield* memory.connect
      const busy = yield* memory.connect
      const waitClosed = yield* Effect.fork(idle.closed)
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust(4_000)
        yield* busy.send(Buffer.from([i]))
        expect((yield* busy.receive)[0]).toBe(i)
      }
      // 12 s passed: idle is gone, busy (last active at 12 s) is not.
      yield* Fiber.join(waitClosed)
      expect((yield* busy.stats).closed).toBe(false)
      yield* TestClock.adjust(10_000)
      yield* busy.closed
      expect(transport.metrics.snapshot().idleTimeouts).toBe(2)
      expect(yield* Effect.flip(busy.receive)).toBeInstanceOf(TransportConnectionClosed)
    }))

  it.scoped("a connection waiting on a slow request is not idle", () =>
    Effect.gen(function*() {
      const { memory, transport } = yield* build({ idleTimeoutMs: 1_000 })
      yield* transport.serve((_c, f) => Effect.as(Effect.sleep(5_000), f))
      const c = yield* memory.connect
      yield* c.send(Buffer.from("slow"))
      const reply = yield* Effect.fork(c.receive)
      yield* TestClock.adjust(3_000)
      expect((yield* c.stats).closed).toBe(false)
      yield* TestClock.adjust(2_000)
      expect((yield* Fiber.join(reply)).toString()).toBe("slow")
      yield* TestClock.adjust(1_000)
      yield* c.closed
    }))

  it.scopedLive("a client that does not read stops the server reading its requests", () =>
    Effect.gen(function*() {
      const { memory, transport } = yield* build({ maxInFlightPerConnection: 4 }, 16 * 1024)
      yield* transport.serve((_c, f) => Effect.succeed(Buffer.alloc(8 * 1024, f[0])))
      const c = yield* memory.connect
      for (let i = 0; i < 200; i++) yield* c.send(Buffer.from([i]))
      yield* eventually(() => Effect.map(transport.connectionInfo, ([i]) => i?.writeBlocked === true))
      yield* Effect.sleep(20)
      const [info] = yield* transport.connectionInfo
      const stats = yield* c.stats
      expect(info!.readPaused).toBe(true)
      expect(info!.requests).toBeLessThan(200)
      expect(stats.unsentBytes).toBeGreaterThan(0)
      expect(stats.unreadBytes).toBeLessThanOrEqual(16 * 1024 + 64 * 1024 + 4 * 8 * 1028)
      for (let i = 0; i < 200; i++) expect((yield* c.receive)[0]).toBe(i)
      yield* eventually(() =>
        Effect.map(transport.connectionInfo, ([i]) => i?.requests === 200 && !i.writeBlocked && !i.readPaused)
      )
    }))

  it.scopedLive("connect fails when not serving; client close is seen by the handler", () =>
    Effect.gen(function*() {
      const { memory, transport } = yield* build()
      expect(yield* Effect.flip(memory.connect)).toBeInstanceOf(TransportNotServing)
      const seen: Array<number> = []
      yield* transport.serve((conn, f) =>
        Effect.gen(function*() {
          yield* Effect.forkDaemon(Effect.zipRight(conn.closed, Effect.sync(() => seen.push(conn.id))))
          return f
        })
      )
      const c = yield* memory.connect
      yield* c.send(Buffer.from("x"))
      yield* c.receive
      yield* c.close
      yield* eventually(() => Effect.succeed(seen.length === 1))
      expect(seen).toEqual([c.id])
      expect(yield* Effect.flip(c.send(Buffer.from("y")))).toBeInstanceOf(TransportConnectionClosed)
      expect(transport.metrics.snapshot().connectionsActive).toBe(0)
    }))

  it.scoped("layerServe serves a handler built from the context for the layer's lifetime", () =>
    Effect.gen(function*() {
      class Prefix extends Context.Tag("test/Prefix")<Prefix, string>() {}
      const transportLayer = layerMemory().pipe(Layer.provide(configLayer()))
      const app = layerServe(
        Effect.map(Prefix, (prefix) => (_conn, frame) => Effect.succeed(Buffer.from(prefix + frame.toString())))
      ).pipe(Layer.provideMerge(transportLayer), Layer.provide(Layer.succeed(Prefix, "p:")))
      const ctx = yield* Layer.build(app)
      const c = yield* Context.get(ctx, MemoryKafkaTransport).connect
      yield* c.send(Buffer.from("x"))
      expect((yield* c.receive).toString()).toBe("p:x")
      expect(yield* Context.get(ctx, KafkaTransport).address).toEqual({ host: "127.0.0.1", port: 9092 })
    }))
})
