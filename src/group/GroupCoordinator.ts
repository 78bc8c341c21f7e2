/**
 * GroupCoordinator: Kafka's classic consumer group protocol (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup) with committed offsets, modelled on
 * Kafka's GroupCoordinator / GroupMetadata state machine.
 *
 * States: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
 *
 * Concurrency model. All group state lives in plain JS objects and is changed
 * only by synchronous code (no yield in the middle of a transition), so a
 * transition is atomic with respect to other fibers. A request that must wait
 * (JoinGroup until the join phase completes, SyncGroup until the leader's
 * assignment) registers a callback that completes a Deferred, exactly where
 * Kafka registers its response callbacks. Writes to the GroupStore happen
 * between synchronous steps, and the step after a write re-checks the state
 * (as Kafka's storeGroup/storeOffsets callbacks do).
 *
 * Time comes from the Effect Clock. Session expiry, the join phase (initial
 * delay and rebalance timeout), the sync phase and the offset retention sweep
 * are deadlines in one scheduler fiber (./Timers.ts), so TestClock drives all
 * of them.
 */
import { randomUUID } from "node:crypto"
import { Clock, Config, ConfigError, Context, Deferred, Effect, Exit, Layer } from "effect"
import { envProvider } from "../config/BrokerConfig.js"
import type { Scope } from "effect"
import { ErrorCode } from "../protocol/errorCodes.js"
import { decodeConsumerProtocolSubscription } from "../protocol/generated/ConsumerProtocolSubscription.js"
import { cursor } from "../protocol/wire.js"
import {
  GroupStore,
  layerMemory as GroupStoreLayerMemory,
  type GroupMetadataValue,
  type GroupRecord,
  type GroupStoreError,
  type GroupStoreShape,
  type OffsetValue
} from "./GroupStore.js"
import * as Timers from "./Timers.js"

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

export interface GroupCoordinatorConfigShape {
  /** group.min.session.timeout.ms */
  readonly minSessionTimeoutMs: number
  /** group.max.session.timeout.ms */
  readonly maxSessionTimeoutMs: number
  /** group.initial.rebalance.delay.ms: how long a new (empty) group waits for more members before its first generation. */
  readonly initialRebalanceDelayMs: number
  /** group.max.size */
  readonly maxGroupSize: number
  /** offsets.retention.minutes, in ms: offsets of an empty group expire this long after it became empty. */
  readonly offsetsRetentionMs: number
  /** offsets.retention.check.interval.ms */
  readonly offsetsRetentionCheckIntervalMs: number
  /** offset.metadata.max.bytes */
  readonly offsetMetadataMaxBytes: number
  /** How long a new member's JoinGroup may wait in a rebalance before it is dropped (Kafka: 5 minutes). */
  readonly newMemberJoinTimeoutMs: number
}

export const defaultConfig: GroupCoordinatorConfigShape = {
  minSessionTimeoutMs: 6000,
  maxSessionTimeoutMs: 1_800_000,
  initialRebalanceDelayMs: 3000,
  maxGroupSize: 2_147_483_647,
  offsetsRetentionMs: 7 * 24 * 3600 * 1000,
  offsetsRetentionCheckIntervalMs: 600_000,
  offsetMetadataMaxBytes: 4096,
  newMemberJoinTimeoutMs: 300_000
}

export class GroupCoordinatorConfig extends Context.Tag("chronik/GroupCoordinatorConfig")<
  GroupCoordinatorConfig,
  GroupCoordinatorConfigShape
>() {}

export const layerConfig = (overrides: Partial<GroupCoordinatorConfigShape> = {}): Layer.Layer<GroupCoordinatorConfig> =>
  Layer.succeed(GroupCoordinatorConfig, { ...defaultConfig, ...overrides })

/** The config keys, nested under `group` (CHRONIK_GROUP_* in the environment). */
export const configFromEnv: Config.Config<GroupCoordinatorConfigShape> = Config.nested(
  Config.all({
    minSessionTimeoutMs: Config.integer("minSessionTimeoutMs").pipe(
      Config.withDefault(defaultConfig.minSessionTimeoutMs),
      Config.withDescription("group.min.session.timeout.ms")
    ),
    maxSessionTimeoutMs: Config.integer("maxSessionTimeoutMs").pipe(
      Config.withDefault(defaultConfig.maxSessionTimeoutMs),
      Config.withDescription("group.max.session.timeout.ms")
    ),
    initialRebalanceDelayMs: Config.integer("initialRebalanceDelayMs").pipe(
      Config.withDefault(defaultConfig.initialRebalanceDelayMs),
      Config.withDescription("group.initial.rebalance.delay.ms")
    ),
    maxGroupSize: Config.integer("maxGroupSize").pipe(
      Config.withDefault(defaultConfig.maxGroupSize),
      Config.withDescription("group.max.size")
    ),
    offsetsRetentionMs: Config.integer("offsetsRetentionMs").pipe(
      Config.withDefault(defaultConfig.offsetsRetentionMs),
      Config.withDescription("offsets.retention.minutes, in milliseconds")
    ),
    offsetsRetentionCheckIntervalMs: Config.integer("offsetsRetentionCheckIntervalMs").pipe(
      Config.withDefault(defaultConfig.offsetsRetentionCheckIntervalMs),
      Config.withDescription("offsets.retention.check.interval.ms")
    ),
    offsetMetadataMaxBytes: Config.integer("offsetMetadataMaxBytes").pipe(
      Config.withDefault(defaultConfig.offsetMetadataMaxBytes),
      Config.withDescription("offset.metadata.max.bytes")
    ),
    newMemberJoinTimeoutMs: Config.integer("newMemberJoinTimeoutMs").pipe(
      Config.withDefault(defaultConfig.newMemberJoinTimeoutMs),
      Config.withDescription("How long a new member may wait in a rebalance")
    )
  }),
  "group"
)

/** The config from `CHRONIK_GROUP_*` environment variables (e.g. CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS), defaults for the rest. */
export const layerConfigFromEnv = (
  env: Record<string, string | undefined> = process.env
): Layer.Layer<GroupCoordinatorConfig, ConfigError.ConfigError> =>
  Layer.effect(
    GroupCoordinatorConfig,
    Effect.withConfigProvider(
      Effect.filterOrFail(
        configFromEnv,
        (c) =>
          c.minSessionTimeoutMs >= 0 &&
          c.maxSessionTimeoutMs >= c.minSessionTimeoutMs &&
          c.initialRebalanceDelayMs >= 0 &&
          c.maxGroupSize >= 1 &&
          c.offsetsRetentionMs >= 1 &&
          c.offsetsRetentionCheckIntervalMs >= 1 &&
          c.offsetMetadataMaxBytes >= 0 &&
          c.newMemberJoinTimeoutMs >= 1,
        (c) => ConfigError.InvalidData(["group"], `inconsistent group coordinator config: ${JSON.stringify(c)}`)
      ),
      envProvider(env)
    )
  )

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable" | "Dead"

/** Whether this node coordinates a group (standalone: always "Local"). */
export type CoordinatorStatus = "Local" | "NotCoordinator" | "Loading" | "Unavailable"

export interface Protocol {
  readonly name: string
  readonly metadata: Buffer
}

export interface JoinGroupParams {
  readonly groupId: string
  /** "" for a member without an id yet. */
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly clientId: string
  readonly clientHost: string
  /** The handler passes the session timeout here for JoinGroup v0 (which has no rebalance timeout). */
  readonly rebalanceTimeoutMs: number
  readonly sessionTimeoutMs: number
  readonly protocolType: string
  readonly protocols: ReadonlyArray<Protocol>
  /** JoinGroup v4+ for dynamic members (KIP-394). */
  readonly requireKnownMemberId: boolean
  /** JoinGroup v9+ (KIP-814). */
  readonly supportSkippingAssignment: boolean
  readonly reason?: string | null
}

export interface JoinGroupMember {
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly metadata: Buffer
}

export interface JoinGroupResult {
  readonly errorCode: number
  readonly generationId: number
  readonly protocolType: string | null
  readonly protocolName: string | null
  readonly leader: string
  readonly skipAssignment: boolean
  readonly memberId: string
  readonly members: ReadonlyArray<JoinGroupMember>
}

export interface SyncGroupParams {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly protocolType: string | null
  readonly protocolName: string | null
  readonly assignments: ReadonlyArray<{ readonly memberId: string; readonly assignment: Buffer }>
}

export interface SyncGroupResult {
  readonly errorCode: number
  readonly protocolType: string | null
  readonly protocolName: string | null
  readonly assignment: Buffer
}

export interface HeartbeatParams {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string
  readonly groupInstanceId: string | null
}

export interface LeavingMember {
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly reason?: string | null
}

export interface LeaveGroupResult {
  readonly errorCode: number
  readonly members: ReadonlyArray<{ readonly memberId: string; readonly groupInstanceId: string | null; readonly errorCode: number }>
}

export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

export interface OffsetCommitEntry extends TopicPartition {
  readonly offset: bigint
  readonly leaderEpoch: number
  readonly metadata: string | null
  /** OffsetCommit v1 per-partition commit timestamp, -1: now. */
  readonly commitTimestamp?: number
}

export interface OffsetCommitParams {
  readonly groupId: string
  /** -1 for a simple (non-member) commit. */
  readonly generationId: number
  /** "" for a simple commit. */
  readonly memberId: string
  readonly groupInstanceId: string | null
  /** OffsetCommit v2-v4 retention time, -1: the broker's policy. */
  readonly retentionTimeMs: number
  readonly offsets: ReadonlyArray<OffsetCommitEntry>
}

export interface PartitionError extends TopicPartition {
  readonly errorCode: number
}

export interface FetchedOffset extends TopicPartition {
  /** -1 when there is no committed offset. */
  readonly offset: bigint
  readonly leaderEpoch: number
  readonly metadata: string
  readonly errorCode: number
}

export interface OffsetFetchResult {
  readonly errorCode: number
  readonly offsets: ReadonlyArray<FetchedOffset>
}

export interface CommittedOffset extends TopicPartition {
  readonly offset: bigint
  readonly leaderEpoch: number
  readonly metadata: string
  readonly commitTimestamp: number
  readonly expireTimestamp: number | null
}

export interface OffsetDeleteResult {
  readonly errorCode: number
  readonly partitions: ReadonlyArray<PartitionError>
}

export interface GroupOverview {
  readonly groupId: string
  readonly protocolType: string
  readonly state: GroupState
}

export interface ListGroupsResult {
  readonly errorCode: number
  readonly groups: ReadonlyArray<GroupOverview>
}

export interface MemberDescription {
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly clientId: string
  readonly clientHost: string
  readonly metadata: Buffer
  readonly assignment: Buffer
}

export interface GroupDescription {
  readonly errorCode: number
  readonly groupId: string
  /** "" for an error, "Dead" for an unknown group (as Kafka). */
  readonly state: string
  readonly protocolType: string
  readonly protocol: string
  readonly members: ReadonlyArray<MemberDescription>
}

export interface GroupCoordinatorShape {
  readonly joinGroup: (p: JoinGroupParams) => Effect.Effect<JoinGroupResult>
  readonly syncGroup: (p: SyncGroupParams) => Effect.Effect<SyncGroupResult>
  /** Returns the error code. */
  readonly heartbeat: (p: HeartbeatParams) => Effect.Effect<number>
  readonly leaveGroup: (groupId: string, members: ReadonlyArray<LeavingMember>) => Effect.Effect<LeaveGroupResult>
  /** Per-partition results, in request order. */
  readonly commitOffsets: (p: OffsetCommitParams) => Effect.Effect<ReadonlyArray<PartitionError>>
  /** `partitions` null: every committed offset of the group. */
  readonly fetchOffsets: (
    groupId: string,
    partitions: ReadonlyArray<TopicPartition> | null,
    requireStable: boolean
  ) => Effect.Effect<OffsetFetchResult>
  readonly deleteOffsets: (groupId: string, partitions: ReadonlyArray<TopicPartition>) => Effect.Effect<OffsetDeleteResult>
  readonly deleteGroups: (groupIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<{ readonly groupId: string; readonly errorCode: number }>>
  /** `states`: case-insensitive state names; empty: all. */
  readonly listGroups: (states: ReadonlyArray<string>) => Effect.Effect<ListGroupsResult>
  readonly describeGroup: (groupId: string) => Effect.Effect<GroupDescription>
  /** The committed offsets of a group (empty for an unknown group), for consumer lag. */
  readonly describeGroupOffsets: (groupId: string) => Effect.Effect<ReadonlyArray<CommittedOffset>>
  /** Runs the offset retention sweep now (it also runs every offsetsRetentionCheckIntervalMs); returns the number of offsets removed. */
  readonly expireOffsets: Effect.Effect<number>
  /** Whether this node coordinates the group. */
  readonly coordinatorStatus: (groupId: string) => CoordinatorStatus
}

export class GroupCoordinator extends Context.Tag("chronik/GroupCoordinator")<GroupCoordinator, GroupCoordinatorShape>() {}

export interface MakeOptions {
  /** Whether this node coordinates a group; standalone: always "Local". */
  readonly coordinatorStatus?: (groupId: string) => CoordinatorStatus
}

// ---------------------------------------------------------------------------
// Internal model
// ---------------------------------------------------------------------------

type JoinCallback = (r: JoinGroupResult) => void
type SyncCallback = (r: SyncGroupResult) => void

interface Member {
  memberId: string
  readonly groupInstanceId: string | null
  clientId: string
  clientHost: string
  rebalanceTimeoutMs: number
  sessionTimeoutMs: number
  readonly protocolType: string
  protocols: ReadonlyArray<Protocol>
  assignment: Buffer
  awaitingJoin: JoinCallback | null
  awaitingSync: SyncCallback | null
  isNew: boolean
}

interface StoredOffset {
  readonly topic: string
  readonly partition: number
  readonly value: OffsetValue
  /** Log position of the commit record (newer commits win). */
  readonly position: bigint
}

interface Group {
  readonly groupId: string
  state: GroupState
  currentStateTimestamp: number | null
  protocolType: string | null
  protocolName: string | null
  generationId: number
  leaderId: string | null
  readonly members: Map<string, Member>
  /** group instance id -> member id */
  readonly staticMembers: Map<string, string>
  readonly pendingMembers: Set<string>
  readonly pendingSyncMembers: Set<string>
  numMembersAwaitingJoin: number
  /** protocol name -> number of members supporting it */
  readonly supportedProtocols: Map<string, number>
  newMemberAdded: boolean
  /** Topics the members subscribe to (consumer protocol), undefined when unknown. */
  subscribedTopics: ReadonlySet<string> | undefined
  readonly offsets: Map<string, StoredOffset>
  /** topic-partition key -> commits being written */
  readonly pendingOffsetCommits: Map<string, number>
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`

const EMPTY = Buffer.alloc(0)
const UNKNOWN_MEMBER_ID = ""
const CONSUMER_PROTOCOL_TYPE = "consumer"

const newGroup = (groupId: string, now: number): Group => ({
  groupId,
  state: "Empty",
  currentStateTimestamp: now,
  protocolType: null,
  protocolName: null,
  generationId: 0,
  leaderId: null,
  members: new Map(),
  staticMembers: new Map(),
  pendingMembers: new Set(),
  pendingSyncMembers: new Set(),
  numMembersAwaitingJoin: 0,
  supportedProtocols: new Map(),
  newMemberAdded: false,
  subscribedTopics: undefined,
  offsets: new Map(),
  pendingOffsetCommits: new Map()
})

const joinError = (memberId: string, errorCode: number): JoinGroupResult => ({
  errorCode,
  generationId: -1,
  protocolType: null,
  protocolName: null,
  leader: "",
  skipAssignment: false,
  memberId,
  members: []
})

const syncError = (errorCode: number): SyncGroupResult => ({
  errorCode,
  protocolType: null,
  protocolName: null,
  assignment: EMPTY
})

/** Valid predecessor states of each state (Kafka's GroupState transitions). */
const validPrevious: Record<GroupState, ReadonlyArray<GroupState>> = {
  Empty: ["PreparingRebalance"],
  PreparingRebalance: ["Stable", "CompletingRebalance", "Empty"],
  CompletingRebalance: ["PreparingRebalance"],
  Stable: ["CompletingRebalance"],
  Dead: ["Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"]
}

const sameProtocols = (a: ReadonlyArray<Protocol>, b: ReadonlyArray<Protocol>): boolean =>
  a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata))

const memberMetadata = (m: Member, protocol: string): Buffer => {
  for (const p of m.protocols) if (p.name === protocol) return p.metadata
  return EMPTY
}

/** The topics of a consumer-protocol subscription, or undefined when it cannot be parsed. */
export const parseSubscriptionTopics = (metadata: Buffer): ReadonlyArray<string> | undefined => {
  try {
    if (metadata.length < 2) return undefined
    const version = metadata.readInt16BE(0)
    if (version < 0) return undefined
    const sub = decodeConsumerProtocolSubscription(Math.min(version, 3), cursor(metadata, 2))
    return sub.topics
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------
// make
// ---------------------------------------------------------------------------

export const make = (
  options: MakeOptions = {}
): Effect.Effect<GroupCoordinatorShape, GroupStoreError, GroupStore | GroupCoordinatorConfig | Scope.Scope> =>
  Effect.gen(function* () {
    const config = yield* GroupCoordinatorConfig
    const store: GroupStoreShape = yield* GroupStore
    const timers = yield* Timers.make
    const statusOf = options.coordinatorStatus ?? (() => "Local" as const)

    const groups = new Map<string, Group>()
    let active = true
    /** Clock millis of the operation being run (set at every entry point before synchronous code). */
    let now = yield* Clock.currentTimeMillis
    /** Effects queued by synchronous code (store writes, logs), run by the entry point after it. */
    const tasks: Array<Effect.Effect<void>> = []

    const drain: Effect.Effect<void> = Effect.suspend(() => {
      if (tasks.length === 0) return Effect.void
      const batch = tasks.splice(0, tasks.length)
      return Effect.zipRight(Effect.forEach(batch, (t) => t, { discard: true }), drain)
    })

    /** Runs synchronous state machine code at the current Clock time, then its queued effects. */
    const atNow = <A>(f: () => A): Effect.Effect<A> =>
      Effect.flatMap(Clock.currentTimeMillis, (t) => {
        now = t
        const a = f()
        return Effect.as(drain, a)
      })

    const info = (msg: string): void => {
      tasks.push(Effect.logInfo(msg).pipe(Effect.annotateLogs("service", "GroupCoordinator")))
    }

    // -- group model helpers --------------------------------------------------

    const transitionTo = (g: Group, target: GroupState): void => {
      if (!validPrevious[target].includes(g.state)) {
        throw new Error(`group ${g.groupId}: illegal transition ${g.state} -> ${target}`)
      }
      g.state = target
      g.currentStateTimestamp = now
    }

    const canRebalance = (g: Group): boolean => validPrevious.PreparingRebalance.includes(g.state)

    const isLeader = (g: Group, memberId: string): boolean => g.leaderId === memberId

    const supportsProtocols = (g: Group, protocolType: string, protocols: ReadonlyArray<Protocol>): boolean => {
      if (g.state === "Empty") return protocolType.length > 0 && protocols.length > 0
      return g.protocolType === protocolType && protocols.some((p) => (g.supportedProtocols.get(p.name) ?? 0) === g.members.size)
    }

    const incSupported = (g: Group, m: Member): void => {
      for (const name of new Set(m.protocols.map((p) => p.name))) g.supportedProtocols.set(name, (g.supportedProtocols.get(name) ?? 0) + 1)
    }
    const decSupported = (g: Group, m: Member): void => {
      for (const name of new Set(m.protocols.map((p) => p.name))) {
        const n = (g.supportedProtocols.get(name) ?? 0) - 1
        if (n <= 0) g.supportedProtocols.delete(name)
        else g.supportedProtocols.set(name, n)
      }
    }

    const setJoinCallback = (g: Group, m: Member, cb: JoinCallback | null): void => {
      if (m.awaitingJoin === null && cb !== null) g.numMembersAwaitingJoin++
      else if (m.awaitingJoin !== null && cb === null) g.numMembersAwaitingJoin--
      m.awaitingJoin = cb
    }

    const maybeInvokeJoinCallback = (g: Group, m: Member, r: JoinGroupResult): void => {
      const cb = m.awaitingJoin
      if (cb !== null) {
        setJoinCallback(g, m, null)
        cb(r)
      }
    }

    const maybeInvokeSyncCallback = (m: Member, r: SyncGroupResult): boolean => {
      const cb = m.awaitingSync
      if (cb === null) return false
      m.awaitingSync = null
      cb(r)
      return true
    }

    const addMember = (g: Group, m: Member, cb: JoinCallback): void => {
      if (g.members.size === 0) g.protocolType = m.protocolType
      if (g.leaderId === null) g.leaderId = m.memberId
      g.members.set(m.memberId, m)
      if (m.groupInstanceId !== null) g.staticMembers.set(m.groupInstanceId, m.memberId)
      incSupported(g, m)
      setJoinCallback(g, m, cb)
      g.pendingMembers.delete(m.memberId)
    }

    const removeMember = (g: Group, memberId: string): void => {
      const m = g.members.get(memberId)
      if (m !== undefined) {
        g.members.delete(memberId)
        decSupported(g, m)
        if (m.awaitingJoin !== null) g.numMembersAwaitingJoin--
        if (m.groupInstanceId !== null && g.staticMembers.get(m.groupInstanceId) === memberId) {
          g.staticMembers.delete(m.groupInstanceId)
        }
      }
      if (isLeader(g, memberId)) {
        const first = g.members.keys().next()
        g.leaderId = first.done === true ? null : first.value
      }
      g.pendingMembers.delete(memberId)
      g.pendingSyncMembers.delete(memberId)
    }

    const updateMember = (
      g: Group,
      m: Member,
      protocols: ReadonlyArray<Protocol>,
      rebalanceTimeoutMs: number,
      sessionTimeoutMs: number,
      cb: JoinCallback | null
    ): void => {
      decSupported(g, m)
      m.protocols = protocols
      incSupported(g, m)
      m.rebalanceTimeoutMs = rebalanceTimeoutMs
      m.sessionTimeoutMs = sessionTimeoutMs
      setJoinCallback(g, m, cb)
    }

    const replaceStaticMember = (g: Group, instanceId: string, oldMemberId: string, newMemberId: string): Member => {
      const m = g.members.get(oldMemberId)
      if (m === undefined) throw new Error(`static member ${oldMemberId} of group ${g.groupId} not found`)
      g.members.delete(oldMemberId)
      // Fence a duplicate of the old member that still waits on join or sync.
      maybeInvokeJoinCallback(g, m, joinError(oldMemberId, ErrorCode.FENCED_INSTANCE_ID))
      maybeInvokeSyncCallback(m, syncError(ErrorCode.FENCED_INSTANCE_ID))
      timers.cancel(memberTimerKey(g, oldMemberId))
      m.memberId = newMemberId
      g.members.set(newMemberId, m)
      if (isLeader(g, oldMemberId)) g.leaderId = newMemberId
      if (g.pendingSyncMembers.delete(oldMemberId)) g.pendingSyncMembers.add(newMemberId)
      g.staticMembers.set(instanceId, newMemberId)
      return m
    }

    const rebalanceTimeoutOf = (g: Group): number => {
      let t = 0
      for (const m of g.members.values()) t = Math.max(t, m.rebalanceTimeoutMs)
      return t
    }

    const hasAllMembersJoined = (g: Group): boolean =>
      g.members.size === g.numMembersAwaitingJoin && g.pendingMembers.size === 0

    const candidateProtocols = (g: Group): Array<string> => {
      const out: Array<string> = []
      for (const [name, n] of g.supportedProtocols) if (n === g.members.size) out.push(name)
      return out
    }

    /** The protocol supported by every member that gets most members' first choice (ties: the earliest first choice). */
    const selectProtocol = (g: Group): string => {
      const candidates = new Set(candidateProtocols(g))
      if (candidates.size === 0) throw new Error(`group ${g.groupId}: no protocol supported by all members`)
      const votes = new Map<string, number>()
      for (const m of g.members.values()) {
        const vote = m.protocols.find((p) => candidates.has(p.name))!.name
        votes.set(vote, (votes.get(vote) ?? 0) + 1)
      }
      let best = ""
      let bestVotes = -1
      for (const [name, n] of votes) {
        if (n > bestVotes) {
          best = name
          bestVotes = n
        }
      }
      return best
    }

    const computeSubscribedTopics = (g: Group): ReadonlySet<string> | undefined => {
      if (g.protocolType !== CONSUMER_PROTOCOL_TYPE || g.protocolName === null || g.members.size === 0) return undefined
      const topics = new Set<string>()
      for (const m of g.members.values()) {
        const t = parseSubscriptionTopics(memberMetadata(m, g.protocolName))
        if (t === undefined) return undefined
        for (const x of t) topics.add(x)
      }
      return topics
    }

    const isSubscribedToTopic = (g: Group, topic: string): boolean =>
      g.subscribedTopics === undefined ? true : g.subscribedTopics.has(topic)

    const initNextGeneration = (g: Group): void => {
      g.generationId++
      if (g.members.size > 0) {
        g.protocolName = selectProtocol(g)
        g.subscribedTopics = computeSubscribedTopics(g)
        transitionTo(g, "CompletingRebalance")
      } else {
        g.protocolName = null
        g.subscribedTopics = computeSubscribedTopics(g)
        transitionTo(g, "Empty")
      }
      g.pendingSyncMembers.clear()
    }

    const currentMemberMetadata = (g: Group): Array<JoinGroupMember> => {
      const protocol = g.protocolName ?? ""
      return [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        metadata: memberMetadata(m, protocol)
      }))
    }

    const groupMetadataValue = (g: Group, assignment: ReadonlyMap<string, Buffer> | null): GroupMetadataValue => {
      const protocol = g.protocolName
      return {
        protocolType: g.protocolType ?? "",
        generation: g.generationId,
        protocol,
        leader: g.leaderId,
        currentStateTimestamp: g.currentStateTimestamp ?? now,
        members: [...g.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          rebalanceTimeoutMs: m.rebalanceTimeoutMs,
          sessionTimeoutMs: m.sessionTimeoutMs,
          subscription: protocol === null ? EMPTY : memberMetadata(m, protocol),
          assignment: assignment === null ? m.assignment : (assignment.get(m.memberId) ?? EMPTY)
        }))
      }
    }

    const storeGroup = (g: Group, assignment: ReadonlyMap<string, Buffer> | null): Effect.Effect<void, GroupStoreError> =>
      Effect.asVoid(store.append([{ _tag: "GroupMetadata", groupId: g.groupId, value: groupMetadataValue(g, assignment) }]))

    // -- timers -----------------------------------------------------------------

    const memberTimerKey = (g: Group, memberId: string): string => `m\u0000${g.groupId}\u0000${memberId}`
    const joinTimerKey = (g: Group): string => `j\u0000${g.groupId}`
    const syncTimerKey = (g: Group): string => `s\u0000${g.groupId}`

    const timerAction = (f: () => void): Effect.Effect<void> => atNow(f)

    const completeAndScheduleNextExpiration = (g: Group, m: Member, timeoutMs: number): void => {
      // The previous expectation is met; the next deadline starts now.
      const memberId = m.memberId
      timers.set(
        memberTimerKey(g, memberId),
        now + timeoutMs,
        timerAction(() => onExpireHeartbeat(g, memberId, false))
      )
    }

    const completeAndScheduleNextHeartbeatExpiration = (g: Group, m: Member): void =>
      completeAndScheduleNextExpiration(g, m, m.sessionTimeoutMs)

    const removeHeartbeatForLeavingMember = (g: Group, memberId: string): void => {
      timers.cancel(memberTimerKey(g, memberId))
    }

    const addPendingMemberExpiration = (g: Group, memberId: string, timeoutMs: number): void => {
      timers.set(
        memberTimerKey(g, memberId),
        now + timeoutMs,
        timerAction(() => onExpireHeartbeat(g, memberId, true))
      )
    }

    /** At its deadline a member has missed its heartbeat, unless it waits in JoinGroup or SyncGroup (a new member never has that excuse). */
    const hasSatisfiedHeartbeat = (m: Member): boolean => {
      if (m.isNew) return false
      return m.awaitingJoin !== null || m.awaitingSync !== null
    }

    const onExpireHeartbeat = (g: Group, memberId: string, isPending: boolean): void => {
      if (g.state === "Dead") return
      if (isPending) {
        if (g.pendingMembers.has(memberId)) {
          info(`Pending member ${memberId} in group ${g.groupId} has been removed after session timeout expiration.`)
          removePendingMemberAndUpdateGroup(g, memberId)
        }
        return
      }
      const m = g.members.get(memberId)
      if (m === undefined) return
      if (!hasSatisfiedHeartbeat(m)) {
        info(`Member ${memberId} in group ${g.groupId} has failed, removing it from the group`)
        removeMemberAndUpdateGroup(g, m, `removing member ${memberId} on heartbeat expiration`)
      }
    }

    // -- rebalance ----------------------------------------------------------------

    /** Whether the group's pending join phase is the initial delay (which never completes early). */
    const joinIsInitial = new WeakMap<Group, boolean>()

    /** The join phase: completes when every member rejoined, or when its deadline passes. */
    const scheduleJoin = (g: Group, delayMs: number, initial: { delay: number; remaining: number } | null): void => {
      timers.set(
        joinTimerKey(g),
        now + delayMs,
        timerAction(() => {
          if (g.state !== "PreparingRebalance") return
          if (initial !== null && g.newMemberAdded && initial.remaining !== 0) {
            // InitialDelayedJoin: a new member arrived during the delay; wait another delay (bounded by the rebalance timeout).
            g.newMemberAdded = false
            const delay = Math.min(initial.delay, initial.remaining)
            const remaining = Math.max(initial.remaining - delay, 0)
            scheduleJoin(g, delay, { delay: initial.delay, remaining })
            return
          }
          onCompleteJoin(g)
        })
      )
      joinIsInitial.set(g, initial !== null)
    }

    /** Kafka's checkAndComplete on the join key: completes a (non-initial) join phase once every member rejoined. */
    const tryCompleteJoin = (g: Group): void => {
      if (g.state !== "PreparingRebalance") return
      if (joinIsInitial.get(g) === true) return
      if (timers.deadline(joinTimerKey(g)) === undefined) return
      if (hasAllMembersJoined(g)) {
        timers.cancel(joinTimerKey(g))
        onCompleteJoin(g)
      }
    }

    const prepareRebalance = (g: Group, reason: string): void => {
      if (g.state === "CompletingRebalance") resetAndPropagateAssignmentError(g, ErrorCode.REBALANCE_IN_PROGRESS)
      removeSyncExpiration(g)
      const wasEmpty = g.state === "Empty"
      transitionTo(g, "PreparingRebalance")
      const rebalanceTimeout = rebalanceTimeoutOf(g)
      if (wasEmpty) {
        const delay = config.initialRebalanceDelayMs
        scheduleJoin(g, delay, { delay, remaining: Math.max(rebalanceTimeout - delay, 0) })
      } else {
        scheduleJoin(g, rebalanceTimeout, null)
      }
      info(
        `Preparing to rebalance group ${g.groupId} in state ${g.state} with old generation ${g.generationId} (reason: ${reason})`
      )
      tryCompleteJoin(g)
    }

    const maybePrepareRebalance = (g: Group, reason: string): void => {
      if (canRebalance(g)) prepareRebalance(g, reason)
    }

    const onCompleteJoin = (g: Group): void => {
      timers.cancel(joinTimerKey(g))
      const notYetRejoined = [...g.members.values()].filter((m) => m.awaitingJoin === null && m.groupInstanceId === null)
      if (notYetRejoined.length > 0) {
        info(`Group ${g.groupId} removed dynamic members who haven't joined: ${notYetRejoined.map((m) => m.memberId).join(",")}`)
        for (const m of notYetRejoined) {
          removeMember(g, m.memberId)
          removeHeartbeatForLeavingMember(g, m.memberId)
        }
      }
      if (g.state === "Dead") return
      if (!maybeElectNewJoinedLeader(g) && g.members.size > 0) {
        // No member rejoined: wait another rebalance timeout, until session expiry removes the silent members.
        info(`Group ${g.groupId} could not complete rebalance because no members rejoined`)
        scheduleJoin(g, rebalanceTimeoutOf(g), null)
        return
      }
      initNextGeneration(g)
      if (g.state === "Empty") {
        info(`Group ${g.groupId} with generation ${g.generationId} is now empty`)
        tasks.push(
          storeGroup(g, new Map()).pipe(
            Effect.catchAll((e) => Effect.logWarning(`Failed to write empty metadata for group ${g.groupId}: ${e.reason}`))
          )
        )
        return
      }
      info(`Stabilized group ${g.groupId} generation ${g.generationId} with ${g.members.size} members`)
      const leader = g.leaderId ?? ""
      for (const m of g.members.values()) {
        maybeInvokeJoinCallback(g, m, {
          errorCode: ErrorCode.NONE,
          generationId: g.generationId,
          protocolType: g.protocolType,
          protocolName: g.protocolName,
          leader,
          skipAssignment: false,
          memberId: m.memberId,
          members: isLeader(g, m.memberId) ? currentMemberMetadata(g) : []
        })
        completeAndScheduleNextHeartbeatExpiration(g, m)
        m.isNew = false
        g.pendingSyncMembers.add(m.memberId)
      }
      schedulePendingSync(g)
    }

    const maybeElectNewJoinedLeader = (g: Group): boolean => {
      if (g.leaderId === null) return false
      const leader = g.members.get(g.leaderId)
      if (leader !== undefined && leader.awaitingJoin !== null) return true
      for (const m of g.members.values()) {
        if (m.awaitingJoin !== null) {
          g.leaderId = m.memberId
          return true
        }
      }
      return false
    }

    const schedulePendingSync = (g: Group): void => {
      const generation = g.generationId
      timers.set(
        syncTimerKey(g),
        now + rebalanceTimeoutOf(g),
        timerAction(() => onExpirePendingSync(g, generation))
      )
    }

    const removeSyncExpiration = (g: Group): void => {
      g.pendingSyncMembers.clear()
      timers.cancel(syncTimerKey(g))
    }

    const removePendingSyncMember = (g: Group, memberId: string): void => {
      g.pendingSyncMembers.delete(memberId)
      if (g.pendingSyncMembers.size === 0) timers.cancel(syncTimerKey(g))
    }

    const onExpirePendingSync = (g: Group, generation: number): void => {
      if (generation !== g.generationId) return
      if (g.state !== "CompletingRebalance" && g.state !== "Stable") return
      if (g.pendingSyncMembers.size === 0) return
      const pending = [...g.pendingSyncMembers]
      for (const memberId of pending) {
        removeMember(g, memberId)
        removeHeartbeatForLeavingMember(g, memberId)
      }
      prepareRebalance(g, `Removing ${pending.join(",")} on pending sync request expiration`)
    }

    const resetAndPropagateAssignmentError = (g: Group, errorCode: number): void => {
      for (const m of g.members.values()) m.assignment = EMPTY
      propagateAssignment(g, errorCode)
    }

    const propagateAssignment = (g: Group, errorCode: number): void => {
      const ok = errorCode === ErrorCode.NONE
      for (const m of g.members.values()) {
        const delivered = maybeInvokeSyncCallback(m, {
          errorCode,
          protocolType: ok ? g.protocolType : null,
          protocolName: ok ? g.protocolName : null,
          assignment: m.assignment
        })
        // Reset the session of members whose sync response went out: their expiry was ignored while they waited.
        if (delivered) completeAndScheduleNextHeartbeatExpiration(g, m)
      }
    }

    const removeMemberAndUpdateGroup = (g: Group, m: Member, reason: string): void => {
      // A new member may time out while its JoinGroup waits: answer it so the client retries.
      maybeInvokeJoinCallback(g, m, joinError(UNKNOWN_MEMBER_ID, ErrorCode.UNKNOWN_MEMBER_ID))
      removeMember(g, m.memberId)
      switch (g.state) {
        case "Dead":
        case "Empty":
          return
        case "Stable":
        case "CompletingRebalance":
          maybePrepareRebalance(g, reason)
          return
        case "PreparingRebalance":
          tryCompleteJoin(g)
          return
      }
    }

    const removePendingMemberAndUpdateGroup = (g: Group, memberId: string): void => {
      removeMember(g, memberId)
      if (g.state === "PreparingRebalance") tryCompleteJoin(g)
    }

    const removeCurrentMemberFromGroup = (g: Group, memberId: string, reason: string): void => {
      const m = g.members.get(memberId)
      if (m === undefined) return
      removeMemberAndUpdateGroup(g, m, reason)
      removeHeartbeatForLeavingMember(g, memberId)
    }

    // -- validation ---------------------------------------------------------------

    const statusError = (groupId: string): number => {
      if (!active) return ErrorCode.COORDINATOR_NOT_AVAILABLE
      switch (statusOf(groupId)) {
        case "Local":
          return ErrorCode.NONE
        case "NotCoordinator":
          return ErrorCode.NOT_COORDINATOR
        case "Loading":
          return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        case "Unavailable":
          return ErrorCode.COORDINATOR_NOT_AVAILABLE
      }
    }

    /** Kafka's validateGroupStatus: membership APIs need a non-empty group id; offset APIs accept "". */
    const validateGroupStatus = (groupId: string, requireNonEmptyId: boolean): number => {
      if (requireNonEmptyId && groupId.length === 0) return ErrorCode.INVALID_GROUP_ID
      return statusError(groupId)
    }

    /** The member exists and, when an instance id is given, it maps to this member id. */
    const validateCurrentMember = (g: Group, memberId: string, groupInstanceId: string | null): number => {
      if (groupInstanceId !== null) {
        const current = g.staticMembers.get(groupInstanceId)
        if (current === undefined) return ErrorCode.UNKNOWN_MEMBER_ID
        if (current !== memberId) return ErrorCode.FENCED_INSTANCE_ID
      }
      if (!g.members.has(memberId)) return ErrorCode.UNKNOWN_MEMBER_ID
      return ErrorCode.NONE
    }

    const acceptJoiningMember = (g: Group, memberId: string): boolean => {
      switch (g.state) {
        case "Empty":
        case "Dead":
          return true
        case "PreparingRebalance": {
          const m = g.members.get(memberId)
          return (m !== undefined && m.awaitingJoin !== null) || g.numMembersAwaitingJoin < config.maxGroupSize
        }
        case "CompletingRebalance":
        case "Stable":
          return g.members.has(memberId) || g.members.size < config.maxGroupSize
      }
    }

    // -- JoinGroup ------------------------------------------------------------------

    const joinSync = (p: JoinGroupParams, cb: JoinCallback): void => {
      const status = validateGroupStatus(p.groupId, true)
      if (status !== ErrorCode.NONE) return cb(joinError(p.memberId, status))
      if (p.sessionTimeoutMs < config.minSessionTimeoutMs || p.sessionTimeoutMs > config.maxSessionTimeoutMs) {
        return cb(joinError(p.memberId, ErrorCode.INVALID_SESSION_TIMEOUT))
      }
      const isUnknownMember = p.memberId === UNKNOWN_MEMBER_ID
      let g = groups.get(p.groupId)
      if (g === undefined) {
        if (!isUnknownMember) return cb(joinError(p.memberId, ErrorCode.UNKNOWN_MEMBER_ID))
        g = newGroup(p.groupId, now)
        groups.set(p.groupId, g)
      }
      if (!acceptJoiningMember(g, p.memberId)) {
        removeMember(g, p.memberId)
        cb(joinError(UNKNOWN_MEMBER_ID, ErrorCode.GROUP_MAX_SIZE_REACHED))
      } else if (isUnknownMember) {
        doNewMemberJoinGroup(g, p, cb)
      } else {
        doCurrentMemberJoinGroup(g, p, cb)
      }
      if (g.state === "PreparingRebalance") tryCompleteJoin(g)
    }

    const generateMemberId = (clientId: string, groupInstanceId: string | null): string =>
      `${groupInstanceId ?? clientId}-${randomUUID()}`

    const doNewMemberJoinGroup = (g: Group, p: JoinGroupParams, cb: JoinCallback): void => {
      if (g.state === "Dead") return cb(joinError(UNKNOWN_MEMBER_ID, ErrorCode.COORDINATOR_NOT_AVAILABLE))
      if (!supportsProtocols(g, p.protocolType, p.protocols)) {
        return cb(joinError(UNKNOWN_MEMBER_ID, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
      }
      const newMemberId = generateMemberId(p.clientId, p.groupInstanceId)
      if (p.groupInstanceId !== null) {
        const oldMemberId = g.staticMembers.get(p.groupInstanceId)
        if (oldMemberId !== undefined) {
          info(
            `Static member with groupInstanceId=${p.groupInstanceId} and unknown member id joins group ${g.groupId} in ${g.state} state. Replacing previously mapped member ${oldMemberId} with this groupInstanceId.`
          )
          updateStaticMemberAndRebalance(g, oldMemberId, newMemberId, p, cb)
        } else {
          addMemberAndRebalance(g, newMemberId, p, cb)
        }
      } else if (p.requireKnownMemberId) {
        // KIP-394: hand out the member id and ask the client to rejoin with it.
        g.pendingMembers.add(newMemberId)
        addPendingMemberExpiration(g, newMemberId, p.sessionTimeoutMs)
        cb(joinError(newMemberId, ErrorCode.MEMBER_ID_REQUIRED))
      } else {
        addMemberAndRebalance(g, newMemberId, p, cb)
      }
    }

    const addMemberAndRebalance = (g: Group, memberId: string, p: JoinGroupParams, cb: JoinCallback): void => {
      const m: Member = {
        memberId,
        groupInstanceId: p.groupInstanceId,
        clientId: p.clientId,
        clientHost: p.clientHost,
        rebalanceTimeoutMs: p.rebalanceTimeoutMs,
        sessionTimeoutMs: p.sessionTimeoutMs,
        protocolType: p.protocolType,
        protocols: p.protocols,
        assignment: EMPTY,
        awaitingJoin: null,
        awaitingSync: null,
        isNew: true
      }
      // A member added during the first rebalance extends the initial delay.
      if (g.state === "PreparingRebalance" && g.generationId === 0) g.newMemberAdded = true
      addMember(g, m, cb)
      // New members cannot heartbeat while their JoinGroup waits: bound the wait instead.
      completeAndScheduleNextExpiration(g, m, config.newMemberJoinTimeoutMs)
      maybePrepareRebalance(g, `Adding new member ${memberId} with group instance id ${p.groupInstanceId}`)
    }

    const updateMemberAndRebalance = (g: Group, m: Member, p: JoinGroupParams, cb: JoinCallback, reason: string): void => {
      updateMember(g, m, p.protocols, p.rebalanceTimeoutMs, p.sessionTimeoutMs, cb)
      maybePrepareRebalance(g, reason)
    }

    const updateStaticMemberAndRebalance = (
      g: Group,
      oldMemberId: string,
      newMemberId: string,
      p: JoinGroupParams,
      cb: JoinCallback
    ): void => {
      const instanceId = p.groupInstanceId!
      const currentLeader = g.leaderId ?? ""
      const m = replaceStaticMember(g, instanceId, oldMemberId, newMemberId)
      completeAndScheduleNextHeartbeatExpiration(g, m)
      const oldProtocols = m.protocols
      const oldRebalanceTimeoutMs = m.rebalanceTimeoutMs
      const oldSessionTimeoutMs = m.sessionTimeoutMs
      updateMember(g, m, p.protocols, p.rebalanceTimeoutMs, p.sessionTimeoutMs, cb)
      switch (g.state) {
        case "Stable": {
          // Without a change of the selected protocol, the restarted static member takes its old place without a rebalance.
          if (g.protocolName === selectProtocol(g)) {
            info(`Static member which joins during Stable stage and doesn't affect selectProtocol will not trigger rebalance.`)
            const generation = g.generationId
            tasks.push(
              storeGroup(g, null).pipe(
                Effect.matchEffect({
                  onFailure: (e) =>
                    atNow(() => {
                      // Revert the replacement: the new member id was not persisted.
                      updateMember(g, m, oldProtocols, oldRebalanceTimeoutMs, oldSessionTimeoutMs, null)
                      if (g.members.get(newMemberId) === m) {
                        const old = replaceStaticMember(g, instanceId, newMemberId, oldMemberId)
                        completeAndScheduleNextHeartbeatExpiration(g, old)
                      }
                      cb({ ...joinError(UNKNOWN_MEMBER_ID, e.errorCode), generationId: generation })
                    }),
                  onSuccess: () =>
                    atNow(() => {
                      const leads = isLeader(g, newMemberId)
                      if (p.supportSkippingAssignment) {
                        maybeInvokeJoinCallback(g, m, {
                          errorCode: ErrorCode.NONE,
                          generationId: g.generationId,
                          protocolType: g.protocolType,
                          protocolName: g.protocolName,
                          leader: g.leaderId ?? "",
                          skipAssignment: leads,
                          memberId: newMemberId,
                          members: leads ? currentMemberMetadata(g) : []
                        })
                      } else {
                        // Before v9 the old leader id is returned, so a restarted leader does not run a
                        // trivial assignment that a stable group would never propagate.
                        maybeInvokeJoinCallback(g, m, {
                          errorCode: ErrorCode.NONE,
                          generationId: g.generationId,
                          protocolType: g.protocolType,
                          protocolName: g.protocolName,
                          leader: currentLeader,
                          skipAssignment: false,
                          memberId: newMemberId,
                          members: []
                        })
                      }
                    })
                })
              )
            )
          } else {
            maybePrepareRebalance(
              g,
              `Group's selectedProtocol will change because static member ${newMemberId} with instance id ${instanceId} joined with change of protocol`
            )
          }
          return
        }
        case "CompletingRebalance":
          // The leader may already have assigned with the old member id: rebalance.
          prepareRebalance(g, `Updating metadata for static member ${newMemberId} with instance id ${instanceId}`)
          return
        case "PreparingRebalance":
          // The join callback is set: the member gets its answer when the join phase completes.
          return
        case "Empty":
        case "Dead":
          throw new Error(`group ${g.groupId} in state ${g.state} when a known static member rejoined`)
      }
    }

    const doCurrentMemberJoinGroup = (g: Group, p: JoinGroupParams, cb: JoinCallback): void => {
      const memberId = p.memberId
      if (g.state === "Dead") return cb(joinError(memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE))
      if (!supportsProtocols(g, p.protocolType, p.protocols)) {
        return cb(joinError(memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
      }
      if (g.pendingMembers.has(memberId)) {
        if (p.groupInstanceId !== null) return cb(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID))
        info(`Pending dynamic member with id ${memberId} joins group ${g.groupId} in ${g.state} state. Adding to the group now.`)
        return addMemberAndRebalance(g, memberId, p, cb)
      }
      const err = validateCurrentMember(g, memberId, p.groupInstanceId)
      if (err !== ErrorCode.NONE) return cb(joinError(memberId, err))
      const m = g.members.get(memberId)!
      switch (g.state) {
        case "PreparingRebalance":
          return updateMemberAndRebalance(g, m, p, cb, `Member ${memberId} joining group during ${g.state}`)
        case "CompletingRebalance":
          if (sameProtocols(m.protocols, p.protocols)) {
            // The member lost the JoinGroup response: resend the current generation.
            return cb({
              errorCode: ErrorCode.NONE,
              generationId: g.generationId,
              protocolType: g.protocolType,
              protocolName: g.protocolName,
              leader: g.leaderId ?? "",
              skipAssignment: false,
              memberId,
              members: isLeader(g, memberId) ? currentMemberMetadata(g) : []
            })
          }
          return updateMemberAndRebalance(g, m, p, cb, `Updating metadata for member ${memberId} during ${g.state}`)
        case "Stable":
          if (isLeader(g, memberId)) {
            // The leader rejoins to force a rebalance (e.g. topic metadata changed).
            return updateMemberAndRebalance(g, m, p, cb, `Leader ${memberId} re-joining group during ${g.state}`)
          }
          if (!sameProtocols(m.protocols, p.protocols)) {
            return updateMemberAndRebalance(g, m, p, cb, `Updating metadata for member ${memberId} during ${g.state}`)
          }
          // A follower without changes gets the current generation and goes on to SyncGroup.
          return cb({
            errorCode: ErrorCode.NONE,
            generationId: g.generationId,
            protocolType: g.protocolType,
            protocolName: g.protocolName,
            leader: g.leaderId ?? "",
            skipAssignment: false,
            memberId,
            members: []
          })
        case "Empty":
          // Unexpected state for a known member: let it reset and rejoin.
          return cb(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID))
      }
    }

    // -- SyncGroup ------------------------------------------------------------------

    const syncSync = (p: SyncGroupParams, cb: SyncCallback): void => {
      const status = validateGroupStatus(p.groupId, true)
      if (status === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) return cb(syncError(ErrorCode.REBALANCE_IN_PROGRESS))
      if (status !== ErrorCode.NONE) return cb(syncError(status))
      const g = groups.get(p.groupId)
      if (g === undefined) return cb(syncError(ErrorCode.UNKNOWN_MEMBER_ID))
      if (g.state === "Dead") return cb(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE))
      let err = validateCurrentMember(g, p.memberId, p.groupInstanceId)
      if (err === ErrorCode.NONE && p.generationId !== g.generationId) err = ErrorCode.ILLEGAL_GENERATION
      if (err === ErrorCode.NONE && p.protocolType !== null && g.protocolType !== p.protocolType) {
        err = ErrorCode.INCONSISTENT_GROUP_PROTOCOL
      }
      if (err === ErrorCode.NONE && p.protocolName !== null && g.protocolName !== p.protocolName) {
        err = ErrorCode.INCONSISTENT_GROUP_PROTOCOL
      }
      if (err !== ErrorCode.NONE) return cb(syncError(err))
      switch (g.state) {
        case "Empty":
          return cb(syncError(ErrorCode.UNKNOWN_MEMBER_ID))
        case "PreparingRebalance":
          return cb(syncError(ErrorCode.REBALANCE_IN_PROGRESS))
        case "CompletingRebalance": {
          const m = g.members.get(p.memberId)!
          m.awaitingSync = cb
          removePendingSyncMember(g, p.memberId)
          if (isLeader(g, p.memberId)) {
            info(`Assignment received from leader ${p.memberId} for group ${g.groupId} for generation ${g.generationId}`)
            const assignment = new Map<string, Buffer>()
            for (const a of p.assignments) assignment.set(a.memberId, a.assignment)
            for (const id of g.members.keys()) if (!assignment.has(id)) assignment.set(id, EMPTY)
            const generation = g.generationId
            tasks.push(
              storeGroup(g, assignment).pipe(
                Effect.matchEffect({
                  onFailure: (e) =>
                    atNow(() => {
                      if (g.state === "CompletingRebalance" && g.generationId === generation) {
                        resetAndPropagateAssignmentError(g, e.errorCode)
                        maybePrepareRebalance(g, `Error when storing group assignment during SyncGroup (member: ${p.memberId})`)
                      }
                    }),
                  onSuccess: () =>
                    atNow(() => {
                      // Another member may have joined meanwhile: only complete the generation we stored.
                      if (g.state === "CompletingRebalance" && g.generationId === generation) {
                        for (const mm of g.members.values()) mm.assignment = assignment.get(mm.memberId) ?? EMPTY
                        propagateAssignment(g, ErrorCode.NONE)
                        transitionTo(g, "Stable")
                      }
                    })
                })
              )
            )
          }
          return
        }
        case "Stable": {
          removePendingSyncMember(g, p.memberId)
          const m = g.members.get(p.memberId)!
          cb({ errorCode: ErrorCode.NONE, protocolType: g.protocolType, protocolName: g.protocolName, assignment: m.assignment })
          completeAndScheduleNextHeartbeatExpiration(g, m)
          return
        }
      }
    }

    // -- Heartbeat ------------------------------------------------------------------

    const heartbeatSync = (p: HeartbeatParams): number => {
      const status = validateGroupStatus(p.groupId, true)
      if (status === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) return ErrorCode.NONE
      if (status !== ErrorCode.NONE) return status
      const g = groups.get(p.groupId)
      if (g === undefined) return ErrorCode.UNKNOWN_MEMBER_ID
      if (g.state === "Dead") return ErrorCode.COORDINATOR_NOT_AVAILABLE
      const err = validateCurrentMember(g, p.memberId, p.groupInstanceId)
      if (err !== ErrorCode.NONE) return err
      if (p.generationId !== g.generationId) return ErrorCode.ILLEGAL_GENERATION
      switch (g.state) {
        case "Empty":
          return ErrorCode.UNKNOWN_MEMBER_ID
        case "CompletingRebalance":
        case "Stable":
          completeAndScheduleNextHeartbeatExpiration(g, g.members.get(p.memberId)!)
          return ErrorCode.NONE
        case "PreparingRebalance":
          completeAndScheduleNextHeartbeatExpiration(g, g.members.get(p.memberId)!)
          return ErrorCode.REBALANCE_IN_PROGRESS
      }
    }

    // -- LeaveGroup -----------------------------------------------------------------

    const leaveSync = (groupId: string, leaving: ReadonlyArray<LeavingMember>): LeaveGroupResult => {
      const status = validateGroupStatus(groupId, true)
      if (status !== ErrorCode.NONE) return { errorCode: status, members: [] }
      const g = groups.get(groupId)
      const result = (m: LeavingMember, errorCode: number) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        errorCode
      })
      if (g === undefined) {
        return { errorCode: ErrorCode.NONE, members: leaving.map((m) => result(m, ErrorCode.UNKNOWN_MEMBER_ID)) }
      }
      if (g.state === "Dead") return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, members: [] }
      const members = leaving.map((l) => {
        const reason = `Removing member on LeaveGroup; client reason: ${l.reason ?? "not provided"}`
        if (l.memberId === UNKNOWN_MEMBER_ID) {
          // Administrative removal by group instance id.
          const current = l.groupInstanceId === null ? undefined : g.staticMembers.get(l.groupInstanceId)
          if (current === undefined) return result(l, ErrorCode.UNKNOWN_MEMBER_ID)
          removeCurrentMemberFromGroup(g, current, reason)
          return result(l, ErrorCode.NONE)
        }
        if (g.pendingMembers.has(l.memberId)) {
          removePendingMemberAndUpdateGroup(g, l.memberId)
          timers.cancel(memberTimerKey(g, l.memberId))
          return result(l, ErrorCode.NONE)
        }
        const err = validateCurrentMember(g, l.memberId, l.groupInstanceId)
        if (err !== ErrorCode.NONE) return result(l, err)
        removeCurrentMemberFromGroup(g, l.memberId, reason)
        return result(l, ErrorCode.NONE)
      })
      return { errorCode: ErrorCode.NONE, members }
    }

    // -- offsets --------------------------------------------------------------------

    const validateOffsetCommit = (g: Group, p: OffsetCommitParams): number => {
      if (g.state === "Dead") return ErrorCode.COORDINATOR_NOT_AVAILABLE
      if (p.generationId >= 0 || p.memberId !== UNKNOWN_MEMBER_ID || p.groupInstanceId !== null) {
        const err = validateCurrentMember(g, p.memberId, p.groupInstanceId)
        if (err !== ErrorCode.NONE) return err
        if (p.generationId !== g.generationId) return ErrorCode.ILLEGAL_GENERATION
        return ErrorCode.NONE
      }
      // Only members may commit to a group that has members.
      if (g.state !== "Empty") return ErrorCode.UNKNOWN_MEMBER_ID
      return ErrorCode.NONE
    }

    const addPending = (g: Group, key: string, d: number): void => {
      const n = (g.pendingOffsetCommits.get(key) ?? 0) + d
      if (n <= 0) g.pendingOffsetCommits.delete(key)
      else g.pendingOffsetCommits.set(key, n)
    }

    const commitOffsets = (p: OffsetCommitParams): Effect.Effect<ReadonlyArray<PartitionError>> =>
      Effect.gen(function* () {
        const all = (errorCode: number) => p.offsets.map((o) => ({ topic: o.topic, partition: o.partition, errorCode }))
        // Synchronous part: validate and stage the commits.
        const staged = yield* atNow(() => {
          const status = validateGroupStatus(p.groupId, false)
          if (status !== ErrorCode.NONE) return { done: all(status) } as const
          let g = groups.get(p.groupId)
          if (g === undefined) {
            if (p.generationId >= 0) return { done: all(ErrorCode.ILLEGAL_GENERATION) } as const
            // A group that does not rely on group management ("simple consumer"): allow the commit.
            g = newGroup(p.groupId, now)
            groups.set(p.groupId, g)
          }
          const err = validateOffsetCommit(g, p)
          if (err !== ErrorCode.NONE) return { done: all(err) } as const
          switch (g.state) {
            case "CompletingRebalance":
              return { done: all(ErrorCode.REBALANCE_IN_PROGRESS) } as const
            case "Stable":
            case "PreparingRebalance": {
              const m = g.members.get(p.memberId)
              if (m !== undefined) completeAndScheduleNextHeartbeatExpiration(g, m)
              break
            }
            default:
              break
          }
          const results: Array<PartitionError> = []
          const records: Array<GroupRecord> = []
          const recordIndex: Array<number> = []
          for (const o of p.offsets) {
            const metadata = o.metadata ?? ""
            if (Buffer.byteLength(metadata, "utf8") > config.offsetMetadataMaxBytes) {
              results.push({ topic: o.topic, partition: o.partition, errorCode: ErrorCode.OFFSET_METADATA_TOO_LARGE })
              continue
            }
            const commitTimestamp = o.commitTimestamp === undefined || o.commitTimestamp < 0 ? now : o.commitTimestamp
            const value: OffsetValue = {
              offset: o.offset,
              leaderEpoch: o.leaderEpoch,
              metadata,
              commitTimestamp,
              expireTimestamp: p.retentionTimeMs < 0 ? null : now + p.retentionTimeMs
            }
            recordIndex.push(results.length)
            results.push({ topic: o.topic, partition: o.partition, errorCode: ErrorCode.NONE })
            records.push({ _tag: "OffsetCommit", groupId: g.groupId, topic: o.topic, partition: o.partition, value })
            addPending(g, tpKey(o.topic, o.partition), 1)
          }
          return { group: g, results, records, recordIndex } as const
        })
        if ("done" in staged) return staged.done
        const { group: g, results, records, recordIndex } = staged
        if (records.length === 0) return results
        const appended = yield* Effect.either(store.append(records))
        return yield* atNow(() => {
          for (const r of records) {
            if (r._tag === "OffsetCommit") addPending(g, tpKey(r.topic, r.partition), -1)
          }
          if (appended._tag === "Left") {
            const code = appended.left.errorCode
            for (const i of recordIndex) results[i] = { ...results[i]!, errorCode: code }
            return results
          }
          if (g.state !== "Dead") {
            let position = appended.right
            for (const r of records) {
              if (r._tag === "OffsetCommit" && r.value !== null) {
                const key = tpKey(r.topic, r.partition)
                const cur = g.offsets.get(key)
                if (cur === undefined || cur.position < position) {
                  g.offsets.set(key, { topic: r.topic, partition: r.partition, value: r.value, position })
                }
              }
              position++
            }
          }
          return results
        })
      })

    const fetchSync = (
      groupId: string,
      partitions: ReadonlyArray<TopicPartition> | null,
      requireStable: boolean
    ): OffsetFetchResult => {
      const status = validateGroupStatus(groupId, false)
      if (status !== ErrorCode.NONE) return { errorCode: status, offsets: [] }
      const g = groups.get(groupId)
      const none = (tp: TopicPartition): FetchedOffset => ({
        topic: tp.topic,
        partition: tp.partition,
        offset: -1n,
        leaderEpoch: -1,
        metadata: "",
        errorCode: ErrorCode.NONE
      })
      if (g === undefined || g.state === "Dead") return { errorCode: ErrorCode.NONE, offsets: (partitions ?? []).map(none) }
      const wanted: ReadonlyArray<TopicPartition> =
        partitions ??
        [...g.offsets.values()]
          .map((o) => ({ topic: o.topic, partition: o.partition }))
          .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition))
      return {
        errorCode: ErrorCode.NONE,
        offsets: wanted.map((tp) => {
          const key = tpKey(tp.topic, tp.partition)
          if (requireStable && g.pendingOffsetCommits.has(key)) {
            return { ...none(tp), errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT }
          }
          const o = g.offsets.get(key)
          if (o === undefined) return none(tp)
          return {
            topic: tp.topic,
            partition: tp.partition,
            offset: o.value.offset,
            leaderEpoch: o.value.leaderEpoch,
            metadata: o.value.metadata,
            errorCode: ErrorCode.NONE
          }
        })
      }
    }

    /** Removes offsets from a group and returns their tombstones (plus the group's, when it became Dead). */
    const cleanupGroup = (g: Group, remove: (g: Group) => ReadonlyArray<StoredOffset>): Array<GroupRecord> => {
      const removed = remove(g)
      const records: Array<GroupRecord> = removed.map((o) => ({
        _tag: "OffsetCommit",
        groupId: g.groupId,
        topic: o.topic,
        partition: o.partition,
        value: null
      }))
      if (g.state === "Empty" && g.offsets.size === 0) {
        info(`Group ${g.groupId} transitioned to Dead in generation ${g.generationId}`)
        transitionTo(g, "Dead")
      }
      if (g.state === "Dead") {
        if (groups.get(g.groupId) === g) groups.delete(g.groupId)
        records.push({ _tag: "GroupMetadata", groupId: g.groupId, value: null })
      }
      return records
    }

    const removeOffsets = (g: Group, partitions: ReadonlyArray<TopicPartition>): Array<StoredOffset> => {
      const out: Array<StoredOffset> = []
      for (const tp of partitions) {
        const key = tpKey(tp.topic, tp.partition)
        g.pendingOffsetCommits.delete(key)
        const o = g.offsets.get(key)
        if (o !== undefined) {
          g.offsets.delete(key)
          out.push(o)
        }
      }
      return out
    }

    const removeExpiredOffsets = (g: Group): Array<StoredOffset> => {
      const expired = (base: (o: StoredOffset) => number, subscribed?: ReadonlySet<string>): Array<StoredOffset> => {
        const out: Array<StoredOffset> = []
        for (const [key, o] of g.offsets) {
          if (subscribed !== undefined && subscribed.has(o.topic)) continue
          if (g.pendingOffsetCommits.has(key)) continue
          const exp =
            o.value.expireTimestamp !== null
              ? now >= o.value.expireTimestamp
              : now - base(o) >= config.offsetsRetentionMs
          if (exp) out.push(o)
        }
        for (const o of out) g.offsets.delete(tpKey(o.topic, o.partition))
        return out
      }
      if (g.protocolType !== null && g.state === "Empty") {
        // No members: offsets expire once the group has been empty for the retention period.
        return expired((o) => g.currentStateTimestamp ?? o.value.commitTimestamp)
      }
      if (g.protocolType === CONSUMER_PROTOCOL_TYPE && g.subscribedTopics !== undefined && g.state === "Stable") {
        // A stable consumer group: offsets of topics nobody subscribes to expire after retention since their commit.
        return expired((o) => o.value.commitTimestamp, g.subscribedTopics)
      }
      if (g.protocolType === null) {
        // Simple consumers (offset storage only): retention since the last commit.
        return expired((o) => o.value.commitTimestamp)
      }
      return []
    }

    const appendTombstones = (records: ReadonlyArray<GroupRecord>): Effect.Effect<void> =>
      records.length === 0
        ? Effect.void
        : store
            .append(records)
            .pipe(
              Effect.catchAll((e) => Effect.logWarning(`GroupCoordinator: failed to write ${records.length} tombstones: ${e.reason}`))
            )

    const expireOffsets: Effect.Effect<number> = Effect.gen(function* () {
      const { count, records } = yield* atNow(() => {
        let count = 0
        const records: Array<GroupRecord> = []
        for (const g of [...groups.values()]) {
          const recs = cleanupGroup(g, (gg) => {
            const removed = removeExpiredOffsets(gg)
            count += removed.length
            return removed
          })
          for (const r of recs) records.push(r)
        }
        if (count > 0) info(`Removed ${count} expired offsets`)
        return { count, records }
      })
      yield* appendTombstones(records)
      return count
    })

    const scheduleRetention = (): void => {
      timers.set(
        "retention",
        now + config.offsetsRetentionCheckIntervalMs,
        Effect.zipRight(expireOffsets, Effect.sync(() => scheduleRetention()))
      )
    }

    const deleteOffsetsSync = (
      groupId: string,
      partitions: ReadonlyArray<TopicPartition>
    ): { result: OffsetDeleteResult; records: Array<GroupRecord> } => {
      // Unlike OffsetCommit/OffsetFetch/DescribeGroups/DeleteGroups, Kafka requires a non-empty id here.
      const status = validateGroupStatus(groupId, true)
      if (status !== ErrorCode.NONE) return { result: { errorCode: status, partitions: [] }, records: [] }
      const g = groups.get(groupId)
      if (g === undefined || g.state === "Dead") {
        return { result: { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, partitions: [] }, records: [] }
      }
      let eligible: ReadonlyArray<TopicPartition>
      const errors = new Map<string, number>()
      if (g.state === "Empty") {
        eligible = partitions
      } else if (g.protocolType === CONSUMER_PROTOCOL_TYPE) {
        const e: Array<TopicPartition> = []
        for (const tp of partitions) {
          if (isSubscribedToTopic(g, tp.topic)) errors.set(tpKey(tp.topic, tp.partition), ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC)
          else e.push(tp)
        }
        eligible = e
      } else {
        return { result: { errorCode: ErrorCode.NON_EMPTY_GROUP, partitions: [] }, records: [] }
      }
      const records = eligible.length > 0 ? cleanupGroup(g, (gg) => removeOffsets(gg, eligible)) : []
      return {
        result: {
          errorCode: ErrorCode.NONE,
          partitions: partitions.map((tp) => ({
            topic: tp.topic,
            partition: tp.partition,
            errorCode: errors.get(tpKey(tp.topic, tp.partition)) ?? ErrorCode.NONE
          }))
        },
        records
      }
    }

    const deleteGroupsSync = (
      groupIds: ReadonlyArray<string>
    ): { results: Array<{ groupId: string; errorCode: number }>; records: Array<GroupRecord> } => {
      const records: Array<GroupRecord> = []
      const results = groupIds.map((groupId) => {
        const status = validateGroupStatus(groupId, false)
        if (status !== ErrorCode.NONE) return { groupId, errorCode: status }
        const g = groups.get(groupId)
        if (g === undefined || g.state === "Dead") return { groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND }
        if (g.state !== "Empty") return { groupId, errorCode: ErrorCode.NON_EMPTY_GROUP }
        transitionTo(g, "Dead")
        for (const r of cleanupGroup(g, (gg) => removeOffsets(gg, [...gg.offsets.values()]))) records.push(r)
        return { groupId, errorCode: ErrorCode.NONE }
      })
      return { results, records }
    }

    const listSync = (states: ReadonlyArray<string>): ListGroupsResult => {
      const wanted = new Set(states.map((s) => s.toLowerCase()))
      const out: Array<GroupOverview> = []
      for (const g of groups.values()) {
        if (g.state === "Dead") continue
        if (statusOf(g.groupId) !== "Local") continue
        if (wanted.size > 0 && !wanted.has(g.state.toLowerCase())) continue
        out.push({ groupId: g.groupId, protocolType: g.protocolType ?? "", state: g.state })
      }
      return { errorCode: active ? ErrorCode.NONE : ErrorCode.COORDINATOR_NOT_AVAILABLE, groups: active ? out : [] }
    }

    const describeSync = (groupId: string): GroupDescription => {
      const status = validateGroupStatus(groupId, false)
      if (status !== ErrorCode.NONE) {
        return { errorCode: status, groupId, state: "", protocolType: "", protocol: "", members: [] }
      }
      const g = groups.get(groupId)
      if (g === undefined) {
        return { errorCode: ErrorCode.NONE, groupId, state: "Dead", protocolType: "", protocol: "", members: [] }
      }
      const stable = g.state === "Stable"
      const protocol = stable ? (g.protocolName ?? "") : ""
      return {
        errorCode: ErrorCode.NONE,
        groupId,
        state: g.state,
        protocolType: g.protocolType ?? "",
        protocol,
        members: [...g.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          metadata: stable ? memberMetadata(m, protocol) : EMPTY,
          assignment: stable ? m.assignment : EMPTY
        }))
      }
    }

    // -- load (replay) --------------------------------------------------------------

    yield* Effect.gen(function* () {
      const offsets = new Map<string, Map<string, StoredOffset>>()
      const metadata = new Map<string, GroupMetadataValue>()
      yield* store.replay((r, position) => {
        if (r._tag === "OffsetCommit") {
          let m = offsets.get(r.groupId)
          if (m === undefined) {
            m = new Map()
            offsets.set(r.groupId, m)
          }
          const key = tpKey(r.topic, r.partition)
          if (r.value === null) m.delete(key)
          else m.set(key, { topic: r.topic, partition: r.partition, value: r.value, position })
        } else {
          if (r.value === null) metadata.delete(r.groupId)
          else metadata.set(r.groupId, r.value)
        }
      })
      now = yield* Clock.currentTimeMillis
      const ids = new Set<string>([...metadata.keys()])
      for (const [id, m] of offsets) if (m.size > 0) ids.add(id)
      for (const id of ids) {
        const g = newGroup(id, now)
        for (const [k, o] of offsets.get(id) ?? []) g.offsets.set(k, o)
        const meta = metadata.get(id)
        if (meta !== undefined) {
          g.protocolType = meta.protocolType.length > 0 ? meta.protocolType : null
          g.generationId = meta.generation
          g.protocolName = meta.protocol
          g.leaderId = meta.leader
          g.currentStateTimestamp = meta.currentStateTimestamp >= 0 ? meta.currentStateTimestamp : null
          for (const mv of meta.members) {
            const m: Member = {
              memberId: mv.memberId,
              groupInstanceId: mv.groupInstanceId,
              clientId: mv.clientId,
              clientHost: mv.clientHost,
              rebalanceTimeoutMs: mv.rebalanceTimeoutMs,
              sessionTimeoutMs: mv.sessionTimeoutMs,
              protocolType: meta.protocolType,
              protocols: [{ name: meta.protocol ?? "", metadata: mv.subscription }],
              assignment: mv.assignment,
              awaitingJoin: null,
              awaitingSync: null,
              isNew: false
            }
            g.members.set(m.memberId, m)
            if (m.groupInstanceId !== null) g.staticMembers.set(m.groupInstanceId, m.memberId)
            incSupported(g, m)
          }
          if (g.members.size > 0) {
            g.state = "Stable"
            if (g.leaderId === null || !g.members.has(g.leaderId)) g.leaderId = g.members.keys().next().value ?? null
          } else {
            g.leaderId = null
          }
          g.subscribedTopics = computeSubscribedTopics(g)
        }
        groups.set(id, g)
        // Loaded members must heartbeat within their session, or they expire.
        for (const m of g.members.values()) completeAndScheduleNextHeartbeatExpiration(g, m)
      }
      tasks.length = 0
      if (ids.size > 0) yield* Effect.logInfo(`GroupCoordinator loaded ${ids.size} groups from the group store`)
    })

    scheduleRetention()

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        active = false
        // Answer waiting requests so clients go and find the coordinator again.
        for (const g of groups.values()) {
          for (const m of g.members.values()) {
            maybeInvokeJoinCallback(g, m, joinError(m.memberId, ErrorCode.NOT_COORDINATOR))
            maybeInvokeSyncCallback(m, syncError(ErrorCode.NOT_COORDINATOR))
          }
        }
      })
    )

    // -- the service ----------------------------------------------------------------

    const awaitCallback = <A>(register: (cb: (a: A) => void) => void): Effect.Effect<A> =>
      Effect.gen(function* () {
        const d = yield* Deferred.make<A>()
        yield* atNow(() => register((a) => Deferred.unsafeDone(d, Exit.succeed(a))))
        return yield* Deferred.await(d)
      })

    const service: GroupCoordinatorShape = {
      joinGroup: (p) => awaitCallback<JoinGroupResult>((cb) => joinSync(p, cb)),
      syncGroup: (p) => awaitCallback<SyncGroupResult>((cb) => syncSync(p, cb)),
      heartbeat: (p) => atNow(() => heartbeatSync(p)),
      leaveGroup: (groupId, members) => atNow(() => leaveSync(groupId, members)),
      commitOffsets,
      fetchOffsets: (groupId, partitions, requireStable) => atNow(() => fetchSync(groupId, partitions, requireStable)),
      deleteOffsets: (groupId, partitions) =>
        Effect.flatMap(
          atNow(() => deleteOffsetsSync(groupId, partitions)),
          ({ result, records }) => Effect.as(appendTombstones(records), result)
        ),
      deleteGroups: (groupIds) =>
        Effect.flatMap(
          atNow(() => deleteGroupsSync(groupIds)),
          ({ results, records }) => Effect.as(appendTombstones(records), results)
        ),
      listGroups: (states) => atNow(() => listSync(states)),
      describeGroup: (groupId) => atNow(() => describeSync(groupId)),
      describeGroupOffsets: (groupId) =>
        Effect.sync(() => {
          const g = groups.get(groupId)
          if (g === undefined) return []
          return [...g.offsets.values()]
            .map((o) => ({
              topic: o.topic,
              partition: o.partition,
              offset: o.value.offset,
              leaderEpoch: o.value.leaderEpoch,
              metadata: o.value.metadata,
              commitTimestamp: o.value.commitTimestamp,
              expireTimestamp: o.value.expireTimestamp
            }))
            .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition))
        }),
      expireOffsets,
      coordinatorStatus: (groupId) => (active ? statusOf(groupId) : "Unavailable")
    }
    return service
  })

/** The coordinator over the GroupStore and config in context. */
export const layer = (
  options: MakeOptions = {}
): Layer.Layer<GroupCoordinator, GroupStoreError, GroupStore | GroupCoordinatorConfig> =>
  Layer.scoped(GroupCoordinator, make(options))

/** A coordinator over an in-memory store, with config overrides (tests). */
export const layerMemory = (overrides: Partial<GroupCoordinatorConfigShape> = {}, options: MakeOptions = {}): Layer.Layer<GroupCoordinator> =>
  layer(options).pipe(
    Layer.provide(layerConfig(overrides)),
    Layer.provide(GroupStoreLayerMemory),
    Layer.orDie
  )

