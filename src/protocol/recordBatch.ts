/**
 * Kafka record batch v2 (magic 2): header access, validation, in-place
 * rewrites, batch framing of a `records` blob, and a full record codec.
 *
 * Layout (all integers big-endian):
 *
 * ```
 *  0 baseOffset            int64   ┐ log overhead (12 bytes)
 *  8 batchLength           int32   ┘ bytes after this field
 * 12 partitionLeaderEpoch  int32     not covered by the CRC
 * 16 magic                 int8      = 2
 * 17 crc                   uint32    CRC-32C of bytes 21..end
 * 21 attributes            int16     bits 0-2 codec, 3 timestamp type,
 *                                    4 transactional, 5 control, 6 delete horizon
 * 23 lastOffsetDelta       int32
 * 27 baseTimestamp         int64
 * 35 maxTimestamp          int64
 * 43 producerId            int64
 * 51 producerEpoch         int16
 * 53 baseSequence          int32
 * 57 recordCount           int32
 * 61 records...                      (compressed as a whole if codec != 0)
 * ```
 *
 * Record: length varint, attributes int8, timestampDelta varlong, offsetDelta
 * varint, keyLength varint (-1 = null), key, valueLength varint (-1 = null),
 * value, headerCount varint, headers (keyLength varint, key utf8,
 * valueLength varint (-1 = null), value).
 *
 * Hot-path functions are plain and synchronous and THROW
 * {@link RecordBatchError} (a {@link KafkaDecodeError} with api "RecordBatch"
 * plus a `kind` and the Kafka error code the broker should answer with).
 */
import { crc32c } from "@node-rs/crc32"
import { ErrorCode } from "./errorCodes.js"
import { KafkaDecodeError, KafkaEncodeError } from "./errors.js"
import { CompressionError, compress, decompress, isKnownCodec } from "./compression.js"
import type { CompressOptions } from "./compression.js"
import {
  cursor,
  readVarint,
  readVarlong,
  varintSize,
  varlongSize,
  writeVarint,
  writeVarlong
} from "./varint.js"
import type { Cursor } from "./varint.js"

// ---------------------------------------------------------------------------
// layout

export const BASE_OFFSET_OFFSET = 0
export const BATCH_LENGTH_OFFSET = 8
export const PARTITION_LEADER_EPOCH_OFFSET = 12
export const MAGIC_OFFSET = 16
export const CRC_OFFSET = 17
export const ATTRIBUTES_OFFSET = 21
export const LAST_OFFSET_DELTA_OFFSET = 23
export const BASE_TIMESTAMP_OFFSET = 27
export const MAX_TIMESTAMP_OFFSET = 35
export const PRODUCER_ID_OFFSET = 43
export const PRODUCER_EPOCH_OFFSET = 51
export const BASE_SEQUENCE_OFFSET = 53
export const RECORDS_COUNT_OFFSET = 57
export const RECORDS_OFFSET = 61
/** baseOffset + batchLength. */
export const LOG_OVERHEAD = 12
/** Size of a v2 batch header (a batch with no records). */
export const RECORD_BATCH_OVERHEAD = 61
/** Bytes needed to read the magic byte (same position in every message format). */
export const HEADER_SIZE_UP_TO_MAGIC = 17
/** Smallest legal batchLength for magic 2. */
export const MIN_BATCH_LENGTH = RECORD_BATCH_OVERHEAD - LOG_OVERHEAD
/** Smallest possible encoded record (all fields one byte). */
export const MIN_RECORD_SIZE = 7

export const MAGIC_V2 = 2
export const COMPRESSION_CODEC_MASK = 0x07
export const TIMESTAMP_TYPE_MASK = 0x08
export const TRANSACTIONAL_FLAG_MASK = 0x10
export const CONTROL_FLAG_MASK = 0x20
export const DELETE_HORIZON_FLAG_MASK = 0x40

export const NO_PRODUCER_ID = -1n
export const NO_PRODUCER_EPOCH = -1
export const NO_SEQUENCE = -1
export const NO_TIMESTAMP = -1n
export const NO_PARTITION_LEADER_EPOCH = -1

export const TimestampType = { CreateTime: 0, LogAppendTime: 1 } as const
export type TimestampType = (typeof TimestampType)[keyof typeof TimestampType]

// ---------------------------------------------------------------------------
// errors

/**
 * - `truncated`: the buffer ends inside the batch (CORRUPT_MESSAGE on produce).
 * - `corrupt`: CRC mismatch, impossible lengths, undecodable records (CORRUPT_MESSAGE).
 * - `invalid`: well-formed but breaks Kafka's rules (INVALID_RECORD).
 * - `unsupportedMagic`: magic 0/1 (or unknown); Kafka answers INVALID_RECORD for
 *    Produce v3+ ("only allowed to contain record batches with magic version 2").
 * - `unsupportedCompression`: codec id 5..7 (UNSUPPORTED_COMPRESSION_TYPE).
 * - `tooLarge`: batch above the size limit, or decompresses beyond the limit
 *    (MESSAGE_TOO_LARGE).
 */
export type RecordBatchErrorKind =
  | "truncated"
  | "corrupt"
  | "invalid"
  | "unsupportedMagic"
  | "unsupportedCompression"
  | "tooLarge"


const errorCodeOfKind = (kind: RecordBatchErrorKind): number => {
  switch (kind) {
    case "truncated":
    case "corrupt":
      return ErrorCode.CORRUPT_MESSAGE
    case "invalid":
    case "unsupportedMagic":
      return ErrorCode.INVALID_RECORD
    case "unsupportedCompression":
      return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    case "tooLarge":
      return ErrorCode.MESSAGE_TOO_LARGE
  }
}

/**
 * A record batch failed validation or decoding. It IS a `KafkaDecodeError`
 * (tag "KafkaDecodeError", api "RecordBatch") so generic handlers catch it;
 * `kind` and `errorCode` say how the broker should answer.
 */
export class RecordBatchError extends KafkaDecodeError {
  declare readonly kind: RecordBatchErrorKind
  declare readonly errorCode: number
  constructor(args: { readonly kind: RecordBatchErrorKind; readonly field: string; readonly offset: number; readonly reason: string }) {
    super({ api: "RecordBatch", version: -1, field: args.field, offset: args.offset, reason: args.reason })
    ;(this as { kind: RecordBatchErrorKind }).kind = args.kind
    ;(this as { errorCode: number }).errorCode = errorCodeOfKind(args.kind)
  }
}

const fail = (kind: RecordBatchErrorKind, field: string, offset: number, reason: string): never => {
  throw new RecordBatchError({ kind, field, offset, reason })
}

/** The Kafka error code for an error thrown by this module (CORRUPT_MESSAGE for other decode errors). */
export const recordBatchErrorCode = (e: unknown): number =>
  e instanceof RecordBatchError ? e.errorCode : ErrorCode.CORRUPT_MESSAGE

// ---------------------------------------------------------------------------
// unchecked big-endian reads (callers check bounds once per header)

const i32 = (b: Buffer, o: number): number => (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!
const i16 = (b: Buffer, o: number): number => ((b[o]! << 24) >> 16) | b[o + 1]!
/** int64 as bigint; one BigInt allocation when the value is within +-2^53. */
const i64 = (b: Buffer, o: number): bigint => {
  const hi = i32(b, o)
  if (hi >= -0x200000 && hi < 0x200000) return BigInt(hi * 4294967296 + (i32(b, o + 4) >>> 0))
  return b.readBigInt64BE(o)
}
/** CRC-32C of buf[start, end) without a Buffer subarray (a plain view is cheaper). */
const crcOf = (b: Buffer, start: number, end: number): number =>
  crc32c(new Uint8Array(b.buffer, b.byteOffset + start, end - start)) >>> 0

// ---------------------------------------------------------------------------
// header

export interface BatchHeader {
  readonly baseOffset: bigint
  readonly batchLength: number
  readonly partitionLeaderEpoch: number
  readonly magic: number
  /** Stored CRC (unsigned). */
  readonly crc: number
  readonly attributes: number
  /** 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd (5..7 unknown). */
  readonly compression: number
  readonly timestampType: TimestampType
  readonly isTransactional: boolean
  readonly isControl: boolean
  readonly hasDeleteHorizon: boolean
  readonly lastOffsetDelta: number
  readonly baseTimestamp: bigint
  readonly maxTimestamp: bigint
  readonly producerId: bigint
  readonly producerEpoch: number
  readonly baseSequence: number
  readonly recordCount: number
  /** batchLength + 12: the batch's total size. */
  readonly sizeInBytes: number
}

/**
 * Reads a v2 batch header at `offset` without touching the records. Checks only
 * that the 61 header bytes are present; see {@link validateBatch} for checks.
 */
export const readBatchHeader = (buf: Buffer, offset = 0): BatchHeader => {
  if (offset < 0 || buf.length - offset < RECORD_BATCH_OVERHEAD) {
    return fail("truncated", "header", offset, `need ${RECORD_BATCH_OVERHEAD} header bytes, have ${Math.max(0, buf.length - offset)}`)
  }
  const attributes = i16(buf, offset + ATTRIBUTES_OFFSET)
  const batchLength = i32(buf, offset + BATCH_LENGTH_OFFSET)
  return {
    baseOffset: i64(buf, offset + BASE_OFFSET_OFFSET),
    batchLength,
    partitionLeaderEpoch: i32(buf, offset + PARTITION_LEADER_EPOCH_OFFSET),
    magic: (buf[offset + MAGIC_OFFSET]! << 24) >> 24,
    crc: i32(buf, offset + CRC_OFFSET) >>> 0,
    attributes,
    compression: attributes & COMPRESSION_CODEC_MASK,
    timestampType: (attributes & TIMESTAMP_TYPE_MASK) !== 0 ? 1 : 0,
    isTransactional: (attributes & TRANSACTIONAL_FLAG_MASK) !== 0,
    isControl: (attributes & CONTROL_FLAG_MASK) !== 0,
    hasDeleteHorizon: (attributes & DELETE_HORIZON_FLAG_MASK) !== 0,
    lastOffsetDelta: i32(buf, offset + LAST_OFFSET_DELTA_OFFSET),
    baseTimestamp: i64(buf, offset + BASE_TIMESTAMP_OFFSET),
    maxTimestamp: i64(buf, offset + MAX_TIMESTAMP_OFFSET),
    producerId: i64(buf, offset + PRODUCER_ID_OFFSET),
    producerEpoch: i16(buf, offset + PRODUCER_EPOCH_OFFSET),
    baseSequence: i32(buf, offset + BASE_SEQUENCE_OFFSET),
    recordCount: i32(buf, offset + RECORDS_COUNT_OFFSET),
    sizeInBytes: batchLength + LOG_OVERHEAD
  }
}

/** Last offset of a batch: baseOffset + lastOffsetDelta. */
export const lastOffsetOf = (h: Pick<BatchHeader, "baseOffset" | "lastOffsetDelta">): bigint =>
  h.baseOffset + BigInt(h.lastOffsetDelta)

/** CRC-32C over attributes..end of the batch at `offset` (size from its batchLength). */
export const computeCrc = (buf: Buffer, offset = 0): number => {
  const size = buf.readInt32BE(offset + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD
  return crcOf(buf, offset + ATTRIBUTES_OFFSET, offset + size)
}

export interface ValidateOptions {
  /** Reject batches larger than this (MESSAGE_TOO_LARGE). */
  readonly maxSize?: number
  /**
   * "client" (default): a producer's batch, checked as Kafka's LogValidator does:
   * recordCount >= 1 and = lastOffsetDelta + 1, no control batches, producer
   * fields consistent. "log": a batch read back from a log or a replica, where
   * compaction may have removed records (recordCount >= 0, lastOffsetDelta >=
   * recordCount - 1) and control batches are legal.
   */
  readonly origin?: "client" | "log"
}

/**
 * Validates the batch at `offset` without decoding its records and returns its
 * header. Checks, in order: enough bytes for the magic, magic = 2, batchLength
 * sane (>= 49, within `maxSize`, within the buffer), CRC-32C, codec known,
 * record count and lastOffsetDelta consistent, producer fields plausible.
 */
export const validateBatch = (buf: Buffer, offset = 0, maxSizeOrOptions?: number | ValidateOptions): BatchHeader => {
  const maxSize = typeof maxSizeOrOptions === "number" ? maxSizeOrOptions : maxSizeOrOptions?.maxSize
  const client = typeof maxSizeOrOptions !== "object" || maxSizeOrOptions.origin !== "log"
  const remaining = buf.length - offset
  if (offset < 0 || remaining < HEADER_SIZE_UP_TO_MAGIC) {
    return fail("truncated", "header", offset, `need ${HEADER_SIZE_UP_TO_MAGIC} bytes to read the magic, have ${Math.max(0, remaining)}`)
  }
  const magic = buf.readInt8(offset + MAGIC_OFFSET)
  if (magic !== MAGIC_V2) {
    return magic === 0 || magic === 1
      ? fail("unsupportedMagic", "magic", offset + MAGIC_OFFSET, `message format v${magic} (magic ${magic}) is not supported; only record batch v2 (magic 2)`)
      : fail("corrupt", "magic", offset + MAGIC_OFFSET, `unknown magic ${magic}`)
  }
  const batchLength = i32(buf, offset + BATCH_LENGTH_OFFSET)
  if (batchLength < MIN_BATCH_LENGTH) {
    return fail("corrupt", "batchLength", offset + BATCH_LENGTH_OFFSET, `batch length ${batchLength} is below the minimum ${MIN_BATCH_LENGTH}`)
  }
  const size = batchLength + LOG_OVERHEAD
  if (maxSize !== undefined && size > maxSize) {
    return fail("tooLarge", "batchLength", offset + BATCH_LENGTH_OFFSET, `batch of ${size} bytes exceeds the limit of ${maxSize}`)
  }
  if (size > remaining) {
    return fail("truncated", "batchLength", offset + BATCH_LENGTH_OFFSET, `batch of ${size} bytes but only ${remaining} bytes present`)
  }
  const stored = i32(buf, offset + CRC_OFFSET) >>> 0
  const computed = crcOf(buf, offset + ATTRIBUTES_OFFSET, offset + size)
  if (stored !== computed) {
    return fail("corrupt", "crc", offset + CRC_OFFSET, `CRC-32C mismatch: stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`)
  }
  const h = readBatchHeader(buf, offset)
  if (!isKnownCodec(h.compression)) {
    return fail("unsupportedCompression", "attributes", offset + ATTRIBUTES_OFFSET, `unknown compression codec ${h.compression}`)
  }
  if (h.recordCount < 0) {
    return fail("corrupt", "recordCount", offset + RECORDS_COUNT_OFFSET, `negative record count ${h.recordCount}`)
  }
  if (h.lastOffsetDelta < 0) {
    return fail("invalid", "lastOffsetDelta", offset + LAST_OFFSET_DELTA_OFFSET, `negative lastOffsetDelta ${h.lastOffsetDelta}`)
  }
  // An uncompressed record takes at least 7 bytes (compressed counts are checked when decoding).
  if (h.compression === 0 && h.recordCount > (size - RECORD_BATCH_OVERHEAD) / MIN_RECORD_SIZE) {
    return fail("corrupt", "recordCount", offset + RECORDS_COUNT_OFFSET, `record count ${h.recordCount} cannot fit in ${size - RECORD_BATCH_OVERHEAD} bytes`)
  }
  if (client) {
    if (h.recordCount === 0) {
      return fail("invalid", "recordCount", offset + RECORDS_COUNT_OFFSET, "a produced batch must hold at least one record")
    }
    if (h.lastOffsetDelta !== h.recordCount - 1) {
      return fail("invalid", "lastOffsetDelta", offset + LAST_OFFSET_DELTA_OFFSET, `lastOffsetDelta ${h.lastOffsetDelta} inconsistent with record count ${h.recordCount}`)
    }
    if (h.isControl) {
      return fail("invalid", "attributes", offset + ATTRIBUTES_OFFSET, "clients may not produce control batches")
    }
  } else if (h.lastOffsetDelta < h.recordCount - 1) {
    return fail("corrupt", "lastOffsetDelta", offset + LAST_OFFSET_DELTA_OFFSET, `lastOffsetDelta ${h.lastOffsetDelta} below record count ${h.recordCount} - 1`)
  }
  if (h.producerId < NO_PRODUCER_ID) {
    return fail("invalid", "producerId", offset + PRODUCER_ID_OFFSET, `invalid producer id ${h.producerId}`)
  }
  if (h.producerEpoch < NO_PRODUCER_EPOCH) {
    return fail("invalid", "producerEpoch", offset + PRODUCER_EPOCH_OFFSET, `invalid producer epoch ${h.producerEpoch}`)
  }
  if (h.baseSequence < NO_SEQUENCE) {
    return fail("invalid", "baseSequence", offset + BASE_SEQUENCE_OFFSET, `invalid base sequence ${h.baseSequence}`)
  }
  if (h.producerId !== NO_PRODUCER_ID) {
    if (client && h.baseSequence < 0 && !h.isControl) {
      return fail("invalid", "baseSequence", offset + BASE_SEQUENCE_OFFSET, "idempotent batch without a base sequence")
    }
    if (h.producerEpoch < 0) {
      return fail("invalid", "producerEpoch", offset + PRODUCER_EPOCH_OFFSET, "producer id set without a producer epoch")
    }
  } else if (h.isTransactional) {
    return fail("invalid", "producerId", offset + PRODUCER_ID_OFFSET, "transactional batch without a producer id")
  }
  return h
}

// ---------------------------------------------------------------------------
// framing of a records blob

export interface WalkOptions {
  /**
   * Fetch responses may end with a partial batch (the broker cut at max bytes):
   * with `true` a partial tail is reported, not an error. Default false: a
   * partial tail throws a "truncated" error (Produce).
   */
  readonly allowPartialTail?: boolean
  /** Reject any batch larger than this (MESSAGE_TOO_LARGE). */
  readonly maxBatchSize?: number
}

export interface WalkResult {
  /** Whole batches found. */
  readonly count: number
  /** Bytes covered by whole batches. */
  readonly consumed: number
  /** Bytes of an incomplete trailing batch (0 if none). */
  readonly partialTail: number
}

/**
 * Calls `fn(batch, position)` for each whole batch in a concatenation of
 * batches. `batch` is a zero-copy view. Only framing is checked (batchLength);
 * call {@link validateBatch} on each batch to check it. A batchLength too small
 * for any message format is corruption, not a partial tail.
 */
export const forEachBatch = (
  records: Buffer,
  fn: (batch: Buffer, position: number) => void,
  options?: WalkOptions
): WalkResult => {
  const len = records.length
  let pos = 0
  let count = 0
  while (pos < len) {
    const remaining = len - pos
    if (remaining < LOG_OVERHEAD) break
    const batchLength = i32(records, pos + BATCH_LENGTH_OFFSET)
    // 14 = smallest legacy (magic 0) message after the log overhead; anything smaller is never valid.
    if (batchLength < 14) {
      return fail("corrupt", "batchLength", pos + BATCH_LENGTH_OFFSET, `batch length ${batchLength} is impossible`)
    }
    if (remaining >= HEADER_SIZE_UP_TO_MAGIC && records[pos + MAGIC_OFFSET] === MAGIC_V2 && batchLength < MIN_BATCH_LENGTH) {
      return fail("corrupt", "batchLength", pos + BATCH_LENGTH_OFFSET, `batch length ${batchLength} is below the minimum ${MIN_BATCH_LENGTH}`)
    }
    const size = batchLength + LOG_OVERHEAD
    if (options?.maxBatchSize !== undefined && size > options.maxBatchSize) {
      return fail("tooLarge", "batchLength", pos + BATCH_LENGTH_OFFSET, `batch of ${size} bytes exceeds the limit of ${options.maxBatchSize}`)
    }
    if (size > remaining) break
    fn(records.subarray(pos, pos + size), pos)
    count++
    pos += size
  }
  const partialTail = len - pos
  if (partialTail > 0 && options?.allowPartialTail !== true) {
    return fail("truncated", "records", pos, `${partialTail} trailing bytes do not form a whole batch`)
  }
  return { count, consumed: pos, partialTail }
}

export interface SplitResult extends WalkResult {
  /** Zero-copy views of each whole batch. */
  readonly batches: Buffer[]
}

/** {@link forEachBatch} collecting the batches. */
export const splitBatches = (records: Buffer, options?: WalkOptions): SplitResult => {
  const batches: Buffer[] = []
  const r = forEachBatch(records, (b) => void batches.push(b), options)
  return { ...r, batches }
}

// ---------------------------------------------------------------------------
// in-place rewrites

const checkHeaderRoom = (buf: Buffer, off: number, field: string): void => {
  if (off < 0 || buf.length - off < RECORD_BATCH_OVERHEAD) fail("truncated", field, off, "no whole batch header at this offset")
}

/** Sets the base offset (not covered by the CRC). */
export const setBaseOffset = (buf: Buffer, off: number, baseOffset: bigint): void => {
  checkHeaderRoom(buf, off, "baseOffset")
  buf.writeBigInt64BE(baseOffset, off + BASE_OFFSET_OFFSET)
}

/** Sets the partition leader epoch (not covered by the CRC). */
export const setPartitionLeaderEpoch = (buf: Buffer, off: number, epoch: number): void => {
  checkHeaderRoom(buf, off, "partitionLeaderEpoch")
  buf.writeInt32BE(epoch, off + PARTITION_LEADER_EPOCH_OFFSET)
}

/** Recomputes and stores the CRC of the batch at `off`; returns it. */
export const recomputeCrc = (buf: Buffer, off = 0): number => {
  checkHeaderRoom(buf, off, "crc")
  const size = buf.readInt32BE(off + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD
  if (size < RECORD_BATCH_OVERHEAD || size > buf.length - off) fail("truncated", "batchLength", off + BATCH_LENGTH_OFFSET, "batch extends past the buffer")
  const crc = crcOf(buf, off + ATTRIBUTES_OFFSET, off + size)
  buf.writeUInt32BE(crc, off + CRC_OFFSET)
  return crc
}

/**
 * LogAppendTime, as Kafka's `DefaultRecordBatch.setMaxTimestamp`: sets the
 * timestamp-type bit and maxTimestamp, leaves baseTimestamp and the records
 * untouched (consumers use maxTimestamp as every record's timestamp when the
 * bit is set), and recomputes the CRC. A no-op if already set to that value.
 * Returns true if the batch changed.
 */
export const setLogAppendTime = (buf: Buffer, off: number, timestamp: bigint | number): boolean => {
  checkHeaderRoom(buf, off, "maxTimestamp")
  const ts = typeof timestamp === "bigint" ? timestamp : BigInt(timestamp)
  const attrs = buf.readInt16BE(off + ATTRIBUTES_OFFSET)
  if ((attrs & TIMESTAMP_TYPE_MASK) !== 0 && buf.readBigInt64BE(off + MAX_TIMESTAMP_OFFSET) === ts) return false
  buf.writeInt16BE(attrs | TIMESTAMP_TYPE_MASK, off + ATTRIBUTES_OFFSET)
  buf.writeBigInt64BE(ts, off + MAX_TIMESTAMP_OFFSET)
  recomputeCrc(buf, off)
  return true
}

// ---------------------------------------------------------------------------
// records

export interface RecordHeader {
  readonly key: string
  readonly value: Buffer | null
}

export interface DecodedRecord {
  /** baseOffset + offsetDelta. */
  readonly offset: bigint
  readonly offsetDelta: number
  /** baseTimestamp + timestampDelta, or the batch's maxTimestamp under LogAppendTime. */
  readonly timestamp: bigint
  /** Views into the batch (or its decompressed records); copy them to keep them beyond the batch. */
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: RecordHeader[]
  readonly attributes: number
}

export interface DecodeOptions {
  /** Check the CRC first (default true). */
  readonly verifyCrc?: boolean
  /** Bound on the decompressed records size. */
  readonly maxDecompressedBytes?: number
}

const rfail = (field: string, c: Cursor, reason: string): never => fail("corrupt", field, c.pos, reason)

/** Zigzag varint with a one-byte fast path (most record fields are small). */
const rv = (c: Cursor, field: string): number => {
  const p = c.pos
  if (p < c.end) {
    const b = c.buf[p]!
    if (b < 0x80) {
      c.pos = p + 1
      return (b >>> 1) ^ -(b & 1)
    }
  }
  return readVarint(c, field)
}

/** Zigzag varlong with a one-byte fast path. */
const rvl = (c: Cursor, field: string): number => {
  const p = c.pos
  if (p < c.end) {
    const b = c.buf[p]!
    if (b < 0x80) {
      c.pos = p + 1
      return (b >>> 1) ^ -(b & 1)
    }
  }
  return readVarlong(c, field)
}

const readNullableBytes = (c: Cursor, end: number, field: string): Buffer | null => {
  const len = rv(c, field)
  if (len === -1) return null
  if (len < -1) return rfail(field, c, `invalid length ${len}`)
  if (len > end - c.pos) return rfail(field, c, `length ${len} exceeds the ${end - c.pos} bytes left in the record`)
  const v = c.buf.subarray(c.pos, c.pos + len)
  c.pos += len
  return v
}

/** UTF-8 string; short ASCII strings are decoded in JS (a native call costs more). */
const readString = (buf: Buffer, pos: number, len: number): string => {
  if (len < 24) {
    let s = ""
    for (let i = 0; i < len; i++) {
      const ch = buf[pos + i]!
      if (ch > 0x7f) return buf.toString("utf8", pos, pos + len)
      s += String.fromCharCode(ch)
    }
    return s
  }
  return buf.toString("utf8", pos, pos + len)
}

/** Decodes one record at the cursor (records region). */
const readRecord = (
  c: Cursor,
  baseOffset: bigint,
  baseOffsetNum: number | null,
  baseTimestamp: bigint,
  baseTimestampNum: number | null,
  logAppendTime: bigint | null
): DecodedRecord => {
  const len = rv(c, "record.length")
  if (len < MIN_RECORD_SIZE - 1) return rfail("record.length", c, `invalid record length ${len}`)
  if (len > c.end - c.pos) return rfail("record.length", c, `record length ${len} exceeds the ${c.end - c.pos} bytes left`)
  const end = c.pos + len
  const outerEnd = c.end
  c.end = end
  const attributes = (c.buf[c.pos]! << 24) >> 24
  c.pos += 1
  const timestampDelta = rvl(c, "record.timestampDelta")
  const offsetDelta = rv(c, "record.offsetDelta")
  const key = readNullableBytes(c, end, "record.key")
  const value = readNullableBytes(c, end, "record.value")
  const headerCount = rv(c, "record.headers")
  if (headerCount < 0) return rfail("record.headers", c, `invalid header count ${headerCount}`)
  if (headerCount > (end - c.pos) / 2) return rfail("record.headers", c, `header count ${headerCount} cannot fit in ${end - c.pos} bytes`)
  const headers: RecordHeader[] = []
  for (let i = 0; i < headerCount; i++) {
    const klen = rv(c, "record.header.key")
    if (klen < 0) return rfail("record.header.key", c, `invalid header key length ${klen}`)
    if (klen > end - c.pos) return rfail("record.header.key", c, `header key length ${klen} exceeds the record`)
    const hkey = readString(c.buf, c.pos, klen)
    c.pos += klen
    headers.push({ key: hkey, value: readNullableBytes(c, end, "record.header.value") })
  }
  if (c.pos !== end) return rfail("record.length", c, `record length ${len} disagrees with its content (${end - c.pos} bytes left over)`)
  c.end = outerEnd
  return {
    offset: baseOffsetNum !== null ? BigInt(baseOffsetNum + offsetDelta) : baseOffset + BigInt(offsetDelta),
    offsetDelta,
    timestamp:
      logAppendTime ??
      (baseTimestampNum !== null && Number.isSafeInteger(baseTimestampNum + timestampDelta)
        ? BigInt(baseTimestampNum + timestampDelta)
        : baseTimestamp + BigInt(timestampDelta)),
    key,
    value,
    headers,
    attributes
  }
}

/**
 * Decodes every record of the batch at the start of `batch` (decompressing as
 * needed). Checks the magic, the length, the CRC (unless `verifyCrc: false`),
 * that exactly `recordCount` records fill the records region, and every length
 * before it is used.
 */
export const decodeRecords = (batch: Buffer, options?: DecodeOptions): DecodedRecord[] => {
  let h: BatchHeader
  if (options?.verifyCrc === false) {
    if (batch.length < HEADER_SIZE_UP_TO_MAGIC) return fail("truncated", "header", 0, "batch too short")
    const magic = batch.readInt8(MAGIC_OFFSET)
    if (magic !== MAGIC_V2) return fail(magic === 0 || magic === 1 ? "unsupportedMagic" : "corrupt", "magic", MAGIC_OFFSET, `magic ${magic} is not supported`)
    h = readBatchHeader(batch, 0)
    if (h.batchLength < MIN_BATCH_LENGTH || h.sizeInBytes > batch.length) {
      return fail("truncated", "batchLength", BATCH_LENGTH_OFFSET, `batch length ${h.batchLength} does not fit`)
    }
  } else {
    h = validateBatch(batch, 0, { origin: "log" })
  }
  if (!isKnownCodec(h.compression)) return fail("unsupportedCompression", "attributes", ATTRIBUTES_OFFSET, `unknown codec ${h.compression}`)
  if (h.recordCount < 0) return fail("corrupt", "recordCount", RECORDS_COUNT_OFFSET, `negative record count ${h.recordCount}`)
  let region = batch.subarray(RECORDS_OFFSET, h.sizeInBytes)
  if (h.compression !== 0) {
    try {
      region = decompress(h.compression, region, options?.maxDecompressedBytes === undefined ? undefined : { maxOutputBytes: options.maxDecompressedBytes })
    } catch (e) {
      if (e instanceof CompressionError) {
        return fail(e.kind === "tooLarge" ? "tooLarge" : e.kind === "unsupported" ? "unsupportedCompression" : "corrupt", "records", RECORDS_OFFSET, e.message)
      }
      throw e
    }
  }
  if (h.recordCount > region.length / MIN_RECORD_SIZE) {
    return fail("corrupt", "recordCount", RECORDS_COUNT_OFFSET, `record count ${h.recordCount} cannot fit in ${region.length} bytes of records`)
  }
  const c = cursor(region, 0, region.length)
  const logAppendTime = h.timestampType === 1 ? h.maxTimestamp : null
  const out: DecodedRecord[] = []
  // offsets/timestamps as numbers when safe: one BigInt allocation per field instead of two
  const SAFE = 1n << 52n
  const baseOffsetNum = h.baseOffset > -SAFE && h.baseOffset < SAFE ? Number(h.baseOffset) : null
  const baseTimestampNum = h.baseTimestamp > -SAFE && h.baseTimestamp < SAFE ? Number(h.baseTimestamp) : null
  try {
    for (let i = 0; i < h.recordCount; i++) {
      out.push(readRecord(c, h.baseOffset, baseOffsetNum, h.baseTimestamp, baseTimestampNum, logAppendTime))
    }
  } catch (e) {
    if (e instanceof RecordBatchError) throw e
    if (e instanceof KafkaDecodeError) return fail("corrupt", e.field, e.offset, e.reason)
    throw e
  }
  if (c.pos !== region.length) {
    return fail("corrupt", "records", c.pos, `${region.length - c.pos} bytes left after ${h.recordCount} records`)
  }
  return out
}

// ---------------------------------------------------------------------------
// encoding

export interface RecordInput {
  readonly key?: Buffer | null
  readonly value?: Buffer | null
  readonly headers?: ReadonlyArray<RecordHeader>
  /** Absolute timestamp (ms); default the batch's baseTimestamp. */
  readonly timestamp?: bigint | number
  /** Default: the record's index. */
  readonly offsetDelta?: number
  /** Record attributes byte (unused by Kafka, 0). */
  readonly attributes?: number
}

export interface EncodeBatchInput {
  readonly baseOffset?: bigint | number
  readonly partitionLeaderEpoch?: number
  /** 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
  readonly compression?: number
  readonly timestampType?: TimestampType
  readonly isTransactional?: boolean
  readonly isControl?: boolean
  readonly hasDeleteHorizon?: boolean
  readonly producerId?: bigint | number
  readonly producerEpoch?: number
  readonly baseSequence?: number
  /** Default: the first record's timestamp, or -1 for an empty batch. */
  readonly baseTimestamp?: bigint | number
  /** Default: the largest record timestamp (-1 for an empty batch). */
  readonly maxTimestamp?: bigint | number
  /** Default: the largest offsetDelta (0 for an empty batch); set it for compacted batches. */
  readonly lastOffsetDelta?: number
  readonly records: ReadonlyArray<RecordInput>
}

const efail = (field: string, reason: string): never => {
  throw new KafkaEncodeError({ api: "RecordBatch", version: -1, field, reason })
}

const toBig = (v: bigint | number, field: string): bigint => {
  if (typeof v === "bigint") return v
  if (!Number.isSafeInteger(v)) return efail(field, `not a safe integer: ${v}`)
  return BigInt(v)
}

const NO_HEADERS: ReadonlyArray<RecordHeader> = []

const nullableSize = (b: Buffer | null | undefined): number => (b == null ? 1 : varintSize(b.length) + b.length)

/** Native copies cost a call each; small ones are cheaper in JS. */
const copyInto = (src: Uint8Array, dst: Buffer, pos: number): number => {
  const n = src.length
  if (n < 48) {
    for (let i = 0; i < n; i++) dst[pos + i] = src[i]!
  } else {
    dst.set(src, pos)
  }
  return pos + n
}

const writeNullable = (buf: Buffer, pos: number, b: Buffer | null | undefined): number => {
  if (b == null) {
    buf[pos] = 1 // zigzag(-1)
    return pos + 1
  }
  return copyInto(b, buf, writeVarint(buf, pos, b.length))
}

/** UTF-8 length, with an ASCII fast path for short strings. */
const utf8Length = (s: string): number => {
  const n = s.length
  if (n < 32) {
    let ascii = true
    for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) { ascii = false; break }
    if (ascii) return n
  }
  return Buffer.byteLength(s, "utf8")
}

const writeString = (buf: Buffer, pos: number, s: string, byteLen: number): number => {
  if (byteLen === s.length && byteLen < 32) {
    for (let i = 0; i < byteLen; i++) buf[pos + i] = s.charCodeAt(i)
    return pos + byteLen
  }
  return pos + buf.write(s, pos, byteLen, "utf8")
}

/** Encodes a v2 batch with a correct CRC. */
export const encodeBatch = (input: EncodeBatchInput, options?: CompressOptions): Buffer => {
  const compression = input.compression ?? 0
  if (!isKnownCodec(compression)) return efail("compression", `unknown codec ${compression}`)
  const records = input.records
  const n = records.length
  const firstTs = n > 0 && records[0]!.timestamp !== undefined ? toBig(records[0]!.timestamp, "timestamp") : undefined
  const baseTimestamp = input.baseTimestamp !== undefined ? toBig(input.baseTimestamp, "baseTimestamp") : firstTs ?? NO_TIMESTAMP
  let maxTs = NO_TIMESTAMP
  let maxDelta = 0
  // size pass
  const deltas = new Array<number>(n)
  const bodies = new Array<number>(n)
  let recordsSize = 0
  for (let i = 0; i < n; i++) {
    const r = records[i]!
    const ts = r.timestamp !== undefined ? toBig(r.timestamp, "timestamp") : baseTimestamp
    if (ts > maxTs || i === 0) maxTs = ts
    const tsDelta = Number(ts - baseTimestamp)
    if (!Number.isSafeInteger(tsDelta)) return efail("timestamp", "timestamp delta too large")
    deltas[i] = tsDelta
    const od = r.offsetDelta ?? i
    if (!Number.isInteger(od) || od < 0 || od > 0x7fffffff) return efail("offsetDelta", `invalid offset delta ${od}`)
    if (od > maxDelta) maxDelta = od
    let body = 1 + varlongSize(tsDelta) + varintSize(od) + nullableSize(r.key) + nullableSize(r.value)
    const hs = r.headers ?? NO_HEADERS
    body += varintSize(hs.length)
    for (const hd of hs) {
      const kl = utf8Length(hd.key)
      body += varintSize(kl) + kl + nullableSize(hd.value)
    }
    bodies[i] = body
    recordsSize += varintSize(body) + body
  }
  const writeRecords = (buf: Buffer, start: number): number => {
    let pos = start
    for (let i = 0; i < n; i++) {
      const r = records[i]!
      pos = writeVarint(buf, pos, bodies[i]!)
      buf[pos++] = (r.attributes ?? 0) & 0xff
      pos = writeVarlong(buf, pos, deltas[i]!)
      pos = writeVarint(buf, pos, r.offsetDelta ?? i)
      pos = writeNullable(buf, pos, r.key)
      pos = writeNullable(buf, pos, r.value)
      const hs = r.headers ?? NO_HEADERS
      pos = writeVarint(buf, pos, hs.length)
      for (const hd of hs) {
        const kl = utf8Length(hd.key)
        pos = writeVarint(buf, pos, kl)
        pos = writeString(buf, pos, hd.key, kl)
        pos = writeNullable(buf, pos, hd.value)
      }
    }
    return pos
  }
  let out: Buffer
  if (compression === 0) {
    out = Buffer.allocUnsafe(RECORD_BATCH_OVERHEAD + recordsSize)
    const end = writeRecords(out, RECORDS_OFFSET)
    if (end !== out.length) return efail("records", `size mismatch ${end} != ${out.length}`)
  } else {
    const raw = Buffer.allocUnsafe(recordsSize)
    const end = writeRecords(raw, 0)
    if (end !== raw.length) return efail("records", `size mismatch ${end} != ${raw.length}`)
    const packed = compress(compression, raw, options)
    out = Buffer.allocUnsafe(RECORD_BATCH_OVERHEAD + packed.length)
    packed.copy(out, RECORDS_OFFSET)
  }
  const timestampType = input.timestampType ?? 0
  let attributes = compression
  if (timestampType === 1) attributes |= TIMESTAMP_TYPE_MASK
  if (input.isTransactional === true) attributes |= TRANSACTIONAL_FLAG_MASK
  if (input.isControl === true) attributes |= CONTROL_FLAG_MASK
  if (input.hasDeleteHorizon === true) attributes |= DELETE_HORIZON_FLAG_MASK
  const maxTimestamp = input.maxTimestamp !== undefined ? toBig(input.maxTimestamp, "maxTimestamp") : maxTs
  out.writeBigInt64BE(toBig(input.baseOffset ?? 0n, "baseOffset"), BASE_OFFSET_OFFSET)
  out.writeInt32BE(out.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET)
  out.writeInt32BE(input.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH, PARTITION_LEADER_EPOCH_OFFSET)
  out.writeInt8(MAGIC_V2, MAGIC_OFFSET)
  out.writeInt16BE(attributes, ATTRIBUTES_OFFSET)
  out.writeInt32BE(input.lastOffsetDelta ?? maxDelta, LAST_OFFSET_DELTA_OFFSET)
  out.writeBigInt64BE(baseTimestamp, BASE_TIMESTAMP_OFFSET)
  out.writeBigInt64BE(maxTimestamp, MAX_TIMESTAMP_OFFSET)
  out.writeBigInt64BE(toBig(input.producerId ?? NO_PRODUCER_ID, "producerId"), PRODUCER_ID_OFFSET)
  out.writeInt16BE(input.producerEpoch ?? NO_PRODUCER_EPOCH, PRODUCER_EPOCH_OFFSET)
  out.writeInt32BE(input.baseSequence ?? NO_SEQUENCE, BASE_SEQUENCE_OFFSET)
  out.writeInt32BE(n, RECORDS_COUNT_OFFSET)
  out.writeUInt32BE(crcOf(out, ATTRIBUTES_OFFSET, out.length), CRC_OFFSET)
  return out
}

// ---------------------------------------------------------------------------
// control records (transaction markers)

/** Control record types (key `type`). KRaft uses further types (2 LEADER_CHANGE, 3/4 snapshot...). */
export const ControlRecordType = { ABORT: 0, COMMIT: 1 } as const
export type ControlRecordType = (typeof ControlRecordType)[keyof typeof ControlRecordType]

export interface ControlRecordKey {
  readonly version: number
  readonly type: number
}

export const encodeControlRecordKey = (type: number, version = 0): Buffer => {
  const b = Buffer.allocUnsafe(4)
  b.writeInt16BE(version, 0)
  b.writeInt16BE(type, 2)
  return b
}

export const decodeControlRecordKey = (key: Buffer | null): ControlRecordKey => {
  if (key === null || key.length < 4) return fail("corrupt", "controlRecord.key", 0, `control record key of ${key?.length ?? "null"} bytes, need 4`)
  const version = key.readInt16BE(0)
  if (version < 0) return fail("corrupt", "controlRecord.key", 0, `invalid control key version ${version}`)
  return { version, type: key.readInt16BE(2) }
}

export interface EndTxnMarkerValue {
  readonly version: number
  readonly coordinatorEpoch: number
}

export const encodeEndTxnMarkerValue = (coordinatorEpoch: number, version = 0): Buffer => {
  const b = Buffer.allocUnsafe(6)
  b.writeInt16BE(version, 0)
  b.writeInt32BE(coordinatorEpoch, 2)
  return b
}

export const decodeEndTxnMarkerValue = (value: Buffer | null): EndTxnMarkerValue => {
  if (value === null || value.length < 6) return fail("corrupt", "controlRecord.value", 0, `end-txn marker value of ${value?.length ?? "null"} bytes, need 6`)
  const version = value.readInt16BE(0)
  if (version < 0) return fail("corrupt", "controlRecord.value", 0, `invalid end-txn marker version ${version}`)
  return { version, coordinatorEpoch: value.readInt32BE(2) }
}

export interface ControlBatchInput {
  readonly baseOffset?: bigint | number
  readonly partitionLeaderEpoch?: number
  readonly producerId: bigint | number
  readonly producerEpoch: number
  readonly timestamp: bigint | number
  readonly type: ControlRecordType
  readonly coordinatorEpoch: number
}

/** A transaction marker batch: transactional + control, one record, no sequence. */
export const encodeEndTxnMarkerBatch = (input: ControlBatchInput): Buffer =>
  encodeBatch({
    baseOffset: input.baseOffset ?? 0n,
    partitionLeaderEpoch: input.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH,
    compression: 0,
    isTransactional: true,
    isControl: true,
    producerId: input.producerId,
    producerEpoch: input.producerEpoch,
    baseSequence: NO_SEQUENCE,
    records: [
      {
        key: encodeControlRecordKey(input.type),
        value: encodeEndTxnMarkerValue(input.coordinatorEpoch),
        timestamp: input.timestamp
      }
    ]
  })

export interface EndTxnMarker {
  readonly type: number
  readonly coordinatorEpoch: number
  readonly producerId: bigint
  readonly producerEpoch: number
}

/** Decodes the marker of a control batch (throws if it is not one). */
export const decodeEndTxnMarker = (batch: Buffer): EndTxnMarker => {
  const h = validateBatch(batch, 0, { origin: "log" })
  if (!h.isControl) return fail("invalid", "attributes", ATTRIBUTES_OFFSET, "not a control batch")
  const recs = decodeRecords(batch, { verifyCrc: false })
  if (recs.length !== 1) return fail("corrupt", "records", RECORDS_OFFSET, `control batch with ${recs.length} records`)
  const key = decodeControlRecordKey(recs[0]!.key)
  const value = decodeEndTxnMarkerValue(recs[0]!.value)
  return { type: key.type, coordinatorEpoch: value.coordinatorEpoch, producerId: h.producerId, producerEpoch: h.producerEpoch }
}
