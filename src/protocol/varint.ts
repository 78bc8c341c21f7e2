/**
 * Variable-length integers as the Kafka protocol uses them (protobuf style).
 *
 * - unsigned varint: 7 bits per byte, little-endian groups, high bit = more.
 * - varint / varlong: zigzag-encoded signed values.
 *
 * Plain synchronous functions over a {@link Cursor}; no allocation. Varlongs
 * are JS numbers and must be safe integers (|v| <= 2^53 - 1), which covers
 * every timestamp and offset delta a real client sends; a larger value is a
 * decode error rather than silent precision loss.
 */
import { KafkaDecodeError, KafkaEncodeError } from "./errors.js"

/** A read position in a buffer. `end` is the exclusive bound reads must respect. */
export interface Cursor {
  buf: Buffer
  pos: number
  end: number
}

export const cursor = (buf: Buffer, pos = 0, end = buf.length): Cursor => ({ buf, pos, end })

const fail = (c: Cursor, field: string, reason: string): never => {
  throw new KafkaDecodeError({ api: "varint", version: -1, field, offset: c.pos, reason })
}

/** Reads an unsigned 32-bit varint (at most 5 bytes). */
export const readUnsignedVarint = (c: Cursor, field = "unsignedVarint"): number => {
  const buf = c.buf
  let pos = c.pos
  let result = 0
  let shift = 0
  for (let i = 0; i < 5; i++) {
    if (pos >= c.end) return fail(c, field, "truncated varint")
    const b = buf[pos++]!
    if (i === 4 && b > 0x0f) return fail(c, field, "unsigned varint does not fit in 32 bits")
    result += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) {
      c.pos = pos
      return result
    }
    shift += 7
  }
  return fail(c, field, "varint longer than 5 bytes")
}

/** Reads a zigzag-encoded signed 32-bit varint. */
export const readVarint = (c: Cursor, field = "varint"): number => {
  const u = readUnsignedVarint(c, field)
  // zigzag decode on an unsigned 32-bit value
  return (u >>> 1) ^ -(u & 1)
}

/** Reads a zigzag-encoded signed 64-bit varlong as a safe-integer number. */
export const readVarlong = (c: Cursor, field = "varlong"): number => {
  const buf = c.buf
  let pos = c.pos
  let result = 0
  let mul = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= c.end) return fail(c, field, "truncated varlong")
    const b = buf[pos++]!
    result += (b & 0x7f) * mul
    if ((b & 0x80) === 0) {
      c.pos = pos
      if (result > Number.MAX_SAFE_INTEGER) return fail(c, field, "varlong exceeds 2^53")
      // zigzag decode without 64-bit ints: even -> n/2, odd -> -(n+1)/2
      return result % 2 === 0 ? result / 2 : -(result + 1) / 2
    }
    mul *= 128
  }
  return fail(c, field, "varlong longer than 10 bytes")
}

/** Bytes needed for an unsigned varint. */
export const unsignedVarintSize = (v: number): number => {
  if (v < 0x80) return 1
  if (v < 0x4000) return 2
  if (v < 0x200000) return 3
  if (v < 0x10000000) return 4
  return 5
}

const zigzag32 = (v: number): number => ((v << 1) ^ (v >> 31)) >>> 0
const zigzag64 = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1)

export const varintSize = (v: number): number => unsignedVarintSize(zigzag32(v))

export const varlongSize = (v: number): number => {
  let u = zigzag64(v)
  let n = 1
  while (u >= 128) {
    u = Math.floor(u / 128)
    n++
  }
  return n
}

/** Writes an unsigned 32-bit varint at `off`; returns the position after it. */
export const writeUnsignedVarint = (buf: Buffer, off: number, v: number): number => {
  if (!(v >= 0 && v <= 0xffffffff) || !Number.isInteger(v)) {
    throw new KafkaEncodeError({ api: "varint", version: -1, field: "unsignedVarint", reason: `out of range: ${v}` })
  }
  while (v >= 0x80) {
    buf[off++] = (v & 0x7f) | 0x80
    v = v >>> 7
  }
  buf[off++] = v
  return off
}

export const writeVarint = (buf: Buffer, off: number, v: number): number => {
  if (!(v >= -0x80000000 && v <= 0x7fffffff) || !Number.isInteger(v)) {
    throw new KafkaEncodeError({ api: "varint", version: -1, field: "varint", reason: `out of range: ${v}` })
  }
  return writeUnsignedVarint(buf, off, zigzag32(v))
}

export const writeVarlong = (buf: Buffer, off: number, v: number): number => {
  if (!Number.isSafeInteger(v)) {
    throw new KafkaEncodeError({ api: "varint", version: -1, field: "varlong", reason: `not a safe integer: ${v}` })
  }
  let u = zigzag64(v)
  while (u >= 128) {
    buf[off++] = (u % 128) | 0x80
    u = Math.floor(u / 128)
  }
  buf[off++] = u
  return off
}
