import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Queue, Scope } from "effect"
import type { Message, NodeId } from "../../src/raft/core/types.js"
import { KvStateMachine } from "../../src/raft/KvStateMachine.js"
import { encodeKvCommand } from "../../src/raft/KvStateMachine.js"
import type { RaftEngineShape } from "../../src/raft/RaftEngine.js"
import * as RaftEngine from "../../src/raft/RaftEngine.js"
import * as RaftLogStore from "../../src/raft/RaftLogStore.js"
import { RaftTransport } from "../../src/raft/RaftTransport.js"
import type { TcpAddress, TcpTransportShape } from "../../src/raft/TcpTransport.js"
import { makeTcpTransport } from "../../src/raft/TcpTransport.js"

const loopback = { host: "127.0.0.1", port: 0 }

const hb = (from: number, to: number, group: string, commit: number): Message => ({
  type: "MsgHeartbeat",
  group,
  from,
  to,
  term: 3,
  commit,
  context: 0
})

const takeN = (t: TcpTransportShape, n: number) =>
  Effect.gen(function* () {
    const out: Array<Message> = []
    const tps: Array<string | undefined> = []
    while (out.length < n) {
      const batch = yield* Queue.take(t.inbound)
      out.push(...batch.messages)
      tps.push(batch.traceparent)
    }
    return { messages: out, traceparents: tps }
  }).pipe(Effect.timeout("5 seconds"))

describe("TCP transport", () => {
  it.scopedLive("multiplexes groups over one connection per pair, both directions, with traceparent", () =>
    Effect.gen(function* () {
      const addrs = new Map<NodeId, TcpAddress>()
      const t1 = yield* makeTcpTransport({ nodeId: 1, listen: loopback, peers: (id) => addrs.get(id) })
      const t2 = yield* makeTcpTransport({ nodeId: 2, listen: loopback, peers: (id) => addrs.get(id) })
      addrs.set(1, t1.address)
      addrs.set(2, t2.address)
      const msgs = [hb(1, 2, "a", 1), hb(1, 2, "b", 2), hb(1, 2, "a", 3)]
      yield* t1.send(msgs, { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" })
      const got = yield* takeN(t2, 3)
      expect(got.messages.map((m) => [m.group, (m as { commit: number }).commit])).toEqual([
        ["a", 1],
        ["b", 2],
        ["a", 3]
      ])
      expect(got.traceparents[0]).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
      // the higher id answers over the same connection
      yield* t2.send([hb(2, 1, "b", 9)])
      const back = yield* takeN(t1, 1)
      expect(back.messages[0]).toMatchObject({ group: "b", from: 2, to: 1 })
      const s1 = yield* t1.stats
      const s2 = yield* t2.stats
      expect(s1.connects).toBe(1)
      expect(s2.connects).toBe(1)
      expect(s1.framesSent).toBe(1)
      expect(s2.framesReceived).toBe(1)
      expect(s2.messagesReceived).toBe(3)
    }))

  it.scopedLive("bounded outbound queue drops the oldest frames while the peer is unreachable", () =>
    Effect.gen(function* () {
      const t1 = yield* makeTcpTransport({
        nodeId: 1,
        listen: loopback,
        peers: () => ({ host: "127.0.0.1", port: 1 }),
        maxQueuedFrames: 10,
        reconnectBaseMs: 1000
      })
      for (let i = 0; i < 25; i++) yield* t1.send([hb(1, 2, "g", i)])
      const s = yield* t1.stats
      expect(s.framesSent).toBe(25)
      expect(s.dropped).toBe(15)
      expect(s.connectedPeers).toBe(0)
    }))

  it.scopedLive("two engines replicate two groups over TCP and recover after the peer restarts", () =>
    Effect.gen(function* () {
      const addrs = new Map<NodeId, TcpAddress>()
      const disks = new Map<NodeId, RaftLogStore.MemoryDisk>([
        [1, new RaftLogStore.MemoryDisk()],
        [2, new RaftLogStore.MemoryDisk()]
      ])
      const groups = ["a", "b", "c"]
      const startNode = (id: NodeId) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const transport = yield* Scope.extend(
            makeTcpTransport({ nodeId: id, listen: loopback, peers: (p) => addrs.get(p), knownPeers: [1, 2], reconnectBaseMs: 20 }),
            scope
          )
          addrs.set(id, transport.address)
          const layer = RaftEngine.layer({ nodeId: id, tickMs: 20, electionTicks: 10, seed: id }).pipe(
            Layer.provide(Layer.merge(Layer.succeed(RaftTransport, transport), RaftLogStore.layerMemory(disks.get(id)!)))
          )
          const ctx = yield* Layer.buildWithScope(layer, scope)
          const engine = ctx.unsafeMap.get(RaftEngine.RaftEngine.key) as RaftEngineShape
          for (const g of groups) yield* engine.createGroup(g, { voters: [1, 2], stateMachine: new KvStateMachine() })
          return { scope, engine, transport }
        })

      const leaderOf = (engines: ReadonlyArray<RaftEngineShape>, group: string) =>
        Effect.gen(function* () {
          for (let i = 0; i < 250; i++) {
            for (const e of engines) {
              const f = yield* e.figures(group)
              if (f.role === "Leader") return e
            }
            yield* Effect.sleep(20)
          }
          return yield* Effect.dieMessage(`no leader for ${group}`)
        })

      const n1 = yield* startNode(1)
      let n2 = yield* startNode(2)
      yield* Effect.addFinalizer(() => Effect.all([Scope.close(n1.scope, Exit.void), Scope.close(n2.scope, Exit.void)]))
      for (const g of groups) {
        const l = yield* leaderOf([n1.engine, n2.engine], g)
        const r = yield* l.propose(g, encodeKvCommand({ op: "put", key: g, value: "1" }))
        expect(r).toMatchObject({ ok: true })
      }
      const s1 = yield* n1.transport.stats
      expect(s1.connects).toBe(1) // one connection carries all three groups

      // restart node 2 (new port): node 1 reconnects with backoff
      yield* Scope.close(n2.scope, Exit.void)
      n2 = yield* startNode(2)
      for (const g of groups) {
        const l = yield* leaderOf([n1.engine, n2.engine], g)
        const r = yield* Effect.retry(l.propose(g, encodeKvCommand({ op: "put", key: g, value: "2" })), { times: 20 })
        expect(r).toMatchObject({ ok: true })
      }
      expect((yield* n1.transport.stats).connects).toBeGreaterThanOrEqual(2)
      for (const g of groups) {
        const f1 = yield* n1.engine.figures(g)
        for (let i = 0; i < 100; i++) {
          const f2 = yield* n2.engine.figures(g)
          if (f2.commitIndex === f1.commitIndex) break
          yield* Effect.sleep(20)
        }
        expect((yield* n2.engine.figures(g)).commitIndex).toBe((yield* n1.engine.figures(g)).commitIndex)
      }
    }), { timeout: 30_000 })
})


