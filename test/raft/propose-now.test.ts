/**
 * `RaftEngine.proposeNow` (synchronous proposal with the store's `writeNow`
 * hook), `leaderOf`, and the one-voter group that elects itself at creation.
 *
 * Tests run under the TestClock: nothing here advances time unless it says
 * so, and the driver runs on Effect's scheduler (`Effect.yieldNow`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, TestClock } from "effect"
import { KV_GROUP, makeRaftTestCluster } from "../../layers/TestCluster.js"
import type { Entry, GroupId } from "../../src/raft/core/types.js"
import { encodeKvCommand } from "../../src/raft/KvStateMachine.js"
import * as RaftEngine from "../../src/raft/RaftEngine.js"
import type { PersistItem, RaftLogStoreShape } from "../../src/raft/RaftLogStore.js"
import * as RaftLogStore from "../../src/raft/RaftLogStore.js"
import { engineOn, RecordingStateMachine, settled, until } from "./oneNodeEngine.js"

const enc = new TextEncoder()
const dec = new TextDecoder()
const bytes = (...ss: ReadonlyArray<string>) => ss.map((s) => enc.encode(s))

/**
 * A memory log store with `writeNow` that keeps its own copy of each group's
 * log with the store contract (same index and term: skip; other term:
 * truncate and rewrite; a gap is a violation), records every call, can hold
 * `persist` open (after its writes, before durability) and can make
 * `writeNow` throw.
 */
const makeRecordingStore = () =>
  Effect.map(RaftLogStore.makeMemory(new RaftLogStore.MemoryDisk()), (inner) => {
    const rec = {
      logs: new Map<GroupId, Array<Entry>>(),
      writeNowCalls: [] as Array<{ readonly group: GroupId; readonly entries: ReadonlyArray<Entry> }>,
      persistCalls: [] as Array<ReadonlyArray<PersistItem>>,
      persistDone: 0,
      skipped: 0,
      violations: [] as Array<string>,
      gate: null as Deferred.Deferred<void> | null,
      failWriteNow: null as string | null
    }
    const write = (group: GroupId, entries: ReadonlyArray<Entry>): void => {
      let log = rec.logs.get(group)
      if (log === undefined) {
        log = []
        rec.logs.set(group, log)
      }
      for (const e of entries) {
        if (e.index <= log.length) {
          if (log[e.index - 1]!.term === e.term) {
            rec.skipped++
            continue
          }
          log.length = e.index - 1
        } else if (e.index > log.length + 1) {
          rec.violations.push(`group ${group}: entry ${e.index} after ${log.length}`)
          throw new Error("gap")
        }
        log.push(e)
      }
    }
    const store: RaftLogStoreShape = {
      ...inner,
      persist: (batch) =>
        Effect.suspend(() => {
          rec.persistCalls.push(batch)
          for (const item of batch) if (item.entries !== undefined) write(item.group, item.entries)
          const gate = rec.gate
          const durable = Effect.tap(inner.persist(batch), () =>
            Effect.sync(() => {
              rec.persistDone++
            })
          )
          return gate === null ? durable : Effect.zipRight(Deferred.await(gate), durable)
        }),
      writeNow: (group, entries) => {
        if (rec.failWriteNow !== null) throw new Error(rec.failWriteNow)
        rec.writeNowCalls.push({ group, entries: [...entries] })
        write(group, entries)
      }
    }
    return { store, rec }
  })

const proposed = (r: RaftEngine.ProposeNowResult) => {
  if (r._tag !== "Proposed") throw new Error(`expected Proposed, got ${JSON.stringify(r)}`)
  return r
}

describe("one-voter groups elect themselves at once", () => {
  it.scoped("a new one-voter group is leader when createGroup returns, without any tick", () =>
    Effect.gen(function* () {
      const { store } = yield* makeRecordingStore()
      const engine = yield* engineOn(store)
      const sm = new RecordingStateMachine()
      expect(engine.leaderOf("g")).toBeUndefined()
      yield* engine.createGroup("g", { voters: [1], stateMachine: sm })
      expect(engine.leaderOf("g")).toEqual({ leader: 1, term: 1 })
      const f = yield* settled(engine, "g")
      expect(f.lastIndex).toBe(1) // the no-op, committed and applied
      expect(yield* Clock.currentTimeMillis).toBe(0)
      expect((yield* engine.engineFigures).ticks).toBe(0)
      // a proposal commits without time passing either
      const r = proposed(engine.proposeNow("g", bytes("a")))
      expect(r).toEqual({ _tag: "Proposed", term: 1, firstIndex: 2, lastIndex: 2 })
      yield* until("a applied", () => sm.applied.length === 1)
      expect(sm.applied).toEqual(["a"])
    }))

  it.scoped("a recovered one-voter group is leader of a new term at once and commits its old entries", () =>
    Effect.gen(function* () {
      const disk = new RaftLogStore.MemoryDisk()
      const first = new RecordingStateMachine()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* engineOn(yield* RaftLogStore.makeMemory(disk))
          yield* engine.createGroup("g", { voters: [1], stateMachine: first })
          proposed(engine.proposeNow("g", bytes("a", "b")))
          yield* until("a, b applied", () => first.applied.length === 2)
        })
      )
      const sm = new RecordingStateMachine()
      const engine = yield* engineOn(yield* RaftLogStore.makeMemory(disk))
      yield* engine.createGroup("g", { voters: [1], stateMachine: sm })
      expect(engine.leaderOf("g")).toEqual({ leader: 1, term: 2 })
      yield* until("a, b applied again", () => sm.applied.length === 2)
      expect(sm.applied).toEqual(["a", "b"])
      expect(yield* Clock.currentTimeMillis).toBe(0)
    }))

  it.scoped("a group with other voters still waits for an election timeout", () =>
    Effect.gen(function* () {
      const { store } = yield* makeRecordingStore()
      const engine = yield* engineOn(store)
      yield* engine.createGroup("g3", { voters: [1, 2, 3], stateMachine: new RecordingStateMachine() })
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(engine.leaderOf("g3")).toEqual({ leader: null, term: 0 })
    }))
})

describe("proposeNow", () => {
  it.scoped("writeNow gets the new leader's no-op before the first entries, then each entry once; persist skips them", () =>
    Effect.gen(function* () {
      const { store, rec } = yield* makeRecordingStore()
      const engine = yield* engineOn(store)
      const sm = new RecordingStateMachine()
      // hold the first persist (the leader's no-op) open: the no-op is not yet stable
      rec.gate = yield* Deferred.make<void>()
      yield* engine.createGroup("g", { voters: [1], stateMachine: sm })
      yield* until("no-op persist started", () => rec.persistCalls.length === 1)
      const r1 = proposed(engine.proposeNow("g", bytes("a", "b")))
      expect([r1.firstIndex, r1.lastIndex, r1.term]).toEqual([2, 3, 1])
      const r2 = proposed(engine.proposeNow("g", bytes("c")))
      expect([r2.firstIndex, r2.lastIndex]).toEqual([4, 4])
      const r3 = proposed(engine.proposeNow("g", bytes("d", "e")))
      expect([r3.firstIndex, r3.lastIndex]).toEqual([5, 6])
      expect(rec.writeNowCalls.map((c) => c.entries.map((e) => [e.index, e.type]))).toEqual([
        [
          [1, "Noop"],
          [2, "Normal"],
          [3, "Normal"]
        ],
        [[4, "Normal"]],
        [
          [5, "Normal"],
          [6, "Normal"]
        ]
      ])
      // nothing applied before durability
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(sm.applied).toEqual([])
      yield* Deferred.succeed(rec.gate, undefined)
      yield* until("all applied", () => sm.applied.length === 5)
      yield* settled(engine, "g")
      expect(sm.applied).toEqual(["a", "b", "c", "d", "e"])
      expect(sm.indexes).toEqual([2, 3, 4, 5, 6])
      // persist included every entry writeNow wrote (the store skipped them); nothing lost or duplicated
      const persisted = rec.persistCalls.flatMap((b) => b.flatMap((i) => (i.entries ?? []).map((e) => e.index)))
      expect([...new Set(persisted)].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6])
      expect(rec.skipped).toBe(1 + 5) // the no-op in writeNow (persist wrote it first), a..e in persist
      expect(rec.logs.get("g")!.map((e) => [e.index, e.term])).toEqual([1, 2, 3, 4, 5, 6].map((i) => [i, 1]))
      expect(rec.violations).toEqual([])
      const f = yield* engine.figures("g")
      expect(f.proposals).toBe(5)
      expect(f.proposalsFailed).toBe(0)
      // the core's log and the store's agree
      const log = yield* engine.logEntries("g", 1, 7)
      expect(log.map((e) => [e.index, e.term])).toEqual(rec.logs.get("g")!.map((e) => [e.index, e.term]))
    }))

  it.scoped("entries proposed while a persist is in flight are persisted by the next cycle and applied in order", () =>
    Effect.gen(function* () {
      const { store, rec } = yield* makeRecordingStore()
      const engine = yield* engineOn(store)
      const sm = new RecordingStateMachine()
      yield* engine.createGroup("g", { voters: [1], stateMachine: sm })
      yield* settled(engine, "g")
      rec.gate = yield* Deferred.make<void>()
      const callsBefore = rec.persistCalls.length
      proposed(engine.proposeNow("g", bytes("a")))
      yield* until("persist of a in flight", () => rec.persistCalls.length === callsBefore + 1)
      const inFlight = rec.persistCalls[callsBefore]!
      expect(inFlight.flatMap((i) => (i.entries ?? []).map((e) => dec.decode(e.data)))).toEqual(["a"])
      // the driver awaits that persist (its Ready is outstanding): propose more
      proposed(engine.proposeNow("g", bytes("b", "c")))
      proposed(engine.proposeNow("g", bytes("d")))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(rec.persistCalls.length).toBe(callsBefore + 1)
      expect(sm.applied).toEqual([])
      yield* Deferred.succeed(rec.gate, undefined)
      yield* until("all applied", () => sm.applied.length === 4)
      expect(sm.applied).toEqual(["a", "b", "c", "d"])
      // the next cycle persisted the entries appended during the first one, together
      const next = rec.persistCalls[callsBefore + 1]!
      expect(next.flatMap((i) => (i.entries ?? []).map((e) => dec.decode(e.data)))).toEqual(["b", "c", "d"])
      const f = yield* settled(engine, "g")
      expect(f.lastIndex).toBe(5)
      expect(rec.violations).toEqual([])
      // writeNow wrote each once, in order
      expect(rec.writeNowCalls.flatMap((c) => c.entries.map((e) => e.index))).toEqual([2, 3, 4, 5])
    }))

  it.scoped("interleaves with propose/proposeBatch in log order", () =>
    Effect.gen(function* () {
      const { store, rec } = yield* makeRecordingStore()
      const engine = yield* engineOn(store)
      const sm = new RecordingStateMachine()
      yield* engine.createGroup("g", { voters: [1], stateMachine: sm })
      yield* settled(engine, "g")
      proposed(engine.proposeNow("g", bytes("n1")))
      const viaEffect = yield* engine.proposeBatch("g", bytes("b1", "b2"))
      proposed(engine.proposeNow("g", bytes("n2")))
      expect(viaEffect).toEqual([3, 4])
      yield* until("n2 applied", () => sm.applied.length === 4)
      expect(sm.applied).toEqual(["n1", "b1", "b2", "n2"])
      // writeNow saw n1, then the batch's entries (unwritten: appended by the driver), then n2
      expect(rec.writeNowCalls.flatMap((c) => c.entries.map((e) => e.index))).toEqual([2, 5])
      expect(rec.logs.get("g")!.map((e) => e.index)).toEqual([1, 2, 3, 4, 5])
      expect(rec.violations).toEqual([])
    }))

  it.scoped("wakes a quiesced group", () =>
    Effect.gen(function* () {
      const { store } = yield* makeRecordingStore()
      const engine = yield* engineOn(store)
      const sm = new RecordingStateMachine()
      yield* engine.createGroup("g", { voters: [1], stateMachine: sm })
      yield* settled(engine, "g")
      for (let i = 0; i < 50 && !(yield* engine.figures("g")).quiesced; i++) {
        yield* TestClock.adjust(10)
        yield* Effect.yieldNow()
      }
      expect((yield* engine.figures("g")).quiesced).toBe(true)
      proposed(engine.proposeNow("g", bytes("a")))
      expect((yield* engine.figures("g")).quiesced).toBe(false)
      yield* until("a applied", () => sm.applied.length === 1)
      expect(sm.applied).toEqual(["a"])
    }))

  it.scoped("unknown group, empty batch, stopped engine", () =>
    Effect.gen(function* () {
      const { store } = yield* makeRecordingStore()
      const sm = new RecordingStateMachine()
      const engine = yield* Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* engineOn(store)
          yield* engine.createGroup("g", { voters: [1], stateMachine: sm })
          yield* settled(engine, "g")
          const missing = engine.proposeNow("nope", bytes("x"))
          expect(missing._tag).toBe("Refused")
          if (missing._tag === "Refused") expect(missing.reason).toContain("nope")
          expect(engine.proposeNow("g", [])).toEqual({ _tag: "Proposed", term: 1, firstIndex: 2, lastIndex: 1 })
          return engine
        })
      )
      expect(engine.proposeNow("g", bytes("x"))).toEqual({ _tag: "Refused", reason: "engine stopped" })
    }))

  it.scoped("a core refusal (leadership transfer in progress) is Refused and counted", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 5 })
      const l = yield* c.awaitLeader()
      const engine = yield* c.engine(l.id)
      const to = c.ids.find((id) => id !== l.id)!
      // the transferee cannot answer: the transfer stays in progress
      yield* c.partition([[l.id, c.ids.find((id) => id !== l.id && id !== to)!], [to]])
      yield* c.runOn(l.id, (e) => Effect.either(e.transferLeadership(KV_GROUP, to)))
      const before = (yield* c.figures(l.id)).proposalsFailed
      const r = engine.proposeNow(KV_GROUP, bytes("x"))
      expect(r._tag).toBe("Refused")
      if (r._tag === "Refused") expect(r.reason).toMatch(/transfer/i)
      expect((yield* c.figures(l.id)).proposalsFailed).toBe(before + 1)
      yield* c.heal
    }))

  it.scoped("on a follower of a 3-node group: NotLeader with the leader, nothing appended", () =>
    Effect.gen(function* () {
      const c = yield* makeRaftTestCluster(3, { seed: 21 })
      const l = yield* c.awaitLeader()
      yield* c.propose(l.id, { op: "put", key: "k", value: "v" })
      yield* c.advance(200)
      for (const id of c.ids) {
        const engine = yield* c.engine(id)
        expect(engine.leaderOf(KV_GROUP)).toEqual({ leader: l.id, term: l.term })
      }
      const follower = c.ids.find((id) => id !== l.id)!
      const engine = yield* c.engine(follower)
      const lastBefore = (yield* c.figures(follower)).lastIndex
      expect(engine.proposeNow(KV_GROUP, bytes("x"))).toEqual({ _tag: "NotLeader", leader: l.id, term: l.term })
      expect((yield* c.figures(follower)).lastIndex).toBe(lastBefore)
      // on the leader it is proposed and commits everywhere (the default store has no writeNow)
      const leader = yield* c.engine(l.id)
      const r = proposed(leader.proposeNow(KV_GROUP, [encodeKvCommand({ op: "put", key: "k", value: "now" })]))
      yield* c.advance(500)
      for (const id of c.ids) {
        const log = yield* c.committedLog(id)
        expect(log.some((e) => e.index === r.lastIndex && e.term === r.term)).toBe(true)
      }
      yield* c.checkInvariants
    }))

  it.scoped("writeNow throwing: Refused with the error, nothing proposed; the group goes on", () =>
    Effect.gen(function* () {
      const { store, rec } = yield* makeRecordingStore()
      const engine = yield* engineOn(store)
      const sm = new RecordingStateMachine()
      yield* engine.createGroup("g", { voters: [1], stateMachine: sm })
      yield* settled(engine, "g")
      proposed(engine.proposeNow("g", bytes("ok")))
      yield* until("ok applied", () => sm.applied.length === 1)
      const lastBefore = (yield* engine.figures("g")).lastIndex
      rec.failWriteNow = "disk full"
      const r = engine.proposeNow("g", bytes("bad"))
      expect(r._tag).toBe("Refused")
      if (r._tag === "Refused") expect(r.reason).toContain("disk full")
      // the core is unchanged: the failed entries were never appended
      expect((yield* engine.figures("g")).lastIndex).toBe(lastBefore)
      rec.failWriteNow = null
      const later = proposed(engine.proposeNow("g", bytes("later")))
      expect(later.firstIndex).toBe(lastBefore + 1)
      yield* until("later applied", () => sm.applied.length === 2)
      expect(sm.applied).toEqual(["ok", "later"])
      expect(rec.violations).toEqual([])
      expect((rec.logs.get("g") ?? []).map((e) => dec.decode(e.data))).not.toContain("bad")
    }))
})
