/**
 * Stable data types of the pure Raft consensus core.
 *
 * Everything here is plain data (no classes except the tagged errors), so the
 * log store, the transports (TCP | memory) and the multi-group engine can
 * encode, persist and route these values without knowing the core's internals.
 *
 * Conventions
 * - Terms and indexes are plain `number`s and must stay safe integers
 *   (`Number.isSafeInteger`). Index 0 / term 0 mean "nothing" (before the
 *   first entry). The first real log entry has index 1.
 * - Node ids are plain `number`s (a broker id, may be 0). "No node" is `null`;
 *   a binary codec may map `null` to -1.
 * - Every message carries the Raft `group` it belongs to (multi-Raft); the core
 *   stamps its own group on every message it emits and ignores messages whose
 *   group differs from its own.
 * - Byte payloads are `Uint8Array` (a Node `Buffer` is a `Uint8Array`, so the
 *   driver may pass `Buffer`s straight through).
 */
import { Data } from "effect"

/** A node (replica) id. */
export type NodeId = number

/** A Raft group id (e.g. `"__meta"` or `"topic-3"`). */
export type GroupId = string

// ---------------------------------------------------------------------------
// Log entries
// ---------------------------------------------------------------------------

/**
 * Kind of a log entry.
 * - `Normal`: application data (e.g. a Kafka record batch).
 * - `ConfChange`: a membership change; `data` is `encodeConfChange(change, confStateAfter)`. It
 *   takes effect when the entry is committed and handed to the application
 *   (in `advance`).
 * - `Noop`: the empty entry a new leader appends at the start of its term so
 *   that it can commit entries of earlier terms (Raft §5.4.2, Figure 8). It has
 *   no data and must not be given a Kafka offset.
 */
export type EntryType = "Normal" | "ConfChange" | "Noop"

/** Numeric codes for `EntryType`, for binary codecs. Stable: never renumber. */
export const EntryTypeCode: { readonly [K in EntryType]: number } = {
  Normal: 0,
  ConfChange: 1,
  Noop: 2
}

/** Inverse of `EntryTypeCode`. */
export const entryTypeFromCode = (code: number): EntryType | undefined =>
  code === 0 ? "Normal" : code === 1 ? "ConfChange" : code === 2 ? "Noop" : undefined

/** One replicated log entry. `index` is dense: entry i+1 follows entry i. */
export interface Entry {
  readonly term: number
  readonly index: number
  readonly type: EntryType
  readonly data: Uint8Array
}

/** What a proposer supplies; the leader assigns `term` and `index`. */
export interface ProposalEntry {
  readonly type: EntryType
  readonly data: Uint8Array
}

// ---------------------------------------------------------------------------
// Persistent and volatile state
// ---------------------------------------------------------------------------

/**
 * State that must be persisted (fsynced) before any message of the same Ready
 * batch is sent: the current term, the vote cast in that term, and the commit
 * index (persisting commit is an optimisation, not a safety requirement).
 */
export interface HardState {
  readonly term: number
  readonly vote: NodeId | null
  readonly commit: number
}

export const emptyHardState: HardState = { term: 0, vote: null, commit: 0 }

export const hardStateEquals = (a: HardState, b: HardState): boolean =>
  a.term === b.term && a.vote === b.vote && a.commit === b.commit

/** Role of a node in its group. `PreCandidate` is the pre-vote phase. */
export type Role = "Follower" | "PreCandidate" | "Candidate" | "Leader"

/** Volatile state useful to the application (not persisted). */
export interface SoftState {
  readonly leader: NodeId | null
  readonly role: Role
}

// ---------------------------------------------------------------------------
// Membership
// ---------------------------------------------------------------------------

/**
 * Membership of a group. Voters vote and count for commit; learners only
 * receive the log (used to catch a new node up before promoting it).
 * A node is never both. Arrays are kept sorted ascending by the core.
 */
export interface ConfState {
  readonly voters: ReadonlyArray<NodeId>
  readonly learners: ReadonlyArray<NodeId>
}

/**
 * One membership change; one at a time (a second one while the first is not
 * yet applied fails with `ConfigChangeInProgress`).
 * - `AddLearner`: add a node as learner (or demote a voter to learner).
 * - `PromoteLearner`: turn a learner into a voter.
 * - `AddVoter`: add a voter directly (allowed, but prefer learner + promote so
 *   that the new node is caught up before it counts for quorum).
 * - `RemoveNode`: remove a voter or learner.
 */
export type ConfChangeType = "AddLearner" | "PromoteLearner" | "AddVoter" | "RemoveNode"

export interface ConfChange {
  readonly type: ConfChangeType
  readonly nodeId: NodeId
}

const confChangeCodes: ReadonlyArray<ConfChangeType> = ["AddLearner", "PromoteLearner", "AddVoter", "RemoveNode"]

/**
 * What a `ConfChange` entry holds: the change and, when the leader appended
 * it, the complete membership that results from it. Carrying the result makes
 * applying idempotent and lets a brand-new node (started with an empty
 * membership) learn the whole configuration from the log.
 */
export interface ConfChangeData {
  readonly change: ConfChange
  /** Membership after the change; null in a request forwarded by a follower. */
  readonly confState: ConfState | null
}

/**
 * Binary form stored in a `ConfChange` entry:
 * `u8 type | f64 nodeId | i32 nVoters (-1 = no conf state) | f64 voters... | i32 nLearners | f64 learners...`
 * (big-endian).
 */
export const encodeConfChange = (change: ConfChange, confState: ConfState | null = null): Uint8Array => {
  const nv = confState?.voters.length ?? 0
  const nl = confState?.learners.length ?? 0
  const out = new Uint8Array(1 + 8 + 4 + (confState === null ? 0 : 8 * nv + 4 + 8 * nl))
  const dv = new DataView(out.buffer)
  out[0] = confChangeCodes.indexOf(change.type)
  dv.setFloat64(1, change.nodeId, false)
  if (confState === null) {
    dv.setInt32(9, -1, false)
    return out
  }
  let o = 9
  dv.setInt32(o, nv, false)
  o += 4
  for (const v of confState.voters) {
    dv.setFloat64(o, v, false)
    o += 8
  }
  dv.setInt32(o, nl, false)
  o += 4
  for (const l of confState.learners) {
    dv.setFloat64(o, l, false)
    o += 8
  }
  return out
}

/** Decodes `encodeConfChange` output; `undefined` if malformed. */
export const decodeConfChange = (data: Uint8Array): ConfChangeData | undefined => {
  if (data.length < 13) return undefined
  const type = confChangeCodes[data[0]!]
  if (type === undefined) return undefined
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const nodeId = dv.getFloat64(1, false)
  if (!Number.isSafeInteger(nodeId)) return undefined
  const change: ConfChange = { type, nodeId }
  const nv = dv.getInt32(9, false)
  if (nv === -1) return data.length === 13 ? { change, confState: null } : undefined
  const ids = (o: number, n: number): Array<number> | undefined => {
    if (n < 0 || o + 8 * n > data.length) return undefined
    const out: Array<number> = []
    for (let i = 0; i < n; i++) {
      const v = dv.getFloat64(o + 8 * i, false)
      if (!Number.isSafeInteger(v)) return undefined
      out.push(v)
    }
    return out
  }
  const voters = ids(13, nv)
  if (voters === undefined) return undefined
  const lo = 13 + 8 * nv
  if (lo + 4 > data.length) return undefined
  const nl = dv.getInt32(lo, false)
  const learners = ids(lo + 4, nl)
  if (learners === undefined || lo + 4 + 8 * nl !== data.length) return undefined
  return { change, confState: { voters, learners } }
}

// ---------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------

/** Position and membership a snapshot covers: all entries up to `index`. */
export interface SnapshotMetadata {
  readonly index: number
  readonly term: number
  readonly confState: ConfState
}

/** A state-machine snapshot. `data` is opaque, produced by the application. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata
  readonly data: Uint8Array
}

export const emptySnapshot: Snapshot = {
  metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  data: new Uint8Array(0)
}

export const isEmptySnapshot = (s: Snapshot | null | undefined): boolean =>
  s === null || s === undefined || s.metadata.index === 0

// ---------------------------------------------------------------------------
// Read states
// ---------------------------------------------------------------------------

/**
 * Result of a ReadIndex request: once the local state machine has applied up
 * to `index`, a read tagged `context` is linearizable.
 */
export interface ReadState {
  readonly index: number
  readonly context: string
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/** Fields every message carries. `term` is the sender's current term. */
export interface MessageHeader {
  readonly group: GroupId
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
}

/**
 * AppendEntries. `index`/`logTerm` identify the entry just before `entries`
 * (the consistency check); `commit` is the leader's commit index.
 * An empty `entries` array is a probe / commit update.
 */
export interface MsgApp extends MessageHeader {
  readonly type: "MsgApp"
  readonly index: number
  readonly logTerm: number
  readonly entries: ReadonlyArray<Entry>
  readonly commit: number
}

/**
 * Reply to `MsgApp` (also sent after a snapshot is installed).
 * - Accept (`reject: false`): `index` is the follower's last index now known
 *   to match the leader.
 * - Reject (`reject: true`): `index` is the rejected `MsgApp.index`;
 *   `rejectHint`/`logTerm` are a conflict hint for fast backtracking: the
 *   largest index `<= min(index, follower last index)` whose term is
 *   `<= MsgApp.logTerm`, and its term. The leader jumps straight there.
 */
export interface MsgAppResp extends MessageHeader {
  readonly type: "MsgAppResp"
  readonly index: number
  readonly reject: boolean
  readonly rejectHint: number
  readonly logTerm: number
}

/**
 * RequestVote. `index`/`logTerm` describe the candidate's last entry.
 * `transfer` marks a campaign started by `MsgTimeoutNow` (leadership
 * transfer): voters then ignore their leader lease.
 */
export interface MsgVote extends MessageHeader {
  readonly type: "MsgVote"
  readonly index: number
  readonly logTerm: number
  readonly transfer: boolean
}

export interface MsgVoteResp extends MessageHeader {
  readonly type: "MsgVoteResp"
  readonly reject: boolean
}

/**
 * Pre-vote (Raft thesis §9.6): same as `MsgVote` but `term` is the term the
 * sender *would* campaign in; nobody changes term or vote because of it.
 */
export interface MsgPreVote extends MessageHeader {
  readonly type: "MsgPreVote"
  readonly index: number
  readonly logTerm: number
  readonly transfer: boolean
}

export interface MsgPreVoteResp extends MessageHeader {
  readonly type: "MsgPreVoteResp"
  readonly reject: boolean
}

/**
 * Heartbeat. `commit` is `min(leader commit, follower match)` so a follower
 * never commits entries it might not share. `context` is a ReadIndex round
 * number (0 = none) echoed back in the response.
 */
export interface MsgHeartbeat extends MessageHeader {
  readonly type: "MsgHeartbeat"
  readonly commit: number
  readonly context: number
}

export interface MsgHeartbeatResp extends MessageHeader {
  readonly type: "MsgHeartbeatResp"
  readonly context: number
}

/**
 * One chunk of an InstallSnapshot transfer. `data` is the slice
 * `[offset, offset + data.length)` of the snapshot's data; `done` marks the
 * last chunk; `totalBytes` is the full size. The follower acknowledges each
 * chunk with `MsgSnapResp` and, after the last one, installs the snapshot and
 * replies `MsgAppResp` with the snapshot index.
 */
export interface MsgSnap extends MessageHeader {
  readonly type: "MsgSnap"
  readonly snapshot: SnapshotMetadata
  readonly offset: number
  readonly totalBytes: number
  readonly data: Uint8Array
  readonly done: boolean
}

/**
 * Chunk acknowledgement. `index`/`snapTerm` name the snapshot, `offset` is the
 * next byte offset the follower expects. `reject: true` means the chunk did
 * not fit (out of order / unknown transfer): resend from `offset`.
 */
export interface MsgSnapResp extends MessageHeader {
  readonly type: "MsgSnapResp"
  readonly index: number
  readonly snapTerm: number
  readonly offset: number
  readonly reject: boolean
}

/** Leadership transfer: the recipient campaigns at once, skipping pre-vote. */
export interface MsgTimeoutNow extends MessageHeader {
  readonly type: "MsgTimeoutNow"
}

/** Asks the leader (forwarded by a follower) to transfer leadership to `transferee`. */
export interface MsgTransferLeader extends MessageHeader {
  readonly type: "MsgTransferLeader"
  readonly transferee: NodeId
}

/** A follower forwards a ReadIndex request to the leader. */
export interface MsgReadIndex extends MessageHeader {
  readonly type: "MsgReadIndex"
  readonly context: string
}

/** The leader's answer: read at `index` is linearizable once applied. */
export interface MsgReadIndexResp extends MessageHeader {
  readonly type: "MsgReadIndexResp"
  readonly context: string
  readonly index: number
}

/** A follower forwards proposals to the leader (only with `forwardProposals`). */
export interface MsgProp extends MessageHeader {
  readonly type: "MsgProp"
  readonly entries: ReadonlyArray<ProposalEntry>
}

/**
 * Driver message (quiescence, see docs/raft-services.md): the leader of an idle
 * group tells a follower to stop ticking. `index`/`logTerm` are the leader's
 * last entry, which is also its commit index. Never emitted by the core;
 * `RaftCore.step` ignores driver messages.
 */
export interface MsgQuiesce extends MessageHeader {
  readonly type: "MsgQuiesce"
  readonly index: number
  readonly logTerm: number
}

/** Driver message: a node asks the leader of a quiesced group to resume ticking. */
export interface MsgWake extends MessageHeader {
  readonly type: "MsgWake"
}

/**
 * Driver message: node liveness, one per node pair per heartbeat interval
 * (`group` is "", `term` 0). `epoch` identifies the sender's incarnation, so
 * a restart is noticed even when it was faster than the liveness timeout.
 */
export interface MsgLiveness extends MessageHeader {
  readonly type: "MsgLiveness"
  readonly epoch: number
}

/** Messages the multi-group driver exchanges for quiescence; cores ignore them. */
export type DriverMessage = MsgQuiesce | MsgWake | MsgLiveness

export const isDriverMessage = (m: Message): m is DriverMessage =>
  m.type === "MsgQuiesce" || m.type === "MsgWake" || m.type === "MsgLiveness"

/** Every message that crosses the network between cores of the same group (plus driver messages). */
export type Message =
  | MsgApp
  | MsgAppResp
  | MsgVote
  | MsgVoteResp
  | MsgPreVote
  | MsgPreVoteResp
  | MsgHeartbeat
  | MsgHeartbeatResp
  | MsgSnap
  | MsgSnapResp
  | MsgTimeoutNow
  | MsgTransferLeader
  | MsgReadIndex
  | MsgReadIndexResp
  | MsgProp
  | MsgQuiesce
  | MsgWake
  | MsgLiveness

export type MessageType = Message["type"]

/** All message types; the position is a stable numeric code for codecs. Never reorder, only append. */
export const messageTypes: ReadonlyArray<MessageType> = [
  "MsgApp",
  "MsgAppResp",
  "MsgVote",
  "MsgVoteResp",
  "MsgPreVote",
  "MsgPreVoteResp",
  "MsgHeartbeat",
  "MsgHeartbeatResp",
  "MsgSnap",
  "MsgSnapResp",
  "MsgTimeoutNow",
  "MsgTransferLeader",
  "MsgReadIndex",
  "MsgReadIndexResp",
  "MsgProp",
  "MsgQuiesce",
  "MsgWake",
  "MsgLiveness"
]

/** Heartbeats and their responses: the multi-group engine may batch these per node pair. */
export const isHeartbeatMessage = (m: Message): m is MsgHeartbeat | MsgHeartbeatResp =>
  m.type === "MsgHeartbeat" || m.type === "MsgHeartbeatResp"

// ---------------------------------------------------------------------------
// Ready
// ---------------------------------------------------------------------------

/**
 * Work the driver must do, in this order:
 * 1. persist `snapshot` (if any), `entries` (appending, truncating any
 *    conflicting suffix: entries replace everything from `entries[0].index`)
 *    and `hardState` (if any) — fsync when `mustSync`;
 * 2. send `messages`;
 * 3. apply `snapshot` then `committedEntries` to the state machine, serve
 *    `readStates` once applied reaches their index;
 * 4. call `advance(ready)`.
 *
 * Sending only after persisting is what makes a vote or an append
 * acknowledgement durable before anyone relies on it.
 */
export interface Ready {
  /** Changed soft state, or null if unchanged since the last Ready. */
  readonly softState: SoftState | null
  /** Changed hard state to persist, or null if unchanged. */
  readonly hardState: HardState | null
  /** Entries to append to stable storage. */
  readonly entries: ReadonlyArray<Entry>
  /** Snapshot to persist and apply (received from the leader), or null. */
  readonly snapshot: Snapshot | null
  /** Committed entries to apply, in order. */
  readonly committedEntries: ReadonlyArray<Entry>
  /** Messages to send once the above is persisted. */
  readonly messages: ReadonlyArray<Message>
  /** Completed ReadIndex requests. */
  readonly readStates: ReadonlyArray<ReadState>
  /** True when `hardState`/`entries` need an fsync before sending. */
  readonly mustSync: boolean
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** This node is not the leader; `leaderId` is the leader it knows, if any. */
export class NotLeader extends Data.TaggedError("NotLeader")<{
  readonly group: GroupId
  readonly leaderId: NodeId | null
  readonly term: number
}> {
  override get message(): string {
    return `group ${this.group}: not leader (leader ${this.leaderId ?? "unknown"}, term ${this.term})`
  }
}

/** The proposal was not appended (removed node, uncommitted-size limit, invalid change, ...). */
export class ProposalDropped extends Data.TaggedError("ProposalDropped")<{
  readonly group: GroupId
  readonly reason: string
}> {
  override get message(): string {
    return `group ${this.group}: proposal dropped: ${this.reason}`
  }
}

/** The leader is handing leadership to `transferee`; retry against the new leader. */
export class LeadershipTransferInProgress extends Data.TaggedError("LeadershipTransferInProgress")<{
  readonly group: GroupId
  readonly transferee: NodeId
}> {
  override get message(): string {
    return `group ${this.group}: leadership transfer to ${this.transferee} in progress`
  }
}

/** A membership change at `pendingIndex` is not applied yet; one change at a time. */
export class ConfigChangeInProgress extends Data.TaggedError("ConfigChangeInProgress")<{
  readonly group: GroupId
  readonly pendingIndex: number
}> {
  override get message(): string {
    return `group ${this.group}: configuration change at index ${this.pendingIndex} still pending`
  }
}

export type RaftError = NotLeader | ProposalDropped | LeadershipTransferInProgress | ConfigChangeInProgress
