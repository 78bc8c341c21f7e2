import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import * as GroupCoordinator from "../../src/group/GroupCoordinator.js"
import {
  assignmentBytes,
  client,
  coordinator,
  expectEachPartitionOnce,
  join,
  ownedOf,
  partitionsOf,
  rangeAssign,
  rebalance,
  type Assignor
} from "./helpers.js"

/**
 * A cooperative assignor as the client runs it: the target is the range
 * assignment, but a partition still owned by another member is left out this
 * round (it is revoked first and assigned in the next rebalance).
 */
const cooperativeAssign: Assignor = (members, counts) => {
  const target = new Map<string, string>()
  for (const a of rangeAssign(members, counts)) {
    for (const p of partitions(a.assignment)) target.set(p, a.memberId)
  }
  const owner = new Map<string, string>()
  for (const m of members) for (const p of ownedOf(m.metadata)) owner.set(p, m.memberId)
  return members.map((m) => {
    const mine = [...target].filter(([p, id]) => id === m.memberId && (owner.get(p) ?? id) === id).map(([p]) => p)
    return { memberId: m.memberId, assignment: toAssignment(mine) }
  })
}

const partitions = (b: Buffer): Array<string> => partitionsOf(b)

const toAssignment = (ps: ReadonlyArray<string>): Buffer => {
  const byTopic = new Map<string, Array<number>>()
  for (const tp of ps) {
    const i = tp.lastIndexOf("-")
    byTopic.set(tp.slice(0, i), [...(byTopic.get(tp.slice(0, i)) ?? []), Number(tp.slice(i + 1))])
  }
  return assignmentBytes([...byTopic].map(([topic, ps2]) => ({ topic, partitions: ps2 })))
}

describe("cooperative-sticky over the classic protocol", () => {
  it.scoped("a new member gets revoked partitions in a second rebalance started by the members that revoked them", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000, "g", cooperativeAssign)
      expectEachPartitionOnce([a, b])
      for (const c of [a, b]) c.owned = c.assignment

      // c joins; a and b rejoin with their owned partitions. Nobody owns a partition twice in generation 2.
      const c = client("c")
      const fc = yield* Effect.fork(join(gc, c))
      yield* TestClock.adjust(0)
      expect((yield* gc.describeGroup("g")).state).toBe("PreparingRebalance")
      yield* Fiber.interrupt(fc)
      yield* rebalance(gc, [a, b, c], { t: 6 }, 0, "g", cooperativeAssign)
      expect(c.generation).toBe(2)
      expect(c.assignment).toEqual([])
      const all2 = [a, b, c].flatMap((x) => x.assignment)
      expect(new Set(all2).size).toBe(all2.length)
      // The members that lost partitions revoke them and rejoin with their new owned set: that changes
      // their metadata, which triggers the follow-up rebalance on a Stable group.
      expect((yield* gc.describeGroup("g")).state).toBe("Stable")
      for (const x of [a, b, c]) x.owned = x.assignment
      const fa = yield* Effect.fork(join(gc, a))
      yield* TestClock.adjust(0)
      expect((yield* gc.describeGroup("g")).state).toBe("PreparingRebalance")
      yield* Fiber.interrupt(fa)
      yield* rebalance(gc, [a, b, c], { t: 6 }, 0, "g", cooperativeAssign)
      expect(c.generation).toBe(3)
      expectEachPartitionOnce([a, b, c])
      for (const x of [a, b, c]) expect(x.assignment).toHaveLength(2)
    })
  )
})

describe("layers", () => {
  it.scoped("GroupCoordinator.layerMemory provides a working coordinator", () =>
    Effect.gen(function* () {
      const gc = yield* GroupCoordinator.GroupCoordinator
      const r = yield* gc.commitOffsets({
        groupId: "s",
        generationId: -1,
        memberId: "",
        groupInstanceId: null,
        retentionTimeMs: -1,
        offsets: [{ topic: "t", partition: 0, offset: 3n, leaderEpoch: -1, metadata: null }]
      })
      expect(r[0]!.errorCode).toBe(0)
      expect((yield* gc.describeGroupOffsets("s")).map((o) => o.offset)).toEqual([3n])
    }).pipe(Effect.provide(GroupCoordinator.layerMemory({ initialRebalanceDelayMs: 0 })))
  )
})
