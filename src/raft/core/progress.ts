/**
 * Leader-side replication state per follower (etcd's Progress/Inflights) and
 * quorum arithmetic over the current membership.
 *
 * Progress states:
 * - `Probe`: we don't know where the follower's log matches; send one MsgApp
 *   and wait (paused) until a reply or heartbeat response arrives.
 * - `Replicate`: the follower's log matches up to `match`; stream MsgApps
 *   optimistically (pipelining), bounded by the in-flight window.
 * - `Snapshot`: the entries it needs are compacted; an InstallSnapshot transfer
 *   is in progress and no MsgApp is sent until it finishes.
 */
import type { ConfState, NodeId, Snapshot } from "./types.js"

export type ProgressState = "Probe" | "Replicate" | "Snapshot"

/** Sliding window of in-flight MsgApps (their last index and byte size). */
export class Inflights {
  private readonly items: Array<{ index: number; bytes: number }> = []
  private bytes = 0

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number
  ) {}

  add(index: number, bytes: number): void {
    this.items.push({ index, bytes })
    this.bytes += bytes
  }

  /** Frees every message whose last index is `<= index`. */
  freeLE(index: number): void {
    let n = 0
    while (n < this.items.length && this.items[n]!.index <= index) {
      this.bytes -= this.items[n]!.bytes
      n++
    }
    if (n > 0) this.items.splice(0, n)
  }

  freeFirstOne(): void {
    const first = this.items.shift()
    if (first !== undefined) this.bytes -= first.bytes
  }

  full(): boolean {
    return this.items.length >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes)
  }

  count(): number {
    return this.items.length
  }

  inflightBytes(): number {
    return this.bytes
  }

  reset(): void {
    this.items.length = 0
    this.bytes = 0
  }
}

/** A snapshot being streamed to one follower in chunks. */
export interface SnapshotTransfer {
  readonly snapshot: Snapshot
  /** Next byte offset the follower expects (acknowledged so far). */
  offset: number
}

export class Progress {
  match = 0
  next: number
  state: ProgressState = "Probe"
  /** In Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0
  /** Chunked InstallSnapshot in progress (Snapshot state only). */
  transfer: SnapshotTransfer | null = null
  /** Heard from since the last check-quorum round. */
  recentActive = false
  /** Highest commit index sent to this follower (MsgApp or heartbeat). */
  sentCommit = 0
  /** In Probe state: a MsgApp is outstanding, wait for its answer or a heartbeat response. */
  msgAppFlowPaused = false
  readonly inflights: Inflights

  constructor(
    next: number,
    maxInflight: number,
    maxInflightBytes: number,
    public isLearner: boolean
  ) {
    this.next = next
    this.inflights = new Inflights(maxInflight, maxInflightBytes)
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false
    this.pendingSnapshot = 0
    this.transfer = null
    this.state = state
    this.inflights.reset()
  }

  becomeProbe(): void {
    if (this.state === "Snapshot") {
      const pending = this.pendingSnapshot
      this.resetState("Probe")
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.resetState("Probe")
      this.next = this.match + 1
    }
  }

  becomeReplicate(): void {
    this.resetState("Replicate")
    this.next = this.match + 1
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.resetState("Snapshot")
    this.pendingSnapshot = snapshot.metadata.index
    this.transfer = { snapshot, offset: 0 }
  }

  /** Bookkeeping after sending a MsgApp with `count` entries ending at `last`. */
  sentEntries(count: number, bytes: number, last: number): void {
    if (this.state === "Replicate") {
      if (count > 0) {
        this.next = last + 1
        this.inflights.add(last, bytes)
      }
    } else if (this.state === "Probe") {
      this.msgAppFlowPaused = true
    }
  }

  /** A successful MsgAppResp for `n`. Returns false if it is stale. */
  maybeUpdate(n: number): boolean {
    let updated = false
    if (this.match < n) {
      this.match = n
      updated = true
      this.msgAppFlowPaused = false
    }
    this.next = Math.max(this.next, n + 1)
    return updated
  }

  /**
   * A rejection of the MsgApp at `rejected`, with the follower's conflict hint
   * `matchHint`. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "Replicate") {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.msgAppFlowPaused = false
    return true
  }

  isPaused(): boolean {
    switch (this.state) {
      case "Probe":
        return this.msgAppFlowPaused
      case "Replicate":
        return this.inflights.full()
      case "Snapshot":
        return true
    }
  }
}

const descending = (a: number, b: number): number => b - a

/** Outcome of a vote count. */
export type VoteResult = "Won" | "Lost" | "Pending"

/** Membership plus per-node progress. */
export class ProgressTracker {
  voters = new Set<NodeId>()
  learners = new Set<NodeId>()
  progress = new Map<NodeId, Progress>()
  votes = new Map<NodeId, boolean>()

  constructor(
    readonly maxInflight: number,
    readonly maxInflightBytes: number
  ) {}

  confState(): ConfState {
    return {
      voters: [...this.voters].sort((a, b) => a - b),
      learners: [...this.learners].sort((a, b) => a - b)
    }
  }

  /** Replaces the membership; keeps progress of nodes that stay, creates progress for new ones. */
  setConf(cs: ConfState, nextIndex: number): void {
    this.voters = new Set(cs.voters)
    this.learners = new Set(cs.learners)
    const keep = new Map<NodeId, Progress>()
    for (const id of [...this.voters, ...this.learners]) {
      const isLearner = this.learners.has(id)
      const pr = this.progress.get(id)
      if (pr !== undefined) {
        pr.isLearner = isLearner
        keep.set(id, pr)
      } else {
        keep.set(id, new Progress(nextIndex, this.maxInflight, this.maxInflightBytes, isLearner))
      }
    }
    this.progress = keep
  }

  isSingleton(): boolean {
    return this.voters.size === 1
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1
  }

  /** Largest index replicated on a quorum of voters. */
  committedIndex(): number {
    const n = this.voters.size
    if (n === 0) return Number.MAX_SAFE_INTEGER
    if (n === 1) {
      for (const id of this.voters) return this.progress.get(id)?.match ?? 0
    }
    // called for every acknowledgement: reuse one scratch array
    const matches = this.scratch
    matches.length = 0
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0)
    matches.sort(descending)
    return matches[this.quorum() - 1]!
  }
  private readonly scratch: Array<number> = []

  resetVotes(): void {
    this.votes.clear()
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted)
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0
    let rejected = 0
    for (const id of this.voters) {
      const v = this.votes.get(id)
      if (v === true) granted++
      else if (v === false) rejected++
    }
    const q = this.quorum()
    const result: VoteResult = granted >= q ? "Won" : this.voters.size - rejected < q ? "Lost" : "Pending"
    return { granted, rejected, result }
  }

  /** Check-quorum: were a quorum of voters (counting `self`) active recently? */
  quorumActive(self: NodeId): boolean {
    let active = 0
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive === true) active++
    }
    return active >= this.quorum()
  }

  /** Do the nodes in `acks` form a quorum of voters? */
  hasQuorum(acks: ReadonlySet<NodeId>): boolean {
    let n = 0
    for (const id of this.voters) if (acks.has(id)) n++
    return n >= this.quorum()
  }
}
