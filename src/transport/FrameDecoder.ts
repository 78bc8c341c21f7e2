/**
 * Kafka wire framing: every request and response is a 4-byte big-endian
 * signed size followed by that many bytes.
 *
 * {@link FrameDecoder} is a plain synchronous class (hot path: no Effect, no
 * allocation per frame when a frame lies inside one chunk). It keeps the
 * received chunks in a list and only copies when a frame straddles chunks,
 * so a stream of many small frames per chunk costs one `subarray` per frame,
 * and a large frame that arrives in many chunks is copied exactly once.
 */
import { Data } from "effect"

/** A size prefix was negative or larger than the configured maximum. */
export class InvalidFrameSize extends Data.TaggedError("InvalidFrameSize")<{
  readonly size: number
  readonly maxFrameBytes: number
}> {
  override get message(): string {
    return this.size < 0
      ? `invalid frame size ${this.size} (negative)`
      : `frame size ${this.size} exceeds the maximum of ${this.maxFrameBytes} bytes`
  }
}

const EMPTY = Buffer.alloc(0)

export class FrameDecoder {
  /** Received chunks not yet fully consumed; `chunks[head]` is read from `offset`. */
  private chunks: Array<Buffer> = []
  private head = 0
  private offset = 0
  /** Bytes received and not yet returned as (part of) a frame, size prefixes included. */
  private bufferedBytes = 0
  /** Size of the frame whose prefix was already read, or -1. */
  private pendingSize = -1

  constructor(readonly maxFrameBytes: number) {}

  /** Bytes held by the decoder (partial frames and frames not yet taken). */
  get buffered(): number {
    return this.bufferedBytes
  }

  /** Size of the next frame if its prefix has arrived, else -1. */
  get nextFrameSize(): number {
    return this.pendingSize
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.bufferedBytes += chunk.length
  }

  /** True when a complete frame can be taken with {@link next} (may throw like `next`). */
  hasFrame(): boolean {
    if (this.pendingSize < 0) {
      if (this.bufferedBytes < 4) return false
      this.pendingSize = this.readSize()
    }
    return this.bufferedBytes >= this.pendingSize
  }

  /**
   * The next complete frame's bytes (without the size prefix), or `undefined`
   * when more bytes are needed. Throws {@link InvalidFrameSize}; after that the
   * decoder must be discarded.
   */
  next(): Buffer | undefined {
    if (!this.hasFrame()) return undefined
    const size = this.pendingSize
    this.pendingSize = -1
    if (size === 0) return EMPTY
    this.bufferedBytes -= size
    const chunk = this.chunks[this.head]!
    const available = chunk.length - this.offset
    if (available >= size) {
      const frame = chunk.subarray(this.offset, this.offset + size)
      this.offset += size
      if (available === size) this.advanceChunk()
      return frame
    }
    // Straddles chunks: one copy.
    const frame = Buffer.allocUnsafe(size)
    let written = 0
    while (written < size) {
      const c = this.chunks[this.head]!
      const n = Math.min(c.length - this.offset, size - written)
      c.copy(frame, written, this.offset, this.offset + n)
      written += n
      this.offset += n
      if (this.offset === c.length) this.advanceChunk()
    }
    return frame
  }

  /** Drops everything buffered. */
  clear(): void {
    this.chunks = []
    this.head = 0
    this.offset = 0
    this.bufferedBytes = 0
    this.pendingSize = -1
  }

  /** Consumes and validates a 4-byte size prefix; requires `bufferedBytes >= 4`. */
  private readSize(): number {
    let size: number
    const chunk = this.chunks[this.head]!
    if (chunk.length - this.offset >= 4) {
      size = chunk.readInt32BE(this.offset)
      this.offset += 4
      if (this.offset === chunk.length) this.advanceChunk()
    } else {
      size = 0
      for (let i = 0; i < 4; i++) {
        const c = this.chunks[this.head]!
        size = (size << 8) | c[this.offset]!
        this.offset++
        if (this.offset === c.length) this.advanceChunk()
      }
    }
    this.bufferedBytes -= 4
    if (size < 0 || size > this.maxFrameBytes) {
      throw new InvalidFrameSize({ size, maxFrameBytes: this.maxFrameBytes })
    }
    return size
  }

  private advanceChunk(): void {
    this.chunks[this.head] = EMPTY
    this.head++
    this.offset = 0
    if (this.head === this.chunks.length) {
      this.chunks.length = 0
      this.head = 0
    } else if (this.head >= 64) {
      this.chunks.splice(0, this.head)
      this.head = 0
    }
  }
}

/** Encodes frames with their size prefixes into one buffer (tests, clients). */
export const encodeFrames = (frames: ReadonlyArray<Uint8Array>): Buffer => {
  let total = 0
  for (const f of frames) total += 4 + f.length
  const out = Buffer.allocUnsafe(total)
  let pos = 0
  for (const f of frames) {
    out.writeInt32BE(f.length, pos)
    out.set(f, pos + 4)
    pos += 4 + f.length
  }
  return out
}
