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
  frameLastKey,
  frameMaxTimestamp,
  type AppendEntry,
  type LogEntry
} from "./Frame.js"
import { OffsetIndex, TimeIndex } from "./SparseIndex.js"
import { MemoryTier } from "./MemoryTier.js"
import { pooledReadSize, readBuffers } from "./ReadBufferPool.js"
import { Segment, parseSegmentName } from "./Segment.js"
import type { SyncJob, Syncable, WalSync } from "./WalSync.js"

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

interface Waiter {
  readonly key: number
  /** Called once: with no argument when durable, with the error when the log failed or closed. */
  readonly done: (error?: StorageError) => void
}

/** Thrown internally when a scan finds a bad frame. */
class BadFrame {
  constructor(readonly position: number, readonly reason: string) {}
}

export class LogCore implements Syncable {
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
  private readonly tier: MemoryTier
  private scratch = Buffer.allocUnsafe(64 * FRAME_HEADER)
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
    for (let i = 0; i < n; i++) {
      const e = entries[i]!
      if (!Number.isSafeInteger(e.firstKey) || !Number.isSafeInteger(e.lastKey) || e.lastKey < e.firstKey) {
        throw new InvalidAppend({ log: this.id, reason: `bad keys ${e.firstKey}..${e.lastKey}` })
      }
      if (e.firstKey < expect) {
        throw new InvalidAppend({ log: this.id, reason: `key ${e.firstKey} < expected ${expect}` })
      }
      if (!Number.isSafeInteger(e.term) || !Number.isSafeInteger(e.maxTimestamp)) {
        throw new InvalidAppend({ log: this.id, reason: "term and maxTimestamp must be safe integers" })
      }
      expect = e.lastKey + 1
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
        this.roll(this._nextKey, now)
        continue
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
      if (vectored) {
        if (this.scratch.length < n * FRAME_HEADER) this.scratch = Buffer.allocUnsafe(n * FRAME_HEADER * 2)
        const iov: Array<Uint8Array> = []
        for (let k = 0; k < n; k++) {
          const e = entries[from + k]!
          encodeHeader(this.scratch, k * FRAME_HEADER, e)
          iov.push(this.scratch.subarray(k * FRAME_HEADER, (k + 1) * FRAME_HEADER), e.payload)
        }
        this.io.writev(seg.logFd(), iov, pos)
      } else {
        buf = Buffer.allocUnsafe(bytes)
        let w = 0
        for (let k = from; k < to; k++) w += encodeFrame(buf, w, entries[k]!)
        this.io.write(seg.logFd(), buf, pos)
      }
    } catch (e) {
      this.undoWrite(seg, pos)
      throw this.err("append", e)
    }
    let at = 0
    const interval = this.config.indexIntervalBytes
    for (let k = from; k < to; k++) {
      const e = entries[k]!
      const size = FRAME_HEADER + e.payload.length
      if (seg.bytesSinceIndex > interval) {
        seg.offsetIndex.append(e.firstKey, pos + at)
        seg.timeIndex.maybeAppend(seg.maxTimestamp, seg.keyOfMaxTimestamp)
        seg.bytesSinceIndex = 0
      }
      if (e.maxTimestamp > seg.maxTimestamp) {
        seg.maxTimestamp = e.maxTimestamp
        seg.keyOfMaxTimestamp = e.firstKey
      }
      seg.bytesSinceIndex += size
      if (this.tier.capacity > 0) {
        // the tier copies the payload into its ring
        this.tier.push({
          firstKey: e.firstKey,
          lastKey: e.lastKey,
          term: e.term,
          maxTimestamp: e.maxTimestamp,
          type: e.type & 0xff,
          payload: buf ? buf.subarray(at + FRAME_HEADER, at + size) : asBuffer(e.payload)
        })
      }
      at += size
    }
    // frames this process encoded need no CRC check when read back
    if (seg.verifiedEnd === pos) seg.verifiedEnd = pos + bytes
    seg.size = pos + bytes
    seg.nextKey = entries[to - 1]!.lastKey + 1
    seg.dirty = true
    this._nextKey = seg.nextKey
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
    const seg = new Segment(this.io, this.dir, base, now)
    try {
      seg.logFd()
    } catch (e) {
      throw this.err("roll", e)
    }
    if (old.size === 0) {
      old.deleteFiles()
      this.segments[this.segments.length - 1] = seg
    } else {
      try {
        old.seal()
      } catch (e) {
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
    if (this.sync.policy._tag === "never" || key < this.durableNext) return done()
    if (key >= this._nextKey) key = this._nextKey - 1
    if (key < this.durableNext) return done()
    this.waiters.push({ key, done })
    if (this.sync.policy._tag === "batch") {
      this.sync.markDirty(this)
      this.sync.requestFlush()
    }
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
    if (fds.length === 0 && dirs.length === 0) {
      this.resolveWaiters()
      return undefined
    }
    const target = this._nextKey
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
        this.resolveWaiters()
        if (this.waiters.length > 0 && this.sync.policy._tag === "batch") {
          this.sync.markDirty(this)
          this.sync.requestFlush()
        }
      }
    }
  }

  private resolveWaiters(): void {
    if (this.waiters.length === 0) return
    const keep: Array<Waiter> = []
    for (const w of this.waiters) {
      if (w.key < this.durableNext || w.key >= this._nextKey) w.done()
      else keep.push(w)
    }
    this.waiters = keep
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
        if (last >= fromKey) {
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
          if (frameLastKey(buf, at) >= this._logStartKey && frameMaxTimestamp(buf, at) >= ts) {
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
          if (last < start) return true
          if (last >= bound) return false
          const ts = frameMaxTimestamp(buf, at)
          const first = frameFirstKey(buf, at)
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

  /** Remove every entry with lastKey > key (an entry straddling key is removed whole). */
  truncateAfter(key: number, now = Date.now()): void {
    this.usable("truncateAfter")
    if (key >= this._nextKey - 1) return
    try {
      // lower the recovery point durably first, so a crash never trusts the rewritten tail
      if (this.recoveryPoint > key) {
        this.recoveryPoint = Math.max(0, Math.min(this.recoveryPoint, this.segments[this.segmentIndexFor(key)]!.base))
        this.writeCheckpoint(false)
      }
      // drop whole segments from the end first: a crash midway leaves a prefix of the log
      while (this.segments.length > 1 && this.active.base > key) {
        const s = this.segments.pop()!
        s.deleteFiles()
      }
      const seg = this.active
      let cut = seg.size
      const ip = seg.offsetIndex.floorIndex(key)
      const startPos = ip >= 0 ? seg.offsetIndex.position(ip) : 0
      const startKey = ip >= 0 ? seg.offsetIndex.key(ip) : seg.base
      // max timestamp of the frames before startPos, from the time index
      let maxTs = seg.timeIndex.timestampBefore(startKey)
      let keyOfMax = seg.timeIndex.keyBefore(startKey)
      let newNext = startKey
      this.scan(seg, startPos, seg.size, true, (buf, at, _size, position) => {
        if (frameLastKey(buf, at) > key) {
          cut = position
          return false
        }
        newNext = frameLastKey(buf, at) + 1
        const ts = frameMaxTimestamp(buf, at)
        if (ts > maxTs) {
          maxTs = ts
          keyOfMax = frameFirstKey(buf, at)
        }
        return true
      })
      this.io.truncate(seg.logFd(), cut)
      seg.size = cut
      seg.verifiedEnd = Math.min(seg.verifiedEnd, cut)
      seg.nextKey = cut === 0 ? seg.base : newNext
      seg.maxTimestamp = maxTs
      seg.keyOfMaxTimestamp = keyOfMax
      seg.offsetIndex.truncateToPosition(cut)
      seg.timeIndex.truncateToKey(cut === 0 ? seg.base : newNext)
      seg.bytesSinceIndex = this.bytesSinceLastIndex(seg)
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
      this.tier.truncateAfter(key)
      this.epoch++
      this.dirDirty = true
      this.sync.markDirty(this)
    } catch (e) {
      this.fail("truncateAfter", e)
      throw this.failed!
    }
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
      while (this.segments.length > 1 && this.segments[1]!.base <= key) {
        this.segments.shift()!.deleteFiles()
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
        for (let i = 0; i < count; i++) this.segments.shift()!.deleteFiles()
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

  /** Drop everything and restart empty at `startKey` (Raft snapshot install, Kafka truncate-fully). */
  reset(startKey: number, now = Date.now()): void {
    this.usable("reset")
    try {
      this.recoveryPoint = 0
      this._logStartKey = startKey
      this.writeCheckpoint(false)
      while (this.segments.length > 0) this.segments.pop()!.deleteFiles()
      const seg = new Segment(this.io, this.dir, startKey, now)
      seg.logFd()
      seg.dirty = true
      this.segments.push(seg)
      this._nextKey = startKey
      this.durableNext = Math.min(this.durableNext, startKey)
      this.tier.clear()
      this.epoch++
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
      const s = new Segment(this.io, this.dir, bases.shift()!, now)
      s.deleteFiles()
    }
    const rebuilt: Array<string> = []
    let scannedSegments = 0
    let scannedBytes = 0
    let truncatedBytes = 0
    let droppedSegments = 0
    let truncation: RecoveryReport["truncation"] = undefined
    let clean = true
    let prevTrusted = false
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
          s.deleteFiles()
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
            this.scanInto(seg, from, !isLast)
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
            this.scanInto(seg, 0, true)
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
          this.scanInto(seg, 0, false)
        } catch (e) {
          if (!(e instanceof BadFrame)) throw e
          badAt = e.position
          reason = e.reason
        }
        scannedBytes += badAt >= 0 ? badAt : fileSize
        if (badAt >= 0) {
          truncatedBytes += fileSize - badAt
          truncation ??= { file: seg.logPath, position: badAt, reason }
          this.io.truncate(seg.logFd(), badAt)
          seg.size = badAt
          seg.offsetIndex.truncateToPosition(badAt)
          seg.timeIndex.truncateToKey(seg.nextKey)
          // nothing after a torn point can have been durable: drop later segments
          for (let j = i + 1; j < bases.length; j++) {
            const s = new Segment(this.io, this.dir, bases[j]!, now)
            truncatedBytes += this.io.size(s.logFd())
            s.deleteFiles()
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

  /** Scan frames from `from` to the end of the segment, extending its indexes and key range. */
  private scanInto(seg: Segment, from: number, strict: boolean): void {
    const interval = this.config.indexIntervalBytes
    let expectNext = seg.nextKey
    let lastGood = from
    try {
      this.scan(seg, from, seg.size, strict, (buf, at, size, position) => {
        const first = frameFirstKey(buf, at)
        const last = frameLastKey(buf, at)
        if (first < expectNext) {
          const reason = `key ${first} does not follow ${expectNext}`
          if (strict) throw new WalCorrupt({ log: this.id, file: seg.logPath, position, reason })
          throw new BadFrame(position, reason)
        }
        if (position > from || seg.offsetIndex.count === 0) {
          if (seg.bytesSinceIndex > interval) {
            seg.offsetIndex.append(first, position)
            seg.timeIndex.maybeAppend(seg.maxTimestamp, seg.keyOfMaxTimestamp)
            seg.bytesSinceIndex = 0
          }
        }
        const ts = frameMaxTimestamp(buf, at)
        if (ts > seg.maxTimestamp) {
          seg.maxTimestamp = ts
          seg.keyOfMaxTimestamp = first
        }
        seg.bytesSinceIndex += size
        expectNext = last + 1
        seg.nextKey = expectNext
        lastGood = position + size
        return true
      })
    } finally {
      if (!strict) seg.size = Math.max(from, lastGood)
    }
  }

  /** fdatasync every dirty file, the active segment and the directory now (after open, at close). */
  async syncAll(): Promise<void> {
    this.active.dirty = true
    this.dirDirty = true
    const job = this.beginSync()
    if (!job) return
    try {
      await Promise.all(job.fds.map((fd) => this.io.fdatasync(fd)))
      if (job.dirs.length > 0) await Promise.all(job.dirs.map((d) => this.io.fsyncDir(d)))
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
    for (const s of this.segments) s.close()
    const ws = this.waiters
    this.waiters = []
    const closedErr = new StorageError({ log: this.id, op: "close", code: "ECLOSED", reason: "log closed" })
    for (const w of ws) w.done(closedErr)
    if (error !== undefined) throw this.err("close", error)
  }

  /** Close fds without syncing (failed open). */
  abandon(): void {
    this.closed = true
    this.sync.remove(this)
    for (const s of this.segments) s.close()
  }

  /** Close and remove the directory. */
  async destroy(): Promise<void> {
    this.closed = true
    this.sync.remove(this)
    for (const s of this.segments) s.close()
    const closedErr = new StorageError({ log: this.id, op: "delete", code: "ECLOSED", reason: "log deleted" })
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w.done(closedErr)
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
