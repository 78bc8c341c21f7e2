/**
 * One segment: `<base>.log` plus its sparse `.index` and `.timeindex`.
 * Mutable bookkeeping only; the log (SegmentedLog) drives it.
 */
import * as path from "node:path"
import type { Fd, FileIO } from "./FileIO.js"
import { OffsetIndex, TimeIndex, OFFSET_ENTRY, TIME_ENTRY } from "./SparseIndex.js"

export const segmentName = (base: number): string => String(base).padStart(20, "0")

export const parseSegmentName = (file: string): number | undefined => {
  const m = /^(\d{20})\.log$/.exec(file)
  return m ? Number(m[1]) : undefined
}

export class Segment {
  readonly logPath: string
  readonly indexPath: string
  readonly timePath: string
  /** Valid bytes (the file is never read beyond this). */
  size = 0
  /**
   * Frames in [0, verifiedEnd) have had their CRC checked (written by this
   * process, or checked by a read); reads skip the check there. 0 after open.
   */
  verifiedEnd = 0
  /** Key after the last entry (base if empty). */
  nextKey: number
  /** Largest maxTimestamp in the segment (-Infinity if empty) and the firstKey of its frame. */
  maxTimestamp = -Infinity
  keyOfMaxTimestamp = -1
  /** Raft index of the first frame carrying one (> 0), 0 if none. */
  firstIndex = 0
  /** Raft index and term of the last frame (0 if the segment is empty or the frame carries index 0). */
  lastIndex = 0
  lastTerm = 0
  bytesSinceIndex = 0
  createdAt: number
  offsetIndex = new OffsetIndex()
  timeIndex = new TimeIndex()
  sealed = false
  /** Log file has writes not yet covered by an fdatasync (the next pass syncs it). */
  dirty = false
  /** Log file has writes made durable by the node journal but not yet by an fdatasync of its own (a journal checkpoint or close syncs it). */
  unsynced = false
  /** Index files were written at seal and not yet fsynced. */
  indexDirty = false
  /** Jobs in flight using our fds. */
  syncing = 0
  private closing = false
  private fd: Fd | undefined
  private indexFd: Fd | undefined
  private timeFd: Fd | undefined

  constructor(private readonly io: FileIO, dir: string, readonly base: number, now: number) {
    const n = segmentName(base)
    this.logPath = path.join(dir, `${n}.log`)
    this.indexPath = path.join(dir, `${n}.index`)
    this.timePath = path.join(dir, `${n}.timeindex`)
    this.nextKey = base
    this.createdAt = now
  }

  logFd(): Fd {
    if (this.fd === undefined) this.fd = this.io.open(this.logPath)
    return this.fd
  }
  private openIndexFds(): [Fd, Fd] {
    if (this.indexFd === undefined) this.indexFd = this.io.open(this.indexPath)
    if (this.timeFd === undefined) this.timeFd = this.io.open(this.timePath)
    return [this.indexFd, this.timeFd]
  }
  /** Every fd of this segment that is open. */
  openFds(): ReadonlyArray<Fd> {
    return [this.fd, this.indexFd, this.timeFd].filter((fd): fd is Fd => fd !== undefined)
  }
  indexFds(): ReadonlyArray<Fd> {
    return this.indexFd !== undefined && this.timeFd !== undefined ? [this.indexFd, this.timeFd] : []
  }

  /** Write index entries not yet in the files (cheap: only new entries). */
  flushIndexes(): void {
    const oi = this.offsetIndex
    const ti = this.timeIndex
    if (oi.persisted === oi.count && ti.persisted === ti.count && this.indexFd !== undefined) return
    const [ifd, tfd] = this.openIndexFds()
    if (oi.persisted < oi.count) {
      this.io.write(ifd, oi.encode(oi.persisted), oi.persisted * OFFSET_ENTRY)
      oi.persisted = oi.count
    }
    if (ti.persisted < ti.count) {
      this.io.write(tfd, ti.encode(ti.persisted), ti.persisted * TIME_ENTRY)
      ti.persisted = ti.count
    }
  }

  /** Rewrite both index files from memory (after a rebuild or a truncation). */
  rewriteIndexes(): void {
    const [ifd, tfd] = this.openIndexFds()
    this.io.truncate(ifd, 0)
    this.io.truncate(tfd, 0)
    this.offsetIndex.persisted = 0
    this.timeIndex.persisted = 0
    this.flushIndexes()
  }

  /** Cut index files to what is in memory (after a truncation). */
  truncateIndexFiles(): void {
    const [ifd, tfd] = this.openIndexFds()
    this.io.truncate(ifd, this.offsetIndex.persisted * OFFSET_ENTRY)
    this.io.truncate(tfd, this.timeIndex.persisted * TIME_ENTRY)
    this.flushIndexes()
  }

  /** Seal: add the final time index entry and write the index files. */
  seal(): void {
    this.timeIndex.maybeAppend(this.maxTimestamp, this.keyOfMaxTimestamp)
    this.flushIndexes()
    this.sealed = true
    this.indexDirty = true
  }

  /** Close index fds once they are durable (sealed segments only read their indexes from memory). */
  closeIndexFds(): void {
    if (this.syncing > 0) return
    if (this.indexFd !== undefined) this.io.close(this.indexFd)
    if (this.timeFd !== undefined) this.io.close(this.timeFd)
    this.indexFd = undefined
    this.timeFd = undefined
  }

  /** Close all fds, deferred while a sync job uses them. */
  close(): void {
    this.closing = true
    if (this.syncing > 0) return
    this.closeNow()
  }

  syncDone(): void {
    this.syncing--
    if (this.syncing === 0 && this.closing) this.closeNow()
  }

  private closeNow(): void {
    for (const fd of [this.fd, this.indexFd, this.timeFd]) {
      if (fd !== undefined) {
        try {
          this.io.close(fd)
        } catch {
          // closing is best effort
        }
      }
    }
    this.fd = undefined
    this.indexFd = undefined
    this.timeFd = undefined
  }

  get isClosing(): boolean {
    return this.closing
  }

  /** Remove the files (after close). */
  deleteFiles(): void {
    this.close()
    this.io.unlink(this.logPath)
    this.io.unlink(this.indexPath)
    this.io.unlink(this.timePath)
  }
}
