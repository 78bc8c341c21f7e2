/**
 * Scenarios run against both the node:net layer and the memory layer
 * (parity): framing, echo, pipelining order, null responses, oversize frames,
 * handler defects, handler-initiated close, the in-flight bound, half-close.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import * as fc from "fast-check"
import type { RequestHandler } from "../../src/transport/KafkaTransport.js"
import { TransportAlreadyServing } from "../../src/transport/errors.js"
import { encodeFrames } from "../../src/transport/FrameDecoder.js"
import { eventually, makeHarness } from "./harness.js"
import type { Kind } from "./harness.js"

const echo: RequestHandler = (_conn, frame) => Effect.succeed(frame)

const str = (b: Buffer) => b.toString()

for (const kind of ["node", "memory"] as const satisfies ReadonlyArray<Kind>) {
  describe(`KafkaTransport (${kind})`, () => {
    it.scopedLive("echoes frames and counts them", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        const addr = yield* h.transport.serve(echo)
        expect(addr.port).toBeGreaterThan(0)
        const c = yield* h.connect
        yield* c.send("one", "two", "")
        expect(str(yield* c.receive)).toBe("one")
        expect(str(yield* c.receive)).toBe("two")
        expect((yield* c.receive).length).toBe(0)
        const m = h.transport.metrics.snapshot()
        expect(m.connectionsOpened).toBe(1)
        expect(m.connectionsActive).toBe(1)
        expect(m.requests).toBe(3)
        expect(m.responses).toBe(3)
        expect(m.bytesIn).toBe(3 * 4 + 6)
        expect(m.bytesOut).toBe(3 * 4 + 6)
        expect(m.requestsInFlight).toBe(0)
        expect(yield* h.transport.connections).toBe(1)
      }))

    it.scopedLive("writes responses given as chunk lists, small (coalesced) and large (uncopied), in order", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        const big = Buffer.alloc(200 * 1024, 7)
        yield* h.transport.serve((_conn, frame) => {
          const s = frame.toString()
          if (s === "big") return Effect.succeed([Buffer.from("head:"), big, Buffer.from(":tail")])
          if (s === "empty") return Effect.succeed([])
          return Effect.succeed([Buffer.from("r-"), frame, Buffer.from("!")])
        })
        const c = yield* h.connect
        yield* c.send("a", "big", "b", "empty", "c")
        expect(str(yield* c.receive)).toBe("r-a!")
        const got = yield* c.receive
        expect(got.length).toBe(5 + big.length + 5)
        expect(got.subarray(0, 5).toString()).toBe("head:")
        expect(got.subarray(5, 5 + big.length).equals(big)).toBe(true)
        expect(got.subarray(5 + big.length).toString()).toBe(":tail")
        expect(str(yield* c.receive)).toBe("r-b!")
        expect((yield* c.receive).length).toBe(0)
        expect(str(yield* c.receive)).toBe("r-c!")
        expect(h.transport.metrics.snapshot().bytesOut).toBe(5 * 4 + 4 + big.length + 10 + 4 + 0 + 4)
      }))

    it.scopedLive("decodes frames split at arbitrary byte boundaries (property)", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        yield* h.transport.serve(echo)
        const samples = fc.sample(
          fc.tuple(
            fc.array(fc.uint8Array({ minLength: 0, maxLength: 2000 }), { minLength: 1, maxLength: 30 }),
            fc.array(fc.nat(), { maxLength: 20 })
          ),
          { numRuns: kind === "node" ? 25 : 60, seed: 42 }
        )
        for (const [frames, cuts] of samples) {
          const c = yield* h.connect
          const stream = encodeFrames(frames)
          const points = [...new Set(cuts.map((x) => x % (stream.length + 1)))].sort((a, b) => a - b)
          let prev = 0
          for (const p of [...points, stream.length]) {
            yield* c.write(stream.subarray(prev, p))
            prev = p
            // Let each piece travel on its own.
            if (kind === "node") yield* Effect.sleep(1)
            else yield* Effect.yieldNow()
          }
          for (const f of frames) {
            const got = yield* c.receive
            expect(got.equals(Buffer.from(f))).toBe(true)
          }
        }
      }))

    it.scopedLive("pipelines requests concurrently and writes responses in request order", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        const completed: Array<string> = []
        let running = 0
        let maxRunning = 0
        yield* h.transport.serve((_conn, frame) => {
          const s = frame.toString()
          const delay = Number(s.split(":")[1])
          return Effect.gen(function*() {
            running++
            maxRunning = Math.max(maxRunning, running)
            if (delay > 0) yield* Effect.sleep(delay)
            running--
            completed.push(s)
            return Buffer.from(`r-${s}`)
          })
        })
        const c = yield* h.connect
        const reqs = ["a:80", "b:0", "c:40", "d:0", "e:20", "f:0"]
        yield* c.send(...reqs)
        const got: Array<string> = []
        for (let i = 0; i < reqs.length; i++) got.push(str(yield* c.receive))
        expect(got).toEqual(reqs.map((r) => `r-${r}`))
        expect(completed).not.toEqual(reqs)
        expect(completed[completed.length - 1]).toBe("a:80")
        expect(maxRunning).toBeGreaterThan(1)
      }))

    it.scopedLive("random delays, null responses, chunking and in-flight bounds keep responses in order (property)", () =>
      Effect.gen(function*() {
        const cases = fc.sample(
          fc.record({
            maxInFlight: fc.integer({ min: 1, max: 8 }),
            requests: fc.array(
              fc.record({ delay: fc.integer({ min: 0, max: 6 }), silent: fc.boolean(), size: fc.nat(300) }),
              { minLength: 1, maxLength: 40 }
            ),
            cuts: fc.array(fc.nat(), { maxLength: 10 })
          }),
          { numRuns: 12, seed: 7 }
        )
        for (const { cuts, maxInFlight, requests } of cases) {
          yield* Effect.scoped(Effect.gen(function*() {
            const h = yield* makeHarness(kind, { maxInFlightPerConnection: maxInFlight })
            let running = 0
            let maxRunning = 0
            yield* h.transport.serve((_conn, frame) => {
              const delay = frame[4]!
              const silent = frame[5] === 1
              return Effect.gen(function*() {
                running++
                maxRunning = Math.max(maxRunning, running)
                if (delay > 0) yield* Effect.sleep(delay)
                else yield* Effect.yieldNow()
                running--
                return silent ? null : frame.subarray(0, 4)
              })
            })
            const c = yield* h.connect
            const frames = requests.map((r, i) => {
              const f = Buffer.alloc(6 + r.size, 0xab)
              f.writeInt32BE(i, 0)
              f[4] = r.delay
              f[5] = r.silent ? 1 : 0
              return f
            })
            const stream = encodeFrames(frames)
            const points = [...new Set(cuts.map((x) => x % (stream.length + 1)))].sort((a, b) => a - b)
            let prev = 0
            for (const p of [...points, stream.length]) {
              yield* c.write(stream.subarray(prev, p))
              prev = p
            }
            const expected = requests.flatMap((r, i) => (r.silent ? [] : [i]))
            const got: Array<number> = []
            for (let k = 0; k < expected.length; k++) got.push((yield* c.receive).readInt32BE(0))
            expect({ got, maxInFlight }).toEqual({ got: expected, maxInFlight })
            expect(maxRunning).toBeLessThanOrEqual(maxInFlight)
            yield* eventually(() =>
              Effect.sync(() => {
                const m = h.transport.metrics.snapshot()
                return m.requests === requests.length && m.requestsInFlight === 0
              })
            )
            expect(h.transport.metrics.snapshot().responses).toBe(expected.length)
          }))
        }
      }))

    it.scopedLive("a null response writes nothing and later responses still go out", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        yield* h.transport.serve((_conn, frame) =>
          frame.toString().startsWith("acks0")
            ? Effect.as(Effect.sleep(frame.toString() === "acks0-slow" ? 30 : 0), null)
            : Effect.succeed(frame)
        )
        const c = yield* h.connect
        yield* c.send("p1", "acks0", "p2", "acks0-slow", "p3", "acks0")
        expect(str(yield* c.receive)).toBe("p1")
        expect(str(yield* c.receive)).toBe("p2")
        expect(str(yield* c.receive)).toBe("p3")
        yield* c.send("last")
        expect(str(yield* c.receive)).toBe("last")
        const m = h.transport.metrics.snapshot()
        expect(m.requests).toBe(7)
        expect(m.responses).toBe(4)
        expect(m.bytesOut).toBe(4 * 4 + 2 + 2 + 2 + 4)
      }))

    it.scopedLive("an oversize or negative size prefix closes only that connection", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind, { maxRequestBytes: 1000 })
        yield* h.transport.serve(echo)
        const good = yield* h.connect
        const bad = yield* h.connect
        const neg = yield* h.connect
        yield* good.send("hello")
        expect(str(yield* good.receive)).toBe("hello")
        const big = Buffer.alloc(8)
        big.writeInt32BE(1001, 0)
        yield* bad.write(big)
        yield* bad.closed
        const negative = Buffer.alloc(4)
        negative.writeInt32BE(-1, 0)
        yield* neg.write(negative)
        yield* neg.closed
        // The limit itself is fine.
        yield* good.send(Buffer.alloc(1000, 7))
        expect((yield* good.receive).length).toBe(1000)
        expect(h.transport.metrics.snapshot().framingErrors).toBe(2)
        yield* eventually(() => Effect.map(h.transport.connections, (n) => n === 1))
      }))

    it.scopedLive("a handler defect closes only that connection", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        yield* h.transport.serve((_conn, frame) =>
          frame.toString() === "die"
            ? Effect.die(new Error("boom"))
            : frame.toString() === "throw"
            ? (() => {
              throw new Error("thrown while building the effect")
            })()
            : Effect.succeed(frame)
        )
        const a = yield* h.connect
        const b = yield* h.connect
        const t = yield* h.connect
        yield* a.send("ok-a")
        expect(str(yield* a.receive)).toBe("ok-a")
        yield* a.send("die")
        yield* a.closed
        yield* t.send("throw")
        yield* t.closed
        yield* b.send("still-here")
        expect(str(yield* b.receive)).toBe("still-here")
        expect(h.transport.metrics.snapshot().handlerDefects).toBe(2)
      }))

    it.scopedLive("the handler can close its connection; other handlers on it are interrupted", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        const interrupted = yield* Deferred.make<void>()
        const closedSeen = yield* Deferred.make<void>()
        yield* h.transport.serve((conn, frame) => {
          const s = frame.toString()
          if (s === "slow") return Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined))
          if (s === "garbage") {
            return Effect.gen(function*() {
              yield* Effect.forkDaemon(Effect.zipRight(conn.closed, Deferred.succeed(closedSeen, undefined)))
              yield* conn.close("cannot parse request")
              return null
            })
          }
          return Effect.succeed(frame)
        })
        const c = yield* h.connect
        yield* c.send("slow", "garbage")
        yield* c.closed
        yield* Deferred.await(interrupted)
        yield* Deferred.await(closedSeen)
        expect(h.transport.metrics.snapshot().requestsInFlight).toBe(0)
      }))

    it.scopedLive("bounds requests in flight per connection and pauses reading at the bound", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind, { maxInFlightPerConnection: 4 })
        const gate = yield* Deferred.make<void>()
        let started = 0
        yield* h.transport.serve((_conn, frame) =>
          Effect.sync(() => started++).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(frame))
        )
        const c = yield* h.connect
        const reqs = Array.from({ length: 20 }, (_, i) => `req-${i}`)
        yield* c.send(...reqs)
        yield* eventually(() =>
          Effect.map(h.transport.connectionInfo, (infos) => infos.length === 1 && infos[0]!.inFlight === 4)
        )
        yield* Effect.sleep(20)
        expect(started).toBe(4)
        const [info] = yield* h.transport.connectionInfo
        expect(info!.readPaused).toBe(true)
        expect(info!.bufferedRequestBytes).toBeGreaterThan(0)
        expect(h.transport.metrics.snapshot().requestsInFlight).toBe(4)
        yield* Deferred.succeed(gate, undefined)
        const got: Array<string> = []
        for (let i = 0; i < reqs.length; i++) got.push(str(yield* c.receive))
        expect(got).toEqual(reqs)
        expect(started).toBe(20)
        const [after] = yield* h.transport.connectionInfo
        expect(after!.inFlight).toBe(0)
        expect(after!.readPaused).toBe(false)
      }))

    it.scopedLive("after a half-close, answers what was sent and then closes", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        yield* h.transport.serve((_conn, frame) => Effect.as(Effect.sleep(10), frame))
        const c = yield* h.connect
        yield* c.send("x", "y", "z")
        yield* c.endInput
        expect([str(yield* c.receive), str(yield* c.receive), str(yield* c.receive)]).toEqual(["x", "y", "z"])
        yield* c.closed
        yield* eventually(() => Effect.map(h.transport.connections, (n) => n === 0))
        const m = h.transport.metrics.snapshot()
        expect(m.connectionsClosed).toBe(1)
      }))

    it.scopedLive("graceful shutdown lets an in-flight request finish and flush", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        const serveScope = yield* Scope.make()
        yield* h.transport.serve((_conn, frame) => Effect.as(Effect.sleep(200), frame)).pipe(
          Scope.extend(serveScope)
        )
        const c = yield* h.connect
        yield* c.send("slow")
        yield* eventually(() => Effect.map(h.transport.connectionInfo, (i) => i[0]?.inFlight === 1))
        const start = Date.now()
        const closing = yield* Effect.fork(Scope.close(serveScope, Exit.void))
        expect(str(yield* c.receive)).toBe("slow")
        yield* c.closed
        yield* Fiber.join(closing)
        expect(Date.now() - start).toBeGreaterThanOrEqual(100)
        expect(yield* h.transport.connections).toBe(0)
        expect(yield* Effect.either(h.connect)).toMatchObject({ _tag: "Left" })
        expect(yield* Effect.either(h.transport.address)).toMatchObject({ _tag: "Left" })
      }))

    it.scopedLive("shutdown is bounded by shutdownTimeoutMs and interrupts stuck handlers", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind, { shutdownTimeoutMs: 150 })
        const serveScope = yield* Scope.make()
        const interrupted = yield* Deferred.make<void>()
        yield* h.transport.serve(() => Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined)))
          .pipe(Scope.extend(serveScope))
        const c = yield* h.connect
        yield* c.send("stuck")
        yield* eventually(() => Effect.map(h.transport.connectionInfo, (i) => i[0]?.inFlight === 1))
        const start = Date.now()
        yield* Scope.close(serveScope, Exit.void)
        const took = Date.now() - start
        expect(took).toBeGreaterThanOrEqual(100)
        expect(took).toBeLessThan(3000)
        yield* Deferred.await(interrupted)
        yield* c.closed
      }))

    it.scopedLive("serves one handler at a time, and again after the previous scope closed", () =>
      Effect.gen(function*() {
        const h = yield* makeHarness(kind)
        const s1 = yield* Scope.make()
        yield* h.transport.serve(echo).pipe(Scope.extend(s1))
        const second = yield* Effect.either(h.transport.serve(echo))
        expect(second._tag === "Left" && second.left).toBeInstanceOf(TransportAlreadyServing)
        yield* Scope.close(s1, Exit.void)
        yield* h.transport.serve((_c, f) => Effect.succeed(Buffer.concat([Buffer.from("2:"), f])))
        const c = yield* h.connect
        yield* c.send("x")
        expect(str(yield* c.receive)).toBe("2:x")
      }))
  })
}
