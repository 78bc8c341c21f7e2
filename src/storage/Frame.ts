/**
 * On-disk frame of one log entry (all integers big-endian):
 *
 *   0  length        u32  bytes after this field (= 45 + payload length)
 *   4  crc           u32  CRC-32C of bytes [8, 4 + length)
 *   8  firstKey      i64
 *  16  lastKey       i64
 *  24  term          i64
 *  32  maxTimestamp  i64
 *  40  index         i64  Raft index (0: the log is not a Raft log)
 *  48  type          u8
 *  49  payload       (opaque: a Kafka record batch, a Raft command, ...)
 *
 * This is format v2 (v1 had no `index` and a 41-byte header; a data dir
 * written by v1 is refused by LogStore, see FORMAT_VERSION).
 *
 * An entry with lastKey === firstKey - 1 is an "empty-range" entry: it takes
 * no key (a Raft no-op or membership entry). Its maxTimestamp is stored as -1.
 *
 * Plain synchronous functions over Buffer: they run once per entry on the hot
 * path. int64 values are JS numbers (safe integers).
 */
import { crc32c } from "@node-rs/crc32"
import { crc32cCombine } from "./crc32cCombine.js"

export const FRAME_HEADER = 49
/** On-disk log format version written in the data dir marker (see LogStore). */
export const FORMAT_VERSION = 2
/** length field value for an empty payload */
const MIN_LENGTH = FRAME_HEADER - 4
/** Frames larger than this are treated as garbage (torn/corrupt). */
export const MAX_FRAME = 1024 * 1024 * 1024

/** What a caller appends. */
export interface AppendEntry {
  readonly firstKey: number
  readonly lastKey: number
  readonly term: number
  readonly maxTimestamp: number
  /** Small user type/flags byte (0..255). */
  readonly type: number
  readonly payload: Uint8Array
  /**
   * Raft index of the entry (absent or 0: the log is not a Raft log). In a
   * log whose frames carry indexes, an entry must have index lastIndex() + 1.
   */
  readonly index?: number
  /**
   * The CRC-32C of `payload.subarray(from)`, when the writer already knows
   * it (a Kafka record batch carries the CRC of its bytes from the
   * attributes on, checked when it was produced): the frame CRC is derived
   * from it (`crc32cCombine`) instead of reading those bytes again. It must
   * be right: a wrong one makes the frame fail its check on read.
   */
  readonly payloadCrc?: { readonly from: number; readonly crc: number }
}

/** What a read returns. `payload` is a view into a read buffer (no copy). */
export interface LogEntry extends AppendEntry {
  readonly payload: Buffer
  readonly index: number
}

/** True for an entry that takes no key (lastKey === firstKey - 1). */
export const isEmptyRange = (e: { readonly firstKey: number; readonly lastKey: number }): boolean =>
  e.lastKey < e.firstKey

const TWO32 = 4294967296

export const writeI64 = (buf: Buffer, v: number, at: number): void => {
  const hi = Math.floor(v / TWO32)
  buf.writeInt32BE(hi, at)
  buf.writeUInt32BE(v - hi * TWO32, at + 4)
}

export const readI64 = (buf: Buffer, at: number): number => buf.readInt32BE(at) * TWO32 + buf.readUInt32BE(at + 4)

export const frameSize = (e: AppendEntry): number => FRAME_HEADER + e.payload.length

/** Encode one frame at `at` in `buf`; returns the frame size. */
export const encodeFrame = (buf: Buffer, at: number, e: AppendEntry): number => {
  const size = FRAME_HEADER + e.payload.length
  buf.writeUInt32BE(size - 4, at)
  writeI64(buf, e.firstKey, at + 8)
  writeI64(buf, e.lastKey, at + 16)
  writeI64(buf, e.term, at + 24)
  writeI64(buf, e.lastKey < e.firstKey ? -1 : e.maxTimestamp, at + 32)
  writeI64(buf, e.index ?? 0, at + 40)
  buf[at + 48] = e.type & 0xff
  buf.set(e.payload, at + FRAME_HEADER)
  buf.writeUInt32BE(frameCrc(buf, at, e), at + 4)
  return size
}

/** CRC-32C of the header tail (bytes 8..48, already encoded at `at`) followed by the payload. */
const frameCrc = (buf: Buffer, at: number, e: AppendEntry): number => {
  const seed = crc32c(buf.subarray(at + 8, at + FRAME_HEADER))
  const known = e.payloadCrc
  if (known === undefined) return crc32c(e.payload, seed)
  const head = crc32c(e.payload.subarray(0, known.from), seed)
  return crc32cCombine(head, known.crc, e.payload.length - known.from)
}

/**
 * Encode only the 49-byte header of a frame at `at` (CRC computed over the
 * header tail and the payload without copying it), for vectored writes.
 */
export const encodeHeader = (buf: Buffer, at: number, e: AppendEntry): void => {
  buf.writeUInt32BE(FRAME_HEADER - 4 + e.payload.length, at)
  writeI64(buf, e.firstKey, at + 8)
  writeI64(buf, e.lastKey, at + 16)
  writeI64(buf, e.term, at + 24)
  writeI64(buf, e.lastKey < e.firstKey ? -1 : e.maxTimestamp, at + 32)
  writeI64(buf, e.index ?? 0, at + 40)
  buf[at + 48] = e.type & 0xff
  buf.writeUInt32BE(frameCrc(buf, at, e), at + 4)
}

export type FrameCheck =
  | { readonly _tag: "ok"; readonly size: number }
  /** Not enough bytes in the buffer for the frame header or body. */
  | { readonly _tag: "incomplete"; readonly need: number }
  | { readonly _tag: "bad"; readonly reason: string }

const INCOMPLETE_HEADER: FrameCheck = { _tag: "incomplete", need: FRAME_HEADER }

/**
 * Validate the frame at `at` (length, CRC unless `verifyCrc` is false, key
 * sanity). `end` bounds the valid bytes in `buf`. Does not check continuity
 * with the previous frame.
 */
export const checkFrame = (buf: Buffer, at: number, end: number, verifyCrc = true): FrameCheck => {
  if (end - at < FRAME_HEADER) {
    return end - at < 4 ? INCOMPLETE_HEADER : lengthOnly(buf, at, end)
  }
  const length = buf.readUInt32BE(at)
  if (length < MIN_LENGTH || length > MAX_FRAME) return { _tag: "bad", reason: `bad frame length ${length}` }
  const size = length + 4
  if (end - at < size) return { _tag: "incomplete", need: size }
  const crc = buf.readUInt32BE(at + 4)
  if (verifyCrc && crc32c(buf.subarray(at + 8, at + size)) !== crc) return { _tag: "bad", reason: "CRC mismatch" }
  const first = readI64(buf, at + 8)
  const last = readI64(buf, at + 16)
  // last === first - 1: an empty-range entry (takes no key)
  if (!(last >= first - 1) || first < 0) return { _tag: "bad", reason: `bad keys ${first}..${last}` }
  if (readI64(buf, at + 40) < 0) return { _tag: "bad", reason: "bad index" }
  return { _tag: "ok", size }
}

const lengthOnly = (buf: Buffer, at: number, _end: number): FrameCheck => {
  const length = buf.readUInt32BE(at)
  if (length < MIN_LENGTH || length > MAX_FRAME) return { _tag: "bad", reason: `bad frame length ${length}` }
  return INCOMPLETE_HEADER
}

export const frameFirstKey = (buf: Buffer, at: number): number => readI64(buf, at + 8)
export const frameLastKey = (buf: Buffer, at: number): number => readI64(buf, at + 16)
export const frameTerm = (buf: Buffer, at: number): number => readI64(buf, at + 24)
export const frameMaxTimestamp = (buf: Buffer, at: number): number => readI64(buf, at + 32)
export const frameIndex = (buf: Buffer, at: number): number => readI64(buf, at + 40)

/** Decode a checked frame; the payload is a view into `buf`. */
export const decodeFrame = (buf: Buffer, at: number, size: number): LogEntry => ({
  firstKey: readI64(buf, at + 8),
  lastKey: readI64(buf, at + 16),
  term: readI64(buf, at + 24),
  maxTimestamp: readI64(buf, at + 32),
  index: readI64(buf, at + 40),
  type: buf[at + 48]!,
  payload: buf.subarray(at + FRAME_HEADER, at + size)
})
