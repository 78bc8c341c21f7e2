/**
 * Reusable buffers for log reads that end up in Fetch responses.
 *
 * A consumer catching up reads ~1 MiB per partition per Fetch; allocating a
 * fresh buffer for each read made V8 count ~100 MB/s of new external memory
 * and run a full mark-compact every ~64 MB of it (19% of the broker's time in
 * GC while a Java consumer read 1 GB). Buffers taken here are given back by
 * whoever is done with the payload views into them: the Fetch handler once
 * the transport has handed the response to the kernel (`ReleasingResponse`).
 * A buffer never given back is left to the garbage collector, so a reader
 * that keeps its views (recovery, the producer-state replay, tests) is always
 * safe; giving back a buffer whose views are still in use is the one misuse.
 *
 * Sizes are rounded up to a power of two between 64 KiB and 16 MiB; larger
 * reads are not pooled; readers ask for `pooledReadSize` so that a read does
 * not take a buffer twice its size. At most `maxIdleBytes` of free buffers
 * are kept (96 MiB by default: one Fetch of 8 partitions at Kafka's default
 * 1 MiB each needs 8 MiB, a consumer catching up with 8 MiB each 64 MiB).
 */
const MIN_CLASS = 64 * 1024
const MAX_CLASS = 16 * 1024 * 1024

const classOf = (len: number): number => {
  let c = MIN_CLASS
  while (c < len) c *= 2
  return c
}

/**
 * The read size to ask for when `wanted` bytes would do and at least `need`
 * are required: `wanted` rounded down to a size class (reading a little less
 * costs at most one more read; rounding up would double a buffer's size).
 */
export const pooledReadSize = (wanted: number, need: number): number => {
  if (wanted <= MIN_CLASS) return Math.max(wanted, need)
  let c = MIN_CLASS
  while (c * 2 <= wanted && c * 2 <= MAX_CLASS) c *= 2
  return Math.max(c, need)
}

export class ReadBufferPool {
  private readonly free = new Map<number, Array<ArrayBuffer>>()
  private readonly inUse = new WeakSet<ArrayBuffer>()
  private idleBytes = 0
  /** Buffers handed out, and how many of them came from the free lists. */
  readonly stats = { acquired: 0, reused: 0, released: 0 }

  constructor(readonly maxIdleBytes: number = 96 * 1024 * 1024) {}

  /** A buffer of `len` bytes (contents undefined), pooled when its size allows. */
  acquire(len: number): Buffer {
    if (len > MAX_CLASS) return Buffer.allocUnsafe(len)
    const size = classOf(len)
    this.stats.acquired++
    let ab = this.free.get(size)?.pop()
    if (ab !== undefined) {
      this.idleBytes -= size
      this.stats.reused++
    } else {
      // not zero-filled, unlike `new ArrayBuffer`: the read overwrites what it uses
      ab = Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer
    }
    this.inUse.add(ab)
    return Buffer.from(ab, 0, len)
  }

  /** Gives back a buffer from `acquire` (or a view of one); anything else, or a second release, is ignored. */
  release(buf: Buffer): void {
    const ab = buf.buffer
    if (!(ab instanceof ArrayBuffer) || !this.inUse.has(ab)) return
    this.inUse.delete(ab)
    this.stats.released++
    if (this.idleBytes + ab.byteLength > this.maxIdleBytes) return
    let list = this.free.get(ab.byteLength)
    if (list === undefined) this.free.set(ab.byteLength, (list = []))
    list.push(ab)
    this.idleBytes += ab.byteLength
  }

  /** Bytes of free buffers kept for reuse. */
  get idle(): number {
    return this.idleBytes
  }
}

/** The node's pool for reads that feed Fetch responses. */
export const readBuffers = new ReadBufferPool()
