/**
 * Handler-level tests: requests encoded with the generated codecs at the
 * oldest and newest version of every group API, routed through the
 * RequestRouter to the handlers, and the response frames decoded.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import * as RequestRouter from "../../src/broker/RequestRouter.js"
import { GROUP_API_VERSIONS, GROUP_AUTHORIZED_OPERATIONS, makeHandlersWith } from "../../src/group/handlers.js"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { API_TABLE, decodeResponse, encodeRequest, type ApiKey } from "../../src/protocol/messages.js"
import type { RequestInputTypes, ResponseTypes } from "../../src/protocol/generated/index.js"
import type { ConnectionContext } from "../../src/transport/KafkaTransport.js"
import { makeMemory } from "../../src/group/GroupStore.js"
import { coordinator, subscription } from "./helpers.js"

const conn: ConnectionContext = {
  id: 1,
  remoteAddress: "10.0.0.7",
  remotePort: 50000,
  close: () => Effect.void,
  closed: Effect.never,
  isOpen: () => true
}

const node = { nodeId: 3, host: "broker.local", port: 19092 }
const partitionExists = (topic: string, partition: number) => topic === "t" && partition >= 0 && partition < 6

const setup = (delay = 0, store = makeMemory()) =>
  Effect.gen(function* () {
    const gc = yield* coordinator({ initialRebalanceDelayMs: delay }, store)
    const router = RequestRouter.make(makeHandlersWith(gc, { node, partitionExists }))
    let correlationId = 0
    const call = <K extends ApiKey>(apiKey: K, version: number, body: RequestInputTypes[K]): Effect.Effect<ResponseTypes[K]> =>
      Effect.gen(function* () {
        const cid = ++correlationId
        const frame = encodeRequest(apiKey, version, cid, "client-1", body)
        const out = yield* router.route(conn, frame)
        expect(out).not.toBeNull()
        const decoded = decodeResponse(apiKey, version, out!)
        expect(decoded.correlationId).toBe(cid)
        expect(decoded.trailingBytes).toBe(0)
        return decoded.body
      })
    /** Runs a call that may wait on the coordinator's timers (join phase). */
    const callForked = <K extends ApiKey>(apiKey: K, version: number, body: RequestInputTypes[K], advanceMs = 0) =>
      Effect.gen(function* () {
        const f = yield* Effect.fork(call(apiKey, version, body))
        yield* TestClock.adjust(advanceMs)
        return yield* Fiber.join(f)
      })
    return { gc, router, call, callForked }
  })

const meta = subscription(["t"])

describe("group handlers", () => {
  it("advertise only versions the codec defines", () => {
    for (const r of Object.values(GROUP_API_VERSIONS)) {
      const entry = API_TABLE[r.apiKey as ApiKey]
      expect(r.minVersion).toBeGreaterThanOrEqual(entry.requestMinVersion)
      expect(r.maxVersion).toBeLessThanOrEqual(entry.requestMaxVersion)
    }
  })

  it.scoped("FindCoordinator v0 and v6 (batched keys; transactions are not coordinated)", () =>
    Effect.gen(function* () {
      const { call } = yield* setup()
      const v0 = yield* call(10, 0, { key: "g" })
      expect(v0).toMatchObject({ errorCode: 0, nodeId: 3, host: "broker.local", port: 19092 })
      const v6 = yield* call(10, 6, { keyType: 0, coordinatorKeys: ["g", "h"] })
      expect(v6.coordinators.map((c) => [c.key, c.nodeId, c.host, c.port, c.errorCode])).toEqual([
        ["g", 3, "broker.local", 19092, 0],
        ["h", 3, "broker.local", 19092, 0]
      ])
      const txn = yield* call(10, 6, { keyType: 1, coordinatorKeys: ["tx"] })
      expect(txn.coordinators[0]!.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
      const txnOld = yield* call(10, 1, { key: "tx", keyType: 1 })
      expect(txnOld.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
      expect(txnOld.nodeId).toBe(-1)
    })
  )

  it.scoped("JoinGroup/SyncGroup/Heartbeat/LeaveGroup at their oldest versions (v0): no member id round, rebalance timeout = session timeout", () =>
    Effect.gen(function* () {
      const store = makeMemory()
      const { call, callForked } = yield* setup(0, store)
      const join = yield* callForked(11, 0, {
        groupId: "g0",
        sessionTimeoutMs: 10_000,
        memberId: "",
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: meta }]
      })
      expect(join.errorCode).toBe(ErrorCode.NONE)
      expect(join.generationId).toBe(1)
      expect(join.protocolName).toBe("range")
      expect(join.memberId.startsWith("client-1-")).toBe(true)
      expect(join.leader).toBe(join.memberId)
      expect(join.members.map((m) => m.memberId)).toEqual([join.memberId])
      const sync = yield* call(14, 0, {
        groupId: "g0",
        generationId: 1,
        memberId: join.memberId,
        assignments: [{ memberId: join.memberId, assignment: Buffer.from("A") }]
      })
      expect(sync.errorCode).toBe(ErrorCode.NONE)
      expect(sync.assignment.toString()).toBe("A")
      // v0 has no rebalance timeout: the session timeout stands in for it (stored with the generation).
      const stored = store.records().find((r) => r._tag === "GroupMetadata" && r.groupId === "g0")
      expect(stored?._tag === "GroupMetadata" && stored.value?.members[0]?.rebalanceTimeoutMs).toBe(10_000)
      const hb = yield* call(12, 0, { groupId: "g0", generationId: 1, memberId: join.memberId })
      expect(hb.errorCode).toBe(ErrorCode.NONE)
      const badHb = yield* call(12, 0, { groupId: "g0", generationId: 9, memberId: join.memberId })
      expect(badHb.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION)
      // The session timeout was used as the rebalance timeout: a described member shows it indirectly via a clean join.
      const d = yield* call(15, 0, { groups: ["g0"] })
      expect(d.groups[0]).toMatchObject({ errorCode: 0, groupId: "g0", groupState: "Stable", protocolType: "consumer", protocolData: "range" })
      expect(d.groups[0]!.members[0]).toMatchObject({ memberId: join.memberId, clientId: "client-1", clientHost: "/10.0.0.7" })
      const leave = yield* call(13, 0, { groupId: "g0", memberId: "nobody" })
      expect(leave.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
      const leaveOk = yield* call(13, 0, { groupId: "g0", memberId: join.memberId })
      expect(leaveOk.errorCode).toBe(ErrorCode.NONE)
      // An error response at v0 still encodes (protocol name "" rather than null).
      const bad = yield* call(11, 0, {
        groupId: "g0",
        sessionTimeoutMs: 10,
        memberId: "",
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: meta }]
      })
      expect(bad.errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT)
      expect(bad.protocolName).toBe("")
    })
  )

  it.scoped("JoinGroup v9/SyncGroup v5/Heartbeat v4/LeaveGroup v5 at their newest versions", () =>
    Effect.gen(function* () {
      const { call, callForked } = yield* setup()
      const req = {
        groupId: "g9",
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 20_000,
        memberId: "",
        groupInstanceId: null,
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: meta }],
        reason: "starting"
      }
      const first = yield* call(11, 9, req)
      expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED)
      expect(first.protocolName).toBeNull()
      const join = yield* callForked(11, 9, { ...req, memberId: first.memberId })
      expect(join).toMatchObject({
        errorCode: 0,
        generationId: 1,
        protocolType: "consumer",
        protocolName: "range",
        leader: first.memberId,
        skipAssignment: false,
        memberId: first.memberId
      })
      const sync = yield* call(14, 5, {
        groupId: "g9",
        generationId: 1,
        memberId: first.memberId,
        groupInstanceId: null,
        protocolType: "consumer",
        protocolName: "range",
        assignments: [{ memberId: first.memberId, assignment: Buffer.from("B") }]
      })
      expect(sync).toMatchObject({ errorCode: 0, protocolType: "consumer", protocolName: "range" })
      expect(sync.assignment.toString()).toBe("B")
      const wrongProtocol = yield* call(14, 5, {
        groupId: "g9",
        generationId: 1,
        memberId: first.memberId,
        groupInstanceId: null,
        protocolType: "consumer",
        protocolName: "roundrobin",
        assignments: []
      })
      expect(wrongProtocol.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
      // v5 requires the protocol type and name.
      const missing = yield* call(14, 5, { groupId: "g9", generationId: 1, memberId: first.memberId, assignments: [] })
      expect(missing.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
      const hb = yield* call(12, 4, { groupId: "g9", generationId: 1, memberId: first.memberId, groupInstanceId: null })
      expect(hb.errorCode).toBe(ErrorCode.NONE)
      const leave = yield* call(13, 5, {
        groupId: "g9",
        members: [
          { memberId: first.memberId, groupInstanceId: null, reason: "bye" },
          { memberId: "ghost", groupInstanceId: null }
        ]
      })
      expect(leave.errorCode).toBe(ErrorCode.NONE)
      expect(leave.members.map((m) => [m.memberId, m.errorCode])).toEqual([
        [first.memberId, ErrorCode.NONE],
        ["ghost", ErrorCode.UNKNOWN_MEMBER_ID]
      ])
    })
  )

  it.scoped("OffsetCommit v0/v9, OffsetFetch v0/v9 (multi-group), OffsetDelete v0", () =>
    Effect.gen(function* () {
      const { call } = yield* setup()
      const c0 = yield* call(8, 0, {
        groupId: "s",
        topics: [
          { name: "t", partitions: [{ partitionIndex: 0, committedOffset: 5n, committedMetadata: "x" }] },
          { name: "nope", partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] }
        ]
      })
      expect(c0.topics.map((t) => [t.name, t.partitions.map((p) => p.errorCode)])).toEqual([
        ["t", [ErrorCode.NONE]],
        ["nope", [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]
      ])
      const c9 = yield* call(8, 9, {
        groupId: "s",
        generationIdOrMemberEpoch: -1,
        memberId: "",
        groupInstanceId: null,
        topics: [
          {
            name: "t",
            partitions: [
              { partitionIndex: 1, committedOffset: 6n, committedLeaderEpoch: 2, committedMetadata: null },
              { partitionIndex: 9, committedOffset: 6n, committedLeaderEpoch: 2, committedMetadata: null }
            ]
          }
        ]
      })
      expect(c9.topics[0]!.partitions.map((p) => p.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION])
      // A member commit with a generation for a group that does not exist.
      const illegal = yield* call(8, 9, {
        groupId: "x",
        generationIdOrMemberEpoch: 4,
        memberId: "m",
        topics: [{ name: "t", partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] }]
      })
      expect(illegal.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION)

      const f0 = yield* call(9, 0, { groupId: "s", topics: [{ name: "t", partitionIndexes: [0, 1, 2] }] })
      expect(f0.topics[0]!.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.metadata, p.errorCode])).toEqual([
        [0, 5n, "x", 0],
        [1, 6n, "", 0],
        [2, -1n, "", 0]
      ])
      const f9 = yield* call(9, 9, {
        groups: [
          { groupId: "s", topics: null },
          { groupId: "other", topics: [{ name: "t", partitionIndexes: [0] }] }
        ],
        requireStable: true
      })
      expect(f9.groups.map((g) => g.groupId)).toEqual(["s", "other"])
      expect(f9.groups[0]!.topics[0]!.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.committedLeaderEpoch])).toEqual([
        [0, 5n, -1],
        [1, 6n, 2]
      ])
      expect(f9.groups[1]!.topics[0]!.partitions[0]!.committedOffset).toBe(-1n)
      // v2-v7: null topics means all.
      const f7 = yield* call(9, 7, { groupId: "s", topics: null, requireStable: false })
      expect(f7.errorCode).toBe(0)
      expect(f7.topics[0]!.partitions).toHaveLength(2)

      const del = yield* call(47, 0, {
        groupId: "s",
        topics: [
          { name: "t", partitions: [{ partitionIndex: 0 }] },
          { name: "nope", partitions: [{ partitionIndex: 0 }] }
        ]
      })
      expect(del.errorCode).toBe(0)
      expect(del.topics.map((t) => [t.name, t.partitions[0]!.errorCode])).toEqual([
        ["t", ErrorCode.NONE],
        ["nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
      ])
      const missing = yield* call(47, 0, { groupId: "none", topics: [{ name: "t", partitions: [{ partitionIndex: 0 }] }] })
      expect(missing.errorCode).toBe(ErrorCode.GROUP_ID_NOT_FOUND)
    })
  )

  it.scoped("ListGroups v0/v5 (state and type filters), DescribeGroups v0/v5, DeleteGroups v0/v2", () =>
    Effect.gen(function* () {
      const { call, callForked } = yield* setup()
      yield* call(8, 2, {
        groupId: "simple",
        generationIdOrMemberEpoch: -1,
        memberId: "",
        retentionTimeMs: -1n,
        topics: [{ name: "t", partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] }]
      })
      const join = yield* callForked(11, 5, {
        groupId: "live",
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 10_000,
        memberId: "",
        groupInstanceId: "inst-1",
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: meta }]
      })
      expect(join.errorCode).toBe(0)
      yield* call(14, 3, { groupId: "live", generationId: 1, memberId: join.memberId, groupInstanceId: "inst-1", assignments: [] })

      const l0 = yield* call(16, 0, {})
      expect(l0.groups.map((g) => [g.groupId, g.protocolType]).sort()).toEqual([
        ["live", "consumer"],
        ["simple", ""]
      ])
      const l5 = yield* call(16, 5, { statesFilter: ["stable"], typesFilter: ["classic"] })
      expect(l5.groups.map((g) => [g.groupId, g.groupState, g.groupType])).toEqual([["live", "Stable", "classic"]])
      const l5none = yield* call(16, 5, { statesFilter: [], typesFilter: ["consumer"] })
      expect(l5none.groups).toEqual([])

      const d5 = yield* call(15, 5, { groups: ["live", "unknown"], includeAuthorizedOperations: true })
      expect(d5.groups[0]).toMatchObject({ groupId: "live", groupState: "Stable", authorizedOperations: GROUP_AUTHORIZED_OPERATIONS })
      expect(d5.groups[0]!.members[0]!.groupInstanceId).toBe("inst-1")
      expect(d5.groups[1]).toMatchObject({ errorCode: 0, groupId: "unknown", groupState: "Dead", members: [] })
      const d3 = yield* call(15, 3, { groups: ["live"], includeAuthorizedOperations: false })
      expect(d3.groups[0]!.authorizedOperations).toBe(-2147483648)

      const del0 = yield* call(42, 0, { groupsNames: ["live", "simple"] })
      expect(del0.results.map((r) => [r.groupId, r.errorCode])).toEqual([
        ["live", ErrorCode.NON_EMPTY_GROUP],
        ["simple", ErrorCode.NONE]
      ])
      const del2 = yield* call(42, 2, { groupsNames: ["simple"] })
      expect(del2.results[0]!.errorCode).toBe(ErrorCode.GROUP_ID_NOT_FOUND)
    })
  )

  it.scoped("OffsetFetch v1 carries a group error in every requested partition", () =>
    Effect.gen(function* () {
      const gc = yield* coordinator({}, undefined, { coordinatorStatus: () => "NotCoordinator" })
      const router = RequestRouter.make(makeHandlersWith(gc, { node, partitionExists }))
      const frame = encodeRequest(9, 1, 1, "c", { groupId: "g", topics: [{ name: "t", partitionIndexes: [0, 1] }] })
      const out = yield* router.route(conn, frame)
      const body = decodeResponse(9, 1, out!).body
      expect(body.topics[0]!.partitions.map((p) => p.errorCode)).toEqual([ErrorCode.NOT_COORDINATOR, ErrorCode.NOT_COORDINATOR])
      const frame3 = encodeRequest(9, 3, 2, "c", { groupId: "g", topics: null })
      const body3 = decodeResponse(9, 3, (yield* router.route(conn, frame3))!).body
      expect(body3.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
    })
  )
})
