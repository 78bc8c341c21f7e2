/**
 * Sparse indexes of a segment, kept in memory (growable typed arrays) and
 * mirrored to `.index` / `.timeindex` files.
 *
 *  .index      12-byte entries: [key i64][file position u32], keys and positions strictly increasing
 *  .timeindex  16-byte entries: [max timestamp so far i64][key i64], both strictly increasing
 *
 * An offset index entry (k, p) says: the frame whose firstKey is k starts at p.
 * A time index entry (t, k) says: every frame before the frame starting at key
 * k has maxTimestamp <= t, and that frame's maxTimestamp is t.
 */
import { readI64, writeI64 } from "./Frame.js"

export const OFFSET_ENTRY = 12
export const TIME_ENTRY = 16

class PairArray {
  a = new Float64Array(16)
  b = new Float64Array(16)
  count = 0
  push(x: number, y: number): void {
    if (this.count === this.a.length) {
      const na = new Float64Array(this.a.length * 2)
      const nb = new Float64Array(this.a.length * 2)
      na.set(this.a)
      nb.set(this.b)
      this.a = na
      this.b = nb
    }
    this.a[this.count] = x
    this.b[this.count] = y
    this.count++
  }
  /** Index of the last entry with a[i] <= x, or -1. */
  floorA(x: number): number {
    let lo = 0
    let hi = this.count - 1
    let ans = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.a[mid]! <= x) {
        ans = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return ans
  }
  /** Index of the last entry with a[i] < x, or -1. */
  lowerA(x: number): number {
    let lo = 0
    let hi = this.count - 1
    let ans = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.a[mid]! < x) {
        ans = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return ans
  }
}

export class OffsetIndex {
  private readonly e = new PairArray()
  /** Entries already written to the file. */
  persisted = 0
  get count(): number {
    return this.e.count
  }
  key(i: number): number {
    return this.e.a[i]!
  }
  position(i: number): number {
    return this.e.b[i]!
  }
  lastKey(): number {
    return this.e.count === 0 ? -1 : this.e.a[this.e.count - 1]!
  }
  append(key: number, position: number): void {
    this.e.push(key, position)
  }
  /** Index of the last entry with key <= `key`, or -1. */
  floorIndex(key: number): number {
    return this.e.floorA(key)
  }
  /** File position to start scanning for `key` (0 if no entry is <= key). */
  lookup(key: number): number {
    const i = this.e.floorA(key)
    return i < 0 ? 0 : this.e.b[i]!
  }
  /** Drop entries whose position is >= `position`. */
  truncateToPosition(position: number): void {
    while (this.e.count > 0 && this.e.b[this.e.count - 1]! >= position) this.e.count--
    if (this.persisted > this.e.count) this.persisted = this.e.count
  }
  encode(from = 0): Buffer {
    const n = this.e.count - from
    const buf = Buffer.allocUnsafe(n * OFFSET_ENTRY)
    for (let i = 0; i < n; i++) {
      writeI64(buf, this.e.a[from + i]!, i * OFFSET_ENTRY)
      buf.writeUInt32BE(this.e.b[from + i]!, i * OFFSET_ENTRY + 8)
    }
    return buf
  }
  /**
   * Parse an index file; returns undefined when it is not a valid index for a
   * segment with this base and log size.
   */
  static decode(buf: Buffer, base: number, logSize: number): OffsetIndex | undefined {
    if (buf.length % OFFSET_ENTRY !== 0) return undefined
    const idx = new OffsetIndex()
    let prevKey = base - 1
    let prevPos = -1
    for (let at = 0; at < buf.length; at += OFFSET_ENTRY) {
      const k = readI64(buf, at)
      const p = buf.readUInt32BE(at + 8)
      if (k <= prevKey || p <= prevPos || p >= logSize) return undefined
      idx.append(k, p)
      prevKey = k
      prevPos = p
    }
    idx.persisted = idx.count
    return idx
  }
}

export class TimeIndex {
  private readonly e = new PairArray()
  persisted = 0
  get count(): number {
    return this.e.count
  }
  timestamp(i: number): number {
    return this.e.a[i]!
  }
  key(i: number): number {
    return this.e.b[i]!
  }
  lastTimestamp(): number {
    return this.e.count === 0 ? -Infinity : this.e.a[this.e.count - 1]!
  }
  lastKey(): number {
    return this.e.count === 0 ? -1 : this.e.b[this.e.count - 1]!
  }
  maybeAppend(timestamp: number, key: number): void {
    if (timestamp > this.lastTimestamp() && key > this.lastKey()) this.e.push(timestamp, key)
  }
  /** Key to start scanning from for the first frame with maxTimestamp >= ts, or -1 (segment start). */
  lookup(ts: number): number {
    const i = this.e.lowerA(ts)
    return i < 0 ? -1 : this.e.b[i]!
  }
  /** Max timestamp of the frames before the frame starting at `key` (-Infinity if unknown/none). */
  timestampBefore(key: number): number {
    const i = this.lowerKey(key)
    return i < 0 ? -Infinity : this.e.a[i]!
  }
  keyBefore(key: number): number {
    const i = this.lowerKey(key)
    return i < 0 ? -1 : this.e.b[i]!
  }
  private lowerKey(key: number): number {
    let lo = 0
    let hi = this.e.count - 1
    let ans = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.e.b[mid]! < key) {
        ans = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return ans
  }
  /** Drop entries whose key is >= `key`. */
  truncateToKey(key: number): void {
    while (this.e.count > 0 && this.e.b[this.e.count - 1]! >= key) this.e.count--
    if (this.persisted > this.e.count) this.persisted = this.e.count
  }
  encode(from = 0): Buffer {
    const n = this.e.count - from
    const buf = Buffer.allocUnsafe(n * TIME_ENTRY)
    for (let i = 0; i < n; i++) {
      writeI64(buf, this.e.a[from + i]!, i * TIME_ENTRY)
      writeI64(buf, this.e.b[from + i]!, i * TIME_ENTRY + 8)
    }
    return buf
  }
  static decode(buf: Buffer, base: number): TimeIndex | undefined {
    if (buf.length % TIME_ENTRY !== 0) return undefined
    const idx = new TimeIndex()
    let prevTs = -Infinity
    let prevKey = base - 1
    for (let at = 0; at < buf.length; at += TIME_ENTRY) {
      const t = readI64(buf, at)
      const k = readI64(buf, at + 8)
      if (t <= prevTs || k <= prevKey) return undefined
      idx.e.push(t, k)
      prevTs = t
      prevKey = k
    }
    idx.persisted = idx.count
    return idx
  }
}
