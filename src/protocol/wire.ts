/**
 * Runtime primitives for the generated Kafka message codecs
 * (`src/protocol/generated/**`, produced by `scripts/gen-protocol.ts`).
 *
 * Decoding: plain reader functions over a {@link Cursor}. Every read is
 * bounds-checked against `cursor.end`; lengths and counts are validated
 * against the remaining bytes before anything is allocated. Readers throw a
 * lightweight {@link DecodeFailure} with the leaf field name; the generated code
 * prefixes the field path (`topics[2].partitions[0].index`) on the way out and
 * the entry point turns it into a {@link KafkaDecodeError} with the message name
 * and version (zero cost unless something throws).
 *
 * Encoding: two passes. The size pass walks the value once, validates it,
 * computes the exact frame size and records every UTF-8 string length and
 * tagged-field size in a `lens` queue. The write pass allocates one Buffer
 * and writes into it, consuming `lens` in the same order. No Buffer.concat,
 * no intermediate buffers, no closures.
 */
import { KafkaDecodeError, KafkaEncodeError } from "./errors.js"
import {
  type Cursor,
  readUnsignedVarint,
  unsignedVarintSize,
  writeUnsignedVarint,
  writeVarint,
  writeVarlong,
  readVarint,
  readVarlong,
  varintSize,
  varlongSize
} from "./varint.js"

export type { Cursor }
export { cursor } from "./varint.js"
export { readUnsignedVarint, readVarint, readVarlong, unsignedVarintSize, varintSize, varlongSize }

// ---------------------------------------------------------------------------
// Shared types
// ---------------------------------------------------------------------------

/** A tagged field this codec does not know (at the decoded version); kept verbatim. */
export interface TaggedField {
  readonly tag: number
  readonly data: Buffer
}

/** Output of the write pass. `lens` is the queue filled by the size pass. */
export interface Writer {
  buf: Buffer
  pos: number
  lens: Array<number>
  li: number
}

/** One generated message codec (request, response, header or data type). */
export interface MessageCodec<T, I = T> {
  readonly name: string
  readonly type: "request" | "response" | "header" | "data"
  /** API key, or -1 for headers and data types. */
  readonly apiKey: number
  readonly minVersion: number
  readonly maxVersion: number
  /** First flexible version, or -1 when no version is flexible. */
  readonly firstFlexibleVersion: number
  readonly latestVersionUnstable: boolean
  /** Decodes at `cursor.pos`, leaving the cursor after the message. */
  decode(version: number, c: Cursor): T
  /** Encodes into a new, exactly sized Buffer. */
  encode(version: number, value: I): Buffer
  /** Size pass (no version check, errors not contextualised): used to build frames. */
  size(version: number, value: I, lens: Array<number>): number
  /** Write pass matching {@link MessageCodec.size}. */
  write(version: number, value: I, w: Writer): void
}

export const EMPTY_BUFFER: Buffer = Buffer.alloc(0)
const EMPTY_TAGS: ReadonlyArray<TaggedField> = Object.freeze([])

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * Internal decode failure. Readers throw this plain object (no stack capture, so
 * rejecting hostile input stays cheap); nested decoders prefix its path in place
 * and the generated entry point converts it, once, into a {@link KafkaDecodeError}.
 * It never escapes a generated `decodeX` function.
 */
export class DecodeFailure {
  constructor(
    public field: string,
    readonly offset: number,
    readonly reason: string
  ) {}
}

export const fail = (c: Cursor, field: string, reason: string): never => {
  throw new DecodeFailure(field, c.pos, reason)
}

export const encFail = (field: string, reason: string): never => {
  throw new KafkaEncodeError({ api: "", version: -1, field, reason })
}

const joinPath = (name: string, idx: number, inner: string): string => {
  const head = idx >= 0 ? `${name}[${idx}]` : name
  return inner === "" ? head : `${head}.${inner}`
}

/** Prefixes the field path of a codec error raised inside a nested struct. Other errors pass through. */
export const pfx = (e: unknown, name: string, idx: number): unknown => {
  if (e instanceof DecodeFailure) {
    e.field = joinPath(name, idx, e.field)
    return e
  }
  if (e instanceof KafkaDecodeError) return new DecodeFailure(joinPath(name, idx, e.field), e.offset, e.reason)
  if (e instanceof KafkaEncodeError) {
    return new KafkaEncodeError({ api: e.api, version: e.version, field: joinPath(name, idx, e.field), reason: e.reason })
  }
  return e
}

/**
 * Turns a failure leaving a generated decoder into a KafkaDecodeError naming the message
 * and version. The error is built without a stack trace: capturing one costs more than
 * decoding the frame, hostile input can trigger it at will, and the error already says
 * exactly where decoding stopped (message, version, field path, offset).
 */
export const decodeCtx = (e: unknown, api: string, version: number): unknown => {
  if (!(e instanceof DecodeFailure || e instanceof KafkaDecodeError)) return e
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new KafkaDecodeError({ api, version, field: e.field, offset: e.offset, reason: e.reason })
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** Sets message name and version on an encode error leaving a generated encoder. */
export const encodeCtx = (e: unknown, api: string, version: number): unknown =>
  e instanceof KafkaEncodeError ? new KafkaEncodeError({ api, version, field: e.field, reason: e.reason }) : e

// ---------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------

const need = (c: Cursor, n: number, field: string): void => {
  if (c.end - c.pos < n) fail(c, field, `need ${n} bytes, ${c.end - c.pos} left`)
}

export const rInt8 = (c: Cursor, field: string): number => {
  need(c, 1, field)
  return c.buf.readInt8(c.pos++)
}

export const rBool = (c: Cursor, field: string): boolean => {
  need(c, 1, field)
  return c.buf[c.pos++] !== 0
}

export const rInt16 = (c: Cursor, field: string): number => {
  need(c, 2, field)
  const v = c.buf.readInt16BE(c.pos)
  c.pos += 2
  return v
}

export const rUint16 = (c: Cursor, field: string): number => {
  need(c, 2, field)
  const v = c.buf.readUInt16BE(c.pos)
  c.pos += 2
  return v
}

export const rInt32 = (c: Cursor, field: string): number => {
  need(c, 4, field)
  const v = c.buf.readInt32BE(c.pos)
  c.pos += 4
  return v
}

export const rUint32 = (c: Cursor, field: string): number => {
  need(c, 4, field)
  const v = c.buf.readUInt32BE(c.pos)
  c.pos += 4
  return v
}

export const rInt64 = (c: Cursor, field: string): bigint => {
  need(c, 8, field)
  const v = c.buf.readBigInt64BE(c.pos)
  c.pos += 8
  return v
}

export const rFloat64 = (c: Cursor, field: string): number => {
  need(c, 8, field)
  const v = c.buf.readDoubleBE(c.pos)
  c.pos += 8
  return v
}

export const rUuid = (c: Cursor, field: string): string => {
  need(c, 16, field)
  const s = c.buf.toString("base64url", c.pos, c.pos + 16)
  c.pos += 16
  return s
}

export const rUvarint = (c: Cursor, field: string): number => readUnsignedVarint(c, field)
export const rVarint = (c: Cursor, field: string): number => readVarint(c, field)
export const rVarlong = (c: Cursor, field: string): number => readVarlong(c, field)

/** Reads a string/bytes length: -1 for null (only when nullable), else checked against the remaining bytes. */
const rLen = (c: Cursor, field: string, compact: boolean, wide: boolean, nullable: boolean): number => {
  const at = c.pos
  let n: number
  if (compact) {
    n = readUnsignedVarint(c, field) - 1
  } else if (wide) {
    n = rInt32(c, field)
  } else {
    n = rInt16(c, field)
  }
  if (n < 0) {
    if (n === -1 && nullable) return -1
    c.pos = at
    return fail(c, field, n === -1 ? "null is not allowed" : `negative length ${n}`)
  }
  if (n > c.end - c.pos) {
    c.pos = at
    return fail(c, field, `length ${n} exceeds the ${c.end - at} remaining bytes`)
  }
  return n
}

const utf8 = (c: Cursor, n: number): string => {
  const buf = c.buf
  const start = c.pos
  c.pos = start + n
  if (n < 24) {
    // short ASCII strings: avoid the native call
    let s = ""
    for (let i = start; i < start + n; i++) {
      const b = buf[i]!
      if (b >= 0x80) return buf.toString("utf8", start, start + n)
      s += String.fromCharCode(b)
    }
    return s
  }
  return buf.toString("utf8", start, start + n)
}

export const rString = (c: Cursor, field: string, compact: boolean): string => utf8(c, rLen(c, field, compact, false, false))

export const rNullableString = (c: Cursor, field: string, compact: boolean): string | null => {
  const n = rLen(c, field, compact, false, true)
  return n < 0 ? null : utf8(c, n)
}

const bytesOf = (c: Cursor, n: number, view: boolean): Buffer => {
  const start = c.pos
  c.pos = start + n
  const sub = c.buf.subarray(start, start + n)
  return view ? sub : Buffer.from(sub)
}

/** bytes: copied unless `view` (zeroCopy fields and records), so a decoded value does not pin the frame. */
export const rBytes = (c: Cursor, field: string, compact: boolean, view: boolean): Buffer =>
  bytesOf(c, rLen(c, field, compact, true, false), view)

export const rNullableBytes = (c: Cursor, field: string, compact: boolean, view: boolean): Buffer | null => {
  const n = rLen(c, field, compact, true, true)
  return n < 0 ? null : bytesOf(c, n, view)
}

/** Array count. `minElem` (>= 1) is the smallest encoded element size: the count is checked before allocation. */
export const rArrayLen = (c: Cursor, field: string, compact: boolean, minElem: number): number =>
  arrayLen(c, field, compact, minElem, false)

/** Nullable array count: -1 for null. */
export const rNullableArrayLen = (c: Cursor, field: string, compact: boolean, minElem: number): number =>
  arrayLen(c, field, compact, minElem, true)

const arrayLen = (c: Cursor, field: string, compact: boolean, minElem: number, nullable: boolean): number => {
  const at = c.pos
  const n = compact ? readUnsignedVarint(c, field) - 1 : rInt32(c, field)
  if (n < 0) {
    if (n === -1 && nullable) return -1
    c.pos = at
    return fail(c, field, n === -1 ? "null array is not allowed" : `negative array count ${n}`)
  }
  if (n * minElem > c.end - c.pos) {
    c.pos = at
    return fail(c, field, `array count ${n} cannot fit in the ${c.end - at} remaining bytes`)
  }
  return n
}

/** Number of tagged fields; each takes at least 2 bytes. */
export const rTagCount = (c: Cursor): number => {
  const at = c.pos
  const n = readUnsignedVarint(c, "_taggedFields")
  if (n * 2 > c.end - c.pos) {
    c.pos = at
    return fail(c, "_taggedFields", `tagged field count ${n} cannot fit in the ${c.end - at} remaining bytes`)
  }
  return n
}

/** Size of one tagged field's data, checked against the remaining bytes. */
export const rTagSize = (c: Cursor, field: string): number => {
  const at = c.pos
  const n = readUnsignedVarint(c, field)
  if (n > c.end - c.pos) {
    c.pos = at
    return fail(c, field, `tagged field size ${n} exceeds the ${c.end - at} remaining bytes`)
  }
  return n
}

/** Records an unknown tagged field (its data copied). Call {@link sortTags} on the result. */
export const rUnknownTag = (
  c: Cursor,
  acc: Array<TaggedField> | undefined,
  tag: number,
  size: number
): Array<TaggedField> => {
  const data = Buffer.from(c.buf.subarray(c.pos, c.pos + size))
  c.pos += size
  const f: TaggedField = { tag, data }
  if (acc === undefined) return [f]
  acc.push(f)
  return acc
}

/** Unknown tagged fields in ascending tag order (stable; O(n log n) even for hostile orderings). */
export const sortTags = (acc: Array<TaggedField>): Array<TaggedField> => {
  for (let i = 1; i < acc.length; i++) {
    if (acc[i]!.tag < acc[i - 1]!.tag) return acc.sort((a, b) => a.tag - b.tag)
  }
  return acc
}

/** After decoding a known tagged field from its window, the window must be consumed exactly. */
export const tagEnd = (c: Cursor, end: number, field: string): void => {
  if (c.pos !== end) fail(c, field, `tagged field ended at offset ${c.pos}, its declared size ends at ${end}`)
}

// ---------------------------------------------------------------------------
// Size helpers (pass 1)
// ---------------------------------------------------------------------------

export const uvSize = unsignedVarintSize

/** UTF-8 byte length; equals `s.length` exactly when the string is ASCII. */
const utf8Len = (s: string): number => {
  const n = s.length
  if (n < 32) {
    let i = 0
    while (i < n && s.charCodeAt(i) < 0x80) i++
    if (i === n) return n
  }
  return Buffer.byteLength(s, "utf8")
}

/** String size; pushes the UTF-8 length onto `lens` for the write pass (nothing for null). */
export const sStr = (
  s: string | null | undefined,
  lens: Array<number>,
  compact: boolean,
  nullable: boolean,
  field: string
): number => {
  if (s === null) {
    if (!nullable) return encFail(field, "null is not allowed at this version")
    return compact ? 1 : 2
  }
  if (typeof s !== "string") return encFail(field, `expected a string, got ${typeof s}`)
  const n = utf8Len(s)
  if (!compact && n > 0x7fff) return encFail(field, `string of ${n} bytes exceeds 32767`)
  lens.push(n)
  return (compact ? unsignedVarintSize(n + 1) : 2) + n
}

export const sBytes = (b: Buffer | Uint8Array | null | undefined, compact: boolean, nullable: boolean, field: string): number => {
  if (b === null) {
    if (!nullable) return encFail(field, "null is not allowed at this version")
    return compact ? 1 : 4
  }
  if (!(b instanceof Uint8Array)) return encFail(field, "expected a Buffer")
  const n = b.length
  if (n > 0x7ffffffe) return encFail(field, "bytes too long")
  return (compact ? unsignedVarintSize(n + 1) : 4) + n
}

/** Array header size; validates null against nullability. */
export const sArr = (a: ReadonlyArray<unknown> | null | undefined, compact: boolean, nullable: boolean, field: string): number => {
  if (a === null) {
    if (!nullable) return encFail(field, "null is not allowed at this version")
    return compact ? 1 : 4
  }
  if (!Array.isArray(a)) return encFail(field, "expected an array")
  return compact ? unsignedVarintSize(a.length + 1) : 4
}

export const notNull = (v: unknown, field: string): void => {
  if (v === null || v === undefined) encFail(field, "null is not allowed at this version")
}

/** Unknown tagged fields in ascending tag order (a sorted copy when needed); duplicates are errors. */
export const sortedTags = (u: ReadonlyArray<TaggedField> | undefined): ReadonlyArray<TaggedField> => {
  if (u === undefined || u.length === 0) return EMPTY_TAGS
  let sorted = true
  for (let i = 1; i < u.length; i++) {
    if (u[i]!.tag < u[i - 1]!.tag) sorted = false
  }
  const s = sorted ? u : [...u].sort((a, b) => a.tag - b.tag)
  for (let i = 1; i < s.length; i++) {
    if (s[i]!.tag === s[i - 1]!.tag) encFail("_unknownTaggedFields", `duplicate tag ${s[i]!.tag}`)
  }
  return s
}

/** Size of the unknown tagged fields, validating them against the tags known at this version. */
export const sUnknownTags = (u: ReadonlyArray<TaggedField>, known: ReadonlyArray<number>): number => {
  let n = 0
  for (let i = 0; i < u.length; i++) {
    const f = u[i]!
    if (!Number.isInteger(f.tag) || f.tag < 0 || f.tag > 0x7fffffff) encFail("_unknownTaggedFields", `bad tag ${f.tag}`)
    if (known.includes(f.tag)) encFail("_unknownTaggedFields", `tag ${f.tag} is a known field at this version`)
    if (!(f.data instanceof Uint8Array)) encFail("_unknownTaggedFields", "data must be a Buffer")
    n += unsignedVarintSize(f.tag) + unsignedVarintSize(f.data.length) + f.data.length
  }
  return n
}

// ---------------------------------------------------------------------------
// Writers (pass 2)
// ---------------------------------------------------------------------------

const intFail = (field: string, kind: string, v: unknown): never => encFail(field, `${String(v)} is not a valid ${kind}`)

export const wInt8 = (w: Writer, v: number, field: string): void => {
  if (((v << 24) >> 24) !== v) intFail(field, "int8", v)
  w.buf[w.pos++] = v & 0xff
}

export const wBool = (w: Writer, v: boolean, field: string): void => {
  if (typeof v !== "boolean") intFail(field, "bool", v)
  w.buf[w.pos++] = v ? 1 : 0
}

export const wInt16 = (w: Writer, v: number, field: string): void => {
  if (((v << 16) >> 16) !== v) intFail(field, "int16", v)
  w.buf.writeInt16BE(v, w.pos)
  w.pos += 2
}

export const wUint16 = (w: Writer, v: number, field: string): void => {
  if ((v & 0xffff) !== v) intFail(field, "uint16", v)
  w.buf.writeUInt16BE(v, w.pos)
  w.pos += 2
}

export const wInt32 = (w: Writer, v: number, field: string): void => {
  if ((v | 0) !== v) intFail(field, "int32", v)
  w.buf.writeInt32BE(v, w.pos)
  w.pos += 4
}

export const wUint32 = (w: Writer, v: number, field: string): void => {
  if (v >>> 0 !== v) intFail(field, "uint32", v)
  w.buf.writeUInt32BE(v, w.pos)
  w.pos += 4
}

const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n

export const wInt64 = (w: Writer, v: bigint, field: string): void => {
  if (typeof v !== "bigint" || v < I64_MIN || v > I64_MAX) intFail(field, "int64 (bigint)", v)
  w.buf.writeBigInt64BE(v, w.pos)
  w.pos += 8
}

export const wFloat64 = (w: Writer, v: number, field: string): void => {
  if (typeof v !== "number") intFail(field, "float64", v)
  w.buf.writeDoubleBE(v, w.pos)
  w.pos += 8
}

export const wUvarint = (w: Writer, v: number): void => {
  w.pos = writeUnsignedVarint(w.buf, w.pos, v)
}

export const wVarint = (w: Writer, v: number): void => {
  w.pos = writeVarint(w.buf, w.pos, v)
}

export const wVarlong = (w: Writer, v: number): void => {
  w.pos = writeVarlong(w.buf, w.pos, v)
}

export const wUuid = (w: Writer, s: string, field: string): void => {
  if (!decodeUuidInto(s, w.buf, w.pos)) encFail(field, `not a canonical 22-character base64url UUID: ${String(s)}`)
  w.pos += 16
}

/** Writes a string whose UTF-8 length was queued by {@link sStr}. */
export const wStr = (w: Writer, s: string | null | undefined, compact: boolean): void => {
  if (s === null || s === undefined) {
    if (compact) w.buf[w.pos++] = 0
    else {
      w.buf.writeInt16BE(-1, w.pos)
      w.pos += 2
    }
    return
  }
  const n = w.lens[w.li++]!
  if (compact) w.pos = writeUnsignedVarint(w.buf, w.pos, n + 1)
  else {
    w.buf.writeInt16BE(n, w.pos)
    w.pos += 2
  }
  const buf = w.buf
  let p = w.pos
  if (n === s.length && n < 32) {
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i)
  } else {
    p += buf.write(s, p, n, "utf8")
  }
  w.pos = p
}

export const wBytes = (w: Writer, b: Uint8Array | null | undefined, compact: boolean): void => {
  if (b === null || b === undefined) {
    if (compact) w.buf[w.pos++] = 0
    else {
      w.buf.writeInt32BE(-1, w.pos)
      w.pos += 4
    }
    return
  }
  const n = b.length
  if (compact) w.pos = writeUnsignedVarint(w.buf, w.pos, n + 1)
  else {
    w.buf.writeInt32BE(n, w.pos)
    w.pos += 4
  }
  w.buf.set(b, w.pos)
  w.pos += n
}

/** Array header: -1 means null. */
export const wArrLen = (w: Writer, n: number, compact: boolean): void => {
  if (compact) w.pos = writeUnsignedVarint(w.buf, w.pos, n + 1)
  else {
    w.buf.writeInt32BE(n, w.pos)
    w.pos += 4
  }
}

/** Writes unknown tagged fields `u[i..]` whose tag is below `tag`; returns the next index. */
export const wTagsBelow = (w: Writer, u: ReadonlyArray<TaggedField>, i: number, tag: number): number => {
  while (i < u.length && u[i]!.tag < tag) {
    const f = u[i++]!
    w.pos = writeUnsignedVarint(w.buf, w.pos, f.tag)
    w.pos = writeUnsignedVarint(w.buf, w.pos, f.data.length)
    w.buf.set(f.data, w.pos)
    w.pos += f.data.length
  }
  return i
}

/** Runs a size pass and a write pass into one exactly sized Buffer. */
export const encodeWith = <I>(
  version: number,
  value: I,
  size: (v: number, x: I, lens: Array<number>) => number,
  write: (v: number, x: I, w: Writer) => void
): Buffer => {
  const lens: Array<number> = []
  const n = size(version, value, lens)
  const w: Writer = { buf: Buffer.allocUnsafe(n), pos: 0, lens, li: 0 }
  write(version, value, w)
  if (w.pos !== n) encFail("", `internal error: wrote ${w.pos} bytes, sized ${n}`)
  return w.buf
}

// ---------------------------------------------------------------------------
// UUIDs
// ---------------------------------------------------------------------------

/** The all-zero UUID, Kafka's `Uuid.ZERO_UUID`. */
export const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
const B64_INV = new Int8Array(128).fill(-1)
for (let i = 0; i < 64; i++) B64_INV[B64.charCodeAt(i)] = i

const sextet = (s: string, i: number): number => {
  const ch = s.charCodeAt(i)
  return ch < 128 ? B64_INV[ch]! : -1
}

/** Decodes a canonical UUID string into `out[off..off+16)`; false when malformed (nothing useful written). */
const decodeUuidInto = (s: string, out: Uint8Array, off: number): boolean => {
  if (typeof s !== "string" || s.length !== 22) return false
  let o = off
  for (let i = 0; i < 20; i += 4) {
    const a = sextet(s, i), b = sextet(s, i + 1), c = sextet(s, i + 2), d = sextet(s, i + 3)
    if ((a | b | c | d) < 0) return false
    const n = (a << 18) | (b << 12) | (c << 6) | d
    out[o++] = (n >> 16) & 0xff
    out[o++] = (n >> 8) & 0xff
    out[o++] = n & 0xff
  }
  const a = sextet(s, 20), b = sextet(s, 21)
  // the last character carries 2 bits; the 4 padding bits must be zero (canonical form)
  if ((a | b) < 0 || (b & 0x0f) !== 0) return false
  out[o] = (a << 2) | (b >> 4)
  return true
}

/** True for a canonical Kafka UUID string (URL-safe base64 of 16 bytes, no padding). */
export const isUuid = (s: unknown): s is string => typeof s === "string" && decodeUuidInto(s, SCRATCH16, 0)
const SCRATCH16 = new Uint8Array(16)

/** Kafka UUID string -> 16 bytes. Throws KafkaEncodeError for a malformed string. */
export const uuidToBuffer = (s: string): Buffer => {
  const out = Buffer.allocUnsafe(16)
  if (!decodeUuidInto(s, out, 0)) encFail("uuid", `not a canonical 22-character base64url UUID: ${String(s)}`)
  return out
}

/** 16 bytes -> Kafka UUID string (as Java's `Uuid.toString`). */
export const uuidFromBuffer = (b: Uint8Array): string => {
  if (b.length !== 16) throw new RangeError("a UUID is 16 bytes")
  return Buffer.from(b.buffer, b.byteOffset, 16).toString("base64url")
}

/** A random (version 4) UUID in Kafka form; never ZERO_UUID, and (like Java) never starting with '-'. */
export const randomUuid = (): string => {
  for (;;) {
    const b = Buffer.allocUnsafe(16)
    globalThis.crypto.getRandomValues(b)
    b[6] = (b[6]! & 0x0f) | 0x40
    b[8] = (b[8]! & 0x3f) | 0x80
    const s = b.toString("base64url")
    if (s !== ZERO_UUID && !s.startsWith("-")) return s
  }
}

// ---------------------------------------------------------------------------
// Value comparison used by generated default checks
// ---------------------------------------------------------------------------

/** Empty (and not null) array or buffer. */
export const isEmpty = (a: { readonly length: number } | null | undefined): boolean => a !== null && a !== undefined && a.length === 0
