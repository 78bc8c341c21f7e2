import { Chunk, Effect, Layer, Queue, Scope } from "effect"
import { describe, expect, it } from "vitest"
import type { Message } from "../../src/raft/core/types.js"
import type { TraceEvent } from "../../src/raft/MemoryNetwork.js"
import { MemoryNetwork } from "../../src/raft/MemoryNetwork.js"
import type { InboundBatch, RaftTransportShape } from "../../src/raft/RaftTransport.js"
import { layerMemory, RaftTransport } from "../../src/raft/RaftTransport.js"
import { SimWorld } from "../../src/raft/SimWorld.js"

const hb = (from: number, to: number, i: number, group = "g"): Message => ({
  type: "MsgHeartbeat",
  group,
  from,
  to,
  term: 1,
  commit: i,
  context: 0
})

const runIn = <A>(world: SimWorld, eff: Effect.Effect<A, unknown>): A => world.runOrThrow(eff)
const simFork = <A>(world: SimWorld, eff: Effect.Effect<A>) => world.fork(eff)

interface Setup {
  readonly world: SimWorld
  readonly net: MemoryNetwork
  readonly nodes: ReadonlyArray<RaftTransportShape>
  readonly received: Map<number, Array<Message>>
}

const setup = (seed: number, n: number, faults: Parameters<typeof MemoryNetwork.make>[0]["faults"] = {}): Setup => {
  const world = new SimWorld()
  const net = runIn(world, MemoryNetwork.make({ seed, faults }))
  const scope = runIn(world, Scope.make())
  const nodes: Array<RaftTransportShape> = []
  const received = new Map<number, Array<Message>>()
  for (let id = 1; id <= n; id++) {
    const ctx = runIn(world, Layer.buildWithScope(layerMemory(net, id), scope))
    const t = ctx.unsafeMap.get(RaftTransport.key) as RaftTransportShape
    nodes.push(t)
    const list: Array<Message> = []
    received.set(id, list)
    simFork(
      world,
      Effect.forever(
        Effect.flatMap(Queue.takeBetween(t.inbound, 1, 1_000_000), (batches: Chunk.Chunk<InboundBatch>) =>
          Effect.sync(() => {
            for (const b of batches) list.push(...b.messages)
          })
        )
      )
    )
  }
  world.drain()
  return { world, net, nodes, received }
}

const sendAll = (s: Setup, from: number, msgs: ReadonlyArray<Message>) => runIn(s.world, s.nodes[from - 1]!.send(msgs))

describe("MemoryNetwork", () => {
  it("delivers in order with no faults and counts one frame per destination per send", () => {
    const s = setup(1, 3)
    sendAll(s, 1, [hb(1, 2, 1), hb(1, 3, 1), hb(1, 2, 2), hb(1, 2, 3)])
    s.world.advance(1)
    expect(s.received.get(2)!.map((m) => (m as { commit: number }).commit)).toEqual([1, 2, 3])
    expect(s.received.get(3)!.length).toBe(1)
    expect(s.net.framesSent).toBe(2)
    expect(s.net.messagesSent).toBe(4)
  })

  it("partitions, one-way cuts and heal", () => {
    const s = setup(1, 3)
    s.net.partition([[1], [2, 3]])
    sendAll(s, 1, [hb(1, 2, 1)])
    sendAll(s, 2, [hb(2, 3, 1), hb(2, 1, 1)])
    s.world.advance(1)
    expect(s.received.get(2)!.length).toBe(0)
    expect(s.received.get(3)!.length).toBe(1)
    expect(s.received.get(1)!.length).toBe(0)
    s.net.heal()
    s.net.cut(1, 2, true)
    sendAll(s, 1, [hb(1, 2, 2)])
    sendAll(s, 2, [hb(2, 1, 2)])
    s.world.advance(1)
    expect(s.received.get(2)!.length).toBe(0)
    expect(s.received.get(1)!.length).toBe(1)
    s.net.heal()
    sendAll(s, 1, [hb(1, 2, 3)])
    s.world.advance(1)
    expect(s.received.get(2)!.length).toBe(1)
  })

  it("pause buffers both directions until resume; hold/release by predicate", () => {
    const s = setup(1, 3)
    s.net.pause(2)
    sendAll(s, 1, [hb(1, 2, 1)])
    sendAll(s, 2, [hb(2, 3, 1)])
    s.world.advance(10)
    expect(s.received.get(2)!.length).toBe(0)
    expect(s.received.get(3)!.length).toBe(0)
    s.net.resume(2)
    s.world.advance(1)
    expect(s.received.get(2)!.length).toBe(1)
    expect(s.received.get(3)!.length).toBe(1)

    s.net.hold((m) => m.to === 3 && m.type === "MsgHeartbeat")
    sendAll(s, 1, [hb(1, 3, 5), hb(1, 2, 5)])
    s.world.advance(10)
    expect(s.received.get(3)!.length).toBe(1)
    expect(s.net.heldCount()).toBe(1)
    expect(s.net.release()).toBe(1)
    s.world.advance(1)
    expect(s.received.get(3)!.length).toBe(2)
  })

  it("drops, duplicates and delays by probability, on the Effect clock", () => {
    const s = setup(7, 2, { drop: 0.2, duplicate: 0.1, minDelayMs: 5, maxDelayMs: 50 })
    const msgs = Array.from({ length: 1000 }, (_, i) => hb(1, 2, i))
    sendAll(s, 1, msgs)
    s.world.advance(4)
    expect(s.received.get(2)!.length).toBe(0) // nothing before minDelay
    s.world.advance(100)
    const got = s.received.get(2)!
    const drops = s.net.trace.filter((e) => e.kind === "drop").length
    const dups = s.net.trace.filter((e) => e.kind === "duplicate").length
    expect(drops).toBeGreaterThan(120)
    expect(drops).toBeLessThan(280)
    expect(dups).toBeGreaterThan(40)
    expect(got.length).toBe(1000 - drops + dups)
    // reordered: delivery order differs from send order
    const commits = got.map((m) => (m as { commit: number }).commit)
    expect(commits).not.toEqual([...commits].sort((a, b) => a - b))
  })

  it("is deterministic: the same seed gives the same delivery trace", () => {
    const run = (seed: number): ReadonlyArray<TraceEvent> => {
      const s = setup(seed, 3, { drop: 0.1, duplicate: 0.1, minDelayMs: 1, maxDelayMs: 30 })
      for (let round = 0; round < 20; round++) {
        sendAll(s, 1 + (round % 3), [hb(1 + (round % 3), 1 + ((round + 1) % 3), round), hb(1 + (round % 3), 1 + ((round + 2) % 3), round)])
        s.world.advance(3)
      }
      s.world.advance(100)
      return s.net.trace
    }
    const a = run(42)
    const b = run(42)
    const c = run(43)
    expect(a.length).toBeGreaterThan(30)
    expect(b).toEqual(a)
    expect(c).not.toEqual(a)
  })

  it("drops messages to a node that is down", () => {
    const s = setup(1, 2)
    sendAll(s, 1, [hb(1, 9, 1)])
    s.world.advance(1)
    expect(s.net.trace.at(-1)?.kind).toBe("down")
  })
})
