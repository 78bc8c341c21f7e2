import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, TestClock } from "effect"
import type { GroupCoordinatorShape, OffsetCommitEntry } from "../../src/group/GroupCoordinator.js"
import {
  GroupStoreError,
  decodeGroupRecord,
  encodeGroupRecord,
  makeMemory,
  type GroupRecord,
  type GroupStoreShape
} from "../../src/group/GroupStore.js"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { SESSION, client, coordinator, heartbeatFor, join, rebalance } from "./helpers.js"

const DAY = 24 * 3600 * 1000

const entry = (topic: string, partition: number, offset: bigint, metadata: string | null = null): OffsetCommitEntry => ({
  topic,
  partition,
  offset,
  leaderEpoch: 3,
  metadata
})

const simpleCommit = (gc: GroupCoordinatorShape, groupId: string, offsets: ReadonlyArray<OffsetCommitEntry>, retentionTimeMs = -1) =>
  gc.commitOffsets({ groupId, generationId: -1, memberId: "", groupInstanceId: null, retentionTimeMs, offsets })

const offsetsOf = (gc: GroupCoordinatorShape, groupId: string) =>
  Effect.map(gc.fetchOffsets(groupId, null, false), (r) => r.offsets.map((o) => `${o.topic}-${o.partition}@${o.offset}`))

describe("offsets: commit and fetch", () => {
  it.scoped("a simple consumer (generation -1, no member id) commits to a group that does not exist or is empty", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator()
      const r = yield* simpleCommit(gc, "simple", [entry("t", 0, 10n, "meta"), entry("t", 1, 20n)])
      expect(r.map((x) => x.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.NONE])
      const f = yield* gc.fetchOffsets("simple", [{ topic: "t", partition: 0 }, { topic: "t", partition: 1 }, { topic: "t", partition: 2 }], false)
      expect(f.errorCode).toBe(ErrorCode.NONE)
      expect(f.offsets).toEqual([
        { topic: "t", partition: 0, offset: 10n, leaderEpoch: 3, metadata: "meta", errorCode: 0 },
        { topic: "t", partition: 1, offset: 20n, leaderEpoch: 3, metadata: "", errorCode: 0 },
        { topic: "t", partition: 2, offset: -1n, leaderEpoch: -1, metadata: "", errorCode: 0 }
      ])
      // The group exists now, Empty, without a protocol type.
      const d = yield* gc.describeGroup("simple")
      expect(d.state).toBe("Empty")
      expect(d.protocolType).toBe("")
      // Fetch of an unknown group: -1 for what was asked, nothing for "all".
      const unknown = yield* gc.fetchOffsets("nobody", [{ topic: "t", partition: 0 }], false)
      expect(unknown.offsets[0]!.offset).toBe(-1n)
      expect((yield* gc.fetchOffsets("nobody", null, false)).offsets).toEqual([])
      // A later commit replaces the earlier one.
      yield* simpleCommit(gc, "simple", [entry("t", 0, 11n)])
      expect(yield* offsetsOf(gc, "simple")).toEqual(["t-0@11", "t-1@20"])
      expect((yield* gc.describeGroupOffsets("simple")).map((o) => o.offset)).toEqual([11n, 20n])
    })
  )

  it.scoped("a commit with a generation to a group that does not exist is ILLEGAL_GENERATION", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator()
      const r = yield* gc.commitOffsets({
        groupId: "g",
        generationId: 1,
        memberId: "m",
        groupInstanceId: null,
        retentionTimeMs: -1,
        offsets: [entry("t", 0, 1n)]
      })
      expect(r[0]!.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION)
    })
  )

  it.scoped("group members commit with their generation; others get UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION / REBALANCE_IN_PROGRESS", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      const commit = (p: Partial<{ generationId: number; memberId: string }>) =>
        gc.commitOffsets({
          groupId: "g",
          generationId: a.generation,
          memberId: a.memberId,
          groupInstanceId: null,
          retentionTimeMs: -1,
          offsets: [entry("t", 0, 5n)],
          ...p
        })
      expect((yield* commit({}))[0]!.errorCode).toBe(ErrorCode.NONE)
      expect((yield* commit({ generationId: 0 }))[0]!.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION)
      expect((yield* commit({ memberId: "stranger" }))[0]!.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
      // A simple commit to a group with members is refused.
      expect((yield* simpleCommit(gc, "g", [entry("t", 0, 1n)]))[0]!.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
      // During PreparingRebalance commits are still accepted ...
      a.topics = ["t", "u"]
      const fa = yield* Effect.fork(join(gc, a))
      yield* TestClock.adjust(0)
      expect((yield* commit({ generationId: 1 }))[0]!.errorCode).toBe(ErrorCode.NONE)
      // ... but not in CompletingRebalance.
      const fb = yield* Effect.fork(join(gc, b))
      yield* Fiber.join(fa)
      yield* Fiber.join(fb)
      expect((yield* gc.describeGroup("g")).state).toBe("CompletingRebalance")
      expect((yield* commit({ generationId: 2 }))[0]!.errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
      expect(yield* offsetsOf(gc, "g")).toEqual(["t-0@5"])
    })
  )

  it.scoped("metadata above offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE for that partition only", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ offsetMetadataMaxBytes: 8 })
      const r = yield* simpleCommit(gc, "s", [entry("t", 0, 1n, "123456789"), entry("t", 1, 2n, "12345678")])
      expect(r.map((x) => x.errorCode)).toEqual([ErrorCode.OFFSET_METADATA_TOO_LARGE, ErrorCode.NONE])
      expect(yield* offsetsOf(gc, "s")).toEqual(["t-1@2"])
    })
  )

  it.scoped("requireStable: a commit still being written is UNSTABLE_OFFSET_COMMIT; without it the last durable offset", () =>
    Effect.gen(function* () {
      const inner = makeMemory()
      const gate = yield* Deferred.make<void>()
      let slow = false
      const store: GroupStoreShape = {
        replay: inner.replay,
        append: (records) => (slow ? Effect.zipRight(Deferred.await(gate), inner.append(records)) : inner.append(records))
      }
      const gc = yield* coordinator({}, store)
      yield* simpleCommit(gc, "s", [entry("t", 0, 1n)])
      slow = true
      const pending = yield* Effect.fork(simpleCommit(gc, "s", [entry("t", 0, 2n)]))
      yield* TestClock.adjust(0)
      const stable = yield* gc.fetchOffsets("s", [{ topic: "t", partition: 0 }], true)
      expect(stable.offsets[0]!.errorCode).toBe(ErrorCode.UNSTABLE_OFFSET_COMMIT)
      const plain = yield* gc.fetchOffsets("s", [{ topic: "t", partition: 0 }], false)
      expect(plain.offsets[0]!.offset).toBe(1n)
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Fiber.join(pending))[0]!.errorCode).toBe(ErrorCode.NONE)
      expect((yield* gc.fetchOffsets("s", [{ topic: "t", partition: 0 }], true)).offsets[0]!.offset).toBe(2n)
    })
  )

  it.scoped("a store failure fails the commit with the store's error code and keeps the old offset", () =>
    Effect.gen(function* () {
      const inner = makeMemory()
      let fail = false
      const store: GroupStoreShape = {
        replay: inner.replay,
        append: (records) =>
          fail ? Effect.fail(new GroupStoreError({ reason: "disk", errorCode: ErrorCode.NOT_COORDINATOR })) : inner.append(records)
      }
      const gc = yield* coordinator({}, store)
      yield* simpleCommit(gc, "s", [entry("t", 0, 1n)])
      fail = true
      const r = yield* simpleCommit(gc, "s", [entry("t", 0, 2n)])
      expect(r[0]!.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      expect(yield* offsetsOf(gc, "s")).toEqual(["t-0@1"])
    })
  )

  it.scoped("a failed store write of the leader's assignment fails the SyncGroup of every member and rebalances", () =>
    Effect.gen(function* () {
      const inner = makeMemory()
      let fail = false
      const store: GroupStoreShape = {
        replay: inner.replay,
        append: (records) =>
          fail ? Effect.fail(new GroupStoreError({ reason: "disk", errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE })) : inner.append(records)
      }
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 }, store)
      const a = client("a")
      const b = client("b")
      const fa = yield* Effect.fork(join(gc, a))
      const fb = yield* Effect.fork(join(gc, b))
      yield* TestClock.adjust(6000)
      const ra = yield* Fiber.join(fa)
      yield* Fiber.join(fb)
      const leader = ra.members.length > 0 ? a : b
      const follower = leader === a ? b : a
      const sync = (c: typeof a) =>
        gc.syncGroup({
          groupId: "g",
          generationId: 1,
          memberId: c.memberId,
          groupInstanceId: null,
          protocolType: null,
          protocolName: null,
          assignments: []
        })
      const ff = yield* Effect.fork(sync(follower))
      yield* TestClock.adjust(0)
      fail = true
      const lr = yield* sync(leader)
      expect(lr.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
      expect((yield* Fiber.join(ff)).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
      expect((yield* gc.describeGroup("g")).state).toBe("PreparingRebalance")
    })
  )
})

describe("offsets: retention", () => {
  it.scoped("simple consumer offsets expire offsets.retention after their commit, checked periodically on the clock", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ offsetsRetentionMs: DAY, offsetsRetentionCheckIntervalMs: 3_600_000 })
      yield* simpleCommit(gc, "s", [entry("t", 0, 1n)])
      yield* TestClock.adjust(DAY / 2)
      yield* simpleCommit(gc, "s", [entry("t", 1, 2n)])
      yield* TestClock.adjust(DAY / 2 + 3_600_000)
      // t-0 is a day old and gone; t-1 is half a day old.
      expect(yield* offsetsOf(gc, "s")).toEqual(["t-1@2"])
      yield* TestClock.adjust(DAY / 2)
      expect(yield* offsetsOf(gc, "s")).toEqual([])
      // The group had no offsets and no members: it is gone.
      expect((yield* gc.listGroups([])).groups).toEqual([])
      expect((yield* gc.describeGroup("s")).state).toBe("Dead")
    })
  )

  it.scoped("an explicit retention time (OffsetCommit v2-v4) sets the expiry", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ offsetsRetentionMs: DAY, offsetsRetentionCheckIntervalMs: 1000 })
      yield* simpleCommit(gc, "s", [entry("t", 0, 1n)], 10_000)
      yield* TestClock.adjust(9000)
      expect(yield* offsetsOf(gc, "s")).toEqual(["t-0@1"])
      yield* TestClock.adjust(2000)
      expect(yield* offsetsOf(gc, "s")).toEqual([])
    })
  )

  it.scoped("a consumer group keeps its offsets while it has members; they expire retention after it became empty", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({
        initialRebalanceDelayMs: 3000,
        offsetsRetentionMs: 60_000,
        offsetsRetentionCheckIntervalMs: 1000,
        minSessionTimeoutMs: 1000
      })
      const a = client("a", ["t"])
      yield* rebalance(gc, [a], { t: 2 }, 3000)
      yield* gc.commitOffsets({
        groupId: "g",
        generationId: a.generation,
        memberId: a.memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        offsets: [entry("t", 0, 7n), entry("old", 0, 1n)]
      })
      // Stable with a subscription to t: t's offset stays, the unsubscribed topic's expires after retention.
      yield* heartbeatFor(gc, [a], 62_000)
      expect(yield* offsetsOf(gc, "g")).toEqual(["t-0@7"])
      // The member leaves: the group is Empty; offsets expire retention after that.
      yield* gc.leaveGroup("g", [{ memberId: a.memberId, groupInstanceId: null }])
      yield* TestClock.adjust(0)
      expect((yield* gc.describeGroup("g")).state).toBe("Empty")
      yield* TestClock.adjust(50_000)
      expect(yield* offsetsOf(gc, "g")).toEqual(["t-0@7"])
      expect((yield* gc.listGroups(["empty"])).groups.map((g) => g.groupId)).toEqual(["g"])
      yield* TestClock.adjust(12_000)
      expect(yield* offsetsOf(gc, "g")).toEqual([])
      expect((yield* gc.listGroups([])).groups).toEqual([])
    })
  )

  it.scoped("expireOffsets runs the sweep on demand and returns the count", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ offsetsRetentionMs: 1000, offsetsRetentionCheckIntervalMs: 3_600_000 })
      yield* simpleCommit(gc, "s", [entry("t", 0, 1n), entry("t", 1, 1n)])
      yield* TestClock.adjust(1000)
      expect(yield* gc.expireOffsets).toBe(2)
      expect(yield* gc.expireOffsets).toBe(0)
    })
  )
})

describe("OffsetDelete, DeleteGroups, ListGroups, DescribeGroups", () => {
  it.scoped("OffsetDelete: GROUP_ID_NOT_FOUND; removes from an empty group; GROUP_SUBSCRIBED_TO_TOPIC for a consumer group's topics", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      expect((yield* gc.deleteOffsets("none", [{ topic: "t", partition: 0 }])).errorCode).toBe(ErrorCode.GROUP_ID_NOT_FOUND)
      yield* simpleCommit(gc, "s", [entry("t", 0, 1n), entry("t", 1, 1n)])
      const r = yield* gc.deleteOffsets("s", [{ topic: "t", partition: 0 }])
      expect(r).toEqual({ errorCode: ErrorCode.NONE, partitions: [{ topic: "t", partition: 0, errorCode: ErrorCode.NONE }] })
      expect(yield* offsetsOf(gc, "s")).toEqual(["t-1@1"])

      const a = client("a", ["t"])
      yield* rebalance(gc, [a], { t: 2 }, 3000)
      yield* gc.commitOffsets({
        groupId: "g",
        generationId: a.generation,
        memberId: a.memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        offsets: [entry("t", 0, 1n), entry("x", 0, 1n)]
      })
      const d = yield* gc.deleteOffsets("g", [{ topic: "t", partition: 0 }, { topic: "x", partition: 0 }])
      expect(d.partitions.map((p) => p.errorCode)).toEqual([ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ErrorCode.NONE])
      expect(yield* offsetsOf(gc, "g")).toEqual(["t-0@1"])
    })
  )

  it.scoped("DeleteGroups: NON_EMPTY_GROUP for a group with members, GROUP_ID_NOT_FOUND, and deleting an empty group drops its offsets", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      yield* rebalance(gc, [a], { t: 2 }, 3000)
      yield* simpleCommit(gc, "s", [entry("t", 0, 1n)])
      const r = yield* gc.deleteGroups(["g", "s", "none"])
      expect(r).toEqual([
        { groupId: "g", errorCode: ErrorCode.NON_EMPTY_GROUP },
        { groupId: "s", errorCode: ErrorCode.NONE },
        { groupId: "none", errorCode: ErrorCode.GROUP_ID_NOT_FOUND }
      ])
      expect(yield* offsetsOf(gc, "s")).toEqual([])
      expect((yield* gc.deleteGroups(["s"]))[0]!.errorCode).toBe(ErrorCode.GROUP_ID_NOT_FOUND)
      // A new commit after deletion starts a fresh group.
      yield* simpleCommit(gc, "s", [entry("t", 0, 9n)])
      expect(yield* offsetsOf(gc, "s")).toEqual(["t-0@9"])
    })
  )

  it.scoped("ListGroups filters by state (case-insensitive); DescribeGroups shows members, metadata and assignment when Stable", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      yield* rebalance(gc, [a], { t: 2 }, 3000)
      yield* simpleCommit(gc, "s", [entry("t", 0, 1n)])
      const all = yield* gc.listGroups([])
      expect(all.groups.map((g) => [g.groupId, g.protocolType, g.state]).sort()).toEqual([
        ["g", "consumer", "Stable"],
        ["s", "", "Empty"]
      ])
      expect((yield* gc.listGroups(["STABLE"])).groups.map((g) => g.groupId)).toEqual(["g"])
      expect((yield* gc.listGroups(["Empty", "PreparingRebalance"])).groups.map((g) => g.groupId)).toEqual(["s"])
      expect((yield* gc.listGroups(["Dead"])).groups).toEqual([])
      const d = yield* gc.describeGroup("g")
      expect(d.state).toBe("Stable")
      expect(d.protocolType).toBe("consumer")
      expect(d.protocol).toBe("range")
      expect(d.members).toHaveLength(1)
      expect(d.members[0]!.clientId).toBe("a")
      expect(d.members[0]!.clientHost).toBe("/127.0.0.1")
      expect(d.members[0]!.metadata.length).toBeGreaterThan(0)
      expect(d.members[0]!.assignment.length).toBeGreaterThan(0)
      const unknown = yield* gc.describeGroup("nope")
      expect(unknown).toEqual({ errorCode: 0, groupId: "nope", state: "Dead", protocolType: "", protocol: "", members: [] })
    })
  )
})

describe("GroupStore: durability and replay", () => {
  it.scoped("a coordinator started on the same store rebuilds offsets and the last stable generation", () =>
    Effect.gen(function* () {
      const store = makeMemory()
      const first = yield* coordinator({ initialRebalanceDelayMs: 3000 }, store)
      const a = client("a", ["t"], "ia")
      const b = client("b", ["t"])
      yield* rebalance(first, [a, b], { t: 6 }, 6000)
      yield* first.commitOffsets({
        groupId: "g",
        generationId: a.generation,
        memberId: a.memberId,
        groupInstanceId: "ia",
        retentionTimeMs: -1,
        offsets: [entry("t", 0, 42n, "m"), entry("t", 1, 43n)]
      })
      yield* simpleCommit(first, "s", [entry("x", 0, 1n)])
      yield* simpleCommit(first, "gone", [entry("x", 0, 1n)])
      yield* first.deleteGroups(["gone"])
      const before = yield* first.describeGroup("g")

      // "Restart": a second coordinator over the same store.
      const second = yield* coordinator({ initialRebalanceDelayMs: 3000 }, store)
      const fetched = yield* second.fetchOffsets("g", null, false)
      expect(fetched.offsets).toEqual([
        { topic: "t", partition: 0, offset: 42n, leaderEpoch: 3, metadata: "m", errorCode: 0 },
        { topic: "t", partition: 1, offset: 43n, leaderEpoch: 3, metadata: "", errorCode: 0 }
      ])
      expect(yield* offsetsOf(second, "s")).toEqual(["x-0@1"])
      expect((yield* second.describeGroup("gone")).state).toBe("Dead")
      const after = yield* second.describeGroup("g")
      expect(after.state).toBe("Stable")
      expect(after.protocol).toBe("range")
      expect(after.members.map((m) => [m.memberId, m.groupInstanceId, m.assignment.toString("hex")]).sort()).toEqual(
        before.members.map((m) => [m.memberId, m.groupInstanceId, m.assignment.toString("hex")]).sort()
      )
      // The members carry on with their generation ...
      expect(yield* second.heartbeat({ groupId: "g", generationId: 1, memberId: a.memberId, groupInstanceId: "ia" })).toBe(
        ErrorCode.NONE
      )
      const s = yield* second.syncGroup({
        groupId: "g",
        generationId: 1,
        memberId: b.memberId,
        groupInstanceId: null,
        protocolType: "consumer",
        protocolName: "range",
        assignments: []
      })
      expect(s.errorCode).toBe(ErrorCode.NONE)
      expect(s.assignment.length).toBeGreaterThan(0)
      // ... and a member that does not heartbeat after the restart expires.
      yield* heartbeatFor(second, [a], SESSION + 2000)
      expect((yield* second.describeGroup("g")).members.map((m) => m.memberId)).toEqual([a.memberId])
    })
  )

  it.scoped("an empty generation is stored too, so a restart brings back an Empty group with its offsets", () =>
    Effect.gen(function* () {
      const store = makeMemory()
      const first = yield* coordinator({ initialRebalanceDelayMs: 3000 }, store)
      const a = client("a")
      yield* rebalance(first, [a], { t: 2 }, 3000)
      yield* first.commitOffsets({
        groupId: "g",
        generationId: 1,
        memberId: a.memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        offsets: [entry("t", 1, 5n)]
      })
      yield* first.leaveGroup("g", [{ memberId: a.memberId, groupInstanceId: null }])
      yield* TestClock.adjust(0)
      const second = yield* coordinator({}, store)
      const d = yield* second.describeGroup("g")
      expect(d.state).toBe("Empty")
      expect(d.protocolType).toBe("consumer")
      expect(yield* offsetsOf(second, "g")).toEqual(["t-1@5"])
      const records = store.records()
      const last = records.filter((r) => r._tag === "GroupMetadata").at(-1)!
      expect(last._tag === "GroupMetadata" && last.value?.generation).toBe(2)
    })
  )

  it("the record codec writes Kafka's __consumer_offsets key/value schemas and reads them back", () => {
    const records: Array<GroupRecord> = [
      {
        _tag: "OffsetCommit",
        groupId: "g",
        topic: "t",
        partition: 3,
        value: { offset: 17n, leaderEpoch: 5, metadata: "md", commitTimestamp: 1000, expireTimestamp: null }
      },
      {
        _tag: "OffsetCommit",
        groupId: "g",
        topic: "t",
        partition: 4,
        value: { offset: 18n, leaderEpoch: -1, metadata: "", commitTimestamp: 1000, expireTimestamp: 5000 }
      },
      { _tag: "OffsetCommit", groupId: "g", topic: "t", partition: 3, value: null },
      {
        _tag: "GroupMetadata",
        groupId: "g",
        value: {
          protocolType: "consumer",
          generation: 7,
          protocol: "range",
          leader: "m1",
          currentStateTimestamp: 1234,
          members: [
            {
              memberId: "m1",
              groupInstanceId: "i1",
              clientId: "c",
              clientHost: "/1.2.3.4",
              rebalanceTimeoutMs: 30000,
              sessionTimeoutMs: 10000,
              subscription: Buffer.from([0, 1, 2]),
              assignment: Buffer.from([3])
            }
          ]
        }
      },
      { _tag: "GroupMetadata", groupId: "g", value: null }
    ]
    for (const r of records) {
      const { key, value } = encodeGroupRecord(r)
      expect(decodeGroupRecord(key, value)).toEqual(r)
    }
    // OffsetCommitKey v1: version, group, topic, partition.
    const k = encodeGroupRecord(records[0]!).key
    expect(k.toString("hex")).toBe("0001" + "0001" + "67" + "0001" + "74" + "00000003")
    // OffsetCommitValue v3 without an explicit expiry, v1 with one.
    expect(encodeGroupRecord(records[0]!).value!.readInt16BE(0)).toBe(3)
    expect(encodeGroupRecord(records[1]!).value!.readInt16BE(0)).toBe(1)
    // GroupMetadataKey v2 and GroupMetadataValue v3.
    expect(encodeGroupRecord(records[3]!).key.readInt16BE(0)).toBe(2)
    expect(encodeGroupRecord(records[3]!).value!.readInt16BE(0)).toBe(3)
  })
})
