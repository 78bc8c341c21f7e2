/**
 * Durability by notice: a group whose log store has `onDurable` (the
 * partition store) is persisted by the engine, as leader, without waiting
 * for its entries' sync (`waitForEntries: false`); it commits when the store
 * calls back, and meanwhile the driver goes on (other groups, later cycles of
 * the same group). A failed notice stops that group alone.
 *
 * Under the TestClock; the driver runs on Effect's scheduler (`Effect.yieldNow`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { GroupId } from "../../src/raft/core/types.js"
import type { PersistItem, RaftLogStoreShape } from "../../src/raft/RaftLogStore.js"
import * as RaftLogStore from "../../src/raft/RaftLogStore.js"
import { engineOn, RecordingStateMachine, settled, until } from "./oneNodeEngine.js"

const enc = new TextEncoder()

/**
 * A memory store with `writeNow` and `onDurable`: the notices are held until
 * the test releases (or fails) them, in the order they were asked for.
 */
const makeNoticeStore = () =>
  Effect.map(RaftLogStore.makeMemory(new RaftLogStore.MemoryDisk()), (inner) => {
    const rec = {
      persistCalls: [] as Array<ReadonlyArray<PersistItem>>,
      held: [] as Array<{ readonly group: GroupId; readonly done: (error?: unknown) => void }>
    }
    const store: RaftLogStoreShape = {
      ...inner,
      persist: (batch) => {
        rec.persistCalls.push(batch)
        return inner.persist(batch)
      },
      // the entries reach `inner` through the persist that follows (same index and term)
      writeNow: () => {},
      onDurable: (group, done) => {
        rec.held.push({ group, done })
      }
    }
    const release = (error?: unknown) => {
      const held = rec.held.splice(0)
      for (const h of held) h.done(error)
      return held.length
    }
    return { store, rec, release }
  })

/** An engine with group "g" (one voter) on a notice store, its no-op notice released and settled. */
const settledLeaderOnNoticeStore = Effect.gen(function* () {
  const notices = yield* makeNoticeStore()
  const engine = yield* engineOn(yield* RaftLogStore.makeMemory(new RaftLogStore.MemoryDisk()))
  const sm = new RecordingStateMachine()
  yield* engine.createGroup("g", { voters: [1], stateMachine: sm, logStore: notices.store })
  // the leader's no-op is persisted without waiting, and not committed before its notice
  yield* until("no-op notice asked", () => notices.rec.held.length === 1)
  const before = yield* engine.figures("g")
  expect(notices.release()).toBe(1)
  yield* settled(engine, "g")
  return { ...notices, engine, sm, before }
})

describe("durability by notice (a store with onDurable)", () => {
  it.scoped("a leader commits on the store's notice, and the driver goes on while notices are held", () =>
    Effect.gen(function* () {
      const { rec, release, engine, sm, before } = yield* settledLeaderOnNoticeStore
      expect(rec.persistCalls.flat().some((it) => it.group === "g" && it.waitForEntries === false)).toBe(true)
      expect([before.lastIndex, before.commitIndex]).toEqual([1, 0])

      // two proposals, each in its own cycle: the second cycle runs while the first notice is held
      expect(engine.proposeNow("g", [enc.encode("a")])._tag).toBe("Proposed")
      yield* until("notice for a asked", () => rec.held.length === 1)
      expect(engine.proposeNow("g", [enc.encode("b")])._tag).toBe("Proposed")
      yield* until("notice for b asked", () => rec.held.length === 2)
      // another group, on the engine's own store, commits meanwhile
      const other = new RecordingStateMachine()
      yield* engine.createGroup("h", { voters: [1], stateMachine: other })
      yield* settled(engine, "h")
      yield* engine.propose("h", enc.encode("x"))
      expect(other.applied).toEqual(["x"])
      // nothing of g is committed before the notices
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(sm.applied).toEqual([])
      expect((yield* engine.figures("g")).commitIndex).toBe(1)

      release()
      yield* until("a and b applied", () => sm.applied.length === 2)
      expect(sm.applied).toEqual(["a", "b"])
      const ef = yield* engine.engineFigures
      expect(ef.durableNotices).toBeGreaterThanOrEqual(3)
    }))

  it.scoped("a failed notice stops that group alone; its proposals fail and other groups go on", () =>
    Effect.gen(function* () {
      const { rec, release, engine, sm } = yield* settledLeaderOnNoticeStore
      const other = new RecordingStateMachine()
      yield* engine.createGroup("h", { voters: [1], stateMachine: other })
      yield* settled(engine, "h")

      // a proposal through the engine (waits for its commit) while its sync fails
      const pending = yield* Effect.fork(Effect.either(engine.propose("g", enc.encode("lost"))))
      yield* until("notice asked", () => rec.held.length === 1)
      release(new Error("EIO: injected"))
      const outcome = yield* pending.await
      expect(outcome._tag).toBe("Success")
      if (outcome._tag === "Success") expect(outcome.value._tag).toBe("Left")
      yield* until("group g stopped", () => engine.proposeNow("g", [])._tag === "Refused")
      const r = engine.proposeNow("g", [enc.encode("after")])
      expect(r._tag === "Refused" && r.reason).toContain("EIO: injected")
      expect(sm.applied).toEqual([])

      yield* engine.propose("h", enc.encode("y"))
      expect(other.applied).toEqual(["y"])
    }))
})
