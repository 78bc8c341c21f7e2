/**
 * Per-group log stores (`GroupOptions.logStore`) and per-group compaction
 * (`snapshotEvery`, `snapshotEveryBytes`, `snapshotKeepEntries`).
 *
 * Under the TestClock; the driver runs on Effect's scheduler (`Effect.yieldNow`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import type { GroupId } from "../../src/raft/core/types.js"
import type { PersistItem, RaftLogStoreShape } from "../../src/raft/RaftLogStore.js"
import * as RaftLogStore from "../../src/raft/RaftLogStore.js"
import { engineOn, RecordingStateMachine, settled, until } from "./oneNodeEngine.js"

const enc = new TextEncoder()
const dec = new TextDecoder()

/** A memory store that records which groups it opened, persisted and compacted, and can hold `persist` open. */
const makeRecordingStore = () =>
  Effect.map(RaftLogStore.makeMemory(new RaftLogStore.MemoryDisk()), (inner) => {
    const rec = {
      opened: [] as Array<GroupId>,
      persistCalls: [] as Array<ReadonlyArray<PersistItem>>,
      persistDone: 0,
      compactCalls: [] as Array<{ readonly group: GroupId; readonly index: number; readonly keep: number | undefined }>,
      gate: null as Deferred.Deferred<void> | null
    }
    const store: RaftLogStoreShape = {
      ...inner,
      open: (group, bootstrap) => {
        rec.opened.push(group)
        return inner.open(group, bootstrap)
      },
      persist: (batch) =>
        Effect.suspend(() => {
          rec.persistCalls.push(batch)
          const gate = rec.gate
          const durable = Effect.tap(inner.persist(batch), () =>
            Effect.sync(() => {
              rec.persistDone++
            })
          )
          return gate === null ? durable : Effect.zipRight(Deferred.await(gate), durable)
        }),
      compact: (group, index, confState, data, keep) => {
        rec.compactCalls.push({ group, index, keep })
        return inner.compact(group, index, confState, data, keep)
      }
    }
    return { store, rec }
  })

const groupsOf = (batch: ReadonlyArray<PersistItem>) => [...new Set(batch.map((i) => i.group))]

describe("per-group log stores", () => {
  it.scoped("two groups with their own stores: one cycle, one persist per store, concurrently", () =>
    Effect.gen(function* () {
      const def = yield* makeRecordingStore()
      const a = yield* makeRecordingStore()
      const b = yield* makeRecordingStore()
      const engine = yield* engineOn(def.store)
      const smA = new RecordingStateMachine()
      const smB = new RecordingStateMachine()
      const smD = new RecordingStateMachine()
      yield* engine.createGroup("ga", { voters: [1], stateMachine: smA, logStore: a.store })
      yield* engine.createGroup("gb", { voters: [1], stateMachine: smB, logStore: b.store })
      yield* engine.createGroup("gd", { voters: [1], stateMachine: smD })
      yield* settled(engine, "ga")
      yield* settled(engine, "gb")
      yield* settled(engine, "gd")
      expect(a.rec.opened).toEqual(["ga"])
      expect(b.rec.opened).toEqual(["gb"])
      expect(def.rec.opened).toEqual(["gd"])
      // both stores held open: the cycle covering both groups starts both persists before either returns
      a.rec.gate = yield* Deferred.make<void>()
      b.rec.gate = yield* Deferred.make<void>()
      const [pa, pb, cycles] = [a.rec.persistCalls.length, b.rec.persistCalls.length, (yield* engine.engineFigures).cycles]
      expect(engine.proposeNow("ga", [enc.encode("a1")])._tag).toBe("Proposed")
      expect(engine.proposeNow("gb", [enc.encode("b1")])._tag).toBe("Proposed")
      expect(engine.proposeNow("gd", [enc.encode("d1")])._tag).toBe("Proposed")
      yield* until("both persists in flight", () => a.rec.persistCalls.length === pa + 1 && b.rec.persistCalls.length === pb + 1)
      expect((yield* engine.engineFigures).cycles).toBe(cycles + 1)
      expect(a.rec.persistDone).toBe(pa)
      expect(b.rec.persistDone).toBe(pb)
      // nothing is applied until every store of the cycle is durable
      yield* Deferred.succeed(a.rec.gate, undefined)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(smA.applied).toEqual([])
      expect(smD.applied).toEqual([])
      yield* Deferred.succeed(b.rec.gate, undefined)
      yield* until("all applied", () => smA.applied.length === 1 && smB.applied.length === 1 && smD.applied.length === 1)
      expect([smA.applied, smB.applied, smD.applied]).toEqual([["a1"], ["b1"], ["d1"]])
      // every store only ever saw its own group
      for (const batch of a.rec.persistCalls) expect(groupsOf(batch)).toEqual(["ga"])
      for (const batch of b.rec.persistCalls) expect(groupsOf(batch)).toEqual(["gb"])
      for (const batch of def.rec.persistCalls) expect(groupsOf(batch)).toEqual(["gd"])
      // the cycle after the commit (its hard state) may still be starting its persists: let it settle
      const recorded = () => a.rec.persistCalls.length + b.rec.persistCalls.length + def.rec.persistCalls.length
      let ef = yield* engine.engineFigures
      for (let i = 0; i < 100 && ef.persistCalls !== recorded(); i++) {
        yield* Effect.yieldNow()
        ef = yield* engine.engineFigures
      }
      expect(ef.persistCalls).toBe(recorded())
      // the Effect proposal path uses the group's store too
      expect(yield* engine.proposeBatch("ga", [enc.encode("a2"), enc.encode("a3")])).toEqual([3, 4])
      expect(a.rec.persistCalls.some((batch) => batch.some((i) => (i.entries ?? []).some((e) => dec.decode(e.data) === "a3")))).toBe(true)
      expect(yield* engine.logEntries("ga", 1, 5)).toHaveLength(4)
    }))

  it.scoped("a failing group store stops only its group; the driver and the other groups go on", () =>
    Effect.gen(function* () {
      const def = yield* makeRecordingStore()
      const a = yield* makeRecordingStore()
      const engine = yield* engineOn(def.store)
      const sm = new RecordingStateMachine()
      const other = new RecordingStateMachine()
      const failing: RaftLogStoreShape = {
        ...a.store,
        persist: (batch) =>
          batch.some((i) => (i.entries ?? []).length > 1)
            ? Effect.fail(new RaftLogStore.RaftLogStoreError({ group: "ga", reason: "boom" }))
            : a.store.persist(batch)
      }
      yield* engine.createGroup("ga", { voters: [1], stateMachine: sm, logStore: failing })
      yield* engine.createGroup("gd", { voters: [1], stateMachine: other })
      yield* settled(engine, "ga")
      yield* settled(engine, "gd")
      expect(engine.proposeNow("ga", [enc.encode("x"), enc.encode("y")])._tag).toBe("Proposed")
      yield* until("group ga stopped", () => engine.proposeNow("ga", [])._tag === "Refused")
      const r = engine.proposeNow("ga", [enc.encode("z")])
      expect(r._tag === "Refused" && r.reason).toContain("boom")
      expect(engine.leaderOf("ga")).toBeUndefined()
      // nothing of the failed persist was applied
      expect(sm.applied).toEqual([])
      // the default store's group still commits
      expect(engine.proposeNow("gd", [enc.encode("w")])._tag).toBe("Proposed")
      yield* until("w applied", () => other.applied.includes("w"))
    }))

  it.scoped("a failing default store stops the driver", () =>
    Effect.gen(function* () {
      const def = yield* makeRecordingStore()
      const failing: RaftLogStoreShape = {
        ...def.store,
        persist: (batch) =>
          batch.some((i) => (i.entries ?? []).some((e) => dec.decode(e.data) === "boom"))
            ? Effect.fail(new RaftLogStore.RaftLogStoreError({ group: "gd", reason: "disk gone" }))
            : def.store.persist(batch)
      }
      const engine = yield* engineOn(failing)
      const sm = new RecordingStateMachine()
      yield* engine.createGroup("gd", { voters: [1], stateMachine: sm })
      yield* settled(engine, "gd")
      expect(engine.proposeNow("gd", [enc.encode("boom")])._tag).toBe("Proposed")
      yield* until("driver stopped", () => engine.proposeNow("gd", [])._tag === "Refused")
      const r = engine.proposeNow("gd", [enc.encode("z")])
      expect(r._tag === "Refused" && r.reason).toContain("disk gone")
      expect(sm.applied).toEqual([])
    }))
})

describe("per-group compaction", () => {
  it.scoped("snapshotEveryBytes compacts a busy group through its own store; other groups keep the engine setting", () =>
    Effect.gen(function* () {
      const def = yield* makeRecordingStore()
      const a = yield* makeRecordingStore()
      const engine = yield* engineOn(def.store) // engine default: snapshotEvery 0 (never)
      const sm = new RecordingStateMachine()
      const other = new RecordingStateMachine()
      yield* engine.createGroup("ga", {
        voters: [1],
        stateMachine: sm,
        logStore: a.store,
        snapshotEveryBytes: 1000,
        snapshotKeepEntries: 2
      })
      yield* engine.createGroup("gd", { voters: [1], stateMachine: other })
      const payload = (i: number) => enc.encode(`${i}`.padStart(100, "x")) // 100 bytes
      for (let i = 0; i < 9; i++) engine.proposeNow("ga", [payload(i)])
      for (let i = 0; i < 30; i++) engine.proposeNow("gd", [payload(i)])
      yield* until("9 applied", () => sm.applied.length === 9 && other.applied.length === 30)
      yield* settled(engine, "ga")
      // 900 bytes applied: not yet
      expect(a.rec.compactCalls).toEqual([])
      engine.proposeNow("ga", [payload(9)])
      yield* until("10 applied", () => sm.applied.length === 10)
      yield* until("compacted", () => a.rec.compactCalls.length === 1)
      const f = yield* settled(engine, "ga")
      expect(a.rec.compactCalls).toEqual([{ group: "ga", index: 11, keep: 2 }])
      expect(f.snapshotsCreated).toBe(1)
      expect(f.firstIndex).toBe(10) // entries up to 11 - 2 dropped from the read cache
      expect(sm.snapshots).toBe(1)
      // the next snapshot needs another 1000 bytes; a batch of many small entries counts bytes, not entries
      engine.proposeNow(
        "ga",
        Array.from({ length: 50 }, (_, i) => enc.encode(`${i}`.padStart(20, "y")))
      )
      yield* until("compacted again", () => a.rec.compactCalls.length === 2)
      expect(a.rec.compactCalls[1]!.index).toBe(61)
      // the group without the option never compacts (engine default), nor does the default store see ga
      expect(def.rec.compactCalls).toEqual([])
      expect((yield* engine.figures("gd")).snapshotsCreated).toBe(0)
    }))

  it.scoped("snapshotEvery per group overrides the engine's", () =>
    Effect.gen(function* () {
      const def = yield* makeRecordingStore()
      const engine = yield* engineOn(def.store, { snapshotEvery: 1000 })
      const sm = new RecordingStateMachine()
      yield* engine.createGroup("g5", { voters: [1], stateMachine: sm, snapshotEvery: 5, snapshotKeepEntries: 0 })
      yield* engine.createGroup("gx", { voters: [1], stateMachine: new RecordingStateMachine() })
      for (let i = 0; i < 12; i++) {
        engine.proposeNow("g5", [enc.encode(`e${i}`)])
        engine.proposeNow("gx", [enc.encode(`e${i}`)])
        yield* until(`e${i} applied`, () => sm.applied.length === i + 1)
      }
      yield* settled(engine, "g5")
      const groups = def.rec.compactCalls.map((c) => c.group)
      expect(groups.length).toBeGreaterThanOrEqual(2)
      expect(new Set(groups)).toEqual(new Set(["g5"]))
      for (const c of def.rec.compactCalls) expect(c.keep).toBe(0)
      expect((yield* engine.figures("gx")).snapshotsCreated).toBe(0)
    }))
})
