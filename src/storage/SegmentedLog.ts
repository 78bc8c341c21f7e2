/**
 * A generic segmented log of opaque entries. Used for Kafka partition logs
 * (keys = offsets, term = leader epoch, payload = record batch) and for Raft
 * logs (keys = Raft index, term = Raft term).
 *
 * `LogCore` is the synchronous engine: every operation is one plain call,
 * atomic with respect to the JS event loop, so no locks are needed. Only
 * durability (fdatasync) is asynchronous, through the node-wide `WalSync`.
 * `make` wraps it as an Effect-facing `SegmentedLog`, one Effect per batch.
 */
import { Effect, Scope } from "effect"
import * as path from "node:path"
import {
  InvalidAppend,
  OffsetOutOfRange,
  StorageError,
  WalCorrupt,
  toStorageError,
  type LogError
} from "./errors.js"
import type { FileIO } from "./FileIO.js"
import {
  FRAME_HEADER,
  checkFrame,
  decodeFrame,
  encodeFrame,
  encodeHeader,
  frameFirstKey,
  frameIndex,
  frameLastKey,
  frameMaxTimestamp,
  frameTerm,
  type AppendEntry,
  type LogEntry
} from "./Frame.js"
import { OffsetIndex, TimeIndex } from "./SparseIndex.js"
import { MemoryTier } from "./MemoryTier.js"
import { pooledReadSize, readBuffers } from "./ReadBufferPool.js"
import { Segment, parseSegmentName } from "./Segment.js"
import type { JournalParticipant } from "./Journal.js"
import { syncFilesThenDirs, type SyncJob, type Syncable, type WalSync } from "./WalSync.js"

export interface LogConfig {
  /** Roll when a segment would exceed this many bytes (Kafka segment.bytes). */
  readonly segmentBytes: number
  /** Roll when the active segment is older than this (Kafka segment.ms). */
  readonly segmentMs: number
  /** Bytes between offset index entries (Kafka index.interval.bytes). */
  readonly indexIntervalBytes: number
  /** Memory tier budget for this log; 0 disables it. */
  readonly memoryTierBytes: number
  /** Base key of the first segment of a new, empty log. */
  readonly initialKey: number
}

export const defaultLogConfig: LogConfig = {
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  indexIntervalBytes: 4096,
  memoryTierBytes: 4 * 1024 * 1024,
  initialKey: 0
}

export interface AppendResult {
  readonly firstKey: number
  readonly lastKey: number
  /** Frame bytes written. */
  readonly bytes: number
}

export interface ReadResult {
  /** Whole entries, in key order; payloads are views (no copy). */
  readonly entries: ReadonlyArray<LogEntry>
  /** Sum of payload bytes. */
  readonly bytes: number
  /** Key to continue from (after the last returned entry, or fromKey if none). */
  readonly nextFetchKey: number
  /** True if served from the memory tier. */
  readonly fromMemory: boolean
  /**
   * The buffers (from `readBuffers`) the payloads are views of. A reader that
   * is done with every payload may give them back with `readBuffers.release`
   * (the Fetch path does, once the response is written); others just drop them.
   */
  readonly buffers: ReadonlyArray<Buffer>
}

export interface RetentionPolicy {
  /** Delete sealed segments whose newest timestamp is older than now - retentionMs (-1: off). */
  readonly retentionMs: number
  /** Delete oldest sealed segments while the log stays >= retentionBytes without them (-1: off). */
  readonly retentionBytes: number
  readonly now: number
}

export interface RetentionResult {
  readonly deletedSegments: number
  readonly deletedBytes: number
  readonly logStartKey: number
}

export interface RecoveryReport {
  readonly segments: number
  /** Whether the last shutdown was clean (nothing needed a full scan). */
  readonly clean: boolean
  readonly scannedSegments: number
  readonly scannedBytes: number
  /** Bytes removed from torn/corrupt tails (including dropped later segments). */
  readonly truncatedBytes: number
  readonly truncation: { readonly file: string; readonly position: number; readonly reason: string } | undefined
  readonly droppedSegments: number
  readonly rebuiltIndexes: ReadonlyArray<string>
  readonly nextKey: number
  readonly logStartKey: number
}

export interface LogStats {
  readonly segments: number
  readonly sizeBytes: number
  readonly logStartKey: number
  readonly nextKey: number
  readonly durableNextKey: number
  readonly memoryTierBytes: number
  readonly memoryTierEntries: number
}

interface Checkpoint {
  logStartKey: number
  /** Every entry with lastKey < recoveryPoint is durable and complete. */
  recoveryPoint: number
  clean: boolean
  activeSize: number
}

const CHECKPOINT = "checkpoint.json"
/** Average payload size from which appends use a vectored write instead of one copied buffer. */
const VECTORED_MIN_PAYLOAD = 4096

const SCAN_CHUNK = 1024 * 1024

interface SyncWaiter {
  /** writeSeq at the time of the call. */
  readonly seq: number
  readonly done: (error?: StorageError) => void
  /** Nobody's reply waits for it: its pass may wait (a `WalSync` background request). */
  readonly background: boolean
}

interface Waiter {
  readonly key: number
  /** Called once: with no argument when durable, with the error when the log failed or closed. */
  readonly done: (error?: StorageError) => void
}

/** Thrown internally when a scan finds a bad frame. */
class BadFrame {
  constructor(readonly position: number, readonly reason: string) {}
}

export class LogCore implements Syncable, JournalParticipant {
  private segments: Array<Segment> = []
  private _logStartKey = 0
  private _nextKey = 0
  /** Entries with lastKey < durableNext are durable per the policy. */
  private durableNext = 0
  private recoveryPoint = 0
  private epoch = 0
  private dirDirty = false
  private checkpointDirty = false
  private failed: StorageError | undefined
  private closed = false
  private waiters: Array<Waiter> = []
  /** Bumped by every write and truncation; `syncedSeq` is the value covered by the last completed pass. */
  private writeSeq = 0
  private syncedSeq = 0
  private syncWaiters: Array<SyncWaiter> = []
  /** Journaled writes since the last `beginSync` (the pass must sync the journal for them). */
  private journaled = false
  private readonly tier: MemoryTier
  private scratch = Buffer.allocUnsafe(64 * FRAME_HEADER)
  /** Writes complete after `write` returns (FileIO.whenWritten); see `onWritten`. */
  private readonly asyncWrites: boolean
  /** Asynchronous writes not yet completed, per segment fd. */
  private pendingWrites = new Map<number, number>()
  private report!: RecoveryReport
  private rollListener: ((base: number) => void) | undefined

  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly config: LogConfig,
    private readonly io: FileIO,
    private readonly sync: WalSync
  ) {
    this.tier = new MemoryTier(config.memoryTierBytes)
    this.asyncWrites = io.whenWritten !== undefined
  }

  /** Sets this log's memory tier budget (LogStore divides the node-wide budget among open logs). */
  setMemoryTierBytes(bytes: number): void {
    this.tier.setCapacity(bytes)
  }

  // -------------------------------------------------------------------------
  // accessors

  get logStartKey(): number {
    return this._logStartKey
  }
  get nextKey(): number {
    return this._nextKey
  }
  /** Key of the last entry's lastKey, or nextKey - 1 if empty. */
  get lastKey(): number {
    return this._nextKey - 1
  }
  get durableNextKey(): number {
    return this.durableNext
  }
  get recovery(): RecoveryReport {
    return this.report
  }
  get segmentBases(): ReadonlyArray<number> {
    return this.segments.map((s) => s.base)
  }
  /** The FileIO this log uses (for files kept next to its segments, e.g. producer snapshots). */
  get fileIO(): FileIO {
    return this.io
  }

  /**
   * Sets (or clears) the function called, synchronously and at most once per
   * roll, after the log rolled to a new segment starting at `base` (every
   * entry below `base` is in sealed segments). It must not throw and must
   * not call back into the log; errors are ignored.
   */
  setRollListener(listener: ((base: number) => void) | undefined): void {
    this.rollListener = listener
  }
  stats(): LogStats {
    let size = 0
    for (const s of this.segments) size += s.size
    return {
      segments: this.segments.length,
      sizeBytes: size,
      logStartKey: this._logStartKey,
      nextKey: this._nextKey,
      durableNextKey: this.durableNext,
      memoryTierBytes: this.tier.byteSize,
      memoryTierEntries: this.tier.size
    }
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!
  }

  private err(op: string, e: unknown): LogError {
    return toStorageError(this.id, op, e)
  }

  private usable(op: string): void {
    if (this.closed) throw new StorageError({ log: this.id, op, code: "ECLOSED", reason: "log is closed" })
    if (this.failed) throw this.failed
  }

  // -------------------------------------------------------------------------
  // append

  /** Writes `entries` (to the OS, not yet durable). */
  append(entries: ReadonlyArray<AppendEntry>, now: number): AppendResult {
    this.usable("append")
    const n = entries.length
    if (n === 0) return { firstKey: this._nextKey, lastKey: this._nextKey - 1, bytes: 0 }
    let expect = this._nextKey
    let lastIndex = this.lastIndex()
    for (let i = 0; i < n; i++) {
      const e = entries[i]!
      if (!Number.isSafeInteger(e.firstKey) || !Number.isSafeInteger(e.lastKey) || e.lastKey < e.firstKey - 1) {
        throw new InvalidAppend({ log: this.id, reason: `bad keys ${e.firstKey}..${e.lastKey}` })
      }
      if (e.lastKey < e.firstKey) {
        // empty-range entry: takes no key, sits exactly at the log end
        if (e.firstKey !== expect) {
          throw new InvalidAppend({ log: this.id, reason: `empty-range entry at ${e.firstKey} != expected ${expect}` })
        }
      } else if (e.firstKey < expect) {
        throw new InvalidAppend({ log: this.id, reason: `key ${e.firstKey} < expected ${expect}` })
      }
      if (!Number.isSafeInteger(e.term) || !Number.isSafeInteger(e.maxTimestamp)) {
        throw new InvalidAppend({ log: this.id, reason: "term and maxTimestamp must be safe integers" })
      }
      const index = e.index ?? 0
      if (!Number.isSafeInteger(index) || index < 0) {
        throw new InvalidAppend({ log: this.id, reason: `bad index ${index}` })
      }
      if (lastIndex > 0 && index !== lastIndex + 1) {
        throw new InvalidAppend({ log: this.id, reason: `index ${index} != expected ${lastIndex + 1}` })
      }
      if (index > 0) lastIndex = index
      if (e.lastKey >= e.firstKey) expect = e.lastKey + 1
    }
    const { segmentBytes, segmentMs } = this.config
    let total = 0
    let i = 0
    while (i < n) {
      let seg = this.active
      if (seg.size > 0 && now - seg.createdAt >= segmentMs) {
        this.roll(this._nextKey, now)
        seg = this.active
      }
      let bytes = 0
      let j = i
      while (j < n) {
        const s = FRAME_HEADER + entries[j]!.payload.length
        if ((j > i || seg.size > 0) && seg.size + bytes + s > segmentBytes) break
        bytes += s
        j++
      }
      if (j === i) {
        if (seg.nextKey !== seg.base || seg.size === 0) {
          this.roll(this._nextKey, now)
          continue
        }
        // a segment holding only empty-range entries cannot roll (the next one would
        // get the same base): it takes the entry even past segmentBytes
        bytes = FRAME_HEADER + entries[i]!.payload.length
        j = i + 1
      }
      this.writeChunk(seg, entries, i, j, bytes)
      total += bytes
      i = j
    }
    this.sync.markDirty(this)
    return { firstKey: entries[0]!.firstKey, lastKey: entries[n - 1]!.lastKey, bytes: total }
  }

  private writeChunk(seg: Segment, entries: ReadonlyArray<AppendEntry>, from: number, to: number, bytes: number): void {
    const n = to - from
    // Large payloads: vectored write of [header, payload]* with headers in a reused
    // scratch buffer, so payload bytes are never copied. Small ones: one contiguous buffer.
    const vectored = bytes - n * FRAME_HEADER >= n * VECTORED_MIN_PAYLOAD
    const pos = seg.size
    let buf: Buffer | undefined
    try {
      const fd = seg.logFd()
      if (vectored) {
        // an asynchronous write reads its headers later: they get a buffer of their own
        let headers = this.scratch
        if (this.asyncWrites) headers = Buffer.allocUnsafe(n * FRAME_HEADER)
        else if (headers.length < n * FRAME_HEADER) headers = this.scratch = Buffer.allocUnsafe(n * FRAME_HEADER * 2)
        const iov: Array<Uint8Array> = []
        for (let k = 0; k < n; k++) {
          const e = entries[from + k]!
          encodeHeader(headers, k * FRAME_HEADER, e)
          iov.push(headers.subarray(k * FRAME_HEADER, (k + 1) * FRAME_HEADER), e.payload)
        }
        this.io.writev(fd, iov, pos)
        this.sync.journal?.write(seg.logPath, pos, iov, bytes)
      } else {
        buf = Buffer.allocUnsafe(bytes)
        let w = 0
        for (let k = from; k < to; k++) w += encodeFrame(buf, w, entries[k]!)
        this.io.write(fd, buf, pos)
        this.sync.journal?.write(seg.logPath, pos, [buf], bytes)
      }
      if (this.asyncWrites) this.trackWrite(fd)
    } catch (e) {
      this.undoWrite(seg, pos)
      throw this.err("append", e)
    }
    let at = 0
    const interval = this.config.indexIntervalBytes
    for (let k = from; k < to; k++) {
      const e = entries[k]!
      const size = FRAME_HEADER + e.payload.length
      // empty-range entries take no key: no index entry, no time index, no max timestamp
      const keyed = e.lastKey >= e.firstKey
      if (keyed) {
        if (seg.bytesSinceIndex > interval) {
          seg.offsetIndex.append(e.firstKey, pos + at)
          seg.timeIndex.maybeAppend(seg.maxTimestamp, seg.keyOfMaxTimestamp)
          seg.bytesSinceIndex = 0
        }
        if (e.maxTimestamp > seg.maxTimestamp) {
          seg.maxTimestamp = e.maxTimestamp
          seg.keyOfMaxTimestamp = e.firstKey
        }
      }
      seg.bytesSinceIndex += size
      const index = e.index ?? 0
      if (index > 0 && seg.firstIndex === 0) seg.firstIndex = index
      seg.lastIndex = index
      seg.lastTerm = e.term
      if (this.tier.capacity > 0) {
        // the tier copies the payload into its ring
        this.tier.push({
          firstKey: e.firstKey,
          lastKey: e.lastKey,
          term: e.term,
          maxTimestamp: keyed ? e.maxTimestamp : -1,
          type: e.type & 0xff,
          index,
          payload: buf ? buf.subarray(at + FRAME_HEADER, at + size) : asBuffer(e.payload)
        })
      }
      at += size
    }
    // frames this process encoded need no CRC check when read back
    if (seg.verifiedEnd === pos) seg.verifiedEnd = pos + bytes
    seg.size = pos + bytes
    seg.nextKey = entries[to - 1]!.lastKey + 1
    if (this.sync.journal !== undefined) {
      // durable through the journal; the segment itself is synced by a checkpoint or at close
      seg.unsynced = true
      this.journaled = true
      this.sync.journal.track(this)
    } else {
      seg.dirty = true
    }
    this._nextKey = seg.nextKey
    this.writeSeq++
  }

  /** Counts an asynchronous write until it completes; a failed one fails the log. */
  private trackWrite(fd: number): void {
    this.pendingWrites.set(fd, (this.pendingWrites.get(fd) ?? 0) + 1)
    this.io.whenWritten!(fd, (error) => {
      const left = this.pendingWrites.get(fd)! - 1
      if (left > 0) this.pendingWrites.set(fd, left)
      else this.pendingWrites.delete(fd)
      if (error !== undefined && this.failed === undefined) this.fail("write", error)
    })
  }

  /**
   * Calls `done` once every entry appended before the call is written to the
   * file system (page cache), with the error if a write failed: at once when
   * writes are synchronous (they are written when `append` returns). acks=0/1
   * produce replies wait for it (docs/async-segment-writes.md).
   */
  onWritten(done: (error?: StorageError) => void): void {
    if (this.failed) return done(this.failed)
    if (this.pendingWrites.size === 0) return done()
    const fds = [...this.pendingWrites.keys()]
    let left = fds.length
    for (const fd of fds) {
      this.io.whenWritten!(fd, () => {
        if (--left === 0) done(this.failed)
      })
    }
  }

  /** Remove a segment's files, recorded in the journal first so replay does not bring them back. */
  private removeSegment(s: Segment): void {
    this.sync.journal?.delete(s.logPath)
    s.deleteFiles()
  }

  /** Cut a segment's log file to `size` bytes, recorded in the journal first. */
  private truncateSegment(s: Segment, size: number): void {
    this.sync.journal?.truncate(s.logPath, size)
    this.io.truncate(s.logFd(), size)
  }

  /** A write failed, maybe part-way: cut the file back so no partial frame stays. */
  private undoWrite(seg: Segment, pos: number): void {
    try {
      this.io.truncate(seg.logFd(), pos)
    } catch (e) {
      this.fail("undo-write", e)
    }
  }

  private fail(op: string, e: unknown): void {
    const err = this.err(op, e)
    this.failed =
      err instanceof StorageError
        ? err
        : new StorageError({ log: this.id, op, code: "EFAILED", reason: err.message })
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w.done(this.failed)
    this.rejectSyncWaiters(this.failed)
  }

  private rejectSyncWaiters(error: StorageError): void {
    const ws = this.syncWaiters
    this.syncWaiters = []
    for (const w of ws) w.done(error)
  }

  /**
   * Seal the active segment and start a new one at `base`, which must be
   * nextKey: segments are contiguous (each starts where the previous ends),
   * which is what lets recovery detect a lost segment tail.
   */
  roll(base: number, now: number): void {
    this.usable("roll")
    const old = this.active
    if (base !== this._nextKey) throw new InvalidAppend({ log: this.id, reason: `roll base ${base} != nextKey ${this._nextKey}` })
    if (old.size === 0 && base === old.base) return
    // only empty-range entries so far: the new segment would have the same base (name)
    if (old.size > 0 && old.nextKey === old.base) return
    const seg = new Segment(this.io, this.dir, base, now)
    try {
      seg.logFd()
    } catch (e) {
      throw this.err("roll", e)
    }
    if (old.size === 0) {
      this.removeSegment(old)
      this.segments[this.segments.length - 1] = seg
    } else {
      try {
        // its final size: replay cuts anything a crash left past it (a sealed segment is read strictly)
        this.sync.journal?.truncate(old.logPath, old.size)
        old.seal()
      } catch (e) {
        // never written: nothing in the journal refers to it
        seg.deleteFiles()
        throw this.err("roll", e)
      }
      this.segments.push(seg)
      this.checkpointDirty = true
    }
    this.dirDirty = true
    this.sync.markDirty(this)
    // under every policy a sealed segment is synced soon (background pass), so the recovery point advances
    this.sync.requestFlush()
    if (this.rollListener !== undefined && old.size > 0) {
      try {
        this.rollListener(base)
      } catch {
        // a listener failure never fails the append that rolled
      }
    }
  }

  // -------------------------------------------------------------------------
  // durability

  /** Resolves when every entry with lastKey <= key is durable per the fsync policy. */
  awaitDurable(key: number): Promise<void> {
    return new Promise<void>((resolve, reject) => this.onDurable(key, (e) => (e === undefined ? resolve() : reject(e))))
  }

  /**
   * Calls `done` once every entry with lastKey <= key is durable per the
   * fsync policy (synchronously if it already is), or with the error if the
   * log fails or closes first. The callback form of `awaitDurable` for hot
   * paths: no promise, no fiber.
   */
  onDurable(key: number, done: (error?: StorageError) => void): void {
    if (this.failed) return done(this.failed)
    // never: durable means in the page cache (it survives the process, not the machine)
    if (this.sync.policy._tag === "never") return this.onWritten(done)
    if (key < this.durableNext) return done()
    if (key >= this._nextKey) key = this._nextKey - 1
    if (key < this.durableNext) return done()
    this.waiters.push({ key, done })
    if (this.sync.policy._tag === "batch") {
      this.sync.markDirty(this)
      this.sync.requestFlush()
    }
  }

  /**
   * Calls `done` once every byte appended (and every truncation made) before
   * the call is durable per the fsync policy: at once under `never` or if it
   * already is, with the error if the log fails or closes first. Unlike
   * `onDurable(key)` it also covers empty-range entries, which take no key.
   * Uses the same group-commit passes. `background`: nobody's reply waits for
   * it, so its pass may wait for the store's background sync delay.
   */
  onSynced(done: (error?: StorageError) => void, background = false): void {
    if (this.failed) return done(this.failed)
    if (this.closed) return done(new StorageError({ log: this.id, op: "onSynced", code: "ECLOSED", reason: "log is closed" }))
    if (this.sync.policy._tag === "never") return this.onWritten(done)
    if (this.writeSeq <= this.syncedSeq) return done()
    this.syncWaiters.push({ seq: this.writeSeq, done, background })
    this.sync.markDirty(this)
    if (this.sync.policy._tag === "batch") this.sync.requestFlush(background)
  }

  /** `onSynced` as a promise. */
  awaitSynced(): Promise<void> {
    return new Promise<void>((resolve, reject) => this.onSynced((e) => (e === undefined ? resolve() : reject(e))))
  }

  beginSync(): SyncJob | undefined {
    if (this.failed) return undefined
    const segs: Array<Segment> = []
    const fds: Array<number> = []
    try {
      for (const s of this.segments) {
        if (s.dirty) {
          s.flushIndexes()
          fds.push(s.logFd())
          s.dirty = false
          s.unsynced = false
          s.syncing++
          segs.push(s)
        }
        if (s.indexDirty && s.sealed) {
          const ifds = s.indexFds()
          if (ifds.length > 0) {
            fds.push(...ifds)
            if (!segs.includes(s)) {
              s.syncing++
              segs.push(s)
            }
          }
          s.indexDirty = false
        }
      }
    } catch (e) {
      for (const s of segs) s.syncDone()
      this.fail("sync", e)
      return undefined
    }
    const dirs = this.dirDirty ? [this.dir] : []
    this.dirDirty = false
    const journaled = this.journaled
    this.journaled = false
    if (fds.length === 0 && dirs.length === 0 && !journaled) {
      this.resolveWaiters()
      return undefined
    }
    const target = this._nextKey
    const seqTarget = this.writeSeq
    const epoch = this.epoch
    const checkpoint = this.checkpointDirty
    this.checkpointDirty = false
    const activeBase = this.active.base
    return {
      fds,
      dirs,
      complete: (error) => {
        for (const s of segs) {
          s.syncDone()
          if (s.sealed && !s.isClosing) s.closeIndexFds()
        }
        if (error !== undefined) {
          // fsync failure: the page cache state is unknown (fsyncgate); stop accepting writes
          this.fail("fdatasync", error)
          return
        }
        if (epoch === this.epoch) {
          if (target > this.durableNext) this.durableNext = target
          if (seqTarget > this.syncedSeq) this.syncedSeq = seqTarget
          if (checkpoint && !this.closed) {
            this.recoveryPoint = Math.max(this.recoveryPoint, Math.min(activeBase, target))
            try {
              this.writeCheckpoint(false)
            } catch (e) {
              this.fail("checkpoint", e)
              return
            }
          }
        } else {
          this.checkpointDirty ||= checkpoint
          this.sync.markDirty(this)
        }
        const keyWaitersResolved = this.resolveWaiters()
        if ((this.waiters.length > 0 || this.syncWaiters.length > 0) && this.sync.policy._tag === "batch") {
          this.sync.markDirty(this)
          // a background waiter left behind a resolved key waiter is likely the commit notice that
          // waiter's reply needs (acks=all), registered after this pass began: no delay for it then
          const background = !keyWaitersResolved && this.waiters.length === 0 &&
            this.syncWaiters.every((w) => w.background)
          this.sync.requestFlush(background)
        }
      }
    }
  }

  /** The segments holding journaled writes no fdatasync of their own covers yet (a journal checkpoint syncs them). */
  beginCheckpoint(): SyncJob | undefined {
    if (this.failed) {
      // its journaled writes were acknowledged: the journal must keep them until a restart replays them
      if (this.segments.some((s) => s.unsynced)) throw this.failed
      return undefined
    }
    if (this.closed) return undefined
    const segs: Array<Segment> = []
    const fds: Array<number> = []
    try {
      for (const s of this.segments) {
        if (!s.unsynced) continue
        fds.push(s.logFd())
        s.unsynced = false
        s.syncing++
        segs.push(s)
      }
    } catch (e) {
      for (const s of segs) s.syncDone()
      this.fail("checkpoint", e)
      return undefined
    }
    if (fds.length === 0) return undefined
    return {
      fds,
      dirs: [],
      complete: (error) => {
        for (const s of segs) {
          s.syncDone()
          if (error !== undefined) s.unsynced = true
        }
        if (error !== undefined) this.fail("fdatasync", error)
      }
    }
  }

  /** Calls the waiters the durable marks now cover; true if a key waiter (`onDurable`) was among them. */
  private resolveWaiters(): boolean {
    if (this.syncWaiters.length > 0) {
      const keepSync: Array<SyncWaiter> = []
      const ready: Array<SyncWaiter> = []
      for (const w of this.syncWaiters) (w.seq <= this.syncedSeq ? ready : keepSync).push(w)
      this.syncWaiters = keepSync
      for (const w of ready) w.done()
    }
    if (this.waiters.length === 0) return false
    const keep: Array<Waiter> = []
    let resolved = false
    for (const w of this.waiters) {
      if (w.key < this.durableNext || w.key >= this._nextKey) {
        resolved = true
        w.done()
      } else keep.push(w)
    }
    this.waiters = keep
    return resolved
  }

  private writeCheckpoint(clean: boolean): void {
    const cp: Checkpoint = {
      logStartKey: this._logStartKey,
      recoveryPoint: this.recoveryPoint,
      clean,
      activeSize: clean ? this.active.size : -1
    }
    this.io.writeFileDurable(path.join(this.dir, CHECKPOINT), Buffer.from(JSON.stringify(cp)))
  }

  // -------------------------------------------------------------------------
  // read

  private segmentIndexFor(key: number): number {
    let lo = 0
    let hi = this.segments.length - 1
    let ans = 0
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.segments[mid]!.base <= key) {
        ans = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return ans
  }

  private outOfRange(key: number): OffsetOutOfRange {
    return new OffsetOutOfRange({ log: this.id, key, logStartKey: this._logStartKey, nextKey: this._nextKey })
  }

  /**
   * Whole entries whose range covers or follows `fromKey`: the entry
   * containing fromKey first (never split), then following entries while the
   * payload total stays <= maxBytes (the first entry is always returned,
   * KIP-74) and lastKey <= maxKey.
   */
  read(fromKey: number, maxBytes: number, maxKey = Number.MAX_SAFE_INTEGER): ReadResult {
    if (this.closed) throw new StorageError({ log: this.id, op: "read", code: "ECLOSED", reason: "log is closed" })
    if (fromKey < this._logStartKey || fromKey > this._nextKey) throw this.outOfRange(fromKey)
    const out: Array<LogEntry> = []
    const buffers: Array<Buffer> = []
    if (fromKey === this._nextKey) return { entries: out, bytes: 0, nextFetchKey: fromKey, fromMemory: false, buffers }
    const tierFirst = this.tier.firstKey()
    if (tierFirst !== undefined && tierFirst <= fromKey) {
      const bytes = this.tier.read(fromKey, maxBytes, maxKey, out, buffers)
      return { entries: out, bytes, nextFetchKey: next(out, fromKey), fromMemory: true, buffers }
    }
    let bytes = 0
    try {
      for (let si = this.segmentIndexFor(fromKey); si < this.segments.length; si++) {
        const seg = this.segments[si]!
        if (seg.nextKey <= fromKey) continue
        const pos = seg.offsetIndex.lookup(fromKey)
        const r = this.readSegment(seg, pos, fromKey, maxBytes, maxKey, out, bytes, buffers)
        bytes = r.bytes
        if (r.done) break
      }
    } catch (e) {
      throw this.err("read", e)
    }
    return { entries: out, bytes, nextFetchKey: next(out, fromKey), fromMemory: false, buffers }
  }

  /**
   * Reads whole frames of `seg` from file position `start`. A frame's CRC is
   * checked unless it lies below `seg.verifiedEnd` (frames this process wrote,
   * or already checked by an earlier read): every byte is checked once.
   */
  private readSegment(
    seg: Segment,
    start: number,
    fromKey: number,
    maxBytes: number,
    maxKey: number,
    out: Array<LogEntry>,
    bytes0: number,
    buffers: Array<Buffer>
  ): { bytes: number; done: boolean } {
    let bytes = bytes0
    let pos = start
    const end = seg.size
    const fd = seg.logFd()
    let want = Math.max(0, maxBytes - bytes) + this.config.indexIntervalBytes + 2 * FRAME_HEADER
    /** Bytes the next read must cover (a frame that did not fit in the previous one). */
    let need = 0
    while (pos < end) {
      const len = Math.min(end - pos, pooledReadSize(Math.max(want, FRAME_HEADER), need))
      const buf = readBuffers.acquire(len)
      buffers.push(buf)
      const got = this.io.read(fd, buf, 0, len, pos)
      if (got === 0) {
        throw new WalCorrupt({ log: this.id, file: seg.logPath, position: pos, reason: "segment shorter than expected" })
      }
      let at = 0
      need = 0
      while (at < got) {
        const framePos = pos + at
        const c = checkFrame(buf, at, got, framePos >= seg.verifiedEnd)
        if (c._tag === "incomplete") {
          if (pos + at + c.need > end || got < len) {
            throw new WalCorrupt({
              log: this.id,
              file: seg.logPath,
              position: pos + at,
              reason: "frame extends past the end of the segment"
            })
          }
          need = c.need
          break
        }
        if (c._tag === "bad") {
          throw new WalCorrupt({ log: this.id, file: seg.logPath, position: pos + at, reason: c.reason })
        }
        if (framePos === seg.verifiedEnd) seg.verifiedEnd = framePos + c.size
        const last = frameLastKey(buf, at)
        // empty-range frames (lastKey = firstKey - 1) take no key and are never returned by key reads
        if (last >= fromKey && last >= frameFirstKey(buf, at)) {
          if (last > maxKey) return { bytes, done: true }
          const plen = c.size - FRAME_HEADER
          if (out.length > 0 && bytes + plen > maxBytes) return { bytes, done: true }
          out.push(decodeFrame(buf, at, c.size))
          bytes += plen
          if (bytes >= maxBytes) return { bytes, done: true }
        }
        at += c.size
      }
      pos += at
      want = Math.max(need, Math.max(0, maxBytes - bytes) + 2 * FRAME_HEADER)
    }
    return { bytes, done: false }
  }

  /** The entry containing `key` (Raft: term at an index), or undefined if out of range. */
  entryAt(key: number): LogEntry | undefined {
    if (key < this._logStartKey || key >= this._nextKey) return undefined
    const e = this.read(key, 0).entries[0]
    return e !== undefined && e.firstKey <= key ? e : undefined
  }

  /** Metadata of the first entry at or after logStartKey with maxTimestamp >= ts. */
  offsetForTimestamp(ts: number): LogEntry | undefined {
    if (this.closed) throw new StorageError({ log: this.id, op: "read", code: "ECLOSED", reason: "log is closed" })
    try {
      for (const seg of this.segments) {
        if (seg.maxTimestamp < ts || seg.nextKey <= this._logStartKey) continue
        const k = seg.timeIndex.lookup(ts)
        const startKey = Math.max(k, this._logStartKey)
        const pos = seg.offsetIndex.lookup(startKey)
        let found: LogEntry | undefined
        this.scan(seg, pos, seg.size, true, (buf, at, size) => {
          const last = frameLastKey(buf, at)
          if (last >= this._logStartKey && last >= frameFirstKey(buf, at) && frameMaxTimestamp(buf, at) >= ts) {
            found = decodeFrame(buf, at, size)
            return false
          }
          return true
        })
        if (found) return found
      }
    } catch (e) {
      throw this.err("offsetForTimestamp", e)
    }
    return undefined
  }

  /**
   * The entry with the largest maxTimestamp (the first one on ties) among
   * entries with logStartKey <= lastKey < bound, or undefined if none.
   * Uses each segment's maxTimestamp / keyOfMaxTimestamp: a segment wholly
   * inside the range answers from memory; a segment cut by the range (the one
   * holding logStartKey, those reaching bound) answers with its max entry if
   * that entry is in range, and is scanned (only its part in range) only when
   * it is not and the segment could still beat the best found elsewhere.
   * Reads one entry (the winner) in the common case.
   */
  maxTimestampBefore(bound: number): LogEntry | undefined {
    if (this.closed) throw new StorageError({ log: this.id, op: "read", code: "ECLOSED", reason: "log is closed" })
    const start = this._logStartKey
    if (bound > this._nextKey) bound = this._nextKey
    if (bound <= start) return undefined
    try {
      // best so far: timestamp, firstKey of its entry, and the entry if already read
      let bestTs = -Infinity
      let bestKey = -1
      let bestEntry: LogEntry | undefined
      const better = (ts: number, key: number): boolean =>
        bestKey < 0 || ts > bestTs || (ts === bestTs && key < bestKey)
      const unresolved: Array<Segment> = []
      for (const seg of this.segments) {
        if (seg.nextKey <= start || seg.size === 0 || seg.keyOfMaxTimestamp < 0) continue
        if (seg.base >= bound) break
        if (seg.base >= start && seg.nextKey <= bound) {
          // every entry of the segment is in range
          if (better(seg.maxTimestamp, seg.keyOfMaxTimestamp)) {
            bestTs = seg.maxTimestamp
            bestKey = seg.keyOfMaxTimestamp
            bestEntry = undefined
          }
          continue
        }
        if (!better(seg.maxTimestamp, seg.keyOfMaxTimestamp)) continue
        const e = this.entryAt(seg.keyOfMaxTimestamp)
        if (e !== undefined && e.firstKey === seg.keyOfMaxTimestamp && e.lastKey >= start && e.lastKey < bound) {
          bestTs = e.maxTimestamp
          bestKey = e.firstKey
          bestEntry = e
        } else unresolved.push(seg)
      }
      for (const seg of unresolved) {
        // nothing in this segment can beat the best: skip it unread
        if (bestKey >= 0 && (seg.maxTimestamp < bestTs || (seg.maxTimestamp === bestTs && seg.base > bestKey))) continue
        const from = Math.max(start, seg.base)
        this.scan(seg, seg.offsetIndex.lookup(from), seg.size, true, (buf, at, size) => {
          const last = frameLastKey(buf, at)
          const first = frameFirstKey(buf, at)
          if (last < start || last < first) return true
          if (last >= bound) return false
          const ts = frameMaxTimestamp(buf, at)
          if (better(ts, first)) {
            bestTs = ts
            bestKey = first
            bestEntry = decodeFrame(Buffer.from(buf.subarray(at, at + size)), 0, size)
          }
          return true
        })
      }
      if (bestKey < 0) return undefined
      return bestEntry ?? this.entryAt(bestKey)
    } catch (e) {
      throw this.err("maxTimestamp", e)
    }
  }

  /**
   * Iterate frames of a segment in [from, to). `strict`: a bad frame throws
   * WalCorrupt; otherwise throws BadFrame for the caller to truncate.
   * The callback returns false to stop.
   */
  private scan(
    seg: Segment,
    from: number,
    to: number,
    strict: boolean,
    f: (buf: Buffer, at: number, size: number, position: number) => boolean
  ): number {
    const fd = seg.logFd()
    let pos = from
    let want = SCAN_CHUNK
    while (pos < to) {
      const len = Math.min(to - pos, want)
      const buf = Buffer.allocUnsafe(len)
      const got = this.io.read(fd, buf, 0, len, pos)
      let at = 0
      while (at < got) {
        const c = checkFrame(buf, at, got)
        if (c._tag === "incomplete") {
          if (pos + at + c.need > to || got < len) {
            const reason = "truncated frame at end of segment"
            if (strict) throw new WalCorrupt({ log: this.id, file: seg.logPath, position: pos + at, reason })
            throw new BadFrame(pos + at, reason)
          }
          want = Math.max(c.need, SCAN_CHUNK)
          break
        }
        if (c._tag === "bad") {
          if (strict) throw new WalCorrupt({ log: this.id, file: seg.logPath, position: pos + at, reason: c.reason })
          throw new BadFrame(pos + at, c.reason)
        }
        if (!f(buf, at, c.size, pos + at)) return pos + at
        at += c.size
      }
      if (got === 0) break
      pos += at
    }
    return pos
  }

  // -------------------------------------------------------------------------
  // truncation and retention

  /**
   * Remove every entry with lastKey > key (an entry straddling key is removed
   * whole). Since lastKey never decreases along the log, this keeps a prefix:
   * everything up to the last frame with lastKey <= key, including the
   * empty-range frames at key + 1 that sit right after it (they have
   * lastKey = key), and removes everything after it.
   */
  truncateAfter(key: number, now = Date.now()): void {
    this.usable("truncateAfter")
    if (key >= this._nextKey - 1) return
    this.cutTail(
      "truncateAfter",
      now,
      // a segment based at key + 1 may start with empty-range frames that stay
      (s) => s.base > key + 1,
      (seg) => seg.offsetIndex.floorIndex(key),
      (buf, at) => frameLastKey(buf, at) > key
    )
    this.tier.truncateAfter(key)
  }

  /**
   * Remove every frame whose Raft index is > `index` (a Raft follower's
   * conflicting suffix). Keys follow: nextKey becomes lastKey + 1 of the last
   * remaining keyed frame (or the segment base when the segment is left
   * empty). A no-op if the log has no frame with a larger index.
   */
  truncateAfterIndex(index: number, now = Date.now()): void {
    this.usable("truncateAfterIndex")
    const last = this.lastIndex()
    if (last === 0 || index >= last) return
    const target = Math.max(0, index)
    this.cutTail(
      "truncateAfterIndex",
      now,
      (s) => s.size === 0 || s.firstIndex > target,
      (seg) => this.indexEntryAtOrBefore(seg, target + 1),
      (buf, at) => frameIndex(buf, at) > target
    )
    this.tier.truncateAfterIndex(target)
  }

  /**
   * Cut the log after its longest prefix of frames for which `removes` is
   * false (`removes` must be monotone along the log). `dropSegment` says a
   * whole segment goes; `startEntry` picks the offset index entry of the
   * landing segment to scan from (-1: its start), which must lie at or
   * before the cut.
   */
  private cutTail(
    op: string,
    now: number,
    dropSegment: (s: Segment) => boolean,
    startEntry: (s: Segment) => number,
    removes: (buf: Buffer, at: number) => boolean
  ): void {
    try {
      let land = this.segments.length - 1
      while (land > 0 && dropSegment(this.segments[land]!)) land--
      // lower the recovery point durably first, so a crash never trusts the rewritten tail
      const landBase = this.segments[land]!.base
      if (this.recoveryPoint > landBase) {
        this.recoveryPoint = Math.max(0, landBase)
        this.writeCheckpoint(false)
      }
      // drop whole segments from the end first: a crash midway leaves a prefix of the log
      while (this.segments.length > land + 1) {
        const s = this.segments.pop()!
        this.removeSegment(s)
      }
      const seg = this.active
      let cut = seg.size
      const ip = startEntry(seg)
      const startPos = ip >= 0 ? seg.offsetIndex.position(ip) : 0
      const startKey = ip >= 0 ? seg.offsetIndex.key(ip) : seg.base
      // max timestamp of the frames before startPos, from the time index
      let maxTs = seg.timeIndex.timestampBefore(startKey)
      let keyOfMax = seg.timeIndex.keyBefore(startKey)
      let newNext = startKey
      let lastIndex = -1
      let lastTerm = 0
      this.scan(seg, startPos, seg.size, true, (buf, at, _size, position) => {
        if (removes(buf, at)) {
          cut = position
          return false
        }
        const first = frameFirstKey(buf, at)
        const lastKey = frameLastKey(buf, at)
        lastIndex = frameIndex(buf, at)
        lastTerm = frameTerm(buf, at)
        if (lastKey < first) return true
        newNext = lastKey + 1
        const ts = frameMaxTimestamp(buf, at)
        if (ts > maxTs) {
          maxTs = ts
          keyOfMax = first
        }
        return true
      })
      this.truncateSegment(seg, cut)
      seg.size = cut
      seg.verifiedEnd = Math.min(seg.verifiedEnd, cut)
      seg.nextKey = cut === 0 ? seg.base : newNext
      seg.maxTimestamp = maxTs
      seg.keyOfMaxTimestamp = keyOfMax
      seg.offsetIndex.truncateToPosition(cut)
      seg.timeIndex.truncateToKey(seg.nextKey)
      seg.bytesSinceIndex = this.bytesSinceLastIndex(seg)
      if (cut === 0) {
        seg.firstIndex = 0
        seg.lastIndex = 0
        seg.lastTerm = 0
      } else if (lastIndex >= 0) {
        seg.lastIndex = lastIndex
        seg.lastTerm = lastTerm
      } else {
        // the cut is at startPos: the last frame left lies before it
        this.loadLastFrame(seg)
      }
      if (seg.firstIndex > seg.lastIndex) seg.firstIndex = seg.lastIndex
      if (seg.sealed) {
        seg.sealed = false
        seg.indexDirty = false
        seg.createdAt = now
      }
      seg.truncateIndexFiles()
      seg.dirty = true
      this._nextKey = seg.nextKey
      if (this._logStartKey > this._nextKey) this._logStartKey = this._nextKey
      if (this.durableNext > this._nextKey) this.durableNext = this._nextKey
      this.epoch++
      this.writeSeq++
      this.dirDirty = true
      this.sync.markDirty(this)
    } catch (e) {
      this.fail(op, e)
      throw this.failed!
    }
  }

  /** Sets seg.lastIndex/lastTerm from its last frame (scan from the last offset index entry before the end). */
  private loadLastFrame(seg: Segment): void {
    seg.lastIndex = 0
    seg.lastTerm = 0
    if (seg.size === 0) return
    const oi = seg.offsetIndex
    let i = oi.count - 1
    while (i >= 0 && oi.position(i) >= seg.size) i--
    this.scan(seg, i >= 0 ? oi.position(i) : 0, seg.size, true, (buf, at) => {
      seg.lastIndex = frameIndex(buf, at)
      seg.lastTerm = frameTerm(buf, at)
      return true
    })
  }

  /** Raft index of the frame at `pos` (a frame boundary) of `seg`. */
  private indexAtPosition(seg: Segment, pos: number): number {
    const b = Buffer.allocUnsafe(FRAME_HEADER)
    const got = this.io.read(seg.logFd(), b, 0, FRAME_HEADER, pos)
    if (got < FRAME_HEADER) {
      throw new WalCorrupt({ log: this.id, file: seg.logPath, position: pos, reason: "frame header past the end of the segment" })
    }
    return frameIndex(b, 0)
  }

  /**
   * The last offset index entry of `seg` whose frame has a Raft index < `index`
   * (-1: none, scan from the segment start). Binary search with one header
   * read per probe; Raft indexes never decrease along the log.
   */
  private indexEntryAtOrBefore(seg: Segment, index: number): number {
    const oi = seg.offsetIndex
    let lo = 0
    let hi = oi.count - 1
    let ans = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const p = oi.position(mid)
      if (p < seg.size && this.indexAtPosition(seg, p) < index) {
        ans = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return ans
  }

  // -------------------------------------------------------------------------
  // Raft index

  /**
   * Raft index of the last frame, 0 if the log is empty or its last frame
   * carries index 0 (not a Raft log). 0 after `reset` until the next append.
   */
  lastIndex(): number {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!
      if (s.size > 0) return s.lastIndex
    }
    return 0
  }

  /** Term of the frame at lastIndex(), 0 if lastIndex() is 0. */
  lastIndexTerm(): number {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!
      if (s.size > 0) return s.lastIndex > 0 ? s.lastTerm : 0
    }
    return 0
  }

  /**
   * Raft index of the first frame still stored that carries one (0 if none).
   * Frames below logStartKey in the first segment are still stored until
   * their segment is deleted.
   */
  firstIndex(): number {
    for (const s of this.segments) if (s.firstIndex > 0) return s.firstIndex
    return 0
  }

  /** Term of the frame with Raft index `index`, or undefined if no stored frame has it. */
  termAtIndex(index: number): number | undefined {
    if (index <= 0 || index > this.lastIndex()) return undefined
    const first = this.firstIndex()
    if (first === 0 || index < first) return undefined
    if (index === this.lastIndex()) return this.lastIndexTerm()
    const t = this.tier.termAtIndex(index)
    if (t !== undefined) return t
    const e = this.entriesFromIndex(index, 0)[0]
    return e !== undefined && e.index === index ? e.term : undefined
  }

  /**
   * Frames with Raft index >= lo, in order, empty-range frames included: at
   * least one if any exists, then while the payload total stays <= maxBytes.
   * Payloads are fresh buffers (safe to keep). Served from the memory tier
   * when it holds `lo`; otherwise read from disk synchronously (cold path).
   */
  entriesFromIndex(lo: number, maxBytes: number): ReadonlyArray<LogEntry> {
    if (this.closed) throw new StorageError({ log: this.id, op: "read", code: "ECLOSED", reason: "log is closed" })
    const out: Array<LogEntry> = []
    const last = this.lastIndex()
    if (last === 0 || lo > last) return out
    const first = this.firstIndex()
    if (first === 0) return out
    if (lo < first) lo = first
    const tierFirst = this.tier.firstIndex()
    if (tierFirst > 0 && tierFirst <= lo) {
      this.tier.entriesFromIndex(lo, maxBytes, out)
      return out
    }
    try {
      let si = this.segments.length - 1
      while (si > 0 && !(this.segments[si]!.firstIndex > 0 && this.segments[si]!.firstIndex <= lo)) si--
      let bytes = 0
      for (; si < this.segments.length; si++) {
        const seg = this.segments[si]!
        if (seg.size === 0 || seg.lastIndex < lo) continue
        const ip = this.indexEntryAtOrBefore(seg, lo)
        let full = false
        this.scan(seg, ip >= 0 ? seg.offsetIndex.position(ip) : 0, seg.size, true, (buf, at, size) => {
          if (frameIndex(buf, at) < lo) return true
          const plen = size - FRAME_HEADER
          if (out.length > 0 && bytes + plen > maxBytes) {
            full = true
            return false
          }
          const e = decodeFrame(buf, at, size)
          out.push({ ...e, payload: Buffer.from(e.payload) })
          bytes += plen
          if (bytes >= maxBytes) {
            full = true
            return false
          }
          return true
        })
        if (full) break
      }
    } catch (e) {
      throw this.err("entriesFromIndex", e)
    }
    return out
  }

  /**
   * True if segment i holds the last frame of a log whose frames carry Raft
   * indexes. Prefix deletion (deleteBefore, retention) keeps that segment, so
   * lastIndex()/lastIndexTerm() survive it and a restart recovers them; it
   * goes once a later segment holds a frame.
   */
  private holdsLastIndex(i: number): boolean {
    const s = this.segments[i]!
    if (s.size === 0 || s.lastIndex === 0) return false
    for (let j = i + 1; j < this.segments.length; j++) if (this.segments[j]!.size > 0) return false
    return true
  }

  private bytesSinceLastIndex(seg: Segment): number {
    const n = seg.offsetIndex.count
    const from = n === 0 ? 0 : seg.offsetIndex.position(n - 1)
    return seg.size - from
  }

  /**
   * Move logStartKey up to `key` (clamped to nextKey) and delete every
   * segment that holds only entries below it. If key >= nextKey the active
   * segment is rolled so that everything can go (Raft compaction after a
   * snapshot).
   */
  deleteBefore(key: number, now = Date.now()): number {
    this.usable("deleteBefore")
    if (key <= this._logStartKey) return 0
    if (key > this._nextKey) key = this._nextKey
    try {
      this._logStartKey = key
      this.writeCheckpoint(false)
      if (key === this._nextKey && this.active.size > 0) this.roll(key, now)
      let deleted = 0
      while (this.segments.length > 1 && this.segments[1]!.base <= key && !this.holdsLastIndex(0)) {
        this.removeSegment(this.segments.shift()!)
        deleted++
      }
      if (deleted > 0) this.dirDirty = true
      this.tier.dropBefore(key)
      this.sync.markDirty(this)
      return deleted
    } catch (e) {
      throw this.err("deleteBefore", e)
    }
  }

  enforceRetention(policy: RetentionPolicy): RetentionResult {
    this.usable("enforceRetention")
    let deletedSegments = 0
    let deletedBytes = 0
    let total = 0
    for (const s of this.segments) total += s.size
    let newStart = this._logStartKey
    let count = 0
    // oldest-first prefix of sealed segments
    while (count < this.segments.length - 1) {
      if (this.holdsLastIndex(count)) break
      const s = this.segments[count]!
      const byTime = policy.retentionMs >= 0 && s.maxTimestamp < policy.now - policy.retentionMs
      const bySize = policy.retentionBytes >= 0 && total - s.size >= policy.retentionBytes
      if (!byTime && !bySize) break
      total -= s.size
      deletedBytes += s.size
      newStart = Math.max(newStart, this.segments[count + 1]!.base)
      count++
    }
    if (count > 0) {
      try {
        this._logStartKey = newStart
        this.writeCheckpoint(false)
        for (let i = 0; i < count; i++) this.removeSegment(this.segments.shift()!)
        deletedSegments = count
        this.dirDirty = true
        this.tier.dropBefore(newStart)
        this.sync.markDirty(this)
      } catch (e) {
        throw this.err("enforceRetention", e)
      }
    }
    return { deletedSegments, deletedBytes, logStartKey: this._logStartKey }
  }

  /**
   * Drop everything and restart empty at `startKey` (Raft snapshot install,
   * Kafka truncate-fully). Afterwards lastIndex() is 0 until the next append,
   * which may carry any Raft index (the snapshot's index + 1 for Raft).
   */
  reset(startKey: number, now = Date.now()): void {
    this.usable("reset")
    try {
      this.recoveryPoint = 0
      this._logStartKey = startKey
      this.writeCheckpoint(false)
      while (this.segments.length > 0) this.removeSegment(this.segments.pop()!)
      const seg = new Segment(this.io, this.dir, startKey, now)
      seg.logFd()
      seg.dirty = true
      this.segments.push(seg)
      this._nextKey = startKey
      this.durableNext = Math.min(this.durableNext, startKey)
      this.tier.clear()
      this.epoch++
      this.writeSeq++
      this.dirDirty = true
      this.sync.markDirty(this)
    } catch (e) {
      this.fail("reset", e)
      throw this.failed!
    }
  }

  // -------------------------------------------------------------------------
  // open / recovery / close

  static open(io: FileIO, sync: WalSync, id: string, dir: string, config: LogConfig, now: number): LogCore {
    const log = new LogCore(id, dir, config, io, sync)
    try {
      log.recover(now)
    } catch (e) {
      for (const s of log.segments) s.close()
      throw toStorageError(id, "open", e)
    }
    return log
  }

  private readCheckpoint(): Checkpoint | undefined {
    const raw = this.io.readFile(path.join(this.dir, CHECKPOINT))
    if (!raw) return undefined
    try {
      const cp = JSON.parse(raw.toString("utf8")) as Checkpoint
      if (
        Number.isSafeInteger(cp.logStartKey) && Number.isSafeInteger(cp.recoveryPoint) &&
        typeof cp.clean === "boolean" && Number.isSafeInteger(cp.activeSize)
      ) return cp
    } catch {
      // fall through: treat as missing
    }
    return undefined
  }

  private recover(now: number): void {
    this.io.mkdirp(this.dir)
    const files = this.io.readdir(this.dir)
    const bases: Array<number> = []
    for (const f of files) {
      const b = parseSegmentName(f)
      if (b !== undefined) bases.push(b)
      else if (f.endsWith(".tmp")) this.io.unlink(path.join(this.dir, f))
    }
    bases.sort((a, b) => a - b)
    const cp = this.readCheckpoint()
    this._logStartKey = cp?.logStartKey ?? (bases.length > 0 ? bases[0]! : this.config.initialKey)
    this.recoveryPoint = cp?.recoveryPoint ?? 0
    // orphan index files (segment deleted before its indexes)
    const baseSet = new Set(bases)
    for (const f of files) {
      const m = /^(\d{20})\.(index|timeindex)$/.exec(f)
      if (m && !baseSet.has(Number(m[1]))) this.io.unlink(path.join(this.dir, f))
    }
    // finish an interrupted prefix deletion
    while (bases.length > 1 && bases[1]! <= this._logStartKey) {
      // prefix deletion keeps the segment holding an indexed log's last frame (see holdsLastIndex):
      // keep the first segment while every later one is empty
      let laterEmpty = true
      for (let j = 1; j < bases.length && laterEmpty; j++) {
        const s = new Segment(this.io, this.dir, bases[j]!, now)
        laterEmpty = this.io.size(s.logFd()) === 0
        s.close()
      }
      if (laterEmpty) break
      const s = new Segment(this.io, this.dir, bases.shift()!, now)
      this.removeSegment(s)
    }
    const rebuilt: Array<string> = []
    let scannedSegments = 0
    let scannedBytes = 0
    let truncatedBytes = 0
    let droppedSegments = 0
    let truncation: RecoveryReport["truncation"] = undefined
    let clean = true
    let prevTrusted = false
    /** Raft index of the last frame of the segments recovered so far (0: none or not indexed). */
    let prevIndex = 0
    if (bases.length === 0) {
      const base = Math.max(this._logStartKey, this.config.initialKey)
      const seg = new Segment(this.io, this.dir, base, now)
      seg.logFd()
      this.segments.push(seg)
      this._logStartKey = base
      this.dirDirty = true
    }
    for (let i = 0; i < bases.length; i++) {
      const isLast = i === bases.length - 1
      const seg = new Segment(this.io, this.dir, bases[i]!, now)
      const fileSize = this.io.size(seg.logFd())
      seg.size = fileSize
      // segments are contiguous: each starts at the previous one's nextKey
      const prevNext = this.segments.length > 0 ? this.active.nextKey : seg.base
      if (seg.base !== prevNext) {
        const prev = this.active
        const reason = seg.base < prevNext
          ? `segment base ${seg.base} overlaps previous segment (ends at ${prevNext})`
          : `previous segment ends at ${prevNext}, before this segment's base ${seg.base} (lost tail)`
        if (prevTrusted) {
          seg.close()
          throw new WalCorrupt({ log: this.id, file: prev.logPath, position: prev.size, reason })
        }
        // the previous segment lost unsynced data: nothing from here on can have been durable
        for (let j = i; j < bases.length; j++) {
          const s = j === i ? seg : new Segment(this.io, this.dir, bases[j]!, now)
          truncatedBytes += j === i ? fileSize : this.io.size(s.logFd())
          this.removeSegment(s)
          droppedSegments++
        }
        truncation ??= { file: seg.logPath, position: 0, reason }
        clean = false
        break
      }
      const trusted: boolean = isLast
        ? cp?.clean === true && cp.activeSize === fileSize && cp.recoveryPoint >= seg.base
        : bases[i + 1]! <= this.recoveryPoint
      let loaded = false
      if (trusted) {
        const ib = this.io.readFile(seg.indexPath)
        const tb = this.io.readFile(seg.timePath)
        const oi = ib ? OffsetIndex.decode(ib, seg.base, Math.max(fileSize, 1)) : undefined
        const ti = tb ? TimeIndex.decode(tb, seg.base) : undefined
        if (oi && ti) {
          seg.offsetIndex = oi
          seg.timeIndex = ti
          // start at the frame of the last time index entry or the last offset entry, whichever is first
          const tk = ti.count > 0 ? ti.lastKey() : -1
          const ip = oi.count > 0 ? oi.floorIndex(tk >= 0 ? tk : oi.key(oi.count - 1)) : -1
          const from = ip >= 0 ? oi.position(ip) : 0
          oi.truncateToPosition(from + 1)
          seg.nextKey = ip >= 0 ? oi.key(ip) : seg.base
          seg.maxTimestamp = ti.timestampBefore(seg.nextKey)
          seg.keyOfMaxTimestamp = ti.keyBefore(seg.nextKey)
          ti.truncateToKey(seg.nextKey)
          seg.bytesSinceIndex = 0
          try {
            this.scanInto(seg, from, !isLast, from === 0 ? prevIndex : -1)
            if (seg.firstIndex === 0 && seg.lastIndex > 0) this.loadFirstIndex(seg)
            loaded = true
            scannedBytes += fileSize - from
          } catch (e) {
            if (!(e instanceof BadFrame)) throw e
            // torn tail of the last segment after a "clean" shutdown: fall back to a full scan
          }
        } else {
          rebuilt.push(seg.logPath)
          seg.offsetIndex = new OffsetIndex()
          seg.timeIndex = new TimeIndex()
          seg.nextKey = seg.base
          seg.maxTimestamp = -Infinity
          seg.keyOfMaxTimestamp = -1
          seg.bytesSinceIndex = 0
          if (!isLast) {
            // sealed, durable segment: corruption anywhere is an error
            this.scanInto(seg, 0, true, prevIndex)
            scannedSegments++
            scannedBytes += fileSize
            seg.rewriteIndexes()
            loaded = true
          }
        }
      }
      if (!loaded) {
        clean = false
        seg.size = fileSize
        seg.offsetIndex = new OffsetIndex()
        seg.timeIndex = new TimeIndex()
        seg.nextKey = seg.base
        seg.maxTimestamp = -Infinity
        seg.keyOfMaxTimestamp = -1
        seg.bytesSinceIndex = 0
        scannedSegments++
        let badAt = -1
        let reason = ""
        try {
          this.scanInto(seg, 0, false, prevIndex)
        } catch (e) {
          if (!(e instanceof BadFrame)) throw e
          badAt = e.position
          reason = e.reason
        }
        scannedBytes += badAt >= 0 ? badAt : fileSize
        if (badAt >= 0) {
          truncatedBytes += fileSize - badAt
          truncation ??= { file: seg.logPath, position: badAt, reason }
          this.truncateSegment(seg, badAt)
          seg.size = badAt
          seg.offsetIndex.truncateToPosition(badAt)
          seg.timeIndex.truncateToKey(seg.nextKey)
          // nothing after a torn point can have been durable: drop later segments
          for (let j = i + 1; j < bases.length; j++) {
            const s = new Segment(this.io, this.dir, bases[j]!, now)
            truncatedBytes += this.io.size(s.logFd())
            this.removeSegment(s)
            droppedSegments++
          }
          bases.length = i + 1
        }
        // the scan checked every frame's CRC
        seg.verifiedEnd = seg.size
        seg.rewriteIndexes()
        if ((seg.offsetIndex.count > 0 || badAt >= 0 || seg.size > 0) && !rebuilt.includes(seg.logPath)) {
          rebuilt.push(seg.logPath)
        }
        seg.dirty = true
      }
      if (i < bases.length - 1) {
        seg.sealed = true
        seg.timeIndex.maybeAppend(seg.maxTimestamp, seg.keyOfMaxTimestamp)
        if (loaded && trusted && !rebuilt.includes(seg.logPath)) seg.closeIndexFds()
        else {
          // rewritten indexes of a sealed segment are fsynced by the post-open sync
          seg.flushIndexes()
          seg.indexDirty = true
        }
      }
      this.segments.push(seg)
      if (seg.size > 0) prevIndex = seg.lastIndex
      prevTrusted = loaded && trusted
      if (isLast || i === bases.length - 1) break
    }
    // an empty sealed segment at the end after truncation is fine: it becomes active
    const act = this.active
    if (act.sealed) act.sealed = false
    act.bytesSinceIndex = this.bytesSinceLastIndex(act)
    this._nextKey = act.nextKey
    if (this._logStartKey > this._nextKey) this._logStartKey = this._nextKey
    if (this._logStartKey < this.segments[0]!.base) this._logStartKey = this.segments[0]!.base
    this.durableNext = 0
    this.report = {
      segments: this.segments.length,
      clean: clean && cp?.clean === true,
      scannedSegments,
      scannedBytes,
      truncatedBytes,
      truncation,
      droppedSegments,
      rebuiltIndexes: rebuilt,
      nextKey: this._nextKey,
      logStartKey: this._logStartKey
    }
    // the post-open sync covers what recovery scanned or rewrote, and the active segment
    act.dirty = true
    this.dirDirty = true
  }

  /**
   * Scan frames from `from` to the end of the segment, extending its indexes,
   * key range and Raft index bookkeeping. `prevIndex` is the Raft index of the
   * frame before `from` (-1: unknown, not checked): when it is > 0, each frame
   * must carry the next index, as `append` enforces.
   */
  private scanInto(seg: Segment, from: number, strict: boolean, prevIndex: number): void {
    const interval = this.config.indexIntervalBytes
    let expectNext = seg.nextKey
    let lastGood = from
    let prev = prevIndex
    if (from === 0) {
      seg.firstIndex = 0
      seg.lastIndex = 0
      seg.lastTerm = 0
    }
    try {
      this.scan(seg, from, seg.size, strict, (buf, at, size, position) => {
        const first = frameFirstKey(buf, at)
        const last = frameLastKey(buf, at)
        const index = frameIndex(buf, at)
        let reason: string | undefined
        if (first < expectNext) reason = `key ${first} does not follow ${expectNext}`
        else if (prev > 0 && index !== prev + 1) reason = `index ${index} does not follow ${prev}`
        if (reason !== undefined) {
          if (strict) throw new WalCorrupt({ log: this.id, file: seg.logPath, position, reason })
          throw new BadFrame(position, reason)
        }
        prev = index
        const keyed = last >= first
        if (keyed && (position > from || seg.offsetIndex.count === 0)) {
          if (seg.bytesSinceIndex > interval) {
            seg.offsetIndex.append(first, position)
            seg.timeIndex.maybeAppend(seg.maxTimestamp, seg.keyOfMaxTimestamp)
            seg.bytesSinceIndex = 0
          }
        }
        const ts = frameMaxTimestamp(buf, at)
        if (keyed && ts > seg.maxTimestamp) {
          seg.maxTimestamp = ts
          seg.keyOfMaxTimestamp = first
        }
        seg.bytesSinceIndex += size
        if (index > 0 && seg.firstIndex === 0 && from === 0) seg.firstIndex = index
        seg.lastIndex = index
        seg.lastTerm = frameTerm(buf, at)
        if (keyed) expectNext = last + 1
        seg.nextKey = expectNext
        lastGood = position + size
        return true
      })
    } finally {
      if (!strict) seg.size = Math.max(from, lastGood)
    }
  }

  /** Sets seg.firstIndex from its frames (a trusted segment whose tail scan did not start at 0). */
  private loadFirstIndex(seg: Segment): void {
    const i = this.indexAtPosition(seg, 0)
    if (i > 0) {
      seg.firstIndex = i
      return
    }
    // unindexed frames first, indexed ones later (rare): find the first indexed frame
    this.scan(seg, 0, seg.size, true, (buf, at) => {
      const x = frameIndex(buf, at)
      if (x > 0) {
        seg.firstIndex = x
        return false
      }
      return true
    })
  }

  /** fdatasync every dirty file, the active segment and the directory now (after open, at close). */
  async syncAll(): Promise<void> {
    for (const s of this.segments) if (s.unsynced) s.dirty = true
    this.active.dirty = true
    this.dirDirty = true
    const job = this.beginSync()
    if (!job) return
    try {
      await syncFilesThenDirs(this.io, job.fds, job.dirs)
    } catch (e) {
      job.complete(e)
      throw this.failed ?? this.err("sync", e)
    }
    job.complete(undefined)
    if (this.failed) throw this.failed
  }

  /** After the post-open sync: everything on disk is durable. */
  markOpened(): void {
    this.durableNext = this._nextKey
    this.syncedSeq = this.writeSeq
    this.recoveryPoint = this.active.base
    this.writeCheckpoint(false)
  }

  async close(): Promise<void> {
    if (this.closed) return
    let error: unknown
    if (!this.failed) {
      try {
        await this.syncAll()
        this.recoveryPoint = this._nextKey
        this.writeCheckpoint(true)
      } catch (e) {
        error = e
      }
    }
    this.closed = true
    this.sync.remove(this)
    // a failed log keeps the journal's checkpoints from passing its acknowledged writes
    if (!this.failed) this.sync.journal?.untrack(this)
    // asynchronous writes (index files too) land before close returns
    await this.allWritten()
    for (const s of this.segments) s.close()
    const ws = this.waiters
    this.waiters = []
    const closedErr = new StorageError({ log: this.id, op: "close", code: "ECLOSED", reason: "log closed" })
    for (const w of ws) w.done(closedErr)
    this.rejectSyncWaiters(closedErr)
    if (error !== undefined) throw this.err("close", error)
  }

  /** Resolves once every asynchronous write to the segments' open files has completed (or failed). */
  private allWritten(): Promise<void> {
    const whenWritten = this.io.whenWritten
    if (whenWritten === undefined) return Promise.resolve()
    const fds = this.segments.flatMap((s) => s.openFds())
    return Promise.all(fds.map((fd) => new Promise<void>((resolve) => whenWritten.call(this.io, fd, () => resolve()))))
      .then(() => undefined)
  }

  /** Close fds without syncing (failed open). */
  abandon(): void {
    this.closed = true
    this.sync.remove(this)
    this.sync.journal?.untrack(this)
    for (const s of this.segments) s.close()
  }

  /** Close and remove the directory. */
  async destroy(): Promise<void> {
    this.closed = true
    this.sync.remove(this)
    this.sync.journal?.untrack(this)
    for (const s of this.segments) s.close()
    const closedErr = new StorageError({ log: this.id, op: "delete", code: "ECLOSED", reason: "log deleted" })
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w.done(closedErr)
    this.rejectSyncWaiters(closedErr)
    this.sync.journal?.deleteDir(this.dir)
    this.io.rmrf(this.dir)
  }
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength))

const next = (out: ReadonlyArray<LogEntry>, fromKey: number): number =>
  out.length === 0 ? fromKey : out[out.length - 1]!.lastKey + 1

/** Concatenate payloads into one buffer (one copy), e.g. for a Fetch `records` field. */
export const concatPayloads = (r: ReadResult): Buffer =>
  r.entries.length === 1 ? r.entries[0]!.payload : Buffer.concat(r.entries.map((e) => e.payload), r.bytes)

// ---------------------------------------------------------------------------
// Effect-facing handle

export interface SegmentedLog {
  readonly id: string
  readonly logStartKey: Effect.Effect<number>
  readonly nextKey: Effect.Effect<number>
  readonly lastKey: Effect.Effect<number>
  readonly durableNextKey: Effect.Effect<number>
  readonly recovery: RecoveryReport
  /** The synchronous engine, for hot paths that batch many calls in one Effect. */
  readonly core: LogCore
  /** One write per batch; returns once the bytes are in the OS (not yet durable). */
  append(entries: ReadonlyArray<AppendEntry>): Effect.Effect<AppendResult, StorageError | InvalidAppend>
  /** Wait until every entry with lastKey <= key is durable per the fsync policy. */
  awaitDurable(key: number): Effect.Effect<void, StorageError>
  /** append + awaitDurable (acks=all style). */
  appendDurable(entries: ReadonlyArray<AppendEntry>): Effect.Effect<AppendResult, StorageError | InvalidAppend>
  read(
    fromKey: number,
    maxBytes: number,
    maxKey?: number
  ): Effect.Effect<ReadResult, OffsetOutOfRange | StorageError | WalCorrupt>
  offsetForTimestamp(ts: number): Effect.Effect<LogEntry | undefined, StorageError | WalCorrupt>
  /** The entry containing `key`, if any (Raft: the term at an index). */
  entryAt(key: number): Effect.Effect<LogEntry | undefined, StorageError | WalCorrupt>
  truncateAfter(key: number): Effect.Effect<void, StorageError | WalCorrupt>
  /** Raft index of the last frame (0: empty or not a Raft log) and its term. */
  readonly lastIndex: Effect.Effect<{ readonly index: number; readonly term: number }>
  /** Drop every frame whose Raft index is > index (Raft conflict resolution). */
  truncateAfterIndex(index: number): Effect.Effect<void, StorageError | WalCorrupt>
  /** Frames with Raft index >= lo (empty-range ones included), payloads safe to keep. */
  entriesFromIndex(lo: number, maxBytes: number): Effect.Effect<ReadonlyArray<LogEntry>, StorageError | WalCorrupt>
  /** Wait until every byte appended before this call is durable per the fsync policy (covers empty-range entries). */
  readonly awaitSynced: Effect.Effect<void, StorageError>
  deleteBefore(key: number): Effect.Effect<number, StorageError>
  enforceRetention(policy: Omit<RetentionPolicy, "now"> & { readonly now?: number }): Effect.Effect<RetentionResult, StorageError>
  reset(startKey: number): Effect.Effect<void, StorageError>
  roll(): Effect.Effect<void, StorageError>
  stats: Effect.Effect<LogStats>
  /** Sync and close (also run by the scope finalizer of `make`). */
  close: Effect.Effect<void, StorageError>
}

/** Map a thrown value to the typed error union of an operation. */
const catchAs = <E>(log: LogCore, op: string) => (e: unknown): E => toStorageError(log.id, op, e) as E

const currentTime = Effect.clockWith((c) => c.currentTimeMillis)

/** Wrap an opened LogCore (no scope; the caller owns closing). */
export const fromCore = (core: LogCore): SegmentedLog => {
  const awaitDurable = (key: number): Effect.Effect<void, StorageError> =>
    Effect.tryPromise({ try: () => core.awaitDurable(key), catch: catchAs<StorageError>(core, "awaitDurable") })
  const append = (entries: ReadonlyArray<AppendEntry>) =>
    Effect.flatMap(currentTime, (now) =>
      Effect.try({
        try: () => core.append(entries, now),
        catch: catchAs<StorageError | InvalidAppend>(core, "append")
      })
    )
  return {
    id: core.id,
    core,
    recovery: core.recovery,
    logStartKey: Effect.sync(() => core.logStartKey),
    nextKey: Effect.sync(() => core.nextKey),
    lastKey: Effect.sync(() => core.lastKey),
    durableNextKey: Effect.sync(() => core.durableNextKey),
    append,
    awaitDurable,
    appendDurable: (entries) => Effect.tap(append(entries), (r) => awaitDurable(r.lastKey)),
    read: (fromKey, maxBytes, maxKey) =>
      Effect.try({
        try: () => core.read(fromKey, maxBytes, maxKey),
        catch: catchAs<OffsetOutOfRange | StorageError | WalCorrupt>(core, "read")
      }),
    offsetForTimestamp: (ts) =>
      Effect.try({ try: () => core.offsetForTimestamp(ts), catch: catchAs<StorageError | WalCorrupt>(core, "offsetForTimestamp") }),
    entryAt: (key) =>
      Effect.try({ try: () => core.entryAt(key), catch: catchAs<StorageError | WalCorrupt>(core, "entryAt") }),
    truncateAfter: (key) =>
      Effect.flatMap(currentTime, (now) =>
        Effect.try({ try: () => core.truncateAfter(key, now), catch: catchAs<StorageError | WalCorrupt>(core, "truncateAfter") })
      ),
    lastIndex: Effect.sync(() => ({ index: core.lastIndex(), term: core.lastIndexTerm() })),
    truncateAfterIndex: (index) =>
      Effect.flatMap(currentTime, (now) =>
        Effect.try({
          try: () => core.truncateAfterIndex(index, now),
          catch: catchAs<StorageError | WalCorrupt>(core, "truncateAfterIndex")
        })
      ),
    entriesFromIndex: (lo, maxBytes) =>
      Effect.try({
        try: () => core.entriesFromIndex(lo, maxBytes),
        catch: catchAs<StorageError | WalCorrupt>(core, "entriesFromIndex")
      }),
    awaitSynced: Effect.tryPromise({ try: () => core.awaitSynced(), catch: catchAs<StorageError>(core, "awaitSynced") }),
    deleteBefore: (key) =>
      Effect.flatMap(currentTime, (now) =>
        Effect.try({ try: () => core.deleteBefore(key, now), catch: catchAs<StorageError>(core, "deleteBefore") })
      ),
    enforceRetention: (p) =>
      Effect.flatMap(currentTime, (now) =>
        Effect.try({
          try: () =>
            core.enforceRetention({ retentionMs: p.retentionMs, retentionBytes: p.retentionBytes, now: p.now ?? now }),
          catch: catchAs<StorageError>(core, "enforceRetention")
        })
      ),
    reset: (startKey) =>
      Effect.flatMap(currentTime, (now) =>
        Effect.try({ try: () => core.reset(startKey, now), catch: catchAs<StorageError>(core, "reset") })
      ),
    roll: () =>
      Effect.flatMap(currentTime, (now) =>
        Effect.try({ try: () => core.roll(core.nextKey, now), catch: catchAs<StorageError>(core, "roll") })
      ),
    stats: Effect.sync(() => core.stats()),
    close: Effect.tryPromise({ try: () => core.close(), catch: catchAs<StorageError>(core, "close") })
  }
}

/**
 * Open (recovering if needed) the log in `dir`. The log is synced and
 * closed when the scope closes.
 */
export const open = (options: {
  readonly io: FileIO
  readonly sync: WalSync
  readonly id: string
  readonly dir: string
  readonly config?: Partial<LogConfig>
}): Effect.Effect<SegmentedLog, StorageError | WalCorrupt> =>
  Effect.gen(function*() {
    const config = { ...defaultLogConfig, ...options.config }
    const now = yield* currentTime
    const core = yield* Effect.try({
      try: () => LogCore.open(options.io, options.sync, options.id, options.dir, config, now),
      catch: (e) => toStorageError(options.id, "open", e) as StorageError | WalCorrupt
    })
    yield* Effect.tryPromise({
      try: async () => {
        await core.syncAll()
        core.markOpened()
      },
      catch: (e) => toStorageError(options.id, "open", e) as StorageError
    }).pipe(Effect.tapError(() => Effect.sync(() => core.abandon())))
    const r = core.recovery
    if (r.truncatedBytes > 0 || r.rebuiltIndexes.length > 0) {
      yield* Effect.logWarning("storage recovery").pipe(
        Effect.annotateLogs({
          log: options.id,
          truncatedBytes: r.truncatedBytes,
          droppedSegments: r.droppedSegments,
          truncation: r.truncation ? `${r.truncation.file}@${r.truncation.position}: ${r.truncation.reason}` : "none",
          rebuiltIndexes: r.rebuiltIndexes.length,
          nextKey: r.nextKey
        })
      )
    }
    return fromCore(core)
  })

/** `open` tied to a scope: closed (synced) when the scope closes. */
export const make = (options: Parameters<typeof open>[0]): Effect.Effect<SegmentedLog, StorageError | WalCorrupt, Scope.Scope> =>
  Effect.acquireRelease(open(options), (log) => Effect.ignore(log.close))
