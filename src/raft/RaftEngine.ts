/**
 * RaftEngine: hosts many Raft groups on one node (multi-Raft).
 *
 * One driver fiber per node owns every `RaftCore`. Everything that touches a
 * core (ticks, inbound messages, proposals, reads, membership changes) is an
 * event in one mailbox; the driver takes ALL pending events, applies them,
 * then runs one Ready cycle over every group that has work:
 *
 *   0. apply the committed entries this node persisted in an earlier cycle
 *      (they need not wait for this cycle's sync);
 *   1. persist the Ready output of all groups with ONE `RaftLogStore.persist`
 *      (one sync: group commit across groups) per distinct log store (a
 *      group may have its own, `GroupOptions.logStore`; the stores of one
 *      cycle persist concurrently); a leader whose store reports durability
 *      (`onDurable`, e.g. the partition store) does not wait for its
 *      entries' sync: the store's notice is an event, and the core counts
 *      the entries for commit then (`durableTo`), so the cycles (and the
 *      syncs) of entries written meanwhile do not wait behind it;
 *   2. send every message of every group with ONE `RaftTransport.send`
 *      (one frame per peer: heartbeats of 1,000 groups travel as one frame per
 *      node pair per heartbeat tick);
 *   3. apply snapshots and the other committed entries to each group's
 *      `StateMachine`, complete proposals and reads;
 *   4. `advance` every core.
 *
 * While a cycle persists, new events queue up and are handled together in the
 * next cycle, so batching grows with load. A separate ticker fiber puts one
 * Tick event per `tickMs` (Effect Clock) in the mailbox: one tick loop per
 * node, not a timer per group.
 *
 * Proposals are cheap per call: no Deferred, fiber or timer per call. A
 * proposal is one object that is both the mailbox event and the pending entry
 * range; proposals of one group taken in one batch of events are appended
 * with one core call (`proposeBatch` puts many entries in one event); the
 * driver completes them through the caller's `Effect.async` callback, matching
 * applied entries by index and term in O(1); the ticker expires old ones.
 *
 * Quiescence (on by default, `quiescence: false` turns it off): a leader whose
 * group is fully idle stops ticking it and tells the followers (`MsgQuiesce`),
 * who stop ticking it too. Only active groups are ticked, and only groups
 * touched since the last cycle are asked for Ready. Node liveness replaces the
 * per-group heartbeats of quiesced groups: one `MsgLiveness` per peer per
 * heartbeat interval; a peer silent for an election timeout (or restarted)
 * wakes the quiesced groups it leads or follows in, so that elections and
 * check-quorum take over. Any API call or Raft message for a quiesced group
 * wakes it first. See docs/raft-services.md.
 *
 * `proposeNow` is the synchronous path (no Effect, no mailbox): the store's
 * `writeNow` writes the leader's unwritten entries and the new ones, then the
 * core appends them (the core accepts proposals while a Ready is
 * outstanding); it marks the group dirty and wakes the driver, whose next
 * cycle only waits for durability and commits. A group whose only voter is
 * this node campaigns (and wins) as soon as it is created or recovered.
 *
 * Failures: the engine's shared `RaftLogStore` failing stops the driver (like
 * etcd, which panics). A group with its own store (`GroupOptions.logStore`,
 * e.g. a partition over its own log) is stopped alone when that store fails
 * to persist: it leaves the engine, and the other groups go on.
 */
import { LatencyHistogram, type LatencySnapshot } from "./LatencyHistogram.js"
import { Clock, Context, Data, Deferred, Effect, Either, Exit, FiberId, Layer, PubSub, Queue, Random, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { Mulberry32 } from "./core/random.js"
import type { ProgressStatus } from "./core/raft.js"
import { RaftCore } from "./core/raft.js"
import type {
  ConfChangeType,
  ConfState,
  Entry,
  GroupId,
  Message,
  MessageType,
  MsgLiveness,
  NodeId,
  RaftError,
  Ready,
  Role,
  Snapshot
} from "./core/types.js"
import { isDriverMessage, isEmptySnapshot, NotLeader } from "./core/types.js"
import type { GroupLog, PersistItem, RaftLogStoreShape } from "./RaftLogStore.js"
import { type GroupsFailed, RaftLogStore, RaftLogStoreError } from "./RaftLogStore.js"
import type { InboundBatch } from "./RaftTransport.js"
import { RaftTransport } from "./RaftTransport.js"

// ---------------------------------------------------------------------------
// Public types

/** The application state of one group. All methods are synchronous. */
export interface StateMachine<R = unknown> {
  /** Applies a committed Normal entry; the result completes the matching proposal. */
  apply(entry: Entry): R
  /** Serializes the state (for log compaction and InstallSnapshot). */
  snapshot(): Uint8Array
  /** Replaces the state with a snapshot's data. */
  restore(data: Uint8Array): void
}

export interface GroupOptions {
  /** Membership of a brand-new group (ignored when the group recovers from the log store). */
  readonly voters: ReadonlyArray<NodeId>
  readonly learners?: ReadonlyArray<NodeId>
  readonly stateMachine: StateMachine
  /**
   * The log store of this group (default: the engine's `RaftLogStore`).
   * `open`, `persist`, `writeNow` and `compact` of the group go to it; a Ready
   * cycle calls `persist` once per distinct store, concurrently. If it fails
   * to persist, the groups it names (`GroupsFailed`), or else the groups of
   * the batch, stop (they leave the engine; the driver and other groups go on).
   */
  readonly logStore?: RaftLogStoreShape
  /** Overrides the engine's `snapshotEvery` for this group (0 = never by count). */
  readonly snapshotEvery?: number
  /** Overrides the engine's `snapshotEveryBytes` for this group (0 = never by size). */
  readonly snapshotEveryBytes?: number
  /** Overrides the engine's `snapshotKeepEntries` for this group. */
  readonly snapshotKeepEntries?: number
}

/**
 * Outcome of `proposeNow`. `Proposed`: the entries are in the leader's log at
 * `[firstIndex, lastIndex]` of `term` (and written with the store's `writeNow`
 * if it has one); they commit later (observe it through the state machine).
 */
export type ProposeNowResult =
  | { readonly _tag: "Proposed"; readonly term: number; readonly firstIndex: number; readonly lastIndex: number }
  | { readonly _tag: "NotLeader"; readonly leader: NodeId | null; readonly term: number }
  | { readonly _tag: "Refused"; readonly reason: string }

export interface LeadershipChange {
  readonly group: GroupId
  readonly leader: NodeId | null
  readonly term: number
  readonly role: Role
}

/** Per-group figures for metrics and tests. */
export interface GroupFigures {
  readonly group: GroupId
  readonly term: number
  readonly role: Role
  readonly leader: NodeId | null
  readonly commitIndex: number
  readonly appliedIndex: number
  readonly lastIndex: number
  readonly firstIndex: number
  readonly confState: ConfState
  /** Leader only. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>
  readonly elections: number
  readonly leaderChanges: number
  /** Entries proposed on this node (a `proposeBatch` of n counts n). */
  readonly proposals: number
  /** Entries refused by the core, and calls whose entries were overwritten. */
  readonly proposalsFailed: number
  readonly snapshotsSent: number
  readonly snapshotsApplied: number
  readonly snapshotsCreated: number
  /** The group is quiesced on this node (not ticked). */
  readonly quiesced: boolean
}

export interface EngineFigures {
  readonly groups: number
  readonly cycles: number
  readonly persistCalls: number
  readonly ticks: number
  /** Raft messages (core messages; driver messages are counted below). */
  readonly messagesSent: number
  readonly messagesReceived: number
  readonly messagesDroppedUnknownGroup: number
  /** Groups currently quiesced on this node (gauge). */
  readonly quiescedGroups: number
  /** Times a group quiesced / woke up on this node. */
  readonly quiesces: number
  readonly unquiesces: number
  /** `MsgQuiesce` + `MsgWake` messages sent. */
  readonly quiescenceMessagesSent: number
  /** `MsgLiveness` messages sent / received. */
  readonly livenessSent: number
  readonly livenessReceived: number
  /** Durability notices taken from group stores with `onDurable` (leaders commit on them). */
  readonly durableNotices: number
  /** Peers (members of hosted groups) and how many of them are live (gauges). */
  readonly peers: number
  readonly livePeers: number
  /** Raft messages sent, by message type (core and driver messages). */
  readonly messagesSentByType: Readonly<Partial<Record<MessageType, number>>>
  /** Proposal to applied-on-this-node latency of successful proposal calls made on this node (one per call). */
  readonly commitLatency: LatencySnapshot
  /** Duration of each persist (log store write + sync, all groups of one cycle). */
  readonly persistLatency: LatencySnapshot
}

// ---------------------------------------------------------------------------
// Errors

export class GroupNotFound extends Data.TaggedError("GroupNotFound")<{ readonly group: GroupId }> {
  override get message(): string {
    return `raft group ${this.group} not hosted on this node`
  }
}

/** The operation did not complete within its timeout; its outcome is unknown. */
export class RaftTimeout extends Data.TaggedError("RaftTimeout")<{
  readonly group: GroupId
  readonly operation: "propose" | "readIndex" | "confChange"
  readonly afterMs: number
}> {
  override get message(): string {
    return `group ${this.group}: ${this.operation} timed out after ${this.afterMs} ms`
  }
}

/** The entry's slot was taken by another leader's entry, or a snapshot skipped it. */
export class ProposalLost extends Data.TaggedError("ProposalLost")<{
  readonly group: GroupId
  readonly index: number
  readonly reason: "Overwritten" | "SnapshotSkipped" | "EngineStopped"
}> {
  override get message(): string {
    return `group ${this.group}: proposal at index ${this.index} lost (${this.reason})`
  }
}

export type ProposeError = RaftError | GroupNotFound | RaftTimeout | ProposalLost

// ---------------------------------------------------------------------------
// Config and service

export interface RaftEngineConfig {
  readonly nodeId: NodeId
  /** Milliseconds per tick. Default 100. */
  readonly tickMs?: number
  /** Ticks before a follower campaigns (randomized in [e, 2e)). Default 10. */
  readonly electionTicks?: number
  /** Ticks between heartbeats. Default 1. */
  readonly heartbeatTicks?: number
  /** Seed for election jitter; default drawn from Effect's `Random`. */
  readonly seed?: number
  /** Default 3 election timeouts. */
  readonly proposalTimeoutMs?: number
  /** Take a state-machine snapshot and compact after this many applied entries (0 = never). Default 0. */
  readonly snapshotEvery?: number
  /**
   * Also take a snapshot once this many payload bytes were applied since the
   * last one (0 = never). Default 0. Bounds the in-memory log of busy groups.
   */
  readonly snapshotEveryBytes?: number
  /** Entries kept behind a snapshot for slow followers. Default 64. */
  readonly snapshotKeepEntries?: number
  readonly preVote?: boolean
  readonly checkQuorum?: boolean
  readonly maxSizePerMsg?: number
  readonly maxInflightMsgs?: number
  readonly maxSnapshotChunkBytes?: number
  /**
   * Quiesce idle groups: stop ticking them and replace their heartbeats with
   * one node-liveness message per peer per heartbeat interval. Default true.
   * Use the same setting on every node.
   */
  readonly quiescence?: boolean
}

export interface RaftEngineShape {
  readonly nodeId: NodeId
  /** Creates (or recovers from the log store) a group on this node. Idempotent. */
  readonly createGroup: (group: GroupId, options: GroupOptions) => Effect.Effect<void, never>
  readonly removeGroup: (group: GroupId) => Effect.Effect<void>
  /** Proposes `data`; succeeds with the state machine's result once applied on this node. */
  readonly propose: (group: GroupId, data: Uint8Array) => Effect.Effect<unknown, ProposeError>
  /**
   * Proposes `datas` as consecutive entries of the group's log, in one mailbox
   * event and one core call; succeeds with the state machine's result of each
   * entry, in order, once all of them are applied on this node. All or
   * nothing: a refusal by the core (`NotLeader`, ...) fails the whole batch
   * and appends nothing. If some entries are lost (another leader's entries
   * took their slots, or a snapshot skipped them) the call fails with
   * `ProposalLost` whose `index` is the first lost entry; entries of the batch
   * before it were committed. An empty batch succeeds at once with `[]`.
   */
  readonly proposeBatch: (
    group: GroupId,
    datas: ReadonlyArray<Uint8Array>
  ) => Effect.Effect<ReadonlyArray<unknown>, ProposeError>
  /**
   * Synchronous proposal (no Effect, no mailbox round trip): passes the
   * leader's unwritten entries (e.g. its no-op) and `datas` as the next
   * entries to the group store's `writeNow`, then appends them to the core
   * with one call, and wakes the driver, whose next Ready cycle persists
   * (waits for durability), replicates and commits them. No completion:
   * observe commit through the group's `StateMachine.apply`. All or nothing
   * like `proposeBatch`. `Refused` when the group is unknown or stopped, the
   * engine is stopped, the core refuses (leadership transfer, size limit, ...)
   * or `writeNow` throws (then nothing was proposed: the core is unchanged,
   * and the store must have written nothing either, e.g. by undoing a partial
   * write).
   */
  readonly proposeNow: (group: GroupId, datas: ReadonlyArray<Uint8Array>) => ProposeNowResult
  /** The group's leader and term as this node knows them (undefined: group not hosted). Synchronous. */
  readonly leaderOf: (group: GroupId) => { readonly leader: NodeId | null; readonly term: number } | undefined
  /**
   * Linearizable read barrier: succeeds with an index once this node applied
   * at least that far; reading the local state machine then is linearizable.
   */
  readonly readIndex: (group: GroupId) => Effect.Effect<number, RaftError | GroupNotFound | RaftTimeout>
  readonly transferLeadership: (group: GroupId, to: NodeId) => Effect.Effect<void, RaftError | GroupNotFound>
  /** Membership changes; succeed once the change is applied on this (leader) node. */
  readonly addLearner: (group: GroupId, node: NodeId) => Effect.Effect<void, ProposeError>
  readonly promote: (group: GroupId, node: NodeId) => Effect.Effect<void, ProposeError>
  readonly removeNode: (group: GroupId, node: NodeId) => Effect.Effect<void, ProposeError>
  /** Starts an election now (tests, manual failover). */
  readonly campaign: (group: GroupId) => Effect.Effect<void, GroupNotFound>
  readonly leadershipChanges: Stream.Stream<LeadershipChange>
  readonly figures: (group: GroupId) => Effect.Effect<GroupFigures, GroupNotFound>
  readonly allFigures: Effect.Effect<ReadonlyArray<GroupFigures>>
  readonly engineFigures: Effect.Effect<EngineFigures>
  /** Entries [lo, hi) of a group's local log (observation). */
  readonly logEntries: (group: GroupId, lo: number, hi: number) => Effect.Effect<ReadonlyArray<Entry>, GroupNotFound>
}

export class RaftEngine extends Context.Tag("chronik/RaftEngine")<RaftEngine, RaftEngineShape>() {}

// ---------------------------------------------------------------------------
// Internals

/**
 * One `propose` / `proposeBatch` / membership change call. The same object is
 * the mailbox event and, once appended, the pending entry range (no Deferred,
 * no per-call fiber or timer: the driver completes it through the caller's
 * `Effect.async` callback, and the ticker fails it with `RaftTimeout` once it
 * is older than `proposalTimeoutMs`).
 */
interface Proposal {
  readonly _tag: "Propose"
  readonly group: GroupId
  /** One entry (`propose`) or several (`proposeBatch`); unused for a membership change. */
  readonly data: Uint8Array | ReadonlyArray<Uint8Array>
  /** Number of entries. */
  readonly count: number
  /** `proposeBatch`: succeed with the array of results. */
  readonly batch: boolean
  readonly operation: "propose" | "confChange"
  /** The caller's `Effect.async` callback (its success type depends on the call: `any`). */
  readonly resume: (exit: Exit.Exit<any, ProposeError>) => void
  /** Engine clock (ms) when proposed: commit latency and timeout. */
  readonly proposedAtMs: number
  /** Set once appended: term and index range of the entries. */
  term: number
  first: number
  last: number
  /** `proposeBatch` results, filled in as entries apply. */
  results: Array<unknown> | null
  /** Completed (or failed, or timed out): later events about it are ignored. */
  done: boolean
}

interface GroupState {
  readonly id: GroupId
  readonly core: RaftCore
  readonly log: GroupLog
  readonly sm: StateMachine
  /** The group's log store (its own or the engine's). */
  readonly store: RaftLogStoreShape
  /**
   * The store reports durability (`onDurable`): as leader, the group's
   * entries are persisted without waiting and count for commit on notice.
   */
  readonly byNotice: boolean
  readonly snapshotEvery: number
  readonly snapshotEveryBytes: number
  readonly keepEntries: number
  /** Payload bytes applied since the last snapshot. */
  bytesSinceSnapshot: number
  /**
   * `writeNow` has written the log through (writtenIndex, writtenTerm) in
   * the current leader term (0, 0: nothing yet).
   */
  writtenIndex: number
  writtenTerm: number
  /** The only voter is this node: campaign as soon as the core lets it. */
  selfElect: boolean
  /** Appended proposals not yet completed, by first index, in append order. */
  readonly pending: Map<number, Proposal>
  /** A `proposeBatch` whose first entries are applied and the rest not yet. */
  applying: Proposal | null
  /** Proposals of this group received in the current batch of events (appended together). */
  staged: Array<Proposal> | null
  readonly reads: Map<string, Deferred.Deferred<number, RaftError | GroupNotFound | RaftTimeout>>
  /** Read states whose index is not yet applied. */
  waitingReads: Array<{ index: number; context: string }>
  snapshotIndex: number
  elections: number
  leaderChanges: number
  proposals: number
  proposalsFailed: number
  snapshotsSent: number
  snapshotsApplied: number
  snapshotsCreated: number
  lastLeader: NodeId | null
  /** Not ticked (quiescence). */
  quiesced: boolean
  /** The leader does not quiesce the group before this engine tick (back-off after a wake). */
  quiesceAfter: number
}

interface PeerState {
  /** Engine tick at which anything was last received from the peer. */
  lastHeard: number
  live: boolean
  /** A member of some hosted group (otherwise a node that contacted us: kept while live). */
  member: boolean
  /** Incarnation from the peer's last `MsgLiveness` (null: none seen yet). */
  epoch: number | null
}

type Event =
  | { readonly _tag: "Tick" }
  | { readonly _tag: "Inbound"; readonly batch: InboundBatch }
  | { readonly _tag: "Run"; readonly run: () => void }
  /** The store's notice: the group's entries up to (index, term) are durable, or `error`. */
  | { readonly _tag: "Durable"; readonly g: GroupState; readonly index: number; readonly term: number; readonly error: unknown }
  | Proposal

const TICK: Event = { _tag: "Tick" }

/** Distinguishes engine incarnations in the same process (liveness epochs). */
let engineInstances = 0

const hashString = (s: string): number => {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

export const make = (
  config: RaftEngineConfig
): Effect.Effect<RaftEngineShape, never, RaftTransport | RaftLogStore | Scope.Scope> =>
  Effect.gen(function* () {
    const transport = yield* RaftTransport
    const logStore = yield* RaftLogStore
    const self = config.nodeId
    const tickMs = config.tickMs ?? 100
    const electionTicks = config.electionTicks ?? 10
    const heartbeatTicks = config.heartbeatTicks ?? 1
    const proposalTimeoutMs = config.proposalTimeoutMs ?? 3 * electionTicks * tickMs
    const snapshotEvery = config.snapshotEvery ?? 0
    const snapshotEveryBytes = config.snapshotEveryBytes ?? 0
    const keepEntries = config.snapshotKeepEntries ?? 64
    const seed = config.seed ?? (yield* Random.nextIntBetween(0, 2 ** 31))

    const quiescence = config.quiescence ?? true
    // A peer silent for this many ticks is considered down (the election timeout).
    const livenessTimeoutTicks = electionTicks
    // Liveness epoch: start time plus a per-process counter, so that a restart at the same instant differs.
    const epoch = (yield* Clock.currentTimeMillis) * 1024 + (engineInstances++ % 1024)

    const clock = yield* Effect.clock
    const commitLatency = new LatencyHistogram()
    const persistLatency = new LatencyHistogram()
    const sentByType: Partial<Record<MessageType, number>> = {}
    const countSent = (ms: ReadonlyArray<Message>): void => {
      for (const m of ms) sentByType[m.type] = (sentByType[m.type] ?? 0) + 1
    }

    const groups = new Map<GroupId, GroupState>()
    /** Groups that are ticked (all groups when quiescence is off). */
    const active = new Set<GroupState>()
    /** Groups touched since their last Ready (the only ones asked for `hasReady`). */
    const dirty = new Set<GroupState>()
    const peers = new Map<NodeId, PeerState>()
    let peersDirty = true
    /** Driver messages to send with the next cycle's messages. */
    let outbox: Array<Message> = []
    let tickNo = 0
    /**
     * The mailbox: a plain array plus the driver's wake-up callback (cheaper
     * than an Effect Queue, whose offer/take allocate per event). Events are
     * taken all at once by the driver.
     */
    let inbox: Array<Event> = []
    let driverWaiting: ((effect: Effect.Effect<void>) => void) | null = null
    /** Set by the finalizer: proposals made after it fail at once. */
    let stopped = false
    /** The driver stopped on a log store failure (the engine's shared store). */
    let storeFailed: string | null = null
    /**
     * Groups stopped because their own log store (`GroupOptions.logStore`)
     * failed to persist: the reason, by group. Other groups go on.
     */
    const failedGroups = new Map<GroupId, string>()
    /** Set by `proposeNow`: the driver has dirty groups to cycle even with an empty mailbox. */
    let kicked = false
    const kick = (): void => {
      if (kicked) return
      kicked = true
      if (driverWaiting !== null) {
        const wakeDriver = driverWaiting
        driverWaiting = null
        wakeDriver(Effect.void)
      }
    }
    const post = (ev: Event): void => {
      inbox.push(ev)
      if (driverWaiting !== null) {
        const wakeDriver = driverWaiting
        driverWaiting = null
        wakeDriver(Effect.void)
      }
    }
    const awaitEvents = Effect.async<void>((resume) => {
      if (inbox.length > 0 || kicked) resume(Effect.void)
      else driverWaiting = resume
    })
    /** Groups with pending proposals (scanned for timeouts). */
    const waiting = new Set<GroupState>()
    /** Groups with staged proposals (current batch of events). */
    const stagedGroups: Array<GroupState> = []
    const leadership = yield* PubSub.unbounded<LeadershipChange>()
    let readSeq = 0
    const figures = {
      cycles: 0,
      persistCalls: 0,
      ticks: 0,
      messagesSent: 0,
      messagesReceived: 0,
      dropped: 0,
      quiesces: 0,
      unquiesces: 0,
      quiescenceMessagesSent: 0,
      livenessSent: 0,
      livenessReceived: 0,
      durableNotices: 0
    }

    // -- quiescence ------------------------------------------------------------

    const isLive = (id: NodeId): boolean => id === self || peers.get(id)?.live === true

    const isMember = (g: GroupState, id: NodeId): boolean => {
      const cs = g.core.confState()
      return cs.voters.includes(id) || cs.learners.includes(id)
    }

    const recomputePeers = (): void => {
      peersDirty = false
      const want = new Set<NodeId>()
      for (const g of groups.values()) {
        const cs = g.core.confState()
        for (const id of cs.voters) if (id !== self) want.add(id)
        for (const id of cs.learners) if (id !== self) want.add(id)
      }
      for (const [id, p] of peers) {
        p.member = want.has(id)
        if (!p.member && !p.live) peers.delete(id)
      }
      for (const id of want) if (!peers.has(id)) peers.set(id, { lastHeard: -Infinity, live: false, member: true, epoch: null })
    }

    /**
     * Resumes ticking a quiesced group. `leaderLost`: a follower's leader is
     * down (or restarted), so its lease is over and it campaigns after its
     * randomized election timeout. Otherwise a follower asks its leader to
     * resume too (`MsgWake`): an active follower under a quiesced leader would
     * otherwise time out and campaign.
     */
    const wake = (g: GroupState, leaderLost: boolean): void => {
      if (!g.quiesced) return
      g.quiesced = false
      g.quiesceAfter = tickNo + 2
      active.add(g)
      dirty.add(g)
      figures.unquiesces++
      const c = g.core
      if (c.isLeader) {
        // check-quorum starts over; members the liveness layer vouches for count as active
        c.resumeTicking(0, isLive)
        return
      }
      c.resumeTicking(leaderLost ? electionTicks : 0)
      const lead = c.leader
      if (!leaderLost && lead !== null && lead !== self) {
        outbox.push({ type: "MsgWake", group: g.id, from: self, to: lead, term: c.term })
        figures.quiescenceMessagesSent++
      }
    }

    const canQuiesce = (g: GroupState): boolean =>
      g.quiesceAfter <= tickNo &&
      g.pending.size === 0 &&
      g.reads.size === 0 &&
      g.waitingReads.length === 0 &&
      g.core.quiescible(isLive) &&
      !g.core.hasReady()

    /** The leader quiesces `g` and tells the live members (the others learn by waking later). */
    const quiesceLeader = (g: GroupState): void => {
      const c = g.core
      g.quiesced = true
      active.delete(g)
      figures.quiesces++
      const index = c.lastIndex
      const logTerm = c.log.term(index) ?? 0
      const cs = c.confState()
      for (const to of [...cs.voters, ...cs.learners]) {
        if (to === self || !isLive(to)) continue
        outbox.push({ type: "MsgQuiesce", group: g.id, from: self, to, term: c.term, index, logTerm })
        figures.quiescenceMessagesSent++
      }
    }

    /** A follower accepts `MsgQuiesce` only if it follows that leader in that term and is caught up to its log. */
    const onQuiesce = (g: GroupState, m: Extract<Message, { type: "MsgQuiesce" }>): void => {
      if (g.quiesced) return
      const c = g.core
      if (
        quiescence &&
        c.role === "Follower" &&
        c.term === m.term &&
        c.leader === m.from &&
        c.lastIndex === m.index &&
        c.committed === m.index &&
        c.log.term(m.index) === m.logTerm &&
        g.pending.size === 0 &&
        g.reads.size === 0
      ) {
        g.quiesced = true
        active.delete(g)
        figures.quiesces++
      } else if (m.term >= c.term) {
        // not caught up (or quiescence off here): keep the leader awake
        outbox.push({ type: "MsgWake", group: g.id, from: self, to: m.from, term: c.term })
        figures.quiescenceMessagesSent++
      }
    }

    const onPeerDown = (id: NodeId): void => {
      for (const g of groups.values()) {
        if (!g.quiesced) continue
        if (g.core.isLeader) {
          if (isMember(g, id)) wake(g, false)
        } else if (g.core.leader === id) wake(g, true)
      }
    }

    const onPeerUp = (id: NodeId): void => {
      // a returning member may be behind: the groups this node leads with it resume heartbeats
      for (const g of groups.values()) if (g.quiesced && g.core.isLeader && isMember(g, id)) wake(g, false)
    }

    const livenessTick = (): void => {
      if (peersDirty) recomputePeers()
      if (tickNo % heartbeatTicks === 0) {
        for (const id of peers.keys()) {
          const m: MsgLiveness = { type: "MsgLiveness", group: "", from: self, to: id, term: 0, epoch }
          outbox.push(m)
          figures.livenessSent++
        }
      }
      // update every peer first, so that a woken leader seeds check-quorum with the current view
      const down: Array<NodeId> = []
      const up: Array<NodeId> = []
      for (const [id, p] of peers) {
        const live = tickNo - p.lastHeard < livenessTimeoutTicks
        if (p.live !== live) {
          p.live = live
          ;(live ? up : down).push(id)
        }
      }
      for (const id of down) {
        onPeerDown(id)
        if (!peers.get(id)!.member) peers.delete(id)
      }
      for (const id of up) onPeerUp(id)
    }

    const onInbound = (batch: InboundBatch): void => {
      let peer = peers.get(batch.from)
      if (peer === undefined && quiescence && batch.from !== self) {
        // Not (yet) a member of any group here, e.g. this node is a new learner that has not
        // applied its membership: exchange liveness with it, so that a leader that quiesced
        // without us sees us come up and catches us up.
        peer = { lastHeard: tickNo, live: false, member: false, epoch: null }
        peers.set(batch.from, peer)
      }
      if (peer !== undefined) peer.lastHeard = tickNo
      for (const m of batch.messages) {
        if (m.type === "MsgLiveness") {
          figures.livenessReceived++
          if (peer !== undefined) {
            const restarted = peer.epoch !== null && peer.epoch !== m.epoch
            peer.epoch = m.epoch
            // a restart faster than the liveness timeout: its groups lost their volatile state
            if (restarted) onPeerDown(batch.from)
          }
          continue
        }
        if (!isDriverMessage(m)) figures.messagesReceived++
        const g = groups.get(m.group)
        if (g === undefined) {
          figures.dropped++
          continue
        }
        if (m.type === "MsgQuiesce") {
          onQuiesce(g, m)
          continue
        }
        if (m.type === "MsgWake") {
          wake(g, false)
          continue
        }
        if (g.quiesced) {
          const c = g.core
          if (m.type === "MsgHeartbeatResp" && c.isLeader && m.term === c.term && m.context === 0) {
            // a late answer to the last heartbeat before quiescing: nothing to do unless it makes work
            c.step(m)
            if (c.hasReady()) wake(g, false)
            continue
          }
          // a campaign by the node this one follows means that leader is gone
          const fromLeaderCampaign = m.from === c.leader && (m.type === "MsgPreVote" || m.type === "MsgVote")
          wake(g, fromLeaderCampaign)
        }
        g.core.step(m)
        dirty.add(g)
      }
    }

    // -- the driver ----------------------------------------------------------

    const handle = (ev: Event): void => {
      switch (ev._tag) {
        case "Tick":
          figures.ticks++
          tickNo++
          if (quiescence) livenessTick()
          for (const g of active) {
            if (quiescence && g.core.isLeader && canQuiesce(g)) {
              quiesceLeader(g)
              continue
            }
            g.core.tick()
            dirty.add(g)
          }
          return
        case "Inbound":
          onInbound(ev.batch)
          return
        case "Run":
          ev.run()
          return
        case "Durable": {
          const g = ev.g
          if (groups.get(g.id) !== g) return
          if (ev.error !== undefined) {
            const cause = ev.error
            toStop.push([g, `sync: ${cause instanceof Error ? cause.message : String(cause)}`])
            return
          }
          figures.durableNotices++
          g.core.durableTo(ev.index, ev.term)
          dirty.add(g)
          return
        }
      }
    }

    /** Groups whose store reported a failed sync, stopped by the driver after the events. */
    const toStop: Array<readonly [GroupState, string]> = []

    /**
     * After a persist that did not wait for `g`'s entries: ask the store to
     * tell when they are durable; the notice is an event, so commits need
     * not wait for the driver's next sync.
     */
    const awaitDurable = (g: GroupState, last: Entry): void => {
      g.store.onDurable!(g.id, (error) => post({ _tag: "Durable", g, index: last.index, term: last.term, error }))
    }

    const completeReads = (g: GroupState): void => {
      if (g.waitingReads.length === 0) return
      const applied = g.core.applied
      const still: Array<{ index: number; context: string }> = []
      for (const rs of g.waitingReads) {
        if (rs.index <= applied) {
          const d = g.reads.get(rs.context)
          if (d !== undefined) {
            g.reads.delete(rs.context)
            Deferred.unsafeDone(d, Effect.succeed(rs.index))
          }
        } else still.push(rs)
      }
      g.waitingReads = still
    }

    let changes: Array<LeadershipChange> = []

    const applyEntry = (g: GroupState, e: Entry): void => {
      if (e.type === "ConfChange") peersDirty = true
      let result: unknown = undefined
      if (e.type === "Normal" && e.data.length > 0) {
        g.bytesSinceSnapshot += e.data.length
        result = g.sm.apply(e)
      }
      if (g.pending.size > 0) completeEntry(g, e, result)
    }

    /**
     * Applies the committed entries of `rd` that this node persisted in an
     * earlier cycle, before this cycle's persist: they are committed and
     * durable here, so waiting for the new entries' sync would only delay
     * them (under load every Ready carries new entries, and a commit would
     * otherwise wait for two syncs). Returns how many were applied; the rest
     * are applied after the persist, in order. Not with a snapshot (it is
     * restored first).
     */
    const applyDurableCommitted = (g: GroupState, rd: Ready): number => {
      if (rd.committedEntries.length === 0 || (rd.snapshot !== null && !isEmptySnapshot(rd.snapshot))) return 0
      const stable = g.core.log.lastStableIndex()
      let n = 0
      for (const e of rd.committedEntries) {
        if (e.index > stable) break
        applyEntry(g, e)
        n++
      }
      return n
    }

    const applyReady = (g: GroupState, rd: Ready, appliedEarly: number): void => {
      if (rd.snapshot !== null) peersDirty = true
      if (rd.softState !== null) {
        const ss = rd.softState
        if (ss.role === "Candidate") g.elections++
        if (ss.leader !== g.lastLeader) {
          g.leaderChanges++
          g.lastLeader = ss.leader
        }
        changes.push({ group: g.id, leader: ss.leader, term: g.core.term, role: ss.role })
      }
      if (rd.snapshot !== null && !isEmptySnapshot(rd.snapshot)) {
        g.sm.restore(rd.snapshot.data)
        g.snapshotsApplied++
        g.snapshotIndex = rd.snapshot.metadata.index
        g.bytesSinceSnapshot = 0
        // the store replaced its log with the snapshot: writeNow starts over from the unstable tail
        g.writtenIndex = 0
        g.writtenTerm = 0
        for (const [index, p] of g.pending) {
          if (index <= rd.snapshot.metadata.index) lose(g, p, index, "SnapshotSkipped")
        }
      }
      const committed = rd.committedEntries
      for (let i = appliedEarly; i < committed.length; i++) applyEntry(g, committed[i]!)
      for (const m of rd.messages) if (m.type === "MsgSnap" && m.offset === 0) g.snapshotsSent++
      for (const rs of rd.readStates) g.waitingReads.push(rs)
    }

    // -- proposals -----------------------------------------------------------

    const finish = (g: GroupState, p: Proposal): void => {
      p.done = true
      g.pending.delete(p.first)
      if (g.applying === p) g.applying = null
    }

    const lose = (g: GroupState, p: Proposal, index: number, reason: "Overwritten" | "SnapshotSkipped" | "EngineStopped"): void => {
      finish(g, p)
      if (reason === "Overwritten") g.proposalsFailed++
      p.resume(Exit.fail(new ProposalLost({ group: g.id, index, reason })))
    }

    const succeed = (g: GroupState, p: Proposal, value: unknown): void => {
      finish(g, p)
      commitLatency.record(clock.unsafeCurrentTimeMillis() - p.proposedAtMs)
      p.resume(Exit.succeed(value))
    }

    /**
     * Matches an applied entry with the pending proposals, by index and term: a
     * proposal whose entry was replaced by another term's entry is lost. O(1)
     * per entry: a batch in progress is `g.applying`, others are found by their
     * first index.
     */
    const completeEntry = (g: GroupState, e: Entry, result: unknown): void => {
      const a = g.applying
      if (a !== null) {
        if (e.index > a.first && e.index <= a.last) {
          if (e.term !== a.term) lose(g, a, e.index, "Overwritten")
          else {
            a.results![e.index - a.first] = result
            if (e.index === a.last) succeed(g, a, a.results)
          }
        } else g.applying = null
      }
      const p = g.pending.get(e.index)
      if (p === undefined) return
      if (p.term !== e.term) {
        lose(g, p, e.index, "Overwritten")
        return
      }
      if (!p.batch) {
        succeed(g, p, p.operation === "confChange" ? undefined : result)
        return
      }
      p.results![0] = result
      if (p.count === 1) succeed(g, p, p.results)
      else g.applying = p
    }

    /** Registers appended proposals; a pending proposal at the same index (an older term's) is lost. */
    const addPending = (g: GroupState, p: Proposal): void => {
      const old = g.pending.get(p.first)
      if (old !== undefined) lose(g, old, p.first, "Overwritten")
      g.pending.set(p.first, p)
      waiting.add(g)
    }

    const failProposal = (p: Proposal, error: ProposeError): void => {
      p.done = true
      p.resume(Exit.fail(error))
    }

    /** Queues a proposal event for its group; the group's proposals of one batch of events are appended together. */
    const stageProposal = (p: Proposal): void => {
      if (p.done) return
      const g = groups.get(p.group)
      if (g === undefined) return failProposal(p, new GroupNotFound({ group: p.group }))
      if (g.staged === null) {
        g.staged = [p]
        stagedGroups.push(g)
      } else g.staged.push(p)
    }

    const flushStaged = (): void => {
      for (const g of stagedGroups) {
        const ps = g.staged!
        g.staged = null
        appendProposals(g, ps)
      }
      stagedGroups.length = 0
    }

    /**
     * Appends the proposals (in mailbox order) with ONE core call, so that N
     * concurrent single proposals cost one append, one MsgApp per follower and
     * one Ready. A refusal fails them all; it depends only on the core's state,
     * which is the same for each of them, except a size limit: then they are
     * retried one by one.
     */
    const appendProposals = (g: GroupState, ps: ReadonlyArray<Proposal>): void => {
      if (groups.get(g.id) !== g) {
        for (const p of ps) failProposal(p, new GroupNotFound({ group: g.id }))
        return
      }
      wake(g, false)
      dirty.add(g)
      let datas: Uint8Array | ReadonlyArray<Uint8Array>
      if (ps.length === 1) datas = ps[0]!.data
      else {
        const all: Array<Uint8Array> = []
        for (const p of ps) {
          if (p.batch) for (const d of p.data as ReadonlyArray<Uint8Array>) all.push(d)
          else all.push(p.data as Uint8Array)
        }
        datas = all
      }
      const res = g.core.propose(datas)
      if (Either.isLeft(res)) {
        if (ps.length > 1 && res.left._tag === "ProposalDropped") {
          for (const p of ps) appendProposals(g, [p])
          return
        }
        for (const p of ps) {
          g.proposalsFailed += p.count
          failProposal(p, res.left)
        }
        return
      }
      const term = res.right.term
      let index = res.right.firstIndex
      for (const p of ps) {
        p.term = term
        p.first = index
        p.last = index + p.count - 1
        index += p.count
        if (p.batch) p.results = new Array<unknown>(p.count)
        g.proposals += p.count
        addPending(g, p)
      }
    }

    /**
     * Fails proposals older than `proposalTimeoutMs` with `RaftTimeout` (their
     * outcome is unknown). Runs on the ticker fiber, so it works even while
     * the driver waits for a slow persist. Pending proposals are in append
     * order, so the scan stops at the first one that is young enough.
     */
    const expireProposals = (): void => {
      const now = clock.unsafeCurrentTimeMillis()
      const expired = (p: Proposal) => now - p.proposedAtMs >= proposalTimeoutMs
      const timeoutOf = (p: Proposal) => new RaftTimeout({ group: p.group, operation: p.operation, afterMs: proposalTimeoutMs })
      for (const g of waiting) {
        for (const p of g.pending.values()) {
          if (!expired(p)) break
          finish(g, p)
          p.resume(Exit.fail(timeoutOf(p)))
        }
        if (g.pending.size === 0) waiting.delete(g)
      }
      // proposals the driver has not taken yet (it is busy, e.g. waiting for a slow persist)
      for (const ev of inbox) {
        if (ev._tag !== "Propose" || ev.done) continue
        if (!expired(ev)) break
        failProposal(ev, timeoutOf(ev))
      }
    }

    const sendOutbox = Effect.suspend(() => {
      if (outbox.length === 0) return Effect.void
      const out = outbox
      outbox = []
      countSent(out)
      return transport.send(out)
    })

    const isSoleVoter = (core: RaftCore): boolean => {
      const voters = core.confState().voters
      return voters.length === 1 && voters[0] === self
    }

    /**
     * A group whose only voter is this node campaigns at once (and wins: no
     * one else votes). The core may refuse to campaign while committed
     * membership changes are unapplied: then it retries after each Ready.
     */
    const selfElect = (g: GroupState): void => {
      const c = g.core
      if (c.isLeader || !isSoleVoter(c)) {
        g.selfElect = false
        return
      }
      c.campaign()
      dirty.add(g)
      if (c.isLeader) g.selfElect = false
    }

    /**
     * Failures: a store naming the groups that failed (`GroupsFailed`) stops
     * those groups; any other failure of a group store (not the engine's
     * shared one) stops the groups of the batch it was given; the engine's
     * shared store failing stops the driver.
     */
    const persistOne = (
      store: RaftLogStoreShape,
      its: ReadonlyArray<PersistItem>,
      failed: Map<GroupId, string>
    ): Effect.Effect<void, RaftLogStoreError | GroupsFailed> =>
      Effect.catchAll(store.persist(its), (e) => {
        if (e._tag === "GroupsFailed") {
          for (const [g, reason] of e.failures) failed.set(g, reason)
          return Effect.void
        }
        if (store === logStore) return Effect.fail(e)
        for (const it of its) failed.set(it.group, e.message)
        return Effect.void
      })

    const persistAll = (
      items: ReadonlyArray<readonly [RaftLogStoreShape, Array<PersistItem>]>,
      failed: Map<GroupId, string>
    ): Effect.Effect<void, RaftLogStoreError | GroupsFailed> => {
      figures.persistCalls += items.length
      if (items.length === 1) return persistOne(items[0]![0], items[0]![1], failed)
      return Effect.all(
        items.map(([store, its]) => persistOne(store, its, failed)),
        { concurrency: "unbounded", discard: true }
      )
    }

    /** Stops a group whose log failed: it leaves the engine, its proposals fail. */
    const stopGroup = (g: GroupState, reason: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (groups.get(g.id) === g) {
          groups.delete(g.id)
          active.delete(g)
          dirty.delete(g)
          peersDirty = true
          for (const [index, p] of g.pending) lose(g, p, index, "EngineStopped")
          waiting.delete(g)
        }
        failedGroups.set(g.id, reason)
        return Effect.logError(`raft group ${g.id} stopped: its log store failed: ${reason}`)
      })

    const cycle = Effect.gen(function* () {
      let work: Array<readonly [GroupState, Ready]> = []
      for (const g of dirty) if (groups.get(g.id) === g && g.core.hasReady()) work.push([g, g.core.ready()])
      dirty.clear()
      if (work.length === 0) return
      figures.cycles++
      // 0. committed entries already durable here are applied now, not after this cycle's sync
      let appliedEarly: Map<GroupState, number> | null = null
      for (const [g, rd] of work) {
        const n = applyDurableCommitted(g, rd)
        if (n > 0) (appliedEarly ??= new Map()).set(g, n)
      }
      // 1. persist: one call per distinct store (one sync per store for all its groups), concurrently
      let byStore: Array<readonly [RaftLogStoreShape, Array<PersistItem>]> | null = null
      for (const [g, rd] of work) {
        if (rd.entries.length > 0 || rd.hardState !== null || (rd.snapshot !== null && !isEmptySnapshot(rd.snapshot))) {
          // a leader whose store reports durability does not wait for its entries' sync here
          const byNotice = g.byNotice && g.core.isLeader && rd.entries.length > 0
          const item: PersistItem = {
            group: g.id,
            entries: rd.entries,
            hardState: rd.hardState,
            snapshot: rd.snapshot,
            ...(byNotice ? { waitForEntries: false } : {})
          }
          byStore ??= []
          let slot: Array<PersistItem> | undefined
          for (const [st, its] of byStore) if (st === g.store) slot = its
          if (slot === undefined) byStore.push([g.store, [item]])
          else slot.push(item)
        }
      }
      if (byStore !== null) {
        const persistStart = clock.unsafeCurrentTimeMillis()
        const failed = new Map<GroupId, string>()
        yield* persistAll(byStore, failed)
        persistLatency.record(clock.unsafeCurrentTimeMillis() - persistStart)
        if (failed.size > 0) {
          // nothing of a failed group's Ready is sent, applied or acknowledged
          for (const [g] of work) {
            const reason = failed.get(g.id)
            if (reason !== undefined) yield* stopGroup(g, reason)
          }
          work = work.filter(([g]) => !failed.has(g.id))
        }
      }
      // durability by notice: a leader's entries count for commit when the store's notice comes;
      // a follower's or candidate's were persisted waiting, so the core learns of them now
      for (const [g, rd] of work) {
        if (!g.byNotice || rd.entries.length === 0) continue
        const last = rd.entries[rd.entries.length - 1]!
        if (g.core.isLeader) awaitDurable(g, last)
        else g.core.durableTo(last.index, last.term)
      }
      // 2. send (one frame per peer)
      const out: Array<Message> = []
      for (const [, rd] of work) for (const m of rd.messages) out.push(m)
      figures.messagesSent += out.length
      // driver messages (quiescence, liveness) ride in the same frames
      for (const m of outbox) out.push(m)
      outbox = []
      countSent(out)
      if (out.length > 0) yield* transport.send(out)
      // 3. apply, 4. advance
      for (const [g, rd] of work) {
        applyReady(g, rd, appliedEarly?.get(g) ?? 0)
        g.core.advance(rd)
        completeReads(g)
        if (g.selfElect) selfElect(g)
        // advance may produce more work (e.g. a commit once the leader's own entries are stable)
        dirty.add(g)
      }
      if (changes.length > 0) {
        const c = changes
        changes = []
        yield* PubSub.publishAll(leadership, c)
      }
      // local snapshots / compaction (by applied entries or applied payload bytes)
      for (const [g] of work) {
        const applied = g.core.applied
        if (applied <= g.snapshotIndex) continue
        if (
          (g.snapshotEvery > 0 && applied - g.snapshotIndex >= g.snapshotEvery) ||
          (g.snapshotEveryBytes > 0 && g.bytesSinceSnapshot >= g.snapshotEveryBytes)
        ) {
          yield* g.store.compact(g.id, applied, g.core.confState(), g.sm.snapshot(), g.keepEntries)
          g.snapshotIndex = applied
          g.bytesSinceSnapshot = 0
          g.snapshotsCreated++
        }
      }
    })

    /** Takes every queued event; proposals of one group among them are appended with one core call. */
    const handleEvents = (events: ReadonlyArray<Event>): void => {
      for (const ev of events) {
        if (ev._tag === "Propose") {
          stageProposal(ev)
          continue
        }
        // keep the mailbox order between proposals and every other event
        if (stagedGroups.length > 0) flushStaged()
        handle(ev)
      }
      if (stagedGroups.length > 0) flushStaged()
    }

    const driver = Effect.gen(function* () {
      for (;;) {
        if (inbox.length === 0 && !kicked) yield* awaitEvents
        kicked = false
        const events = inbox
        inbox = []
        handleEvents(events)
        while (toStop.length > 0) {
          const [g, reason] = toStop.shift()!
          yield* stopGroup(g, reason)
        }
        // loop until no group has work (advance may produce more, e.g. commit after self-persist)
        for (let i = 0; i < 16; i++) {
          let any = false
          for (const g of dirty) {
            if (g.core.hasReady()) any = true
            else dirty.delete(g)
          }
          if (!any) break
          yield* cycle
        }
        yield* sendOutbox
      }
    })

    // A storage failure stops the node's Raft driver (like etcd, which panics): continuing
    // without durable writes would break the persist-before-send rule.
    yield* Effect.forkScoped(
      driver.pipe(
        Effect.tapError((e) =>
          Effect.zipRight(
            Effect.sync(() => {
              storeFailed ??= e.message
            }),
            Effect.logError("RaftEngine driver stopped: log store failure", e)
          )
        ),
        Effect.orDie
      )
    )
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(tickMs),
          Effect.sync(() => {
            expireProposals()
            post(TICK)
          })
        )
      )
    )
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.map(Queue.takeBetween(transport.inbound, 1, 100_000), (batches) => {
          for (const batch of batches) post({ _tag: "Inbound", batch })
        })
      )
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        stopped = true
        for (const g of groups.values()) {
          for (const [index, p] of g.pending) lose(g, p, index, "EngineStopped")
          for (const d of g.reads.values()) Deferred.unsafeDone(d, Effect.interrupt)
        }
        for (const ev of inbox) {
          if (ev._tag === "Propose" && !ev.done) {
            failProposal(ev, new ProposalLost({ group: ev.group, index: 0, reason: "EngineStopped" }))
          }
        }
        inbox = []
      })
    )

    /** Runs `f` on the driver (with exclusive access to the cores) and returns its result. */
    const onDriver = <A, E>(f: () => Either.Either<A, E>): Effect.Effect<A, E> =>
      Effect.async<A, E>((resume) => {
        post({
          _tag: "Run",
          run: () => {
            const r = f()
            resume(Either.isRight(r) ? Exit.succeed(r.right) : Exit.fail(r.left))
          }
        })
      })

    /** Runs `f` on a group (waking it first if it is quiesced). */
    const withGroup = <A, E>(group: GroupId, f: (g: GroupState) => Either.Either<A, E>) =>
      onDriver<A, E | GroupNotFound>(() => {
        const g = groups.get(group)
        if (g === undefined) return Either.left(new GroupNotFound({ group }))
        wake(g, false)
        dirty.add(g)
        return f(g)
      })

    const timeout = <A, E>(
      group: GroupId,
      operation: "propose" | "readIndex" | "confChange",
      eff: Effect.Effect<A, E>
    ): Effect.Effect<A, E | RaftTimeout> =>
      Effect.timeoutFail(eff, {
        duration: proposalTimeoutMs,
        onTimeout: () => new RaftTimeout({ group, operation, afterMs: proposalTimeoutMs })
      })

    const createGroup = (group: GroupId, options: GroupOptions): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (groups.has(group)) return
        const store = options.logStore ?? logStore
        const log = yield* Effect.orDie(
          store.open(group, { voters: [...options.voters], learners: [...(options.learners ?? [])] })
        )
        yield* onDriver(() => {
          if (groups.has(group)) return Either.right(undefined)
          const snap = log.snapshot()
          if (snap.metadata.index > 0) options.stateMachine.restore(snap.data)
          const core = new RaftCore({
            id: self,
            group,
            storage: log.storage,
            random: new Mulberry32((seed ^ hashString(group) ^ Math.imul(self + 1, 0x9e3779b1)) >>> 0),
            electionTick: electionTicks,
            heartbeatTick: heartbeatTicks,
            ...(config.preVote !== undefined ? { preVote: config.preVote } : {}),
            ...(config.checkQuorum !== undefined ? { checkQuorum: config.checkQuorum } : {}),
            ...(config.maxSizePerMsg !== undefined ? { maxSizePerMsg: config.maxSizePerMsg } : {}),
            ...(config.maxInflightMsgs !== undefined ? { maxInflightMsgs: config.maxInflightMsgs } : {}),
            ...(config.maxSnapshotChunkBytes !== undefined ? { maxSnapshotChunkBytes: config.maxSnapshotChunkBytes } : {}),
            durabilityByNotice: store.onDurable !== undefined
          })
          const g: GroupState = {
            id: group,
            core,
            log,
            sm: options.stateMachine,
            store,
            byNotice: store.onDurable !== undefined,
            snapshotEvery: options.snapshotEvery ?? snapshotEvery,
            snapshotEveryBytes: options.snapshotEveryBytes ?? snapshotEveryBytes,
            keepEntries: options.snapshotKeepEntries ?? keepEntries,
            bytesSinceSnapshot: 0,
            writtenIndex: 0,
            writtenTerm: 0,
            selfElect: isSoleVoter(core),
            pending: new Map(),
            applying: null,
            staged: null,
            reads: new Map(),
            waitingReads: [],
            snapshotIndex: snap.metadata.index,
            elections: 0,
            leaderChanges: 0,
            proposals: 0,
            proposalsFailed: 0,
            snapshotsSent: 0,
            snapshotsApplied: 0,
            snapshotsCreated: 0,
            lastLeader: null,
            quiesced: false,
            quiesceAfter: 0
          }
          groups.set(group, g)
          active.add(g)
          dirty.add(g)
          peersDirty = true
          // a single voter elects itself at once instead of waiting an election timeout
          if (g.selfElect) selfElect(g)
          return Either.right(undefined)
        })
      })

    const newProposal = (
      group: GroupId,
      data: Uint8Array | ReadonlyArray<Uint8Array>,
      count: number,
      batch: boolean,
      operation: "propose" | "confChange",
      resume: (exit: Exit.Exit<any, ProposeError>) => void
    ): Proposal => ({
      _tag: "Propose",
      group,
      data,
      count,
      batch,
      operation,
      resume,
      proposedAtMs: clock.unsafeCurrentTimeMillis(),
      term: 0,
      first: 0,
      last: 0,
      results: null,
      done: false
    })

    const engineStopped = (group: GroupId) => Exit.fail(new ProposalLost({ group, index: 0, reason: "EngineStopped" }))

    const propose = (group: GroupId, data: Uint8Array): Effect.Effect<unknown, ProposeError> =>
      Effect.async<unknown, ProposeError>((resume) => {
        if (stopped) resume(engineStopped(group))
        else post(newProposal(group, data, 1, false, "propose", resume))
      })

    const proposeBatch = (group: GroupId, datas: ReadonlyArray<Uint8Array>): Effect.Effect<ReadonlyArray<unknown>, ProposeError> =>
      datas.length === 0
        ? Effect.succeed([])
        : Effect.async<ReadonlyArray<unknown>, ProposeError>((resume) => {
            if (stopped) resume(engineStopped(group))
            else post(newProposal(group, datas, datas.length, true, "propose", resume))
          })

    /**
     * The leader's unstable entries not yet given to the store's `writeNow`
     * (e.g. a new leader's no-op), in index order. Within one leader term the
     * log only grows, so (writtenIndex, writtenTerm) says where to continue;
     * after a term change (or a snapshot) it starts over from the first
     * unstable entry: the store holds everything before it (persisted), and
     * skips entries it holds with the same term.
     */
    const unwritten = (g: GroupState): ReadonlyArray<Entry> => {
      const c = g.core
      const unstable = c.log.unstableEntries()
      const n = unstable.length
      if (n === 0) return unstable
      const offset = unstable[0]!.index
      const last = unstable[n - 1]!
      let from = offset
      if (g.writtenTerm === c.term && g.writtenIndex >= offset) {
        if (g.writtenIndex >= last.index) return []
        from = g.writtenIndex + 1
      }
      return unstable.slice(from - offset)
    }

    const proposeNow = (group: GroupId, datas: ReadonlyArray<Uint8Array>): ProposeNowResult => {
      if (stopped) return { _tag: "Refused", reason: "engine stopped" }
      if (storeFailed !== null) return { _tag: "Refused", reason: `raft driver stopped: ${storeFailed}` }
      const g = groups.get(group)
      if (g === undefined) {
        const failed = failedGroups.get(group)
        return {
          _tag: "Refused",
          reason: failed !== undefined ? `raft group ${group} stopped: ${failed}` : `raft group ${group} not hosted on this node`
        }
      }
      const woken = g.quiesced
      wake(g, false)
      const c = g.core
      if (!c.isLeader) {
        // a quiesced follower was woken (it tells its leader): let the driver send that
        if (woken) kick()
        return { _tag: "NotLeader", leader: c.leader, term: c.term }
      }
      if (datas.length === 0) return { _tag: "Proposed", term: c.term, firstIndex: c.lastIndex + 1, lastIndex: c.lastIndex }
      const writeNow = g.store.writeNow
      let res: Either.Either<{ readonly term: number; readonly firstIndex: number; readonly lastIndex: number }, RaftError>
      if (writeNow === undefined) {
        res = c.propose(datas)
      } else {
        // the store writes the entries (after any unwritten ones) before the core takes them: a
        // failed write leaves the core as it was (nothing proposed, nothing to undo)
        try {
          res = c.proposeWith(datas, (ents) => {
            const before = unwritten(g)
            writeNow(g.id, before.length === 0 ? ents : [...before, ...ents])
          })
        } catch (cause) {
          g.proposalsFailed += datas.length
          if (woken) kick()
          return { _tag: "Refused", reason: `log write failed: ${cause instanceof Error ? cause.message : String(cause)}` }
        }
      }
      if (Either.isLeft(res)) {
        g.proposalsFailed += datas.length
        if (woken) kick()
        const e = res.left
        if (e._tag === "NotLeader") return { _tag: "NotLeader", leader: e.leaderId, term: e.term }
        return { _tag: "Refused", reason: e.message }
      }
      const { firstIndex, lastIndex, term } = res.right
      if (writeNow !== undefined) {
        g.writtenIndex = lastIndex
        g.writtenTerm = term
      }
      g.proposals += datas.length
      dirty.add(g)
      kick()
      return { _tag: "Proposed", term, firstIndex, lastIndex }
    }

    const leaderOf = (group: GroupId): { readonly leader: NodeId | null; readonly term: number } | undefined => {
      const g = groups.get(group)
      return g === undefined ? undefined : { leader: g.core.leader, term: g.core.term }
    }

    const confChange = (group: GroupId, type: ConfChangeType, node: NodeId): Effect.Effect<void, ProposeError> =>
      Effect.async<void, ProposeError>((resume) => {
        if (stopped) return resume(engineStopped(group))
        const p = newProposal(group, new Uint8Array(0), 1, false, "confChange", resume)
        post({
          _tag: "Run",
          run: () => {
            const g = groups.get(group)
            if (g === undefined) return failProposal(p, new GroupNotFound({ group }))
            wake(g, false)
            dirty.add(g)
            const res = g.core.proposeConfChange({ type, nodeId: node })
            if (Either.isLeft(res)) return failProposal(p, res.left)
            p.term = res.right.term
            p.first = res.right.lastIndex
            p.last = res.right.lastIndex
            addPending(g, p)
          }
        })
      })

    const readIndex = (group: GroupId): Effect.Effect<number, RaftError | GroupNotFound | RaftTimeout> =>
      Effect.flatMap(
        withGroup(group, (g) => {
          const context = `${self}:${readSeq++}`
          const res = g.core.readIndex(context)
          if (Either.isLeft(res)) return Either.left(res.left)
          const d = Deferred.unsafeMake<number, RaftError | GroupNotFound | RaftTimeout>(FiberId.none)
          g.reads.set(context, d)
          return Either.right([d, context] as const)
        }),
        ([d, context]) =>
          timeout(group, "readIndex", Deferred.await(d)).pipe(
            Effect.onError(() =>
              Effect.sync(() => post({ _tag: "Run", run: () => groups.get(group)?.reads.delete(context) }))
            )
          )
      )

    const figuresOf = (g: GroupState): GroupFigures => {
      const st = g.core.status()
      return {
        group: g.id,
        term: st.hardState.term,
        role: st.softState.role,
        leader: st.softState.leader,
        commitIndex: st.hardState.commit,
        appliedIndex: st.applied,
        lastIndex: st.lastIndex,
        firstIndex: st.firstIndex,
        confState: st.confState,
        progress: st.progress,
        elections: g.elections,
        leaderChanges: g.leaderChanges,
        proposals: g.proposals,
        proposalsFailed: g.proposalsFailed,
        snapshotsSent: g.snapshotsSent,
        snapshotsApplied: g.snapshotsApplied,
        snapshotsCreated: g.snapshotsCreated,
        quiesced: g.quiesced
      }
    }

    const shape: RaftEngineShape = {
      nodeId: self,
      createGroup,
      removeGroup: (group) =>
        onDriver(() => {
          const g = groups.get(group)
          if (g !== undefined) {
            groups.delete(group)
            active.delete(g)
            dirty.delete(g)
            peersDirty = true
            for (const [index, p] of g.pending) lose(g, p, index, "EngineStopped")
            waiting.delete(g)
          }
          return Either.right(undefined)
        }),
      propose,
      proposeBatch,
      proposeNow,
      leaderOf,
      readIndex,
      transferLeadership: (group, to) => withGroup(group, (g) => g.core.transferLeader(to)),
      addLearner: (group, node) => confChange(group, "AddLearner", node),
      promote: (group, node) => confChange(group, "PromoteLearner", node),
      removeNode: (group, node) => confChange(group, "RemoveNode", node),
      campaign: (group) =>
        withGroup(group, (g) => {
          g.core.campaign()
          return Either.right(undefined)
        }),
      leadershipChanges: Stream.fromPubSub(leadership),
      figures: (group) =>
        Effect.suspend(() => {
          const g = groups.get(group)
          return g === undefined ? Effect.fail(new GroupNotFound({ group })) : Effect.succeed(figuresOf(g))
        }),
      allFigures: Effect.sync(() => Array.from(groups.values(), figuresOf)),
      engineFigures: Effect.sync(() => ({
        groups: groups.size,
        cycles: figures.cycles,
        persistCalls: figures.persistCalls,
        ticks: figures.ticks,
        messagesSent: figures.messagesSent,
        messagesReceived: figures.messagesReceived,
        messagesDroppedUnknownGroup: figures.dropped,
        quiescedGroups: groups.size - active.size,
        quiesces: figures.quiesces,
        unquiesces: figures.unquiesces,
        quiescenceMessagesSent: figures.quiescenceMessagesSent,
        livenessSent: figures.livenessSent,
        livenessReceived: figures.livenessReceived,
        durableNotices: figures.durableNotices,
        peers: peers.size,
        livePeers: Array.from(peers.values()).filter((p) => p.live).length,
        messagesSentByType: { ...sentByType },
        commitLatency: commitLatency.snapshot(),
        persistLatency: persistLatency.snapshot()
      })),
      logEntries: (group, lo, hi) =>
        Effect.suspend(() => {
          const g = groups.get(group)
          return g === undefined ? Effect.fail(new GroupNotFound({ group })) : Effect.sync(() => g.log.entries(lo, hi))
        })
    }
    return shape
  })

export const layer = (config: RaftEngineConfig): Layer.Layer<RaftEngine, never, RaftTransport | RaftLogStore> =>
  Layer.scoped(RaftEngine, make(config))

/** Convenience: a `NotLeader` check for callers that want the hint. */
export const isNotLeader = (e: unknown): e is NotLeader => e instanceof NotLeader

export type { Snapshot }
