/**
 * Bounded in-memory cache of the most recent entries of one log (a contiguous
 * suffix of the log), so tailing consumers and Raft followers catching up
 * from near the end never touch the disk.
 *
 * Payloads are copied into one ring buffer of `capacity` bytes, allocated
 * once (on first use) and reused: caching allocates nothing per entry.
 * Keeping the appended buffers themselves (or a fresh copy of each) made
 * every produced batch survive into V8's old generation, and the external
 * memory they hold forced a full mark-compact every ~64 MB produced: with a
 * 256 MiB tier the broker spent ~10% of its time in GC, against ~2% without
 * a tier. The oldest entries are evicted when the ring needs their bytes.
 *
 * Reads return copies (one buffer per read): a Fetch response is written to
 * the socket later, and the ring may reuse the bytes by then.
 */
import { FRAME_HEADER, type LogEntry } from "./Frame.js"
import { readBuffers } from "./ReadBufferPool.js"

interface Slot {
  readonly firstKey: number
  readonly lastKey: number
  readonly term: number
  readonly maxTimestamp: number
  readonly type: number
  /** Raft index (0: not a Raft log). */
  readonly index: number
  /** Position of the payload in the ring. */
  readonly at: number
  readonly length: number
}

export class MemoryTier {
  private ring: Buffer | undefined
  private slots: Array<Slot> = []
  private head = 0
  /** Ring position after the newest payload. */
  private w = 0
  /** Payload bytes plus a frame header per cached entry (what `byteSize` reports). */
  private bytes = 0

  constructor(private capacityBytes: number) {}

  /** Current budget in bytes (0: disabled). */
  get capacity(): number {
    return this.capacityBytes
  }

  /**
   * Changes the budget (the node-wide share moves as logs open and close).
   * The cache is emptied and its ring released; the next push allocates one
   * of the new size.
   */
  setCapacity(bytes: number): void {
    if (bytes === this.capacityBytes) return
    this.capacityBytes = bytes
    this.clear()
    this.ring = undefined
  }

  get size(): number {
    return this.slots.length - this.head
  }
  get byteSize(): number {
    return this.bytes
  }
  /** Bytes of memory the cache holds (its ring, once allocated). */
  get allocatedBytes(): number {
    return this.ring?.length ?? 0
  }
  /** firstKey of the oldest cached entry, or undefined if empty. */
  firstKey(): number | undefined {
    return this.head < this.slots.length ? this.slots[this.head]!.firstKey : undefined
  }

  /** Caches a copy of `e` as the newest entry, evicting the oldest ones whose bytes it needs. */
  push(e: LogEntry): void {
    const cap = this.capacityBytes
    if (cap <= 0) return
    const len = e.payload.length
    if (len + FRAME_HEADER > cap) {
      this.clear()
      return
    }
    if (this.ring === undefined) this.ring = Buffer.allocUnsafe(cap)
    const at = this.place(len)
    this.ring.set(e.payload, at)
    this.slots.push({
      firstKey: e.firstKey,
      lastKey: e.lastKey,
      term: e.term,
      maxTimestamp: e.maxTimestamp,
      type: e.type,
      index: e.index,
      at,
      length: len
    })
    this.w = at + len
    this.bytes += len + FRAME_HEADER
    while (this.bytes > cap) this.evictOldest()
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots = this.slots.slice(this.head)
      this.head = 0
    }
  }

  /** Finds room for `len` bytes after the newest payload (wrapping to 0), evicting what is in the way. */
  private place(len: number): number {
    const cap = this.ring!.length
    for (;;) {
      if (this.size === 0) {
        this.w = 0
        return 0
      }
      const oldest = this.slots[this.head]!.at
      if (oldest < this.w) {
        // live bytes are [oldest, w): free are [w, cap) and [0, oldest)
        if (this.w + len <= cap) return this.w
        // wrap: the oldest entries sit at the start of the ring
        while (this.size > 0 && this.slots[this.head]!.at < len) this.evictOldest()
        if (this.size > 0 && this.slots[this.head]!.at < this.w) return 0
        // everything from the start was evicted, or the live bytes now begin past w: loop
        this.w = 0
        if (this.size === 0) return 0
        continue
      }
      // live bytes wrap: [oldest, cap) and [0, w); free is [w, oldest)
      if (this.w + len <= oldest) return this.w
      this.evictOldest()
    }
  }

  /** Drop entries with lastKey > key. */
  truncateAfter(key: number): void {
    while (this.slots.length > this.head && this.slots[this.slots.length - 1]!.lastKey > key) {
      const s = this.slots.pop()!
      this.bytes -= s.length + FRAME_HEADER
      this.w = s.at
    }
    if (this.size === 0) this.clear()
  }

  /** Drop entries with a Raft index > index (the newest ones). */
  truncateAfterIndex(index: number): void {
    while (this.slots.length > this.head && this.slots[this.slots.length - 1]!.index > index) {
      const s = this.slots.pop()!
      this.bytes -= s.length + FRAME_HEADER
      this.w = s.at
    }
    if (this.size === 0) this.clear()
  }

  /** Term of the cached entry with Raft index `index`, if cached. */
  termAtIndex(index: number): number | undefined {
    const first = this.firstIndex()
    if (first === 0 || index < first) return undefined
    // indexes are dense in a Raft log: try the direct slot first
    const i = this.head + (index - first)
    if (i < this.slots.length && this.slots[i]!.index === index) return this.slots[i]!.term
    return undefined
  }

  /** Raft index of the oldest cached entry (0 if empty or not indexed). */
  firstIndex(): number {
    return this.head < this.slots.length ? this.slots[this.head]!.index : 0
  }

  /**
   * Entries with Raft index >= lo (empty-range ones included), at least one,
   * then while the payload total stays <= maxBytes. The caller checks
   * `0 < firstIndex() <= lo`. Payloads are fresh copies (safe to keep).
   */
  entriesFromIndex(lo: number, maxBytes: number, out: Array<LogEntry>): void {
    const slots = this.slots
    let a = this.head
    let b = slots.length - 1
    let start = slots.length
    while (a <= b) {
      const mid = (a + b) >>> 1
      if (slots[mid]!.index >= lo) {
        start = mid
        b = mid - 1
      } else a = mid + 1
    }
    let bytes = 0
    const ring = this.ring!
    for (let i = start; i < slots.length; i++) {
      const s = slots[i]!
      if (i > start && bytes + s.length > maxBytes) break
      bytes += s.length
      const payload = Buffer.allocUnsafe(s.length)
      ring.copy(payload, 0, s.at, s.at + s.length)
      out.push({
        firstKey: s.firstKey,
        lastKey: s.lastKey,
        term: s.term,
        maxTimestamp: s.maxTimestamp,
        type: s.type,
        index: s.index,
        payload
      })
      if (bytes >= maxBytes) break
    }
  }

  /** Drop entries with lastKey < key. */
  dropBefore(key: number): void {
    while (this.head < this.slots.length && this.slots[this.head]!.lastKey < key) this.evictOldest()
  }

  private evictOldest(): void {
    const s = this.slots[this.head]!
    this.bytes -= s.length + FRAME_HEADER
    this.head++
    if (this.size === 0) this.clear()
  }

  /** Empties the cache (its ring is kept for reuse). */
  clear(): void {
    this.slots = []
    this.head = 0
    this.w = 0
    this.bytes = 0
  }

  /**
   * Entries covering or following `fromKey`; the first entry is always
   * included, later ones while they fit in `maxBytes` (payload bytes) and
   * have lastKey <= maxKey. The caller checks `firstKey() <= fromKey`.
   * Payloads are views of one buffer holding copies, taken from
   * `readBuffers` and pushed on `buffers` (see `ReadResult.buffers`).
   */
  read(fromKey: number, maxBytes: number, maxKey: number, out: Array<LogEntry>, buffers?: Array<Buffer>): number {
    const slots = this.slots
    let lo = this.head
    let hi = slots.length - 1
    let start = slots.length
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (slots[mid]!.lastKey >= fromKey) {
        start = mid
        hi = mid - 1
      } else lo = mid + 1
    }
    const base = out.length
    let bytes = 0
    let end = start
    let taken = 0
    for (let i = start; i < slots.length; i++) {
      const s = slots[i]!
      // empty-range entries (no key) are never returned by key reads
      if (s.lastKey < s.firstKey) continue
      if (s.lastKey > maxKey) break
      if ((taken > 0 || out.length > base) && bytes + s.length > maxBytes) break
      bytes += s.length
      taken++
      end = i + 1
      if (bytes >= maxBytes) break
    }
    if (taken === 0) return 0
    const ring = this.ring!
    const copy = readBuffers.acquire(bytes)
    buffers?.push(copy)
    let pos = 0
    for (let i = start; i < end; i++) {
      const s = slots[i]!
      if (s.lastKey < s.firstKey) continue
      ring.copy(copy, pos, s.at, s.at + s.length)
      out.push({
        firstKey: s.firstKey,
        lastKey: s.lastKey,
        term: s.term,
        maxTimestamp: s.maxTimestamp,
        type: s.type,
        index: s.index,
        payload: copy.subarray(pos, pos + s.length)
      })
      pos += s.length
    }
    return bytes
  }
}
