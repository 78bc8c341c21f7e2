/**
 * Bounded in-memory cache of the most recent entries of one log (a contiguous
 * suffix of the log), so tailing consumers and Raft followers catching up
 * from near the end never touch the disk. Payloads are views of the batch
 * buffer that was written, so caching costs no copy.
 */
import { FRAME_HEADER, type LogEntry } from "./Frame.js"

const EVICTED: LogEntry = { firstKey: -1, lastKey: -1, term: 0, maxTimestamp: -1, type: 0, payload: Buffer.alloc(0) }

export class MemoryTier {
  private entries: Array<LogEntry> = []
  private head = 0
  private bytes = 0

  constructor(private capacityBytes: number) {}

  /** Current budget in bytes (0: disabled). */
  get capacity(): number {
    return this.capacityBytes
  }

  /** Changes the budget, evicting the oldest entries down to it (the node-wide share moves as logs open and close). */
  setCapacity(bytes: number): void {
    this.capacityBytes = bytes
    if (bytes <= 0) this.clear()
    else while (this.bytes > bytes) this.evictOldest()
  }

  get size(): number {
    return this.entries.length - this.head
  }
  get byteSize(): number {
    return this.bytes
  }
  /** Payload bytes still referenced by the cache's slots, evicted ones included (for tests). */
  referencedPayloadBytes(): number {
    let n = 0
    for (const e of this.entries) n += e.payload.length
    return n
  }
  /** firstKey of the oldest cached entry, or undefined if empty. */
  firstKey(): number | undefined {
    return this.head < this.entries.length ? this.entries[this.head]!.firstKey : undefined
  }

  push(e: LogEntry): void {
    if (this.capacityBytes <= 0) return
    const sz = e.payload.length + FRAME_HEADER
    if (sz > this.capacityBytes) {
      this.clear()
      return
    }
    this.entries.push(e)
    this.bytes += sz
    while (this.bytes > this.capacityBytes) this.evictOldest()
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  /** Drop entries with lastKey > key. */
  truncateAfter(key: number): void {
    while (this.entries.length > this.head && this.entries[this.entries.length - 1]!.lastKey > key) {
      const e = this.entries.pop()!
      this.bytes -= e.payload.length + FRAME_HEADER
    }
  }

  /** Drop entries with lastKey < key. */
  dropBefore(key: number): void {
    while (this.head < this.entries.length && this.entries[this.head]!.lastKey < key) this.evictOldest()
  }

  /**
   * Drops the oldest entry and releases its slot at once: the array is only
   * compacted now and then, and a slot still pointing at an evicted entry
   * would keep its payload alive past the capacity.
   */
  private evictOldest(): void {
    this.bytes -= this.entries[this.head]!.payload.length + FRAME_HEADER
    this.entries[this.head] = EVICTED
    this.head++
  }

  clear(): void {
    this.entries = []
    this.head = 0
    this.bytes = 0
  }

  /**
   * Entries covering or following `fromKey`; the first entry is always
   * included, later ones while they fit in `maxBytes` (payload bytes) and
   * have lastKey <= maxKey. The caller checks `firstKey() <= fromKey`.
   */
  read(fromKey: number, maxBytes: number, maxKey: number, out: Array<LogEntry>): number {
    let lo = this.head
    let hi = this.entries.length - 1
    let start = this.entries.length
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.entries[mid]!.lastKey >= fromKey) {
        start = mid
        hi = mid - 1
      } else lo = mid + 1
    }
    let bytes = 0
    for (let i = start; i < this.entries.length; i++) {
      const e = this.entries[i]!
      if (e.lastKey > maxKey) break
      if (out.length > 0 && bytes + e.payload.length > maxBytes) break
      out.push(e)
      bytes += e.payload.length
      if (bytes >= maxBytes) break
    }
    return bytes
  }
}
