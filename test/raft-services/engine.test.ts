import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Stream } from "effect"
import type { RaftTestCluster } from "../../layers/TestCluster.js"
import { KV_GROUP, makeRaftTestCluster } from "../../layers/TestCluster.js"
import { decodeKvCommand } from "../../src/raft/KvStateMachine.js"
import { KvStateMachine } from "../../src/raft/KvStateMachine.js"

const put = (key: string, value: string) => ({ op: "put" as const, key, value })

/** Committed logs of all running nodes agree on their common prefix. */
const logsAgree = (c: RaftTestCluster) =>
  Effect.gen(function* () {
    const logs = []
    for (const id of c.ids) if (c.isUp(id)) logs.push(yield* c.committedLog(id))
    for (const a of logs) {
      for (const b of logs) {
        const byIndex = new Map(b.map((e) => [e.index, e]))
        for (const e of a) {
          const o = byIndex.get(e.index)
          if (o !== undefined) {
            expect(o.term).toBe(e.term)
            expect(Buffer.from(o.data).equals(Buffer.from(e.data))).toBe(true)
          }
        }
      }
    }
  })

const valuesIn = (log: ReadonlyArray<{ type: string; data: Uint8Array }>): Array<string> =>
  log.flatMap((e) => {
    if (e.type !== "Normal") return []
    const c = decodeKvCommand(e.data)
    return c === undefined ? [] : [c.value]
  })

describe("RaftEngine on the TestCluster harness", () => {
  it.scopedLive("3 nodes elect one leader and commit proposals on all nodes", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 11 })
      const l = yield* c.awaitLeader()
      for (let i = 0; i < 20; i++) {
        const r = yield* c.propose(l.id, put(`k${i % 5}`, `v${i}`))
        expect(r.ok).toBe(true)
      }
      const cas = yield* c.propose(l.id, { op: "cas", key: "k0", expected: "v15", value: "x" })
      expect(cas).toMatchObject({ ok: true, previous: "v15" })
      const casFail = yield* c.propose(l.id, { op: "cas", key: "k0", expected: "nope", value: "y" })
      expect(casFail).toMatchObject({ ok: false, previous: "x" })
      yield* c.advance(1000)
      const commit = yield* c.committedIndex(l.id)
      for (const id of c.ids) {
        expect(yield* c.committedIndex(id)).toBe(commit)
        expect(Option.getOrThrow(yield* c.leader(id))).toEqual(l)
      }
      yield* logsAgree(c)
      // linearizable reads from a follower see the latest write
      const follower = c.ids.find((id) => id !== l.id)!
      expect(yield* c.read(follower, "k0")).toBe("x")
      // a follower refuses proposals with a leader hint
      const e = yield* Effect.either(c.propose(follower, put("a", "b")))
      expect(Either.isLeft(e) && e.left._tag === "NotLeader" && e.left.leaderId).toBe(l.id)
      const f = yield* c.figures(l.id)
      expect(f.role).toBe("Leader")
      expect(f.proposals).toBe(22)
      expect(f.progress.get(follower)?.match).toBe(commit)
      yield* c.checkInvariants
    }))

  it.scopedLive("crashing the leader elects a new one and loses no acknowledged write", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 5, fsyncDelayMs: 2 })
      const acked: Array<string> = []
      let l = yield* c.awaitLeader()
      for (let i = 0; i < 10; i++) {
        yield* c.propose(l.id, put("k", `a${i}`))
        acked.push(`a${i}`)
      }
      const old = l.id
      yield* c.crash(old, { loseUnsynced: true })
      l = yield* c.awaitLeader()
      expect(l.id).not.toBe(old)
      expect(l.term).toBeGreaterThan(1)
      for (let i = 0; i < 10; i++) {
        yield* c.propose(l.id, put("k", `b${i}`))
        acked.push(`b${i}`)
      }
      yield* c.restart(old)
      yield* c.advance(3000)
      for (const id of c.ids) {
        const values = valuesIn(yield* c.committedLog(id))
        for (const v of acked) expect(values).toContain(v)
      }
      expect(yield* c.read(old, "k")).toBe("b9")
      yield* logsAgree(c)
      yield* c.checkInvariants
    }))

  it.scopedLive("torn tails and lost unsynced writes during an in-flight proposal keep the log consistent", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 99, fsyncDelayMs: 5 })
      const l = yield* c.awaitLeader()
      yield* c.propose(l.id, put("x", "1"))
      // start a proposal and crash every node in the middle of its fsync window
      const eng = yield* c.engine(l.id)
      c.world.fork(Effect.ignore(eng.propose(KV_GROUP, new TextEncoder().encode(JSON.stringify(put("x", "2"))))))
      yield* c.advance(2)
      for (const id of c.ids) yield* c.crash(id, id === l.id ? { tornTail: true } : { loseUnsynced: true })
      for (const id of c.ids) yield* c.restart(id)
      const l2 = yield* c.awaitLeader()
      expect(yield* c.read(l2.id, "x")).not.toBeNull()
      const r = yield* c.propose(l2.id, put("x", "3"))
      expect(r.ok).toBe(true)
      yield* c.advance(2000)
      yield* logsAgree(c)
      yield* c.checkInvariants
    }))

  it.scopedLive("publishes leadership changes and per-group figures", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 13 })
      const l = yield* c.awaitLeader()
      const watcher = c.ids.find((id) => id !== l.id)!
      const engine = yield* c.engine(watcher)
      // subscribe on the watcher, then crash the leader: the watcher sees the new leader
      const changes: Array<{ leader: number | null; term: number }> = []
      c.world.fork(
        Stream.runForEach(
          Stream.filter(engine.leadershipChanges, (ch) => ch.group === KV_GROUP),
          (ch) => Effect.sync(() => changes.push({ leader: ch.leader, term: ch.term }))
        )
      )
      yield* c.crash(l.id)
      const l2 = yield* c.awaitLeader()
      yield* c.advance(500) // the change is published after the Ready cycle that carries it
      expect(changes, JSON.stringify({ changes, l2, watcher })).toContainEqual({ leader: l2.id, term: l2.term })
      const f = yield* c.figures(l2.id)
      expect(f.elections).toBeGreaterThanOrEqual(l2.id === watcher ? 1 : 0)
      expect(f.leaderChanges).toBeGreaterThanOrEqual(2)
      expect(f.progress.size).toBe(3)
    }))

  it.scopedLive("publishes engine figures: messages by type, commit and persist latency histograms", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 17, fsyncDelayMs: 3 })
      const l = yield* c.awaitLeader()
      for (let i = 0; i < 20; i++) yield* c.propose(l.id, put("k", `v${i}`))
      yield* c.advance(300) // a few heartbeat intervals
      const engine = yield* c.engine(l.id)
      const ef = yield* engine.engineFigures
      // every successful proposal made on the leader was timed, on the virtual clock
      expect(ef.commitLatency.count).toBe(20)
      expect(ef.commitLatency.cumulative.at(-1)).toBe(20)
      // a commit needs the leader's and a follower's fsync (3 ms each here) and a round trip
      expect(ef.commitLatency.maxMs).toBeGreaterThanOrEqual(3)
      expect(ef.commitLatency.sumMs / ef.commitLatency.count).toBeLessThan(1000)
      expect(ef.persistLatency.count).toBeGreaterThan(0)
      expect(ef.persistLatency.sumMs).toBeGreaterThanOrEqual(3 * ef.persistLatency.count)
      // the leader sent appends and heartbeats; a follower sent responses, no appends
      expect(ef.messagesSentByType.MsgApp ?? 0).toBeGreaterThan(0)
      expect(ef.messagesSentByType.MsgHeartbeat ?? 0).toBeGreaterThan(0)
      const follower = yield* c.engine(c.ids.find((id) => id !== l.id)!)
      const ff = yield* follower.engineFigures
      expect(ff.messagesSentByType.MsgAppResp ?? 0).toBeGreaterThan(0)
      expect(ff.messagesSentByType.MsgApp ?? 0).toBe(0)
      expect(ff.commitLatency.count).toBe(0)
    }))

  it.scopedLive("a partitioned minority cannot commit; the majority elects and commits; heal converges", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(5, { seed: 3 })
      const l = yield* c.awaitLeader()
      yield* c.propose(l.id, put("k", "before"))
      const others = c.ids.filter((id) => id !== l.id)
      const minority = [l.id, others[0]!]
      const majority = others.slice(1)
      yield* c.partition([minority, majority])
      const commitBefore = yield* c.committedIndex(l.id)
      // the old leader may still accept the proposal but can never commit it
      const r = yield* Effect.either(c.propose(l.id, put("k", "minority")))
      expect(Either.isLeft(r)).toBe(true)
      expect(yield* c.committedIndex(l.id)).toBe(commitBefore)
      // check-quorum makes the isolated leader step down
      const f = yield* c.figures(l.id)
      expect(f.role).not.toBe("Leader")
      // the majority side elects a leader and commits
      let nl: number | undefined
      for (let i = 0; i < 50 && nl === undefined; i++) {
        yield* c.advance(200)
        for (const id of majority) {
          const x = yield* c.figures(id)
          if (x.role === "Leader") nl = id
        }
      }
      expect(nl).toBeDefined()
      expect((yield* c.propose(nl!, put("k", "majority"))).ok).toBe(true)
      yield* c.heal
      yield* c.advance(3000)
      for (const id of c.ids) {
        const values = valuesIn(yield* c.committedLog(id))
        expect(values).toContain("majority")
        expect(values).not.toContain("minority")
        expect(yield* c.read(id, "k")).toBe("majority")
      }
      yield* logsAgree(c)
      yield* c.checkInvariants
    }))

  it.scopedLive("leadership transfer and membership changes through learners", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 8 })
      const l = yield* c.awaitLeader()
      const to = c.ids.find((id) => id !== l.id)!
      yield* c.propose(l.id, put("a", "1"))
      yield* c.transferLeadership(l.id, to)
      const l2 = yield* c.awaitLeader()
      expect(l2.id).toBe(to)
      expect(l2.term).toBeGreaterThan(l.term)
      // add node 4 as a learner, let it catch up, promote it
      yield* c.addLearner(4)
      yield* c.advance(1000)
      const f4 = yield* c.figures(4)
      expect(f4.confState.learners).toContain(4)
      expect(f4.commitIndex).toBe(yield* c.committedIndex(to))
      yield* c.promote(4)
      yield* c.advance(500)
      expect((yield* c.figures(to)).confState.voters).toEqual([1, 2, 3, 4])
      expect(yield* c.read(4, "a")).toBe("1")
      // remove a voter that is not the leader
      const victim = c.ids.find((id) => id !== to)!
      yield* c.remove(victim)
      yield* c.advance(500)
      expect((yield* c.figures(to)).confState.voters).not.toContain(victim)
      expect((yield* c.propose(to, put("a", "2"))).ok).toBe(true)
      yield* c.checkInvariants
    }))

  it.scopedLive("pause and clock skew: a paused leader is replaced and rejoins as follower", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 21 })
      const l = yield* c.awaitLeader()
      yield* c.propose(l.id, put("p", "1"))
      yield* c.pause(l.id)
      yield* c.advance(5000)
      const l2 = yield* c.awaitLeader()
      expect(l2.id).not.toBe(l.id)
      yield* c.propose(l2.id, put("p", "2"))
      yield* c.resume(l.id)
      yield* c.advance(2000)
      expect((yield* c.figures(l.id)).role).toBe("Follower")
      expect(yield* c.read(l.id, "p")).toBe("2")
      // a follower whose clock runs 3x fast campaigns early but pre-vote/leases keep the leader
      const fast = c.ids.find((id) => id !== l2.id)!
      yield* c.skew(fast, 0, 3)
      yield* c.advance(5000)
      const l3 = yield* c.awaitLeader()
      expect(l3).toEqual(l2)
      yield* c.checkInvariants
    }))

  it.scopedLive("hold/release: a held vote delays the election, release completes it", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 4 })
      yield* c.hold((m) => m.type === "MsgVoteResp" || m.type === "MsgPreVoteResp")
      yield* c.advance(5000)
      for (const id of c.ids) expect(Option.isNone(yield* c.leader(id))).toBe(true)
      yield* c.release()
      const l = yield* c.awaitLeader()
      expect(c.ids).toContain(l.id)
    }))

  it.scopedLive("the same seed gives the same run, message for message", () =>
    Effect.gen(function* () {
      const run = (seed: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const c = yield* makeRaftTestCluster(3, {
              seed,
              faults: { drop: 0.05, duplicate: 0.05, minDelayMs: 1, maxDelayMs: 20 }
            })
            const l = yield* c.awaitLeader()
            for (let i = 0; i < 5; i++) yield* Effect.either(c.propose(l.id, put("k", `${i}`)))
            yield* c.crash(l.id)
            yield* c.advance(3000)
            yield* c.restart(l.id)
            yield* c.advance(3000)
            return {
              trace: c.network.trace.map((e) => `${e.atMs}:${e.kind}:${e.from}>${e.to}:${e.type}:${e.term}`),
              log: (yield* c.committedLog(1)).map((e) => `${e.index}/${e.term}`)
            }
          })
        )
      const a = yield* run(1234)
      const b = yield* run(1234)
      const d = yield* run(4321)
      expect(a.trace.length).toBeGreaterThan(100)
      expect(b.trace).toEqual(a.trace)
      expect(b.log).toEqual(a.log)
      expect(d.trace).not.toEqual(a.trace)
    }))

  it.scopedLive("without quiescence, 120 idle groups on 3 nodes still send O(node pairs) frames per heartbeat interval", () =>
    Effect.gen(function* () {
      // quiescence (on by default, test/raft-services/quiescence.test.ts) stops idle
      // groups' heartbeats altogether; this covers the heartbeat batching underneath it
      const heartbeatMs = 100
      const c = yield* makeRaftTestCluster(3, { seed: 77, heartbeatMs, electionTimeoutMs: 1000, engine: { quiescence: false } })
      yield* c.awaitLeader()
      const groups = Array.from({ length: 120 }, (_, i) => `g${i}`)
      for (const id of c.ids) {
        yield* c.runOn(id, (e) =>
          Effect.forEach(groups, (g) => e.createGroup(g, { voters: c.ids, stateMachine: new KvStateMachine() }), {
            discard: true
          })
        )
      }
      // let every group elect a leader and settle
      yield* c.advance(10_000)
      let leaders = 0
      for (const id of c.ids) {
        const figs = yield* c.runOn(id, (e) => e.allFigures)
        leaders += figs.filter((f) => f.role === "Leader").length
      }
      expect(leaders).toBe(121)
      const frames0 = c.network.framesSent
      const msgs0 = c.network.messagesSent
      const intervals = 20
      yield* c.advance(intervals * heartbeatMs)
      const frames = (c.network.framesSent - frames0) / intervals
      const msgs = (c.network.messagesSent - msgs0) / intervals
      // 6 directed node pairs; per pair and interval at most 3 frames (heartbeats, responses,
      // and both merged when a node's tick and a peer's heartbeats land in one driver cycle),
      // while the groups exchange 121 groups * 2 followers * 2 = 484 messages
      expect(msgs).toBeGreaterThan(400)
      expect(frames).toBeLessThanOrEqual(3 * 6)
      console.log(`idle multi-raft: ${frames} frames and ${msgs} messages per heartbeat interval (121 groups, 3 nodes)`)
      yield* c.checkInvariants
    }))

  it.scopedLive("log compaction: a restarted follower catches up from a snapshot", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 31, snapshotEvery: 20 })
      const l = yield* c.awaitLeader()
      const lagger = c.ids.find((id) => id !== l.id)!
      yield* c.crash(lagger)
      for (let i = 0; i < 200; i++) yield* c.propose(l.id, put(`k${i % 7}`, `v${i}`))
      const f = yield* c.figures(l.id)
      expect(f.snapshotsCreated).toBeGreaterThan(0)
      expect(f.firstIndex).toBeGreaterThan(2)
      yield* c.restart(lagger)
      yield* c.advance(3000)
      const fl = yield* c.figures(lagger)
      expect(fl.commitIndex).toBe((yield* c.figures(l.id)).commitIndex)
      expect(fl.snapshotsApplied).toBeGreaterThan(0)
      expect(yield* c.read(lagger, "k3")).toBe("v199".replace("199", String(199 - ((199 - 3) % 7))))
      yield* c.checkInvariants
    }))
})
