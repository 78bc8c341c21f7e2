/**
 * The pure Raft state machine of one group (etcd-io/raft's `raft` + `RawNode`).
 *
 * No I/O, no clock, no global randomness: the driver feeds `tick()`,
 * `step(message)` and proposals in, takes a `Ready` batch out with `ready()`,
 * persists / sends / applies it, and acknowledges it with `advance(ready)`.
 * See docs/raft.md for the message flow.
 */
import { Either } from "effect"
import { RaftLog } from "./log.js"
import { Progress, ProgressTracker } from "./progress.js"
import type { RandomSource } from "./random.js"
import type { RaftStorage } from "./storage.js"
import { entrySize } from "./storage.js"
import {
  ConfigChangeInProgress,
  decodeConfChange,
  encodeConfChange,
  hardStateEquals,
  isDriverMessage,
  LeadershipTransferInProgress,
  NotLeader,
  ProposalDropped
} from "./types.js"
import type {
  ConfChange,
  ConfState,
  Entry,
  GroupId,
  HardState,
  Message,
  MsgApp,
  MsgAppResp,
  MsgHeartbeat,
  MsgHeartbeatResp,
  MsgSnap,
  MsgSnapResp,
  NodeId,
  ProposalEntry,
  RaftError,
  Ready,
  ReadState,
  Role,
  Snapshot,
  SoftState
} from "./types.js"

/** How ReadIndex confirms leadership. */
export type ReadOnlyOption =
  /** Confirm with a heartbeat round to a quorum (linearizable, default). */
  | "Safe"
  /**
   * Trust the leader lease (requires `checkQuorum`): answer at once. Correct
   * only if clocks do not drift more than the election timeout allows. Opt-in.
   */
  | "LeaseBased"

export interface RaftConfig {
  /** This node's id; must be a voter or learner in the initial membership to take part. */
  readonly id: NodeId
  /** Group id stamped on every outgoing message. Default "". */
  readonly group?: GroupId
  readonly storage: RaftStorage
  /** Jitter for randomized election timeouts. */
  readonly random: RandomSource
  /** Ticks without hearing from a leader before campaigning (randomized in [e, 2e)). Default 10. */
  readonly electionTick?: number
  /** Ticks between leader heartbeats. Default 1. */
  readonly heartbeatTick?: number
  /** Last index already applied by the state machine (on restart). Default: the snapshot index. */
  readonly applied?: number
  /** Max bytes of entries per MsgApp (at least one entry is always sent). Default 1 MiB. */
  readonly maxSizePerMsg?: number
  /** Max MsgApps in flight per follower in Replicate state. Default 256. */
  readonly maxInflightMsgs?: number
  /** Max bytes of MsgApps in flight per follower (0 = no limit). Default 0. */
  readonly maxInflightBytes?: number
  /** Max bytes of uncommitted proposals on the leader (0 = no limit). Default 0. */
  readonly maxUncommittedEntriesSize?: number
  /** Max bytes of committed entries handed out per Ready. Default 64 MiB. */
  readonly maxCommittedSizePerReady?: number
  /** Snapshot chunk size for InstallSnapshot. Default 1 MiB. */
  readonly maxSnapshotChunkBytes?: number
  /** Leader steps down without a quorum of recent contact; voters honour a leader lease. Default true. */
  readonly checkQuorum?: boolean
  /** Run a pre-vote round before incrementing the term. Default true. */
  readonly preVote?: boolean
  /** Default "Safe". */
  readonly readOnlyOption?: ReadOnlyOption
  /** Followers forward proposals to the leader (MsgProp) instead of failing with NotLeader. Default false. */
  readonly forwardProposals?: boolean
  /**
   * Durability by notice: the leader counts its own log for commit only up
   * to what `durableTo` reported, not everything `advance` marks stable. For
   * a driver whose store writes a leader's entries without waiting for their
   * sync and reports the sync later (RaftEngine with a store that has
   * `onDurable`). What the storage holds at start is durable.
   */
  readonly durabilityByNotice?: boolean
}

/** Where a proposal landed. `forwardedTo` is set (and indexes are 0) when a follower forwarded it. */
export interface Proposed {
  readonly term: number
  readonly firstIndex: number
  readonly lastIndex: number
  readonly forwardedTo: NodeId | null
}

export interface ProgressStatus {
  readonly match: number
  readonly next: number
  readonly state: Progress["state"]
  readonly isLearner: boolean
  readonly inflight: number
  readonly recentActive: boolean
}

export interface RaftStatus {
  readonly id: NodeId
  readonly group: GroupId
  readonly hardState: HardState
  readonly softState: SoftState
  readonly applied: number
  readonly lastIndex: number
  readonly firstIndex: number
  readonly confState: ConfState
  readonly leadTransferee: NodeId | null
  /** Leader only: per-node progress. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>
}

type Outgoing<M> = M extends Message ? Omit<M, "group" | "from" | "term"> & { readonly term?: number } : never

interface PendingRead {
  readonly from: NodeId
  readonly context: string
  readonly index: number
  readonly seq: number
  readonly acks: Set<NodeId>
}

interface SnapshotReceive {
  readonly from: NodeId
  readonly index: number
  readonly term: number
  readonly chunks: Array<Uint8Array>
  received: number
}

const NO_LIMIT = Number.MAX_SAFE_INTEGER

export class RaftCore {
  readonly id: NodeId
  readonly group: GroupId
  readonly log: RaftLog

  private termValue = 0
  private voteValue: NodeId | null = null
  private lead: NodeId | null = null
  private roleValue: Role = "Follower"
  private readonly tracker: ProgressTracker

  private electionElapsed = 0
  private heartbeatElapsed = 0
  private randomizedElectionTimeout = 0
  private leadTransferee: NodeId | null = null
  private pendingConfIndex = 0
  private uncommittedSize = 0

  private msgs: Array<Message> = []
  private readStatesOut: Array<ReadState> = []
  private pendingReads: Array<PendingRead> = []
  private readsBeforeCommit: Array<{ from: NodeId; context: string }> = []
  private readSeq = 0
  private snapRecv: SnapshotReceive | null = null

  private prevHardState: HardState
  private prevSoftState: SoftState
  private readyOutstanding = false

  private readonly electionTimeout: number
  private readonly heartbeatTimeout: number
  private readonly maxSizePerMsg: number
  private readonly maxUncommittedSize: number
  private readonly maxChunk: number
  private readonly checkQuorum: boolean
  private readonly preVote: boolean
  private readonly readOnlyOption: ReadOnlyOption
  private readonly forwardProposals: boolean
  private readonly durabilityByNotice: boolean
  /** Durability by notice: the last entry (index, term) reported durable. */
  private noticedIndex = 0
  private noticedTerm = 0
  private readonly random: RandomSource

  constructor(config: RaftConfig) {
    this.id = config.id
    this.group = config.group ?? ""
    this.random = config.random
    this.electionTimeout = config.electionTick ?? 10
    this.heartbeatTimeout = config.heartbeatTick ?? 1
    if (this.heartbeatTimeout <= 0 || this.electionTimeout <= this.heartbeatTimeout) {
      throw new Error("raft: electionTick must be greater than heartbeatTick > 0")
    }
    this.maxSizePerMsg = config.maxSizePerMsg ?? 1024 * 1024
    this.maxUncommittedSize = config.maxUncommittedEntriesSize ?? 0
    this.maxChunk = Math.max(1, config.maxSnapshotChunkBytes ?? 1024 * 1024)
    this.checkQuorum = config.checkQuorum ?? true
    this.preVote = config.preVote ?? true
    this.readOnlyOption = config.readOnlyOption ?? "Safe"
    if (this.readOnlyOption === "LeaseBased" && !this.checkQuorum) {
      throw new Error("raft: LeaseBased reads require checkQuorum")
    }
    this.forwardProposals = config.forwardProposals ?? false
    this.durabilityByNotice = config.durabilityByNotice ?? false
    this.log = new RaftLog(config.storage, config.maxCommittedSizePerReady ?? 64 * 1024 * 1024)
    this.noticedIndex = this.log.lastIndex()
    this.noticedTerm = this.log.lastTerm()
    this.tracker = new ProgressTracker(config.maxInflightMsgs ?? 256, config.maxInflightBytes ?? 0)

    const { confState, hardState } = config.storage.initialState()
    this.tracker.setConf(confState, this.log.lastIndex() + 1)
    if (hardState.term !== 0 || hardState.commit !== 0 || hardState.vote !== null) {
      if (hardState.commit < this.log.committed || hardState.commit > this.log.lastIndex()) {
        throw new Error(`raft: hard state commit ${hardState.commit} out of range`)
      }
      this.log.committed = hardState.commit
      this.termValue = hardState.term
      this.voteValue = hardState.vote
    }
    // The application state starts at the latest snapshot unless told otherwise.
    const snapIndex = config.storage.snapshot()?.metadata.index ?? 0
    if (snapIndex > this.log.committed && snapIndex <= this.log.lastIndex()) this.log.committed = snapIndex
    const applied = config.applied ?? snapIndex
    if (applied > this.log.applied) this.log.appliedTo(Math.min(applied, this.log.committed))
    this.becomeFollower(this.termValue, null)
    this.prevHardState = this.hardState()
    this.prevSoftState = this.softState()
  }

  // -------------------------------------------------------------------------
  // Accessors
  // -------------------------------------------------------------------------

  get term(): number {
    return this.termValue
  }
  get vote(): NodeId | null {
    return this.voteValue
  }
  get leader(): NodeId | null {
    return this.lead
  }
  get role(): Role {
    return this.roleValue
  }
  get isLeader(): boolean {
    return this.roleValue === "Leader"
  }
  get committed(): number {
    return this.log.committed
  }
  get applied(): number {
    return this.log.applied
  }
  get lastIndex(): number {
    return this.log.lastIndex()
  }
  /** Membership in force (as of the applied index): use it when creating snapshots. */
  confState(): ConfState {
    return this.tracker.confState()
  }
  hardState(): HardState {
    return { term: this.termValue, vote: this.voteValue, commit: this.log.committed }
  }
  softState(): SoftState {
    return { leader: this.lead, role: this.roleValue }
  }

  status(): RaftStatus {
    const progress = new Map<NodeId, ProgressStatus>()
    if (this.roleValue === "Leader") {
      for (const [id, pr] of this.tracker.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          inflight: pr.inflights.count(),
          recentActive: pr.recentActive
        })
      }
    }
    return {
      id: this.id,
      group: this.group,
      hardState: this.hardState(),
      softState: this.softState(),
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      confState: this.confState(),
      leadTransferee: this.leadTransferee,
      progress
    }
  }

  // -------------------------------------------------------------------------
  // Inputs
  // -------------------------------------------------------------------------

  /** One logical clock tick (the driver maps wall time to ticks). */
  tick(): void {
    if (this.roleValue === "Leader") this.tickHeartbeat()
    else this.tickElection()
  }

  /** Start an election now (pre-vote first when enabled). */
  campaign(): void {
    this.hup(false)
  }

  /** Propose one or more payloads as Normal entries, appended as one batch. */
  propose(data: Uint8Array | ReadonlyArray<Uint8Array>): Either.Either<Proposed, RaftError> {
    const list = data instanceof Uint8Array ? [data] : data
    return this.proposeEntries(list.map((d) => ({ type: "Normal" as const, data: d })))
  }

  /** Propose a batch of entries (Normal / Noop). Use `proposeConfChange` for membership. */
  proposeEntries(entries: ReadonlyArray<ProposalEntry>): Either.Either<Proposed, RaftError> {
    if (entries.some((e) => e.type === "ConfChange")) {
      return Either.left(new ProposalDropped({ group: this.group, reason: "use proposeConfChange for ConfChange entries" }))
    }
    if (this.roleValue !== "Leader") return this.forwardOrNotLeader(entries)
    const err = this.checkProposable(entries)
    if (err !== undefined) return Either.left(err)
    return Either.right(this.appendProposal(entries))
  }

  /**
   * `propose` on the leader, with `beforeAppend` called with the exact entries
   * (index, term) once every check passed and before they enter the log. If
   * it throws (the caller's own write of them failed), nothing is appended,
   * nothing is sent, and the exception propagates. Used by a leader that
   * writes its entries synchronously at propose time (RaftEngine.proposeNow).
   */
  proposeWith(
    data: ReadonlyArray<Uint8Array>,
    beforeAppend: (entries: ReadonlyArray<Entry>) => void
  ): Either.Either<Proposed, RaftError> {
    const entries = data.map((d) => ({ type: "Normal" as const, data: d }))
    if (this.roleValue !== "Leader") return this.forwardOrNotLeader(entries)
    const err = this.checkProposable(entries)
    if (err !== undefined) return Either.left(err)
    const li = this.log.lastIndex()
    const ents: Array<Entry> = entries.map((e, i) => ({ term: this.termValue, index: li + 1 + i, type: e.type, data: e.data }))
    beforeAppend(ents)
    const first = li + 1
    this.log.append(ents)
    for (const e of entries) this.uncommittedSize += e.data.length
    this.bcastAppend()
    return Either.right({ term: this.termValue, firstIndex: first, lastIndex: this.log.lastIndex(), forwardedTo: null })
  }

  /** Propose a membership change. One at a time; it takes effect once committed and applied. */
  proposeConfChange(cc: ConfChange): Either.Either<Proposed, RaftError> {
    if (this.roleValue !== "Leader") return this.forwardOrNotLeader([{ type: "ConfChange", data: encodeConfChange(cc) }])
    const entry: ProposalEntry = { type: "ConfChange", data: encodeConfChange(cc, this.confAfter(cc)) }
    const err = this.checkProposable([entry])
    if (err !== undefined) return Either.left(err)
    if (this.pendingConfIndex > this.log.applied) {
      return Either.left(new ConfigChangeInProgress({ group: this.group, pendingIndex: this.pendingConfIndex }))
    }
    const invalid = this.validateConfChange(cc)
    if (invalid !== undefined) return Either.left(new ProposalDropped({ group: this.group, reason: invalid }))
    const res = this.appendProposal([entry])
    this.pendingConfIndex = res.lastIndex
    return Either.right(res)
  }

  /** Hand leadership to `to` (leader), or forward the request to the leader (follower). */
  transferLeader(to: NodeId): Either.Either<void, RaftError> {
    if (this.roleValue !== "Leader") {
      if (this.lead === null) return Either.left(this.notLeader())
      this.send({ type: "MsgTransferLeader", to: this.lead, transferee: to })
      return Either.right(undefined)
    }
    return this.handleTransferLeader(to)
  }

  /**
   * Request a linearizable read. When confirmed, a `ReadState` with this
   * `context` appears in a later Ready (on this node); the read may be served
   * once `applied >= readState.index`.
   */
  readIndex(context: string): Either.Either<void, RaftError> {
    if (this.roleValue === "Leader") {
      this.handleReadIndex(this.id, context)
      return Either.right(undefined)
    }
    if (this.lead === null) return Either.left(this.notLeader())
    this.send({ type: "MsgReadIndex", to: this.lead, context })
    return Either.right(undefined)
  }

  /** The transport could not reach `id`: stop pipelining to it and probe. */
  reportUnreachable(id: NodeId): void {
    if (this.roleValue !== "Leader") return
    const pr = this.tracker.progress.get(id)
    if (pr !== undefined && pr.state === "Replicate") pr.becomeProbe()
  }

  /** The driver gave up a snapshot transfer to `id` (e.g. streamed out of band and failed). */
  reportSnapshotFailure(id: NodeId): void {
    if (this.roleValue !== "Leader") return
    const pr = this.tracker.progress.get(id)
    if (pr !== undefined && pr.state === "Snapshot") {
      pr.pendingSnapshot = 0
      pr.becomeProbe()
      pr.msgAppFlowPaused = true
    }
  }

  /** Feed one message received from the network. Messages for another group or node are ignored. */
  step(m: Message): void {
    if (m.group !== this.group || m.to !== this.id || isDriverMessage(m)) return
    if (m.term > this.termValue) {
      if (m.type === "MsgVote" || m.type === "MsgPreVote") {
        const inLease = this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTimeout
        // A node that recently heard from a leader ignores disruptive campaigns
        // (unless the leader itself asked for it via MsgTimeoutNow).
        if (!m.transfer && inLease) return
      }
      if (m.type === "MsgPreVote") {
        // Never change term on a pre-vote.
      } else if (m.type === "MsgPreVoteResp" && !m.reject) {
        // A granted pre-vote carries the future term; our term moves when we win.
      } else if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap") {
        this.becomeFollower(m.term, m.from)
      } else {
        this.becomeFollower(m.term, null)
      }
    } else if (m.term < this.termValue) {
      if ((this.checkQuorum || this.preVote) && (m.type === "MsgHeartbeat" || m.type === "MsgApp")) {
        // A stale leader (e.g. after a partition healed) learns the new term and steps down.
        this.send({ type: "MsgAppResp", to: m.from, index: 0, reject: false, rejectHint: 0, logTerm: 0 })
      } else if (m.type === "MsgPreVote") {
        this.send({ type: "MsgPreVoteResp", to: m.from, reject: true })
      }
      return
    }

    if (m.type === "MsgVote" || m.type === "MsgPreVote") {
      const canVote =
        this.voteValue === m.from ||
        (this.voteValue === null && this.lead === null) ||
        (m.type === "MsgPreVote" && m.term > this.termValue)
      const respType = m.type === "MsgVote" ? "MsgVoteResp" : "MsgPreVoteResp"
      if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
        this.send({ type: respType, to: m.from, term: m.term, reject: false })
        if (m.type === "MsgVote") {
          this.electionElapsed = 0
          this.voteValue = m.from
        }
      } else {
        this.send({ type: respType, to: m.from, reject: true })
      }
      return
    }

    switch (this.roleValue) {
      case "Leader":
        return this.stepLeader(m)
      case "Candidate":
      case "PreCandidate":
        return this.stepCandidate(m)
      case "Follower":
        return this.stepFollower(m)
    }
  }

  // -------------------------------------------------------------------------
  // Quiescence support (for drivers that stop ticking idle groups)
  // -------------------------------------------------------------------------

  /**
   * True when this node leads a fully idle group that a driver may stop
   * ticking: nothing unpersisted, unapplied or unsent, commit == applied ==
   * last index (so the no-op of this term is committed), no ReadIndex round,
   * leadership transfer or membership change in progress, and every member
   * the driver considers live (`isLive`) is caught up (match == last index,
   * nothing in flight, no snapshot transfer) and was recently active. Members
   * that are not live are skipped, but the live caught-up voters (with this
   * node) must form a quorum.
   */
  quiescible(isLive: (id: NodeId) => boolean): boolean {
    if (this.roleValue !== "Leader" || this.readyOutstanding) return false
    if (this.leadTransferee !== null || this.msgs.length > 0 || this.readStatesOut.length > 0) return false
    if (this.pendingReads.length > 0 || this.readsBeforeCommit.length > 0) return false
    const last = this.log.lastIndex()
    if (this.log.committed !== last || this.log.applied !== last || this.log.lastStableIndex() !== last) return false
    if (this.log.unstable.snapshot !== null || this.pendingConfIndex > this.log.applied) return false
    const caughtUp = new Set<NodeId>()
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) {
        if (pr.match !== last) return false
        caughtUp.add(id)
        continue
      }
      if (!isLive(id)) continue
      if (pr.match !== last || pr.state === "Snapshot" || pr.inflights.count() > 0 || !pr.recentActive) return false
      caughtUp.add(id)
    }
    return this.tracker.hasQuorum(caughtUp)
  }

  /**
   * Restarts the tick counters of a group that a driver stopped ticking and
   * now ticks again. `electionElapsed` is how many ticks ago the leader was
   * last known to be alive (0: just now; `electionTick` or more: the leader
   * lease has expired and a follower campaigns after its randomized timeout
   * runs out). On a leader, the check-quorum window starts over and
   * `recentActive(id)` seeds each member's activity flag, which the next
   * check-quorum (one election timeout later) reads.
   */
  resumeTicking(electionElapsed: number, recentActive?: (id: NodeId) => boolean): void {
    this.heartbeatElapsed = 0
    if (this.roleValue === "Leader") {
      this.electionElapsed = 0
      if (recentActive !== undefined) {
        for (const [id, pr] of this.tracker.progress) pr.recentActive = id === this.id || recentActive(id)
      }
      return
    }
    this.electionElapsed = Math.max(0, Math.floor(electionElapsed))
  }

  // -------------------------------------------------------------------------
  // Ready / advance
  // -------------------------------------------------------------------------

  hasReady(): boolean {
    if (this.readyOutstanding) return false
    if (this.msgs.length > 0 || this.readStatesOut.length > 0) return true
    if (this.log.unstableEntries().length > 0 || this.log.unstable.snapshot !== null) return true
    if (!hardStateEquals(this.hardState(), this.prevHardState)) return true
    const ss = this.softState()
    if (ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role) return true
    return this.log.hasNextCommittedEntries()
  }

  /** Take the pending work. Call `advance(ready)` before the next `ready()`. */
  ready(): Ready {
    if (this.readyOutstanding) throw new Error("raft: ready() called before advance() of the previous Ready")
    const hs = this.hardState()
    const ss = this.softState()
    const hsChanged = !hardStateEquals(hs, this.prevHardState)
    const ssChanged = ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role
    const entries = [...this.log.unstableEntries()]
    const rd: Ready = {
      softState: ssChanged ? ss : null,
      hardState: hsChanged ? hs : null,
      entries,
      snapshot: this.log.unstable.snapshot,
      committedEntries: this.log.nextCommittedEntries(),
      messages: this.msgs,
      readStates: this.readStatesOut,
      mustSync:
        entries.length > 0 || hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote
    }
    this.msgs = []
    this.readStatesOut = []
    this.prevHardState = hs
    this.prevSoftState = ss
    this.readyOutstanding = true
    return rd
  }

  /** Acknowledge that `rd` was persisted, sent and applied. */
  advance(rd: Ready): void {
    this.readyOutstanding = false
    if (rd.snapshot !== null) {
      this.log.stableSnapTo(rd.snapshot.metadata.index)
      if (rd.snapshot.metadata.index > this.log.applied && rd.snapshot.metadata.index <= this.log.committed) {
        this.log.appliedTo(rd.snapshot.metadata.index)
      }
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!
      this.log.stableTo(last.index, last.term)
    }
    if (rd.committedEntries.length > 0) {
      const last = rd.committedEntries[rd.committedEntries.length - 1]!
      if (last.index > this.log.applied) this.log.appliedTo(last.index)
      for (const e of rd.committedEntries) {
        if (this.roleValue === "Leader") this.uncommittedSize = Math.max(0, this.uncommittedSize - payloadSize(e))
        if (e.type === "ConfChange") {
          const cc = decodeConfChange(e.data)
          if (cc !== undefined) this.applyConfChange(cc.confState ?? this.confAfter(cc.change))
        }
      }
    }
    this.updateSelfProgress()
  }

  /**
   * Durability by notice (`durabilityByNotice`): entries up to `index`, of
   * `term`, are durable on this node. Ignored if that entry is no longer in
   * the log with that term. The leader's own progress (and so the commit
   * index) moves at once; the driver asks for the next Ready to apply.
   */
  durableTo(index: number, term: number): void {
    if (this.log.term(index) !== term || (index < this.noticedIndex && this.noticedValid())) return
    this.noticedIndex = index
    this.noticedTerm = term
    this.updateSelfProgress()
  }

  /** What the leader counts of its own log for commit: what it persisted (by notice: what was reported durable). */
  private selfDurableIndex(): number {
    const stable = this.log.lastStableIndex()
    if (!this.durabilityByNotice) return stable
    return this.noticedValid() ? Math.min(stable, this.noticedIndex) : 0
  }

  /** The noticed entry is still in the log with its term (a compacted one was committed, hence durable). */
  private noticedValid(): boolean {
    const i = this.noticedIndex
    return i < this.log.firstIndex() - 1 || this.log.term(i) === this.noticedTerm
  }

  private updateSelfProgress(): void {
    if (this.roleValue !== "Leader") return
    // The leader counts its own log for commit only once it is persisted.
    const self = this.tracker.progress.get(this.id)
    if (self !== undefined && self.maybeUpdate(this.selfDurableIndex())) {
      if (this.maybeCommit()) this.bcastAppend()
    }
  }

  // -------------------------------------------------------------------------
  // Role transitions
  // -------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.termValue !== term) {
      this.termValue = term
      this.voteValue = null
    }
    this.lead = null
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.randomizedElectionTimeout = this.electionTimeout + this.random.nextInt(this.electionTimeout)
    this.leadTransferee = null
    this.tracker.resetVotes()
    const next = this.log.lastIndex() + 1
    for (const [id, old] of this.tracker.progress) {
      const pr = new Progress(next, this.tracker.maxInflight, this.tracker.maxInflightBytes, old.isLearner)
      if (id === this.id) pr.match = this.selfDurableIndex()
      this.tracker.progress.set(id, pr)
    }
    this.pendingConfIndex = 0
    this.uncommittedSize = 0
    this.pendingReads = []
    this.readsBeforeCommit = []
  }

  private becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term)
    this.lead = lead
    this.roleValue = "Follower"
  }

  private becomeCandidate(): void {
    this.reset(this.termValue + 1)
    this.voteValue = this.id
    this.roleValue = "Candidate"
  }

  private becomePreCandidate(): void {
    this.tracker.resetVotes()
    this.lead = null
    this.roleValue = "PreCandidate"
  }

  private becomeLeader(): void {
    this.reset(this.termValue)
    this.lead = this.id
    this.roleValue = "Leader"
    const self = this.tracker.progress.get(this.id)
    if (self !== undefined) self.becomeReplicate()
    this.appendEntries([{ type: "Noop", data: new Uint8Array(0) }])
    // Conf changes are refused until everything up to our no-op is applied.
    this.pendingConfIndex = this.log.lastIndex()
  }

  private promotable(): boolean {
    return this.tracker.voters.has(this.id)
  }

  private hup(transfer: boolean): void {
    if (this.roleValue === "Leader") return
    if (!this.promotable()) return
    if (this.hasUnappliedConfChanges()) return
    if (this.preVote && !transfer) this.campaignRound("Pre", false)
    else this.campaignRound("Election", transfer)
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.committed <= this.log.applied) return false
    const ents = this.log.slice(Math.max(this.log.applied + 1, this.log.firstIndex()), this.log.committed + 1, NO_LIMIT)
    return ents !== undefined && ents.some((e) => e.type === "ConfChange")
  }

  private campaignRound(kind: "Pre" | "Election", transfer: boolean): void {
    let term: number
    if (kind === "Pre") {
      this.becomePreCandidate()
      term = this.termValue + 1
    } else {
      this.becomeCandidate()
      term = this.termValue
    }
    this.tracker.recordVote(this.id, true)
    if (this.tracker.tallyVotes().result === "Won") {
      if (kind === "Pre") this.campaignRound("Election", transfer)
      else {
        this.becomeLeader()
        this.bcastAppend() // learners, if any
      }
      return
    }
    const index = this.log.lastIndex()
    const logTerm = this.log.lastTerm()
    for (const id of [...this.tracker.voters].sort((a, b) => a - b)) {
      if (id === this.id) continue
      this.send({ type: kind === "Pre" ? "MsgPreVote" : "MsgVote", to: id, term, index, logTerm, transfer })
    }
  }

  // -------------------------------------------------------------------------
  // Ticks
  // -------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0
      this.hup(false)
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0
      if (this.checkQuorum) {
        if (!this.tracker.quorumActive(this.id)) {
          this.becomeFollower(this.termValue, null)
          return
        }
        for (const [id, pr] of this.tracker.progress) pr.recentActive = id === this.id
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = null
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0
      this.bcastHeartbeat()
    }
  }

  // -------------------------------------------------------------------------
  // Step per role
  // -------------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "MsgProp":
        if (this.lead !== null && this.forwardProposals) this.send({ type: "MsgProp", to: this.lead, entries: m.entries })
        return
      case "MsgApp":
        this.electionElapsed = 0
        this.lead = m.from
        return this.handleAppend(m)
      case "MsgHeartbeat":
        this.electionElapsed = 0
        this.lead = m.from
        return this.handleHeartbeat(m)
      case "MsgSnap":
        this.electionElapsed = 0
        this.lead = m.from
        return this.handleSnapshot(m)
      case "MsgTransferLeader":
        if (this.lead !== null) this.send({ type: "MsgTransferLeader", to: this.lead, transferee: m.transferee })
        return
      case "MsgTimeoutNow":
        return this.hup(true)
      case "MsgReadIndex":
        if (this.lead !== null) this.send({ type: "MsgReadIndex", to: this.lead, context: m.context })
        return
      case "MsgReadIndexResp":
        this.readStatesOut.push({ index: m.index, context: m.context })
        return
      default:
        return
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "MsgApp":
      case "MsgHeartbeat":
      case "MsgSnap":
        // A leader exists in our term: fall back to follower.
        this.becomeFollower(m.term, m.from)
        return this.stepFollower(m)
      case "MsgVoteResp":
      case "MsgPreVoteResp": {
        if ((m.type === "MsgVoteResp") !== (this.roleValue === "Candidate")) return
        this.tracker.recordVote(m.from, !m.reject)
        const { result } = this.tracker.tallyVotes()
        if (result === "Won") {
          if (this.roleValue === "PreCandidate") this.campaignRound("Election", false)
          else {
            this.becomeLeader()
            this.bcastAppend()
          }
        } else if (result === "Lost") {
          this.becomeFollower(this.termValue, null)
        }
        return
      }
      default:
        return
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "MsgProp": {
        const ents: Array<ProposalEntry> = []
        for (const e of m.entries) {
          if (e.type !== "ConfChange") ents.push(e)
          else {
            const cc = decodeConfChange(e.data)?.change
            if (cc !== undefined && this.pendingConfIndex <= this.log.applied && this.validateConfChange(cc) === undefined) {
              ents.push({ type: "ConfChange", data: encodeConfChange(cc, this.confAfter(cc)) })
              this.pendingConfIndex = this.log.lastIndex() + ents.length
            } else {
              ents.push({ type: "Noop", data: new Uint8Array(0) })
            }
          }
        }
        if (ents.length > 0 && this.checkProposable(ents) === undefined) this.appendProposal(ents)
        return
      }
      case "MsgReadIndex":
        return this.handleReadIndex(m.from, m.context)
      case "MsgTransferLeader":
        this.handleTransferLeader(m.transferee)
        return
      default:
        break
    }
    const pr = this.tracker.progress.get(m.from)
    if (pr === undefined) return
    switch (m.type) {
      case "MsgAppResp":
        return this.handleAppendResponse(m, pr)
      case "MsgHeartbeatResp":
        return this.handleHeartbeatResponse(m, pr)
      case "MsgSnapResp":
        return this.handleSnapResponse(m, pr)
      default:
        return
    }
  }

  // -------------------------------------------------------------------------
  // Leader: replication
  // -------------------------------------------------------------------------

  private handleAppendResponse(m: MsgAppResp, pr: Progress): void {
    pr.recentActive = true
    if (m.reject) {
      let nextProbe = m.rejectHint
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === "Replicate") pr.becomeProbe()
        this.sendAppend(m.from)
      }
      return
    }
    const wasPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index)) return
    if (pr.state === "Probe") pr.becomeReplicate()
    else if (pr.state === "Snapshot" && (pr.match >= pr.pendingSnapshot || pr.match + 1 >= this.log.firstIndex())) {
      pr.becomeProbe()
      pr.becomeReplicate()
    } else if (pr.state === "Replicate") pr.inflights.freeLE(m.index)

    if (this.maybeCommit()) this.bcastAppend()
    else if (pr.sentCommit < this.log.committed) this.sendAppend(m.from, true)
    else if (wasPaused || pr.state === "Replicate") this.sendAppend(m.from, false)

    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: "MsgTimeoutNow", to: m.from })
    }
  }

  private handleHeartbeatResponse(m: MsgHeartbeatResp, pr: Progress): void {
    pr.recentActive = true
    pr.msgAppFlowPaused = false
    if (pr.state === "Replicate" && pr.inflights.full()) pr.inflights.freeFirstOne()
    if (pr.state === "Snapshot") this.sendSnapshotChunk(m.from, pr)
    else if (pr.match < this.log.lastIndex()) this.sendAppend(m.from)
    if (m.context > 0 && this.readOnlyOption === "Safe") this.readAck(m.from, m.context)
  }

  private handleSnapResponse(m: MsgSnapResp, pr: Progress): void {
    pr.recentActive = true
    const t = pr.transfer
    if (pr.state !== "Snapshot" || t === null) return
    if (t.snapshot.metadata.index !== m.index || t.snapshot.metadata.term !== m.snapTerm) return
    if (m.reject) {
      t.offset = m.offset
      this.sendSnapshotChunk(m.from, pr)
    } else if (m.offset > t.offset) {
      t.offset = m.offset
      if (t.offset < t.snapshot.data.length) this.sendSnapshotChunk(m.from, pr)
    }
  }

  /** Sends as much as the flow control allows (pipelining in Replicate state). */
  private sendAppend(to: NodeId, sendIfEmpty = true): void {
    if (!this.maybeSendAppend(to, sendIfEmpty)) return
    let guard = 0
    while (guard++ < 1024 && this.maybeSendAppend(to, false)) {
      // keep filling the in-flight window
    }
  }

  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to)
    if (pr === undefined || to === this.id || pr.isPaused()) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.log.term(prevIndex)
    const ents = prevTerm === undefined ? undefined : this.log.entries(pr.next, this.maxSizePerMsg)
    if (prevTerm === undefined || ents === undefined) return this.sendSnapshot(to, pr)
    if (ents.length === 0 && !sendIfEmpty) return false
    let bytes = 0
    for (const e of ents) bytes += entrySize(e)
    this.send({ type: "MsgApp", to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed })
    pr.sentCommit = Math.max(pr.sentCommit, Math.min(this.log.committed, prevIndex + ents.length))
    pr.sentEntries(ents.length, bytes, ents.length > 0 ? ents[ents.length - 1]!.index : prevIndex)
    return true
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false
    const snap = this.log.snapshot()
    if (snap === null || snap.metadata.index === 0) return false
    pr.becomeSnapshot(snap)
    this.sendSnapshotChunk(to, pr)
    return true
  }

  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const t = pr.transfer
    if (t === null) return
    const total = t.snapshot.data.length
    const offset = Math.min(t.offset, total)
    const end = Math.min(total, offset + this.maxChunk)
    this.send({
      type: "MsgSnap",
      to,
      snapshot: t.snapshot.metadata,
      offset,
      totalBytes: total,
      data: t.snapshot.data.subarray(offset, end),
      done: end >= total
    })
  }

  private bcastAppend(): void {
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.sendAppend(id)
  }

  private bcastHeartbeat(): void {
    const ctx = this.pendingReads.length > 0 ? this.pendingReads[this.pendingReads.length - 1]!.seq : 0
    this.bcastHeartbeatWith(ctx)
  }

  private bcastHeartbeatWith(context: number): void {
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue
      const commit = Math.min(pr.match, this.log.committed)
      pr.sentCommit = Math.max(pr.sentCommit, commit)
      this.send({ type: "MsgHeartbeat", to: id, commit, context })
    }
  }

  private maybeCommit(): boolean {
    if (!this.log.maybeCommit(this.tracker.committedIndex(), this.termValue)) return false
    if (this.readsBeforeCommit.length > 0) {
      const queued = this.readsBeforeCommit
      this.readsBeforeCommit = []
      for (const r of queued) this.handleReadIndex(r.from, r.context)
    }
    return true
  }

  // -------------------------------------------------------------------------
  // Follower handlers
  // -------------------------------------------------------------------------

  private handleAppend(m: MsgApp): void {
    if (m.index < this.log.committed) {
      this.send({ type: "MsgAppResp", to: m.from, index: this.log.committed, reject: false, rejectHint: 0, logTerm: 0 })
      return
    }
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries)
    if (last !== undefined) {
      this.send({ type: "MsgAppResp", to: m.from, index: last, reject: false, rejectHint: 0, logTerm: 0 })
      return
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm)
    this.send({ type: "MsgAppResp", to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term })
  }

  private handleHeartbeat(m: MsgHeartbeat): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()))
    this.send({ type: "MsgHeartbeatResp", to: m.from, context: m.context })
  }

  private handleSnapshot(m: MsgSnap): void {
    const md = m.snapshot
    if (md.index <= this.log.committed) {
      this.snapRecv = null
      this.send({ type: "MsgAppResp", to: m.from, index: this.log.committed, reject: false, rejectHint: 0, logTerm: 0 })
      return
    }
    let r = this.snapRecv
    if (m.offset === 0) {
      r = { from: m.from, index: md.index, term: md.term, chunks: [], received: 0 }
    } else if (r === null || r.index !== md.index || r.term !== md.term || r.received !== m.offset) {
      const same = r !== null && r.index === md.index && r.term === md.term
      this.send({ type: "MsgSnapResp", to: m.from, index: md.index, snapTerm: md.term, offset: same ? r!.received : 0, reject: true })
      return
    }
    r.chunks.push(m.data.slice())
    r.received += m.data.length
    if (!m.done) {
      this.snapRecv = r
      this.send({ type: "MsgSnapResp", to: m.from, index: md.index, snapTerm: md.term, offset: r.received, reject: false })
      return
    }
    this.snapRecv = null
    const data = new Uint8Array(r.received)
    let off = 0
    for (const c of r.chunks) {
      data.set(c, off)
      off += c.length
    }
    const index = this.restore({ metadata: md, data }) ? this.log.lastIndex() : this.log.committed
    this.send({ type: "MsgAppResp", to: m.from, index, reject: false, rejectHint: 0, logTerm: 0 })
  }

  /** Installs a snapshot from the leader. False if it is stale or our log already covers it. */
  private restore(s: Snapshot): boolean {
    const md = s.metadata
    if (md.index <= this.log.committed) return false
    if (this.log.matchTerm(md.index, md.term)) {
      // Our log already has the snapshot's last entry: just fast-forward commit.
      this.log.commitTo(md.index)
      return false
    }
    this.log.restore(s)
    this.tracker.setConf(md.confState, this.log.lastIndex() + 1)
    for (const pr of this.tracker.progress.values()) {
      pr.match = 0
      pr.next = this.log.lastIndex() + 1
    }
    return true
  }

  // -------------------------------------------------------------------------
  // Proposals and membership
  // -------------------------------------------------------------------------

  private notLeader(): NotLeader {
    return new NotLeader({ group: this.group, leaderId: this.lead, term: this.termValue })
  }

  private forwardOrNotLeader(entries: ReadonlyArray<ProposalEntry>): Either.Either<Proposed, RaftError> {
    if (this.roleValue === "Follower" && this.lead !== null && this.forwardProposals) {
      this.send({ type: "MsgProp", to: this.lead, entries })
      return Either.right({ term: this.termValue, firstIndex: 0, lastIndex: 0, forwardedTo: this.lead })
    }
    return Either.left(this.notLeader())
  }

  private checkProposable(entries: ReadonlyArray<ProposalEntry>): RaftError | undefined {
    if (this.leadTransferee !== null) {
      return new LeadershipTransferInProgress({ group: this.group, transferee: this.leadTransferee })
    }
    if (!this.tracker.progress.has(this.id)) {
      return new ProposalDropped({ group: this.group, reason: "this node was removed from the group" })
    }
    if (this.maxUncommittedSize > 0 && this.uncommittedSize > 0) {
      let size = 0
      for (const e of entries) size += e.data.length
      if (this.uncommittedSize + size > this.maxUncommittedSize) {
        return new ProposalDropped({ group: this.group, reason: "too many uncommitted bytes" })
      }
    }
    return undefined
  }

  private appendProposal(entries: ReadonlyArray<ProposalEntry>): Proposed {
    const first = this.log.lastIndex() + 1
    this.appendEntries(entries)
    for (const e of entries) this.uncommittedSize += e.data.length
    this.bcastAppend()
    return { term: this.termValue, firstIndex: first, lastIndex: this.log.lastIndex(), forwardedTo: null }
  }

  private appendEntries(entries: ReadonlyArray<ProposalEntry>): void {
    const li = this.log.lastIndex()
    const ents: Array<Entry> = entries.map((e, i) => ({ term: this.termValue, index: li + 1 + i, type: e.type, data: e.data }))
    this.log.append(ents)
    // Our own progress moves when the driver has persisted them (see advance).
  }

  private validateConfChange(cc: ConfChange): string | undefined {
    const isVoter = this.tracker.voters.has(cc.nodeId)
    const isLearner = this.tracker.learners.has(cc.nodeId)
    switch (cc.type) {
      case "AddLearner":
        if (isLearner) return `node ${cc.nodeId} is already a learner`
        if (isVoter && cc.nodeId === this.id) return "the leader cannot demote itself"
        if (isVoter && this.tracker.voters.size === 1) return "cannot demote the last voter"
        return undefined
      case "PromoteLearner":
        return isLearner ? undefined : `node ${cc.nodeId} is not a learner`
      case "AddVoter":
        return isVoter ? `node ${cc.nodeId} is already a voter` : undefined
      case "RemoveNode":
        if (!isVoter && !isLearner) return `node ${cc.nodeId} is not a member`
        if (isVoter && this.tracker.voters.size === 1) return "cannot remove the last voter"
        return undefined
    }
  }

  /** The membership that results from applying `cc` to the current one. */
  private confAfter(cc: ConfChange): ConfState {
    const voters = new Set(this.tracker.voters)
    const learners = new Set(this.tracker.learners)
    switch (cc.type) {
      case "AddLearner":
        voters.delete(cc.nodeId)
        learners.add(cc.nodeId)
        break
      case "PromoteLearner":
      case "AddVoter":
        learners.delete(cc.nodeId)
        voters.add(cc.nodeId)
        break
      case "RemoveNode":
        voters.delete(cc.nodeId)
        learners.delete(cc.nodeId)
        break
    }
    const sort = (a: number, b: number) => a - b
    return { voters: [...voters].sort(sort), learners: [...learners].sort(sort) }
  }

  private applyConfChange(cs: ConfState): void {
    if (cs.voters.length === 0) return
    this.tracker.setConf(cs, this.log.lastIndex() + 1)
    const self = this.tracker.progress.get(this.id)
    if (self !== undefined && this.roleValue === "Leader" && self.match === 0) self.match = this.selfDurableIndex()
    if (this.roleValue !== "Leader") return
    if (!this.tracker.voters.has(this.id)) {
      // Removed or demoted: tell everyone the latest commit, then step down.
      this.bcastAppend()
      this.becomeFollower(this.termValue, null)
      return
    }
    if (this.leadTransferee !== null && !this.tracker.voters.has(this.leadTransferee)) this.leadTransferee = null
    // The quorum may have changed (e.g. a voter removed): recompute commit, and
    // start replicating to any new member.
    this.maybeCommit()
    this.bcastAppend()
  }

  // -------------------------------------------------------------------------
  // Leadership transfer and reads
  // -------------------------------------------------------------------------

  private handleTransferLeader(to: NodeId): Either.Either<void, RaftError> {
    const pr = this.tracker.progress.get(to)
    if (pr === undefined || pr.isLearner) {
      return Either.left(new ProposalDropped({ group: this.group, reason: `transferee ${to} is not a voter` }))
    }
    if (this.leadTransferee !== null) {
      if (this.leadTransferee === to) {
        return Either.left(new LeadershipTransferInProgress({ group: this.group, transferee: to }))
      }
      this.leadTransferee = null
    }
    if (to === this.id) return Either.right(undefined)
    this.electionElapsed = 0
    this.leadTransferee = to
    if (pr.match === this.log.lastIndex()) this.send({ type: "MsgTimeoutNow", to })
    else this.sendAppend(to)
    return Either.right(undefined)
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.termValue
  }

  private respondRead(from: NodeId, context: string, index: number): void {
    if (from === this.id) this.readStatesOut.push({ index, context })
    else this.send({ type: "MsgReadIndexResp", to: from, context, index })
  }

  private handleReadIndex(from: NodeId, context: string): void {
    if (this.tracker.isSingleton() && this.tracker.voters.has(this.id)) {
      if (this.committedEntryInCurrentTerm()) this.respondRead(from, context, this.log.committed)
      else this.readsBeforeCommit.push({ from, context })
      return
    }
    if (!this.committedEntryInCurrentTerm()) {
      // The commit index of a new leader is not known to be current until its no-op commits.
      this.readsBeforeCommit.push({ from, context })
      return
    }
    if (this.readOnlyOption === "LeaseBased") {
      this.respondRead(from, context, this.log.committed)
      return
    }
    const seq = ++this.readSeq
    this.pendingReads.push({ from, context, index: this.log.committed, seq, acks: new Set([this.id]) })
    this.bcastHeartbeatWith(seq)
  }

  private readAck(from: NodeId, seq: number): void {
    let confirmed = -1
    for (let i = 0; i < this.pendingReads.length; i++) {
      const r = this.pendingReads[i]!
      if (r.seq > seq) break
      r.acks.add(from)
      if (this.tracker.hasQuorum(r.acks)) confirmed = i
    }
    if (confirmed < 0) return
    const done = this.pendingReads.splice(0, confirmed + 1)
    for (const r of done) this.respondRead(r.from, r.context, r.index)
  }

  // -------------------------------------------------------------------------
  // Output
  // -------------------------------------------------------------------------

  /**
   * Queues a message. `m` is always a fresh object literal at the call site, so
   * it is completed in place (an object spread per message was the core's
   * largest per-proposal cost).
   */
  private send(m: Outgoing<Message>): void {
    const msg = m as { -readonly [K in keyof Message]?: unknown }
    msg.group = this.group
    msg.from = this.id
    if (msg.term === undefined) msg.term = this.termValue
    this.msgs.push(msg as unknown as Message)
  }
}

const payloadSize = (e: Entry): number => e.data.length
