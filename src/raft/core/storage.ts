/**
 * The read interface the core uses to reach stable storage, and an in-memory
 * implementation (`MemoryStorage`) for tests and for the memory layers.
 *
 * Model: etcd's `Storage`. The core only *reads* through `RaftStorage`; the
 * driver *writes* (it persists `Ready.entries`, `Ready.hardState` and
 * `Ready.snapshot`, then calls `advance`). All methods are synchronous: a real
 * log store keeps the terms and the recent tail of the log in memory.
 */
import { Data } from "effect"
import type { ConfState, Entry, HardState, Snapshot } from "./types.js"
import { emptyHardState } from "./types.js"

/** What a node starts from: the persisted hard state and the membership. */
export interface InitialState {
  readonly hardState: HardState
  /** Membership as of the last applied configuration (at least that of the latest snapshot). */
  readonly confState: ConfState
}

/**
 * Read access to persisted Raft state.
 *
 * Index bounds: the log holds entries `[firstIndex, lastIndex]`; entry
 * `firstIndex - 1` is the last one covered by the latest snapshot (or 0), and
 * only its term is still known. The core never asks outside these bounds; an
 * implementation may throw `StorageRangeError` if it is asked anyway.
 */
export interface RaftStorage {
  initialState(): InitialState
  /**
   * Entries `[lo, hi)`. Stops once the total `entrySize` would exceed
   * `maxBytes`, but always returns at least one entry when `lo < hi`.
   */
  entries(lo: number, hi: number, maxBytes: number): ReadonlyArray<Entry>
  /** Term of entry `i`, for `firstIndex() - 1 <= i <= lastIndex()`. */
  term(i: number): number
  firstIndex(): number
  lastIndex(): number
  /** The latest snapshot, or null if none is available right now (the leader retries later). */
  snapshot(): Snapshot | null
}

/** A storage read outside its bounds (compacted or not yet written). */
export class StorageRangeError extends Data.TaggedError("StorageRangeError")<{
  readonly reason: "Compacted" | "Unavailable" | "OutOfOrder" | "SnapshotOutOfDate"
  readonly index: number
}> {}

/** Size of an entry for byte limits (payload plus a fixed header estimate). */
export const entrySize = (e: Entry): number => e.data.length + 24

/** Entries of `ents` from the start whose cumulative size fits `maxBytes`; at least one. */
export const limitSize = (ents: ReadonlyArray<Entry>, maxBytes: number): ReadonlyArray<Entry> => {
  if (ents.length === 0) return ents
  let size = entrySize(ents[0]!)
  let n = 1
  while (n < ents.length) {
    size += entrySize(ents[n]!)
    if (size > maxBytes) break
    n++
  }
  return n === ents.length ? ents : ents.slice(0, n)
}

/**
 * In-memory `RaftStorage` with the write side a driver needs:
 * `append`, `setHardState`, `applySnapshot`, `createSnapshot`, `compact`.
 * `ents[0]` is a dummy entry holding the snapshot's index and term.
 */
export class MemoryStorage implements RaftStorage {
  private hard: HardState = emptyHardState
  private snap: Snapshot
  private ents: Array<Entry>

  /** A fresh storage whose initial membership is `confState` (bootstrap). */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.snap = { metadata: { index: 0, term: 0, confState }, data: new Uint8Array(0) }
    this.ents = [{ index: 0, term: 0, type: "Normal", data: new Uint8Array(0) }]
  }

  static make(voters: ReadonlyArray<number>, learners: ReadonlyArray<number> = []): MemoryStorage {
    return new MemoryStorage({ voters: [...voters], learners: [...learners] })
  }

  initialState(): InitialState {
    return { hardState: this.hard, confState: this.snap.metadata.confState }
  }

  hardState(): HardState {
    return this.hard
  }

  setHardState(hs: HardState): void {
    this.hard = hs
  }

  private get offset(): number {
    return this.ents[0]!.index
  }

  firstIndex(): number {
    return this.offset + 1
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1
  }

  term(i: number): number {
    const off = this.offset
    if (i < off) throw new StorageRangeError({ reason: "Compacted", index: i })
    if (i - off >= this.ents.length) throw new StorageRangeError({ reason: "Unavailable", index: i })
    return this.ents[i - off]!.term
  }

  entries(lo: number, hi: number, maxBytes: number): ReadonlyArray<Entry> {
    const off = this.offset
    if (lo <= off) throw new StorageRangeError({ reason: "Compacted", index: lo })
    if (hi > this.lastIndex() + 1) throw new StorageRangeError({ reason: "Unavailable", index: hi })
    return limitSize(this.ents.slice(lo - off, hi - off), maxBytes)
  }

  snapshot(): Snapshot | null {
    return this.snap
  }

  /** All entries currently held (for tests). */
  allEntries(): ReadonlyArray<Entry> {
    return this.ents.slice(1)
  }

  /**
   * Appends entries, replacing any existing entries from `entries[0].index` on.
   * Entries already compacted are skipped.
   */
  append(entries: ReadonlyArray<Entry>): void {
    if (entries.length === 0) return
    const first = this.firstIndex()
    const last = entries[0]!.index + entries.length - 1
    if (last < first) return
    const ents = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries
    const start = ents[0]!.index - this.offset
    if (start > this.ents.length) throw new StorageRangeError({ reason: "OutOfOrder", index: ents[0]!.index })
    this.ents.length = start
    for (const e of ents) this.ents.push(e)
  }

  /** Replaces the contents with a snapshot received from the leader. */
  applySnapshot(s: Snapshot): void {
    if (s.metadata.index <= this.snap.metadata.index) {
      throw new StorageRangeError({ reason: "SnapshotOutOfDate", index: s.metadata.index })
    }
    this.snap = s
    this.ents = [{ index: s.metadata.index, term: s.metadata.term, type: "Normal", data: new Uint8Array(0) }]
  }

  /**
   * Records an application snapshot at `index` (<= the applied index) with the
   * membership in force there. Does not drop entries: call `compact` for that.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) return this.snap
    if (index > this.lastIndex()) throw new StorageRangeError({ reason: "Unavailable", index })
    this.snap = { metadata: { index, term: this.term(index), confState }, data }
    return this.snap
  }

  /** Discards entries up to and including `index` (keeping its term). */
  compact(index: number): void {
    const off = this.offset
    if (index <= off) return
    if (index > this.lastIndex()) throw new StorageRangeError({ reason: "Unavailable", index })
    this.ents = this.ents.slice(index - off)
    const head = this.ents[0]!
    this.ents[0] = { index: head.index, term: head.term, type: "Normal", data: new Uint8Array(0) }
  }
}
