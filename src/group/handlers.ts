/**
 * Request handlers of the group APIs: FindCoordinator, JoinGroup, SyncGroup,
 * Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
 * DescribeGroups, DeleteGroups and OffsetDelete.
 *
 * Each handler turns the decoded request of any version it advertises into
 * the coordinator's call (filling Kafka's defaults for fields the version does
 * not have) and shapes the response for that version. The ranges below are
 * every version of the spec that this coordinator serves completely.
 */
import { Effect } from "effect"
import { defineHandler, type ApiHandler, type RequestContext } from "../broker/RequestRouter.js"
import { ErrorCode } from "../protocol/errorCodes.js"
import type { DeleteGroupsRequest } from "../protocol/generated/DeleteGroupsRequest.js"
import type { DeleteGroupsResponseInput } from "../protocol/generated/DeleteGroupsResponse.js"
import type { DescribeGroupsRequest } from "../protocol/generated/DescribeGroupsRequest.js"
import type { DescribeGroupsResponseInput } from "../protocol/generated/DescribeGroupsResponse.js"
import type { FindCoordinatorRequest } from "../protocol/generated/FindCoordinatorRequest.js"
import type { CoordinatorInput, FindCoordinatorResponseInput } from "../protocol/generated/FindCoordinatorResponse.js"
import type { HeartbeatRequest } from "../protocol/generated/HeartbeatRequest.js"
import type { HeartbeatResponseInput } from "../protocol/generated/HeartbeatResponse.js"
import type { JoinGroupRequest } from "../protocol/generated/JoinGroupRequest.js"
import type { JoinGroupResponseInput } from "../protocol/generated/JoinGroupResponse.js"
import type { LeaveGroupRequest } from "../protocol/generated/LeaveGroupRequest.js"
import type { LeaveGroupResponseInput } from "../protocol/generated/LeaveGroupResponse.js"
import type { ListGroupsRequest } from "../protocol/generated/ListGroupsRequest.js"
import type { ListGroupsResponseInput } from "../protocol/generated/ListGroupsResponse.js"
import type { OffsetCommitRequest } from "../protocol/generated/OffsetCommitRequest.js"
import type { OffsetCommitResponseInput, OffsetCommitResponseTopicInput } from "../protocol/generated/OffsetCommitResponse.js"
import type { OffsetDeleteRequest } from "../protocol/generated/OffsetDeleteRequest.js"
import type { OffsetDeleteResponseInput } from "../protocol/generated/OffsetDeleteResponse.js"
import type { OffsetFetchRequest } from "../protocol/generated/OffsetFetchRequest.js"
import type { OffsetFetchResponseInput } from "../protocol/generated/OffsetFetchResponse.js"
import type { SyncGroupRequest } from "../protocol/generated/SyncGroupRequest.js"
import type { SyncGroupResponseInput } from "../protocol/generated/SyncGroupResponse.js"
import {
  GroupCoordinator,
  type FetchedOffset,
  type GroupCoordinatorShape,
  type OffsetCommitEntry,
  type PartitionError,
  type TopicPartition
} from "./GroupCoordinator.js"

/** This node as clients should reach it (FindCoordinator). */
export interface CoordinatorNode {
  readonly nodeId: number
  readonly host: string
  readonly port: number
}

export interface GroupHandlersOptions {
  /** This node's id and advertised listener. */
  readonly node: CoordinatorNode
  /** Whether a topic partition exists (OffsetCommit and OffsetDelete answer UNKNOWN_TOPIC_OR_PARTITION otherwise). */
  readonly partitionExists: (topic: string, partition: number) => boolean
  /**
   * The coordinator of a group key, when it may be another node (cluster mode);
   * null: none available now. Default: this node.
   */
  readonly locateGroupCoordinator?: (groupId: string) => CoordinatorNode | null
}

/** The API versions served, per API key. */
export const GROUP_API_VERSIONS = {
  OffsetCommit: { apiKey: 8, minVersion: 0, maxVersion: 9 },
  OffsetFetch: { apiKey: 9, minVersion: 0, maxVersion: 9 },
  FindCoordinator: { apiKey: 10, minVersion: 0, maxVersion: 6 },
  JoinGroup: { apiKey: 11, minVersion: 0, maxVersion: 9 },
  Heartbeat: { apiKey: 12, minVersion: 0, maxVersion: 4 },
  LeaveGroup: { apiKey: 13, minVersion: 0, maxVersion: 5 },
  SyncGroup: { apiKey: 14, minVersion: 0, maxVersion: 5 },
  DescribeGroups: { apiKey: 15, minVersion: 0, maxVersion: 5 },
  ListGroups: { apiKey: 16, minVersion: 0, maxVersion: 5 },
  DeleteGroups: { apiKey: 42, minVersion: 0, maxVersion: 2 },
  OffsetDelete: { apiKey: 47, minVersion: 0, maxVersion: 0 }
} as const

const KEY_TYPE_GROUP = 0
const KEY_TYPE_TRANSACTION = 1

/** READ | DELETE | DESCRIBE: the group operations reported when there is no authorizer (KIP-430). */
export const GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
const AUTHORIZED_OPERATIONS_OMITTED = -2147483648

const clientHostOf = (ctx: RequestContext): string => `/${ctx.connection.remoteAddress}`

/** Groups per-partition results by topic, keeping the first-seen topic order. */
const byTopic = <P extends TopicPartition, R>(
  items: ReadonlyArray<P>,
  partition: (p: P) => R
): Array<{ name: string; partitions: Array<R> }> => {
  const out: Array<{ name: string; partitions: Array<R> }> = []
  const index = new Map<string, number>()
  for (const p of items) {
    let i = index.get(p.topic)
    if (i === undefined) {
      i = out.length
      index.set(p.topic, i)
      out.push({ name: p.topic, partitions: [] })
    }
    out[i]!.partitions.push(partition(p))
  }
  return out
}

const fetchedPartition = (o: FetchedOffset) => ({
  partitionIndex: o.partition,
  committedOffset: o.offset,
  committedLeaderEpoch: o.leaderEpoch,
  metadata: o.metadata,
  errorCode: o.errorCode
})

export const makeHandlersWith = (gc: GroupCoordinatorShape, options: GroupHandlersOptions): ReadonlyArray<ApiHandler> => {
  const { node, partitionExists } = options
  const locate = options.locateGroupCoordinator ?? (() => node)

  const findOne = (key: string, keyType: number): { errorCode: number; node: CoordinatorNode | null; message: string | null } => {
    if (keyType === KEY_TYPE_GROUP) {
      const status = gc.coordinatorStatus(key)
      const at = status === "Unavailable" ? null : locate(key)
      if (at === null) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, node: null, message: "The coordinator is not available." }
      return { errorCode: ErrorCode.NONE, node: at, message: null }
    }
    if (keyType === KEY_TYPE_TRANSACTION) {
      return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, node: null, message: "Transactions are not supported." }
    }
    return { errorCode: ErrorCode.INVALID_REQUEST, node: null, message: `Unknown coordinator key type ${keyType}` }
  }

  const findCoordinator = defineHandler<FindCoordinatorRequest, FindCoordinatorResponseInput>({
    ...GROUP_API_VERSIONS.FindCoordinator,
    name: "FindCoordinator",
    handle: (ctx, req) =>
      Effect.sync(() => {
        const keyType = ctx.apiVersion >= 1 ? req.keyType : KEY_TYPE_GROUP
        if (ctx.apiVersion < 4) {
          const r = findOne(req.key, keyType)
          return {
            throttleTimeMs: 0,
            errorCode: r.errorCode,
            errorMessage: r.message,
            nodeId: r.node?.nodeId ?? -1,
            host: r.node?.host ?? "",
            port: r.node?.port ?? -1
          }
        }
        const coordinators: Array<CoordinatorInput> = req.coordinatorKeys.map((key) => {
          const r = findOne(key, keyType)
          return {
            key,
            nodeId: r.node?.nodeId ?? -1,
            host: r.node?.host ?? "",
            port: r.node?.port ?? -1,
            errorCode: r.errorCode,
            errorMessage: r.message
          }
        })
        return { throttleTimeMs: 0, coordinators }
      })
  })

  const joinGroup = defineHandler<JoinGroupRequest, JoinGroupResponseInput>({
    ...GROUP_API_VERSIONS.JoinGroup,
    name: "JoinGroup",
    handle: (ctx, req) =>
      Effect.map(
        gc.joinGroup({
          groupId: req.groupId,
          memberId: req.memberId,
          groupInstanceId: ctx.apiVersion >= 5 ? req.groupInstanceId : null,
          clientId: ctx.clientId ?? "",
          clientHost: clientHostOf(ctx),
          // v0 has no rebalance timeout: Kafka uses the session timeout.
          rebalanceTimeoutMs: ctx.apiVersion === 0 || req.rebalanceTimeoutMs < 0 ? req.sessionTimeoutMs : req.rebalanceTimeoutMs,
          sessionTimeoutMs: req.sessionTimeoutMs,
          protocolType: req.protocolType,
          protocols: req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) })),
          requireKnownMemberId: ctx.apiVersion >= 4 && (ctx.apiVersion < 5 || req.groupInstanceId === null),
          supportSkippingAssignment: ctx.apiVersion >= 9,
          reason: ctx.apiVersion >= 8 ? req.reason : null
        }),
        (r) => ({
          throttleTimeMs: 0,
          errorCode: r.errorCode,
          generationId: r.generationId,
          protocolType: r.protocolType,
          protocolName: ctx.apiVersion < 7 ? (r.protocolName ?? "") : r.protocolName,
          leader: r.leader,
          skipAssignment: ctx.apiVersion >= 9 ? r.skipAssignment : false,
          memberId: r.memberId,
          members: r.members.map((m) => ({
            memberId: m.memberId,
            groupInstanceId: ctx.apiVersion >= 5 ? m.groupInstanceId : null,
            metadata: m.metadata
          }))
        })
      )
  })

  const syncGroup = defineHandler<SyncGroupRequest, SyncGroupResponseInput>({
    ...GROUP_API_VERSIONS.SyncGroup,
    name: "SyncGroup",
    handle: (ctx, req) =>
      // v5+ must name the protocol type and name (Kafka: areMandatoryProtocolTypeAndNamePresent).
      ctx.apiVersion >= 5 && (req.protocolType === null || req.protocolName === null)
        ? Effect.succeed({
            throttleTimeMs: 0,
            errorCode: ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
            protocolType: null,
            protocolName: null,
            assignment: Buffer.alloc(0)
          })
        : Effect.map(
        gc.syncGroup({
          groupId: req.groupId,
          generationId: req.generationId,
          memberId: req.memberId,
          groupInstanceId: ctx.apiVersion >= 3 ? req.groupInstanceId : null,
          protocolType: ctx.apiVersion >= 5 ? req.protocolType : null,
          protocolName: ctx.apiVersion >= 5 ? req.protocolName : null,
          assignments: req.assignments.map((a) => ({ memberId: a.memberId, assignment: Buffer.from(a.assignment) }))
        }),
        (r) => ({
          throttleTimeMs: 0,
          errorCode: r.errorCode,
          protocolType: ctx.apiVersion >= 5 ? r.protocolType : null,
          protocolName: ctx.apiVersion >= 5 ? r.protocolName : null,
          assignment: r.assignment
        })
      )
  })

  const heartbeat = defineHandler<HeartbeatRequest, HeartbeatResponseInput>({
    ...GROUP_API_VERSIONS.Heartbeat,
    name: "Heartbeat",
    handle: (ctx, req) =>
      Effect.map(
        gc.heartbeat({
          groupId: req.groupId,
          generationId: req.generationId,
          memberId: req.memberId,
          groupInstanceId: ctx.apiVersion >= 3 ? req.groupInstanceId : null
        }),
        (errorCode) => ({ throttleTimeMs: 0, errorCode })
      )
  })

  const leaveGroup = defineHandler<LeaveGroupRequest, LeaveGroupResponseInput>({
    ...GROUP_API_VERSIONS.LeaveGroup,
    name: "LeaveGroup",
    handle: (ctx, req) => {
      const v = ctx.apiVersion
      const leaving =
        v < 3
          ? [{ memberId: req.memberId, groupInstanceId: null, reason: null }]
          : req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, reason: v >= 5 ? m.reason : null }))
      return Effect.map(gc.leaveGroup(req.groupId, leaving), (r) => {
        if (v < 3) {
          // v0-v2 carry one member: its error is the top-level error.
          const memberError = r.members.find((m) => m.errorCode !== ErrorCode.NONE)?.errorCode ?? ErrorCode.NONE
          return {
            throttleTimeMs: 0,
            errorCode: r.errorCode !== ErrorCode.NONE ? r.errorCode : memberError,
            members: []
          }
        }
        return { throttleTimeMs: 0, errorCode: r.errorCode, members: r.members }
      })
    }
  })

  const offsetCommit = defineHandler<OffsetCommitRequest, OffsetCommitResponseInput>({
    ...GROUP_API_VERSIONS.OffsetCommit,
    name: "OffsetCommit",
    handle: (ctx, req) =>
      Effect.gen(function* () {
        const v = ctx.apiVersion
        const unknown: Array<PartitionError> = []
        const offsets: Array<OffsetCommitEntry> = []
        for (const t of req.topics) {
          for (const p of t.partitions) {
            if (!partitionExists(t.name, p.partitionIndex)) {
              unknown.push({ topic: t.name, partition: p.partitionIndex, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION })
            } else {
              offsets.push({
                topic: t.name,
                partition: p.partitionIndex,
                offset: p.committedOffset,
                leaderEpoch: v >= 6 ? p.committedLeaderEpoch : -1,
                metadata: p.committedMetadata,
                commitTimestamp: v === 1 ? Number(p.commitTimestamp) : -1
              })
            }
          }
        }
        const results =
          offsets.length === 0
            ? []
            : yield* gc.commitOffsets({
                groupId: req.groupId,
                generationId: v >= 1 ? req.generationIdOrMemberEpoch : -1,
                memberId: v >= 1 ? req.memberId : "",
                groupInstanceId: v >= 7 ? req.groupInstanceId : null,
                retentionTimeMs: v >= 2 && v <= 4 ? Number(req.retentionTimeMs) : -1,
                offsets
              })
        const errors = new Map<string, number>()
        for (const r of [...unknown, ...results]) errors.set(`${r.topic}\u0000${r.partition}`, r.errorCode)
        const topics: Array<OffsetCommitResponseTopicInput> = req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partitionIndex,
            errorCode: errors.get(`${t.name}\u0000${p.partitionIndex}`) ?? ErrorCode.NONE
          }))
        }))
        return { throttleTimeMs: 0, topics }
      })
  })

  const offsetFetch = defineHandler<OffsetFetchRequest, OffsetFetchResponseInput>({
    ...GROUP_API_VERSIONS.OffsetFetch,
    name: "OffsetFetch",
    handle: (ctx, req) =>
      Effect.gen(function* () {
        const v = ctx.apiVersion
        const requireStable = v >= 7 ? req.requireStable : false
        if (v >= 8) {
          const groups = yield* Effect.forEach(req.groups, (grp) => {
            const partitions =
              grp.topics === null
                ? null
                : grp.topics.flatMap((t) => t.partitionIndexes.map((partition) => ({ topic: t.name, partition })))
            return Effect.map(gc.fetchOffsets(grp.groupId, partitions, requireStable), (r) => ({
              groupId: grp.groupId,
              errorCode: r.errorCode,
              topics: r.errorCode !== ErrorCode.NONE ? [] : byTopic(r.offsets, fetchedPartition)
            }))
          })
          return { throttleTimeMs: 0, groups }
        }
        const requested =
          req.topics === null ? null : req.topics.flatMap((t) => t.partitionIndexes.map((partition) => ({ topic: t.name, partition })))
        const r = yield* gc.fetchOffsets(req.groupId, requested, requireStable)
        if (r.errorCode !== ErrorCode.NONE) {
          if (v < 2) {
            // v0-v1 have no top-level error: every requested partition carries it.
            const failed = (requested ?? []).map((tp) => ({
              ...tp,
              offset: -1n,
              leaderEpoch: -1,
              metadata: "",
              errorCode: r.errorCode
            }))
            return { throttleTimeMs: 0, errorCode: r.errorCode, topics: byTopic(failed, fetchedPartition) }
          }
          return { throttleTimeMs: 0, errorCode: r.errorCode, topics: [] }
        }
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, topics: byTopic(r.offsets, fetchedPartition) }
      })
  })

  const offsetDelete = defineHandler<OffsetDeleteRequest, OffsetDeleteResponseInput>({
    ...GROUP_API_VERSIONS.OffsetDelete,
    name: "OffsetDelete",
    handle: (_ctx, req) =>
      Effect.gen(function* () {
        const all = req.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex })))
        const known = all.filter((tp) => partitionExists(tp.topic, tp.partition))
        const r = yield* gc.deleteOffsets(req.groupId, known)
        if (r.errorCode !== ErrorCode.NONE) return { errorCode: r.errorCode, throttleTimeMs: 0, topics: [] }
        const errors = new Map<string, number>()
        for (const p of r.partitions) errors.set(`${p.topic}\u0000${p.partition}`, p.errorCode)
        return {
          errorCode: ErrorCode.NONE,
          throttleTimeMs: 0,
          topics: byTopic(all, (tp) => ({
            partitionIndex: tp.partition,
            errorCode: errors.get(`${tp.topic}\u0000${tp.partition}`) ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
          }))
        }
      })
  })

  const deleteGroups = defineHandler<DeleteGroupsRequest, DeleteGroupsResponseInput>({
    ...GROUP_API_VERSIONS.DeleteGroups,
    name: "DeleteGroups",
    handle: (_ctx, req) =>
      Effect.map(gc.deleteGroups(req.groupsNames), (results) => ({ throttleTimeMs: 0, results }))
  })

  const listGroups = defineHandler<ListGroupsRequest, ListGroupsResponseInput>({
    ...GROUP_API_VERSIONS.ListGroups,
    name: "ListGroups",
    handle: (ctx, req) => {
      const v = ctx.apiVersion
      const types = v >= 5 ? req.typesFilter.map((t) => t.toLowerCase()) : []
      return Effect.map(gc.listGroups(v >= 4 ? req.statesFilter : []), (r) => ({
        throttleTimeMs: 0,
        errorCode: r.errorCode,
        // Every group here is a classic group (KIP-848 groups are not served).
        groups:
          types.length > 0 && !types.includes("classic")
            ? []
            : r.groups.map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state, groupType: "classic" }))
      }))
    }
  })

  const describeGroups = defineHandler<DescribeGroupsRequest, DescribeGroupsResponseInput>({
    ...GROUP_API_VERSIONS.DescribeGroups,
    name: "DescribeGroups",
    handle: (ctx, req) =>
      Effect.map(
        Effect.forEach(req.groups, (id) => gc.describeGroup(id)),
        (descriptions) => ({
          throttleTimeMs: 0,
          groups: descriptions.map((d) => ({
            errorCode: d.errorCode,
            groupId: d.groupId,
            groupState: d.state,
            protocolType: d.protocolType,
            protocolData: d.protocol,
            members: d.members.map((m) => ({
              memberId: m.memberId,
              groupInstanceId: ctx.apiVersion >= 4 ? m.groupInstanceId : null,
              clientId: m.clientId,
              clientHost: m.clientHost,
              memberMetadata: m.metadata,
              memberAssignment: m.assignment
            })),
            authorizedOperations:
              ctx.apiVersion >= 3 && req.includeAuthorizedOperations ? GROUP_AUTHORIZED_OPERATIONS : AUTHORIZED_OPERATIONS_OMITTED
          }))
        })
      )
  })

  return [
    offsetCommit,
    offsetFetch,
    findCoordinator,
    joinGroup,
    heartbeat,
    leaveGroup,
    syncGroup,
    describeGroups,
    listGroups,
    deleteGroups,
    offsetDelete
  ]
}

/** The group API handlers over the GroupCoordinator in context. */
export const makeGroupHandlers = (
  options: GroupHandlersOptions
): Effect.Effect<ReadonlyArray<ApiHandler>, never, GroupCoordinator> =>
  Effect.map(GroupCoordinator, (gc) => makeHandlersWith(gc, options))
