import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import {
  REBALANCE,
  SESSION,
  client,
  coordinator,
  expectEachPartitionOnce,
  heartbeatFor,
  join,
  joinParams,
  rebalance,
  subscription
} from "./helpers.js"

const state = (gc: { describeGroup: (g: string) => Effect.Effect<{ state: string }> }, g = "g") =>
  Effect.map(gc.describeGroup(g), (d) => d.state)

describe("GroupCoordinator: join and sync", () => {
  it.scoped("a first JoinGroup v4+ without member id gets MEMBER_ID_REQUIRED with a member id, and the group stays Empty", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator()
      const c = client("app")
      const r = yield* gc.joinGroup(joinParams(c))
      expect(r.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED)
      expect(r.memberId.startsWith("app-")).toBe(true)
      expect(r.generationId).toBe(-1)
      expect(r.members).toEqual([])
      expect(yield* state(gc)).toBe("Empty")
      // Rejoining with the id makes it a member.
      c.memberId = r.memberId
      const fiber = yield* Effect.fork(gc.joinGroup(joinParams(c)))
      yield* TestClock.adjust(0)
      const joined = yield* Fiber.join(fiber)
      expect(joined.errorCode).toBe(ErrorCode.NONE)
      expect(joined.memberId).toBe(r.memberId)
      expect(joined.generationId).toBe(1)
      expect(joined.leader).toBe(r.memberId)
      expect(joined.protocolName).toBe("range")
      expect(joined.protocolType).toBe("consumer")
      expect(joined.members.map((m) => m.memberId)).toEqual([r.memberId])
    })
  )

  it.scoped("without requireKnownMemberId (JoinGroup v0-v3) a member joins directly", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator()
      const fiber = yield* Effect.fork(gc.joinGroup({ ...joinParams(client("old")), requireKnownMemberId: false }))
      yield* TestClock.adjust(0)
      const r = yield* Fiber.join(fiber)
      expect(r.errorCode).toBe(ErrorCode.NONE)
      expect(r.generationId).toBe(1)
    })
  )

  it.scoped("states: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, followers wait for the leader's SyncGroup", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      expect(yield* state(gc)).toBe("Dead")
      const fa = yield* Effect.fork(join(gc, a))
      const fb = yield* Effect.fork(join(gc, b))
      yield* TestClock.adjust(1)
      expect(yield* state(gc)).toBe("PreparingRebalance")
      // A second member during the initial delay extends it by another delay.
      yield* TestClock.adjust(3000)
      expect(yield* state(gc)).toBe("PreparingRebalance")
      yield* TestClock.adjust(3000)
      const ra = yield* Fiber.join(fa)
      const rb = yield* Fiber.join(fb)
      expect(yield* state(gc)).toBe("CompletingRebalance")
      expect(ra.generationId).toBe(1)
      expect(rb.generationId).toBe(1)
      const leader = ra.members.length > 0 ? a : b
      const follower = leader === a ? b : a
      const leaderResult = leader === a ? ra : rb
      expect(leaderResult.members.map((m) => m.memberId).sort()).toEqual([a.memberId, b.memberId].sort())
      expect((leader === a ? rb : ra).members).toEqual([])
      expect(ra.leader).toBe(leader.memberId)

      const fs = yield* Effect.fork(
        gc.syncGroup({
          groupId: "g",
          generationId: 1,
          memberId: follower.memberId,
          groupInstanceId: null,
          protocolType: "consumer",
          protocolName: "range",
          assignments: []
        })
      )
      yield* TestClock.adjust(0)
      expect(fs.unsafePoll()).toBeNull()
      const ls = yield* gc.syncGroup({
        groupId: "g",
        generationId: 1,
        memberId: leader.memberId,
        groupInstanceId: null,
        protocolType: "consumer",
        protocolName: "range",
        assignments: [
          { memberId: leader.memberId, assignment: Buffer.from("L") },
          { memberId: follower.memberId, assignment: Buffer.from("F") }
        ]
      })
      expect(ls.errorCode).toBe(ErrorCode.NONE)
      expect(ls.assignment.toString()).toBe("L")
      expect(ls.protocolName).toBe("range")
      const fr = yield* Fiber.join(fs)
      expect(fr.errorCode).toBe(ErrorCode.NONE)
      expect(fr.assignment.toString()).toBe("F")
      expect(yield* state(gc)).toBe("Stable")
      // SyncGroup in Stable returns the current assignment.
      const again = yield* gc.syncGroup({
        groupId: "g",
        generationId: 1,
        memberId: follower.memberId,
        groupInstanceId: null,
        protocolType: null,
        protocolName: null,
        assignments: []
      })
      expect(again.assignment.toString()).toBe("F")
    })
  )

  it.scoped("the initial delay is bounded by the rebalance timeout", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const first = client("c0")
      const f0 = yield* Effect.fork(join(gc, first))
      // A new member every 2 s keeps extending the delay, but never past the rebalance timeout.
      const others = []
      for (let i = 1; i <= 20; i++) {
        yield* TestClock.adjust(2000)
        others.push(yield* Effect.fork(join(gc, client(`c${i}`))))
        if (f0.unsafePoll() !== null) break
      }
      const r = yield* Fiber.join(f0)
      expect(r.generationId).toBe(1)
      const now = yield* TestClock.currentTimeMillis
      expect(now).toBeLessThanOrEqual(REBALANCE + 2000)
      expect(now).toBeGreaterThanOrEqual(REBALANCE - 3000)
      yield* Effect.forEach(others, (f) => Fiber.interrupt(f))
    })
  )

  it.scoped("protocol selection: only protocols every member supports, by most first choices", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const p = (names: Array<string>) => names.map((name) => ({ name, metadata: subscription(["t"]) }))
      const m1 = { ...joinParams(client("a")), protocols: p(["x", "range", "roundrobin"]), requireKnownMemberId: false }
      const m2 = { ...joinParams(client("b")), protocols: p(["roundrobin", "range"]), requireKnownMemberId: false }
      const m3 = { ...joinParams(client("c")), protocols: p(["roundrobin", "range", "y"]), requireKnownMemberId: false }
      const f1 = yield* Effect.fork(gc.joinGroup(m1))
      const f2 = yield* Effect.fork(gc.joinGroup(m2))
      const f3 = yield* Effect.fork(gc.joinGroup(m3))
      yield* TestClock.adjust(6000)
      const rs = [yield* Fiber.join(f1), yield* Fiber.join(f2), yield* Fiber.join(f3)]
      // "x" and "y" are not supported by all; a votes range, b and c vote roundrobin.
      for (const r of rs) expect(r.protocolName).toBe("roundrobin")
      // A member that supports none of the group's protocols is rejected.
      const bad = yield* gc.joinGroup({ ...joinParams(client("d")), protocols: p(["z"]), requireKnownMemberId: false })
      expect(bad.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
      const badType = yield* gc.joinGroup({ ...joinParams(client("e")), protocolType: "connect", requireKnownMemberId: false })
      expect(badType.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    })
  )
})

describe("GroupCoordinator: 3 members on 6 partitions", () => {
  it.scoped("join, leave and session expiry each make a new generation that assigns every partition exactly once", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      const c = client("c")
      yield* rebalance(gc, [a, b, c], { t: 6 }, 6000)
      expect(a.generation).toBe(1)
      expectEachPartitionOnce([a, b, c])
      for (const x of [a, b, c]) expect(x.assignment).toHaveLength(2)
      expect(yield* state(gc)).toBe("Stable")

      // A fourth member joins: the others learn it through their heartbeat and rejoin.
      const d = client("d")
      const fd = yield* Effect.fork(join(gc, d))
      yield* TestClock.adjust(0)
      expect(yield* state(gc)).toBe("PreparingRebalance")
      const hb = yield* gc.heartbeat({ groupId: "g", generationId: 1, memberId: a.memberId, groupInstanceId: null })
      expect(hb).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
      yield* Fiber.interrupt(fd)
      yield* rebalance(gc, [a, b, c, d])
      expect(d.generation).toBe(2)
      expectEachPartitionOnce([a, b, c, d])

      // d leaves: a new generation without it.
      const left = yield* gc.leaveGroup("g", [{ memberId: d.memberId, groupInstanceId: null }])
      expect(left.errorCode).toBe(ErrorCode.NONE)
      expect(left.members).toEqual([{ memberId: d.memberId, groupInstanceId: null, errorCode: ErrorCode.NONE }])
      expect(yield* state(gc)).toBe("PreparingRebalance")
      yield* rebalance(gc, [a, b, c])
      expect(a.generation).toBe(3)
      expectEachPartitionOnce([a, b, c])

      // c stops heartbeating: after its session timeout it is removed and the others rebalance.
      const errors = yield* heartbeatFor(gc, [a, b], SESSION + 2000)
      expect(errors).toContain(ErrorCode.REBALANCE_IN_PROGRESS)
      const desc = yield* gc.describeGroup("g")
      expect(desc.members.map((m) => m.memberId).sort()).toEqual([a.memberId, b.memberId].sort())
      yield* rebalance(gc, [a, b])
      expect(a.generation).toBe(4)
      expectEachPartitionOnce([a, b])
      for (const x of [a, b]) expect(x.assignment).toHaveLength(3)
      // c's old member id is gone.
      const hbc = yield* gc.heartbeat({ groupId: "g", generationId: 3, memberId: c.memberId, groupInstanceId: null })
      expect(hbc).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
    })
  )

  it.scoped("members that do not rejoin within the rebalance timeout are removed", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      const c = client("c")
      yield* rebalance(gc, [a, b, c], { t: 6 }, 6000)
      // a and b rejoin (b with a new subscription forces the rebalance); c never does, but keeps heartbeating.
      b.topics = ["t", "u"]
      const fb = yield* Effect.fork(join(gc, b))
      const fa = yield* Effect.fork(join(gc, a))
      yield* TestClock.adjust(0)
      expect(yield* state(gc)).toBe("PreparingRebalance")
      expect(fa.unsafePoll()).toBeNull()
      // c heartbeats (REBALANCE_IN_PROGRESS) but does not rejoin; the join phase ends at the rebalance timeout.
      for (let t = 0; t < REBALANCE; t += 5000) {
        yield* TestClock.adjust(5000)
        const e = yield* gc.heartbeat({ groupId: "g", generationId: 1, memberId: c.memberId, groupInstanceId: null })
        if (fa.unsafePoll() === null) expect(e).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
      }
      const ra = yield* Fiber.join(fa)
      const rb = yield* Fiber.join(fb)
      expect(ra.generationId).toBe(2)
      expect(rb.generationId).toBe(2)
      const leader = ra.members.length > 0 ? ra : rb
      expect(leader.members.map((m) => m.memberId).sort()).toEqual([a.memberId, b.memberId].sort())
      const hb = yield* gc.heartbeat({ groupId: "g", generationId: 1, memberId: c.memberId, groupInstanceId: null })
      expect(hb).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
    })
  )

  it.scoped("a stable group with an unchanged follower rejoin does not rebalance; a changed subscription or the leader rejoining does", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      const results = yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      const leaderId = results[0]!.leader
      const leader = a.memberId === leaderId ? a : b
      const follower = leader === a ? b : a
      // Unchanged follower: current generation back at once, group stays Stable.
      const same = yield* gc.joinGroup(joinParams(follower))
      expect(same.errorCode).toBe(ErrorCode.NONE)
      expect(same.generationId).toBe(1)
      expect(same.members).toEqual([])
      expect(yield* state(gc)).toBe("Stable")
      // Changed subscription: rebalance.
      follower.topics = ["t", "u"]
      const ff = yield* Effect.fork(join(gc, follower))
      yield* TestClock.adjust(0)
      expect(yield* state(gc)).toBe("PreparingRebalance")
      yield* Fiber.interrupt(ff)
      yield* rebalance(gc, [a, b], { t: 6, u: 2 })
      expect(a.generation).toBe(2)
      expectEachPartitionOnce([a, b], { t: 6, u: 2 })
      // The leader rejoining (e.g. after a metadata change) forces a rebalance too.
      const fl = yield* Effect.fork(join(gc, leader))
      yield* TestClock.adjust(0)
      expect(yield* state(gc)).toBe("PreparingRebalance")
      yield* Fiber.interrupt(fl)
      yield* rebalance(gc, [a, b], { t: 6, u: 2 })
      expect(a.generation).toBe(3)
    })
  )

  it.scoped("a member that never sends SyncGroup is removed after the rebalance timeout and the group rebalances", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      const fa = yield* Effect.fork(join(gc, a))
      const fb = yield* Effect.fork(join(gc, b))
      yield* TestClock.adjust(6000)
      const ra = yield* Fiber.join(fa)
      yield* Fiber.join(fb)
      const leader = ra.members.length > 0 ? a : b
      const silent = leader === a ? b : a
      // Only the leader syncs.
      const ls = yield* gc.syncGroup({
        groupId: "g",
        generationId: 1,
        memberId: leader.memberId,
        groupInstanceId: null,
        protocolType: null,
        protocolName: null,
        assignments: []
      })
      expect(ls.errorCode).toBe(ErrorCode.NONE)
      expect(yield* state(gc)).toBe("Stable")
      // Keep the leader's session alive; the silent member's pending sync expires at the rebalance timeout.
      yield* heartbeatFor(gc, [leader], REBALANCE, 5000)
      const d = yield* gc.describeGroup("g")
      expect(d.members.map((m) => m.memberId)).toEqual([leader.memberId])
      expect(["PreparingRebalance", "CompletingRebalance"]).toContain(d.state)
      expect(silent.memberId).not.toBe("")
    })
  )

  it.scoped("a pending member (MEMBER_ID_REQUIRED) that never rejoins expires after its session timeout", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      // c asks for a member id and disappears.
      const c = client("c")
      const r = yield* gc.joinGroup(joinParams(c))
      expect(r.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED)
      // a rejoins with a change: the join phase waits for the pending member too ...
      a.topics = ["t", "u"]
      const fa = yield* Effect.fork(join(gc, a))
      const fb = yield* Effect.fork(join(gc, b))
      yield* TestClock.adjust(SESSION - 1000)
      expect(fa.unsafePoll()).toBeNull()
      // ... until the pending member expires.
      yield* TestClock.adjust(2000)
      const ra = yield* Fiber.join(fa)
      yield* Fiber.join(fb)
      expect(ra.generationId).toBe(2)
      const late = yield* gc.joinGroup(joinParams({ ...c, memberId: r.memberId }))
      expect(late.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
    })
  )
})

describe("GroupCoordinator: static membership (KIP-345)", () => {
  it.scoped("a static member restarting with its instance id takes its old place without a rebalance; the old member id is fenced", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a", ["t"], "instance-a")
      const b = client("b", ["t"], "instance-b")
      const c = client("c", ["t"], "instance-c")
      yield* rebalance(gc, [a, b, c], { t: 6 }, 6000)
      expectEachPartitionOnce([a, b, c])
      expect(a.memberId.startsWith("instance-a-")).toBe(true)
      const oldId = b.memberId
      const oldAssignment = b.assignment
      // b restarts: joins without member id, same instance id.
      const restarted = client("b", ["t"], "instance-b")
      const r = yield* gc.joinGroup(joinParams(restarted))
      expect(r.errorCode).toBe(ErrorCode.NONE)
      expect(r.generationId).toBe(1)
      expect(r.memberId).not.toBe(oldId)
      expect(r.members).toEqual([])
      expect(yield* state(gc)).toBe("Stable")
      restarted.memberId = r.memberId
      restarted.generation = r.generationId
      // Its SyncGroup returns the old assignment.
      const s = yield* gc.syncGroup({
        groupId: "g",
        generationId: 1,
        memberId: r.memberId,
        groupInstanceId: "instance-b",
        protocolType: "consumer",
        protocolName: "range",
        assignments: []
      })
      expect(s.errorCode).toBe(ErrorCode.NONE)
      expect(s.assignment.length).toBeGreaterThan(0)
      expect(oldAssignment.length).toBe(2)
      // The old incarnation is fenced everywhere.
      const hb = yield* gc.heartbeat({ groupId: "g", generationId: 1, memberId: oldId, groupInstanceId: "instance-b" })
      expect(hb).toBe(ErrorCode.FENCED_INSTANCE_ID)
      const js = yield* gc.joinGroup({ ...joinParams(b), memberId: oldId })
      expect(js.errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID)
      const ss = yield* gc.syncGroup({
        groupId: "g",
        generationId: 1,
        memberId: oldId,
        groupInstanceId: "instance-b",
        protocolType: null,
        protocolName: null,
        assignments: []
      })
      expect(ss.errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID)
      const cm = yield* gc.commitOffsets({
        groupId: "g",
        generationId: 1,
        memberId: oldId,
        groupInstanceId: "instance-b",
        retentionTimeMs: -1,
        offsets: [{ topic: "t", partition: 0, offset: 1n, leaderEpoch: -1, metadata: null }]
      })
      expect(cm[0]!.errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID)
      // The new one works, and the generation did not move.
      const ok = yield* gc.heartbeat({ groupId: "g", generationId: 1, memberId: r.memberId, groupInstanceId: "instance-b" })
      expect(ok).toBe(ErrorCode.NONE)
      // An unknown instance id with a member id is UNKNOWN_MEMBER_ID.
      const unknown = yield* gc.heartbeat({ groupId: "g", generationId: 1, memberId: r.memberId, groupInstanceId: "nope" })
      expect(unknown).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
    })
  )

  it.scoped("a restarted static leader: before v9 it gets the old leader id; v9+ gets the members and skipAssignment", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a", ["t"], "ia")
      const b = client("b", ["t"], "ib")
      const results = yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      const oldLeader = results[0]!.leader
      const leader = oldLeader === a.memberId ? a : b
      const r8 = yield* gc.joinGroup(joinParams(client(leader.clientId, ["t"], leader.instanceId)))
      expect(r8.errorCode).toBe(ErrorCode.NONE)
      expect(r8.leader).toBe(oldLeader)
      expect(r8.members).toEqual([])
      expect(r8.skipAssignment).toBe(false)
      const r9 = yield* gc.joinGroup({
        ...joinParams(client(leader.clientId, ["t"], leader.instanceId)),
        supportSkippingAssignment: true
      })
      expect(r9.errorCode).toBe(ErrorCode.NONE)
      expect(r9.leader).toBe(r9.memberId)
      expect(r9.skipAssignment).toBe(true)
      expect(r9.members.map((m) => m.groupInstanceId).sort()).toEqual(["ia", "ib"])
      expect(r9.generationId).toBe(1)
      expect(yield* state(gc)).toBe("Stable")
    })
  )

  it.scoped("a waiting duplicate of a static member is fenced when the instance id rejoins", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a", ["t"], "ia")
      const b = client("b", ["t"], "ib")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      // a rejoins with a change (rebalance) and waits ...
      a.topics = ["t", "u"]
      const waiting = yield* Effect.fork(gc.joinGroup(joinParams(a)))
      yield* TestClock.adjust(0)
      expect(yield* state(gc)).toBe("PreparingRebalance")
      // ... while another process with the same instance id joins: the waiting one is fenced.
      const dup = yield* Effect.fork(gc.joinGroup(joinParams(client("a2", ["t", "u"], "ia"))))
      const fenced = yield* Fiber.join(waiting)
      expect(fenced.errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID)
      yield* Fiber.interrupt(dup)
    })
  )

  it.scoped("static members that do not rejoin stay in the group through a rebalance (until their session expires)", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a", ["t"], "ia")
      const b = client("b", ["t"], "ib")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      a.topics = ["t", "u"]
      const fa = yield* Effect.fork(join(gc, a))
      // b keeps heartbeating but does not rejoin: at the rebalance timeout the generation completes with b still in.
      yield* heartbeatFor(gc, [b], REBALANCE, 5000)
      const ra = yield* Fiber.join(fa)
      expect(ra.errorCode).toBe(ErrorCode.NONE)
      expect(ra.members.map((m) => m.groupInstanceId).sort()).toEqual(["ia", "ib"])
    })
  )

  it.scoped("LeaveGroup by instance id alone removes the static member", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a", ["t"], "ia")
      const b = client("b", ["t"], "ib")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      const r = yield* gc.leaveGroup("g", [
        { memberId: "", groupInstanceId: "ib" },
        { memberId: "", groupInstanceId: "nobody" },
        { memberId: "wrong", groupInstanceId: "ia" }
      ])
      expect(r.members.map((m) => m.errorCode)).toEqual([
        ErrorCode.NONE,
        ErrorCode.UNKNOWN_MEMBER_ID,
        ErrorCode.FENCED_INSTANCE_ID
      ])
      const d = yield* gc.describeGroup("g")
      expect(d.members.map((m) => m.groupInstanceId)).toEqual(["ia"])
    })
  )
})

describe("GroupCoordinator: errors", () => {
  it.scoped("JoinGroup: INVALID_SESSION_TIMEOUT, INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, GROUP_MAX_SIZE_REACHED", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ maxGroupSize: 1, initialRebalanceDelayMs: 3000 })
      const c = client("a")
      expect((yield* gc.joinGroup({ ...joinParams(c), sessionTimeoutMs: 5999 })).errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT)
      expect((yield* gc.joinGroup({ ...joinParams(c), sessionTimeoutMs: 1_800_001 })).errorCode).toBe(
        ErrorCode.INVALID_SESSION_TIMEOUT
      )
      expect((yield* gc.joinGroup({ ...joinParams(c), groupId: "" })).errorCode).toBe(ErrorCode.INVALID_GROUP_ID)
      // A member id for a group that does not exist.
      expect((yield* gc.joinGroup({ ...joinParams(c), memberId: "ghost", groupId: "other" })).errorCode).toBe(
        ErrorCode.UNKNOWN_MEMBER_ID
      )
      // Max size 1: the second member is turned away.
      const fa = yield* Effect.fork(join(gc, c))
      yield* TestClock.adjust(0)
      const second = yield* gc.joinGroup({ ...joinParams(client("b")), requireKnownMemberId: false })
      expect(second.errorCode).toBe(ErrorCode.GROUP_MAX_SIZE_REACHED)
      yield* TestClock.adjust(3000)
      expect((yield* Fiber.join(fa)).errorCode).toBe(ErrorCode.NONE)
    })
  )

  it.scoped("NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE and COORDINATOR_LOAD_IN_PROGRESS follow the coordinator status", () =>
    Effect.gen(function* () {
      const status: Record<string, "Local" | "NotCoordinator" | "Loading" | "Unavailable"> = {
        mine: "Local",
        theirs: "NotCoordinator",
        loading: "Loading",
        down: "Unavailable"
      }
      const gc = yield* coordinator({}, undefined, { coordinatorStatus: (g) => status[g] ?? "Local" })
      const c = client("a")
      expect((yield* gc.joinGroup(joinParams(c, "theirs"))).errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      expect((yield* gc.joinGroup(joinParams(c, "down"))).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
      expect((yield* gc.joinGroup(joinParams(c, "loading"))).errorCode).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
      const hb = (groupId: string) => gc.heartbeat({ groupId, generationId: 1, memberId: "m", groupInstanceId: null })
      expect(yield* hb("theirs")).toBe(ErrorCode.NOT_COORDINATOR)
      // As Kafka: a loading coordinator answers heartbeats blindly, and SyncGroup with REBALANCE_IN_PROGRESS.
      expect(yield* hb("loading")).toBe(ErrorCode.NONE)
      const sync = yield* gc.syncGroup({
        groupId: "loading",
        generationId: 1,
        memberId: "m",
        groupInstanceId: null,
        protocolType: null,
        protocolName: null,
        assignments: []
      })
      expect(sync.errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
      const fetched = yield* gc.fetchOffsets("theirs", null, false)
      expect(fetched.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      const committed = yield* gc.commitOffsets({
        groupId: "down",
        generationId: -1,
        memberId: "",
        groupInstanceId: null,
        retentionTimeMs: -1,
        offsets: [{ topic: "t", partition: 0, offset: 1n, leaderEpoch: -1, metadata: null }]
      })
      expect(committed[0]!.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
      expect((yield* gc.describeGroup("theirs")).errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      expect((yield* gc.deleteGroups(["theirs"]))[0]!.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      expect((yield* gc.leaveGroup("theirs", [{ memberId: "m", groupInstanceId: null }])).errorCode).toBe(
        ErrorCode.NOT_COORDINATOR
      )
    })
  )

  it.scoped("Heartbeat: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, INVALID_GROUP_ID", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      const hb = (p: Partial<{ groupId: string; generationId: number; memberId: string }>) =>
        gc.heartbeat({ groupId: "g", generationId: a.generation, memberId: a.memberId, groupInstanceId: null, ...p })
      expect(yield* hb({})).toBe(ErrorCode.NONE)
      expect(yield* hb({ groupId: "nope" })).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
      expect(yield* hb({ memberId: "stranger" })).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
      expect(yield* hb({ generationId: 7 })).toBe(ErrorCode.ILLEGAL_GENERATION)
      expect(yield* hb({ groupId: "" })).toBe(ErrorCode.INVALID_GROUP_ID)
      // Leader leaves: a rebalance starts.
      yield* gc.leaveGroup("g", [{ memberId: b.memberId, groupInstanceId: null }])
      expect(yield* hb({})).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
    })
  )

  it.scoped("SyncGroup: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, REBALANCE_IN_PROGRESS", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      const sync = (p: Partial<{ groupId: string; generationId: number; memberId: string; protocolName: string | null }>) =>
        gc.syncGroup({
          groupId: "g",
          generationId: a.generation,
          memberId: a.memberId,
          groupInstanceId: null,
          protocolType: null,
          protocolName: null,
          assignments: [],
          ...p
        })
      expect((yield* sync({ groupId: "none" })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
      expect((yield* sync({ memberId: "x" })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
      expect((yield* sync({ generationId: 0 })).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION)
      expect((yield* sync({ protocolName: "roundrobin" })).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
      expect((yield* sync({ groupId: "" })).errorCode).toBe(ErrorCode.INVALID_GROUP_ID)
      a.topics = ["u"]
      const fa = yield* Effect.fork(join(gc, a))
      yield* TestClock.adjust(0)
      expect((yield* sync({ memberId: b.memberId, generationId: b.generation })).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
      yield* Fiber.interrupt(fa)
    })
  )

  it.scoped("a rebalance while followers wait in SyncGroup answers them REBALANCE_IN_PROGRESS", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      const fa = yield* Effect.fork(join(gc, a))
      const fb = yield* Effect.fork(join(gc, b))
      yield* TestClock.adjust(6000)
      const ra = yield* Fiber.join(fa)
      yield* Fiber.join(fb)
      const follower = ra.members.length > 0 ? b : a
      const fs = yield* Effect.fork(
        gc.syncGroup({
          groupId: "g",
          generationId: 1,
          memberId: follower.memberId,
          groupInstanceId: null,
          protocolType: null,
          protocolName: null,
          assignments: []
        })
      )
      yield* TestClock.adjust(0)
      const c = client("c")
      const fc = yield* Effect.fork(join(gc, c))
      const r = yield* Fiber.join(fs)
      expect(r.errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
      yield* Fiber.interrupt(fc)
    })
  )

  it.scoped("LeaveGroup: batch with per-member errors; unknown group gives UNKNOWN_MEMBER_ID per member", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000 })
      const a = client("a")
      const b = client("b")
      const c = client("c")
      yield* rebalance(gc, [a, b, c], { t: 6 }, 6000)
      const r = yield* gc.leaveGroup("g", [
        { memberId: a.memberId, groupInstanceId: null },
        { memberId: "ghost", groupInstanceId: null },
        { memberId: b.memberId, groupInstanceId: null }
      ])
      expect(r.errorCode).toBe(ErrorCode.NONE)
      expect(r.members.map((m) => m.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.NONE])
      const unknown = yield* gc.leaveGroup("nope", [{ memberId: "x", groupInstanceId: null }])
      expect(unknown.errorCode).toBe(ErrorCode.NONE)
      expect(unknown.members[0]!.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
      expect((yield* gc.leaveGroup("", [])).errorCode).toBe(ErrorCode.INVALID_GROUP_ID)
      // The last member leaving: the group rebalances to an empty generation.
      yield* gc.leaveGroup("g", [{ memberId: c.memberId, groupInstanceId: null }])
      yield* TestClock.adjust(0)
      const d = yield* gc.describeGroup("g")
      expect(d.state).toBe("Empty")
      expect(d.members).toEqual([])
    })
  )

  it.scoped("a new member whose JoinGroup waits too long is dropped with UNKNOWN_MEMBER_ID", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({ initialRebalanceDelayMs: 3000, newMemberJoinTimeoutMs: 20_000 })
      const a = client("a")
      const b = client("b")
      yield* rebalance(gc, [a, b], { t: 6 }, 6000)
      // A new member joins; a and b never rejoin but keep heartbeating; the rebalance timeout (30 s) is beyond the new-member timeout.
      const c = client("c")
      const fc = yield* Effect.fork(join(gc, c))
      yield* heartbeatFor(gc, [a, b], 22_000, 2000)
      const r = yield* Fiber.join(fc)
      expect(r.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
    })
  )
})
