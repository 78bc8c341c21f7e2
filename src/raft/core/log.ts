/**
 * The core's view of the log: stable entries (read through `RaftStorage`) plus
 * an in-memory unstable tail (entries and possibly a snapshot) that the driver
 * has not persisted yet. Modelled on etcd's raftLog/unstable.
 */
import type { Entry, Snapshot } from "./types.js"
import type { RaftStorage } from "./storage.js"
import { limitSize } from "./storage.js"

/** Entries (and maybe a snapshot) not yet persisted. `offset` is the index of `entries[0]`. */
class Unstable {
  snapshot: Snapshot | null = null
  entries: Array<Entry> = []
  constructor(public offset: number) {}

  maybeFirstIndex(): number | undefined {
    return this.snapshot === null ? undefined : this.snapshot.metadata.index + 1
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1
    return this.snapshot === null ? undefined : this.snapshot.metadata.index
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== null && this.snapshot.metadata.index === i) return this.snapshot.metadata.term
      return undefined
    }
    const last = this.maybeLastIndex()
    if (last === undefined || i > last) return undefined
    return this.entries[i - this.offset]!.term
  }

  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i)
    if (gt === undefined) return
    // Only if the entry was not overwritten since the Ready that carried it.
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset)
      this.offset = i + 1
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === i) this.snapshot = null
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1
    this.entries = []
    this.snapshot = s
  }

  truncateAndAppend(ents: ReadonlyArray<Entry>): void {
    const after = ents[0]!.index
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e)
    } else if (after <= this.offset) {
      // Replace the whole unstable tail (the driver truncates storage when persisting).
      this.offset = after
      this.entries = [...ents]
    } else {
      this.entries = this.entries.slice(0, after - this.offset)
      for (const e of ents) this.entries.push(e)
    }
  }

  slice(lo: number, hi: number): Array<Entry> {
    return this.entries.slice(lo - this.offset, hi - this.offset)
  }
}

export class RaftLog {
  readonly unstable: Unstable
  /** Highest index known committed. */
  committed: number
  /** Highest index handed to the application (acknowledged by `advance`). */
  applied: number

  constructor(
    readonly storage: RaftStorage,
    readonly maxApplyBytes: number
  ) {
    const first = storage.firstIndex()
    const last = storage.lastIndex()
    this.unstable = new Unstable(last + 1)
    this.committed = first - 1
    this.applied = first - 1
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex()
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex()
  }

  /** Last index persisted by the driver (everything before the unstable tail). */
  lastStableIndex(): number {
    // While a received snapshot is unpersisted nothing past it is stable (only followers restore snapshots).
    if (this.unstable.snapshot !== null) return 0
    return this.unstable.offset - 1
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0
  }

  /** Term of entry `i`, or undefined if compacted or beyond the end. */
  term(i: number): number | undefined {
    const dummy = this.firstIndex() - 1
    if (i < dummy || i > this.lastIndex()) return undefined
    const t = this.unstable.maybeTerm(i)
    if (t !== undefined) return t
    if (i < this.storage.firstIndex() - 1 || i > this.storage.lastIndex()) return undefined
    return this.storage.term(i)
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up-to-date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const lt = this.lastTerm()
    return lastTerm > lt || (lastTerm === lt && lastIndex >= this.lastIndex())
  }

  /**
   * Follower side of AppendEntries: if entry `index` has term `logTerm`,
   * append `ents` (truncating a conflicting suffix), advance commit, and return
   * the index of the last new entry; otherwise undefined.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: ReadonlyArray<Entry>): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined
    const lastNew = index + ents.length
    const ci = this.findConflict(ents)
    if (ci !== 0) {
      if (ci <= this.committed) throw new Error(`raft: entry ${ci} conflicts with committed entry (committed ${this.committed})`)
      this.append(ents.slice(ci - (index + 1)))
    }
    this.commitTo(Math.min(committed, lastNew))
    return lastNew
  }

  /** Appends entries (the first may overwrite an unstable/stable suffix). Returns the new last index. */
  append(ents: ReadonlyArray<Entry>): number {
    if (ents.length === 0) return this.lastIndex()
    const after = ents[0]!.index - 1
    if (after < this.committed) throw new Error(`raft: append after ${after} is below committed ${this.committed}`)
    this.unstable.truncateAndAppend(ents)
    return this.lastIndex()
  }

  /** Index of the first entry in `ents` that is new or conflicts with ours; 0 if all match. */
  findConflict(ents: ReadonlyArray<Entry>): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index
    }
    return 0
  }

  /**
   * Fast backtracking: the largest index `<= index` whose term is `<= term`,
   * with that term. Indexes below the first available are returned with term 0.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = index
    for (;;) {
      const t = this.term(i)
      if (t === undefined) return { index: i, term: 0 }
      if (t <= term) return { index: i, term: t }
      i--
    }
  }

  commitTo(c: number): void {
    if (c > this.committed) {
      if (c > this.lastIndex()) throw new Error(`raft: commit ${c} out of range (last ${this.lastIndex()})`)
      this.committed = c
    }
  }

  /** Leader commit rule: only an entry of the current term is committed by counting (Figure 8). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.committed = maxIndex
      return true
    }
    return false
  }

  appliedTo(i: number): void {
    if (i === 0) return
    if (i > this.committed || i < this.applied) throw new Error(`raft: applied ${i} out of range [${this.applied}, ${this.committed}]`)
    this.applied = i
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t)
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i)
  }

  unstableEntries(): ReadonlyArray<Entry> {
    return this.unstable.entries
  }

  /** Committed entries not yet applied (none while a snapshot is pending). */
  nextCommittedEntries(): ReadonlyArray<Entry> {
    if (this.unstable.snapshot !== null) return []
    const off = Math.max(this.applied + 1, this.firstIndex())
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxApplyBytes) ?? []
    return []
  }

  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot !== null) return false
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex())
  }

  /** Entries from `lo` to the end, capped at `maxBytes`; undefined if `lo` is compacted. */
  entries(lo: number, maxBytes: number): ReadonlyArray<Entry> | undefined {
    if (lo > this.lastIndex()) return []
    return this.slice(lo, this.lastIndex() + 1, maxBytes)
  }

  allEntries(): ReadonlyArray<Entry> {
    return this.entries(this.firstIndex(), Number.MAX_SAFE_INTEGER) ?? []
  }

  /** Entries `[lo, hi)` capped at `maxBytes` (at least one); undefined if `lo` is compacted. */
  slice(lo: number, hi: number, maxBytes: number): ReadonlyArray<Entry> | undefined {
    if (lo < this.firstIndex()) return undefined
    if (hi > this.lastIndex() + 1) throw new Error(`raft: slice [${lo}, ${hi}) beyond last ${this.lastIndex()}`)
    if (lo >= hi) return []
    let ents: Array<Entry> = []
    const uoff = this.unstable.offset
    if (lo < uoff) {
      const stored = this.storage.entries(lo, Math.min(hi, uoff), maxBytes)
      // Storage stopped early because of the size cap: done.
      if (stored.length < Math.min(hi, uoff) - lo) return stored
      ents = [...stored]
    }
    if (hi > uoff) {
      const u = this.unstable.slice(Math.max(lo, uoff), hi)
      ents = ents.length > 0 ? ents.concat(u) : u
    }
    return limitSize(ents, maxBytes)
  }

  /** Replaces the log with a snapshot (follower install). */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index
    this.unstable.restore(s)
  }

  snapshot(): Snapshot | null {
    return this.unstable.snapshot ?? this.storage.snapshot()
  }
}
