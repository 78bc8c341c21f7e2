/**
 * Leadership transfer and membership changes while clients keep writing, on
 * the engine harness (makeRaftTestCluster): no acknowledged write is lost,
 * writes keep being acknowledged across the change, and the harness's
 * invariants (one leader per term, agreeing committed logs, no commit
 * regression) hold throughout.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { RaftTestCluster } from "../../layers/TestCluster.js"
import { KV_GROUP, makeRaftTestCluster } from "../../layers/TestCluster.js"
import type { NodeId } from "../../src/raft/core/types.js"
import { decodeKvCommand, encodeKvCommand, type KvResult } from "../../src/raft/KvStateMachine.js"

interface Load {
  /** Acknowledged writes: value and the index it was committed at, with the world time of the ack. */
  readonly acked: Array<{ readonly value: string; readonly index: number; readonly atMs: number }>
  readonly stats: { stop: boolean; attempts: number; failures: number }
}

/** `clients` fibers in the cluster's world, each writing its own key back to back (following NotLeader hints). */
const startLoad = (c: RaftTestCluster, clients: number): Load => {
  const load: Load = { acked: [], stats: { stop: false, attempts: 0, failures: 0 } }
  let seq = 0
  for (let cl = 0; cl < clients; cl++) {
    let target: NodeId = c.ids[cl % c.ids.length]!
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      if (load.stats.stop) return Effect.void
      const value = `c${cl}.${seq++}`
      load.stats.attempts++
      const write = Effect.flatMap(c.engine(target), (e) =>
        e.propose(KV_GROUP, encodeKvCommand({ op: "put", key: `k${cl}`, value }))
      )
      return Effect.flatMap(Effect.either(write), (r) => {
        if (Either.isRight(r)) load.acked.push({ value, index: (r.right as KvResult).index, atMs: c.world.now })
        else {
          load.stats.failures++
          const e = r.left as { readonly _tag?: string; readonly leaderId?: NodeId | null }
          target = e._tag === "NotLeader" && e.leaderId != null ? e.leaderId : c.ids[(cl + load.stats.failures) % c.ids.length]!
        }
        return Effect.zipRight(Effect.sleep(Either.isRight(r) ? 1 : 10), loop)
      })
    })
    c.world.fork(loop)
  }
  return load
}

/** Stops the load, lets in-flight writes finish, and checks every acknowledged write on every listed node. */
const stopAndCheck = (c: RaftTestCluster, load: Load, nodes: ReadonlyArray<NodeId>) =>
  Effect.gen(function* () {
    load.stats.stop = true
    yield* c.advance(2_000)
    for (const id of nodes) {
      const log = yield* c.committedLog(id)
      const byIndex = new Map(log.map((e) => [e.index, e]))
      for (const a of load.acked) {
        const e = byIndex.get(a.index)
        expect(e, `node ${id} lacks index ${a.index} (${a.value})`).toBeDefined()
        expect(decodeKvCommand(e!.data)?.value, `node ${id} index ${a.index}`).toBe(a.value)
      }
    }
    yield* c.checkInvariants
  })

describe("Raft under load (engine harness)", () => {
  it.scopedLive("leadership transfer to a lagging follower while clients write", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(5, { seed: 21 })
      const l = yield* c.awaitLeader()
      const load = startLoad(c, 3)
      yield* c.advance(300)
      // cut one follower off from the leader (both ways; what was in flight is lost) while writes go on
      const lagging = c.ids.find((id) => id !== l.id)!
      yield* c.cut(l.id, lagging)
      yield* c.advance(600)
      const behind = (yield* c.figures(l.id)).lastIndex - (yield* c.figures(lagging)).lastIndex
      expect(behind).toBeGreaterThan(20)
      // reconnect and transfer at once, while it is still behind: the leader must catch it up first
      yield* c.heal
      const ackedBefore = load.acked.length
      yield* c.transferLeadership(l.id, lagging)
      const l2 = yield* c.awaitLeader()
      expect(l2.id).toBe(lagging)
      expect(l2.term).toBeGreaterThan(l.term)
      const transferredAt = c.world.now
      yield* c.advance(500)
      // writes went on being acknowledged, through the new leader
      expect(load.acked.length).toBeGreaterThan(ackedBefore)
      expect(load.acked.filter((a) => a.atMs > transferredAt).length).toBeGreaterThan(10)
      yield* stopAndCheck(c, load, c.ids)
    }))

  it.scopedLive("adding, promoting and removing members while clients write", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 22 })
      const l = yield* c.awaitLeader()
      const load = startLoad(c, 3)
      yield* c.advance(300)
      yield* c.addLearner(4)
      yield* c.advance(400)
      expect((yield* c.figures(4)).confState.learners).toContain(4)
      yield* c.promote(4)
      yield* c.advance(300)
      const removed = c.ids.find((id) => id !== l.id)!
      const ackedBefore = load.acked.length
      yield* c.remove(removed)
      const removedAt = c.world.now
      yield* c.advance(600)
      const leader = yield* c.awaitLeader()
      const conf = (yield* c.figures(leader.id)).confState
      expect([...conf.voters].sort()).toEqual([1, 2, 3, 4].filter((id) => id !== removed))
      expect(load.acked.length).toBeGreaterThan(ackedBefore)
      expect(load.acked.filter((a) => a.atMs > removedAt).length).toBeGreaterThan(10)
      yield* stopAndCheck(c, load, conf.voters)
    }))
})
