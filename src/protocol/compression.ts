/**
 * Record-batch compression codecs (Kafka attributes bits 0-2).
 *
 * Plain synchronous functions over `Buffer` that THROW {@link CompressionError}.
 * They run on the hot path only when a batch really must be opened (the broker
 * validates compressed batches by CRC and stores them as they came).
 *
 * - gzip:   `node:zlib` (sync). Concatenated gzip members are accepted.
 * - snappy: raw snappy blocks AND the xerial framing the Java client writes
 *           (`0x82 "SNAPPY" 0x00`, int32 version, int32 compatible version,
 *           then repeated `[int32 BE length][raw snappy block]`). Decompression
 *           auto-detects the two. We WRITE xerial by default, as the Java client
 *           does: every client (Java's xerial stream, librdkafka, franz-go,
 *           kafkajs-snappy) reads xerial, while some older Java versions and
 *           kafkajs-snappy handle raw only through fallbacks.
 * - lz4:    the LZ4 frame format as fixed by KIP-57 (correct header checksum),
 *           independent blocks, no block/content checksums, exactly what the
 *           Java client's Lz4BlockOutputStream writes (FLG 0x60).
 * - zstd:   `zstd-napi` native binding. Frames without a content size in the
 *           header (written by streaming compressors) are decoded with the
 *           streaming decompressor.
 *
 * Every decompression is bounded by `maxOutputBytes` (default
 * {@link DEFAULT_MAX_DECOMPRESSED_BYTES}); going over it throws a
 * `CompressionError` of kind `"tooLarge"` before the output is allocated
 * whenever the format announces its size, and as soon as the limit is crossed
 * otherwise, so a decompression bomb cannot exhaust memory.
 */
import { Data } from "effect"
import * as zlib from "node:zlib"
import * as lz4 from "lz4-napi"
import * as snappy from "snappy"
import zstd from "zstd-napi/binding.js"

/** Compression codec ids as stored in record batch attributes bits 0-2. */
export const Codec = {
  None: 0,
  Gzip: 1,
  Snappy: 2,
  Lz4: 3,
  Zstd: 4
} as const
export type Codec = (typeof Codec)[keyof typeof Codec]

export const codecName = (codec: number): string =>
  codec === 0 ? "none" : codec === 1 ? "gzip" : codec === 2 ? "snappy" : codec === 3 ? "lz4" : codec === 4 ? "zstd" : `unknown(${codec})`

export const isKnownCodec = (codec: number): codec is Codec => codec >= 0 && codec <= 4 && Number.isInteger(codec)

/** 100 MiB (Kafka's largest sane fetch/message size) plus 1 MiB of margin. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 101 * 1024 * 1024

export type CompressionErrorKind = "corrupt" | "tooLarge" | "unsupported"

/** Compressed data could not be (de)compressed. */
export class CompressionError extends Data.TaggedError("CompressionError")<{
  readonly codec: string
  readonly kind: CompressionErrorKind
  readonly reason: string
}> {
  override get message(): string {
    return `${this.codec} ${this.kind}: ${this.reason}`
  }
}

export interface CompressOptions {
  /** Snappy framing to write; default "xerial" (what the Java client writes). */
  readonly snappyFormat?: "xerial" | "raw"
  /** gzip level 1..9 (default: zlib default, 6). */
  readonly gzipLevel?: number
  /** zstd level (default 3, as Kafka). */
  readonly zstdLevel?: number
}

export interface DecompressOptions {
  /** Upper bound on the decompressed size; default {@link DEFAULT_MAX_DECOMPRESSED_BYTES}. */
  readonly maxOutputBytes?: number
}

const fail = (codec: string, kind: CompressionErrorKind, reason: string): never => {
  throw new CompressionError({ codec, kind, reason })
}

const tooLarge = (codec: string, max: number): never =>
  fail(codec, "tooLarge", `decompressed size exceeds the limit of ${max} bytes`)

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

// ---------------------------------------------------------------------------
// gzip

const gzipCompress = (buf: Buffer, level: number | undefined): Buffer =>
  level === undefined ? zlib.gzipSync(buf) : zlib.gzipSync(buf, { level })

const gzipDecompress = (buf: Buffer, max: number): Buffer => {
  try {
    return zlib.gunzipSync(buf, { maxOutputLength: max })
  } catch (e) {
    if (e instanceof RangeError || (e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") return tooLarge("gzip", max)
    return fail("gzip", "corrupt", describe(e))
  }
}

// ---------------------------------------------------------------------------
// snappy (raw + xerial framing)

/** `0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00` */
export const XERIAL_MAGIC: Buffer = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])
/** Magic (8) + version (4) + compatible version (4). */
export const XERIAL_HEADER_SIZE = 16
/** Block size the Java client (xerial SnappyOutputStream) uses. */
export const XERIAL_BLOCK_SIZE = 32 * 1024

const hasXerialMagicAt = (buf: Buffer, pos: number): boolean => {
  if (buf.length - pos < 8) return false
  for (let i = 0; i < 8; i++) if (buf[pos + i] !== XERIAL_MAGIC[i]) return false
  return true
}

/** True if `buf` starts with a xerial snappy stream header. */
export const isXerialSnappy = (buf: Buffer): boolean => buf.length >= XERIAL_HEADER_SIZE && hasXerialMagicAt(buf, 0)

/** Reads the uncompressed-length preamble of a raw snappy block (uint32 varint). */
const snappyRawLength = (buf: Buffer, start: number, end: number): number => {
  let result = 0
  let shift = 0
  for (let i = 0; i < 5; i++) {
    const pos = start + i
    if (pos >= end) return fail("snappy", "corrupt", "truncated length preamble")
    const b = buf[pos]!
    result += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) return result
    shift += 7
  }
  return fail("snappy", "corrupt", "length preamble longer than 5 bytes")
}

const snappyRawBlock = (block: Buffer, budget: number, max: number): Buffer => {
  const n = snappyRawLength(block, 0, block.length)
  if (n > budget) return tooLarge("snappy", max)
  let out: Buffer
  try {
    out = snappy.uncompressSync(block) as Buffer
  } catch (e) {
    return fail("snappy", "corrupt", describe(e))
  }
  if (out.length !== n) return fail("snappy", "corrupt", `block decoded to ${out.length} bytes, preamble says ${n}`)
  return out
}

const snappyCompressRaw = (buf: Buffer): Buffer => snappy.compressSync(buf)

const snappyCompressXerial = (buf: Buffer): Buffer => {
  const blocks: Buffer[] = []
  let total = XERIAL_HEADER_SIZE
  for (let pos = 0; pos < buf.length; pos += XERIAL_BLOCK_SIZE) {
    const block = snappy.compressSync(buf.subarray(pos, Math.min(buf.length, pos + XERIAL_BLOCK_SIZE)))
    blocks.push(block)
    total += 4 + block.length
  }
  const out = Buffer.allocUnsafe(total)
  XERIAL_MAGIC.copy(out, 0)
  out.writeInt32BE(1, 8) // version
  out.writeInt32BE(1, 12) // minimum compatible version
  let pos = XERIAL_HEADER_SIZE
  for (const block of blocks) {
    out.writeInt32BE(block.length, pos)
    block.copy(out, pos + 4)
    pos += 4 + block.length
  }
  return out
}

const snappyDecompressXerial = (buf: Buffer, max: number): Buffer => {
  const chunks: Buffer[] = []
  let total = 0
  let pos = XERIAL_HEADER_SIZE
  const end = buf.length
  while (pos < end) {
    // xerial streams may be concatenated: a header can reappear between blocks
    if (hasXerialMagicAt(buf, pos)) {
      if (end - pos < XERIAL_HEADER_SIZE) return fail("snappy", "corrupt", "truncated xerial header")
      pos += XERIAL_HEADER_SIZE
      continue
    }
    if (end - pos < 4) return fail("snappy", "corrupt", `truncated xerial block length at ${pos}`)
    const len = buf.readInt32BE(pos)
    pos += 4
    if (len < 0 || len > end - pos) return fail("snappy", "corrupt", `xerial block length ${len} out of bounds at ${pos - 4}`)
    const out = snappyRawBlock(buf.subarray(pos, pos + len), max - total, max)
    total += out.length
    chunks.push(out)
    pos += len
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total)
}

const snappyDecompress = (buf: Buffer, max: number): Buffer =>
  isXerialSnappy(buf) ? snappyDecompressXerial(buf, max) : snappyRawBlock(buf, max, max)

// ---------------------------------------------------------------------------
// lz4 (frame format, KIP-57)

const LZ4_MAGIC = 0x184d2204
const PRIME32_1 = 0x9e3779b1
const PRIME32_2 = 0x85ebca77
const PRIME32_3 = 0xc2b2ae3d
const PRIME32_4 = 0x27d4eb2f
const PRIME32_5 = 0x165667b1

const rotl32 = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0

const xxhRound = (acc: number, lane: number): number =>
  Math.imul(rotl32((acc + Math.imul(lane, PRIME32_2)) >>> 0, 13), PRIME32_1) >>> 0

/** XXH32 (used by the LZ4 frame header checksum). */
export const xxhash32 = (buf: Uint8Array, seed = 0, start = 0, end = buf.length): number => {
  const len = end - start
  let p = start
  let h: number
  const u32 = (i: number) => (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) >>> 0
  if (len >= 16) {
    let v1 = (seed + PRIME32_1 + PRIME32_2) >>> 0
    let v2 = (seed + PRIME32_2) >>> 0
    let v3 = seed >>> 0
    let v4 = (seed - PRIME32_1) >>> 0
    const limit = end - 16
    while (p <= limit) {
      v1 = xxhRound(v1, u32(p))
      v2 = xxhRound(v2, u32(p + 4))
      v3 = xxhRound(v3, u32(p + 8))
      v4 = xxhRound(v4, u32(p + 12))
      p += 16
    }
    h = (rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18)) >>> 0
  } else {
    h = (seed + PRIME32_5) >>> 0
  }
  h = (h + len) >>> 0
  while (p + 4 <= end) {
    h = (h + Math.imul(u32(p), PRIME32_3)) >>> 0
    h = Math.imul(rotl32(h, 17), PRIME32_4) >>> 0
    p += 4
  }
  while (p < end) {
    h = (h + Math.imul(buf[p]!, PRIME32_5)) >>> 0
    h = Math.imul(rotl32(h, 11), PRIME32_1) >>> 0
    p++
  }
  h ^= h >>> 15
  h = Math.imul(h, PRIME32_2) >>> 0
  h ^= h >>> 13
  h = Math.imul(h, PRIME32_3) >>> 0
  h ^= h >>> 16
  return h >>> 0
}

/** The frame-descriptor checksum byte (HC) of an LZ4 frame: `(xxh32(descriptor) >> 8) & 0xff`. */
export const lz4HeaderChecksum = (descriptor: Uint8Array, start = 0, end = descriptor.length): number =>
  (xxhash32(descriptor, 0, start, end) >>> 8) & 0xff

interface Lz4FrameInfo {
  readonly flg: number
  readonly bd: number
  readonly maxBlockSize: number
  readonly blockChecksum: boolean
  readonly independent: boolean
  readonly contentSize: number | undefined
  /** Offset of the first block. */
  readonly dataStart: number
  /** Offset just after the frame (after the end mark and content checksum). */
  readonly frameEnd: number
  /** Upper bound on the decompressed size. */
  readonly bound: number
  /** [offset, length, uncompressed] of each block's payload. */
  readonly blocks: Array<readonly [number, number, boolean]>
}

/** Parses and checks an LZ4 frame header and walks its blocks without decompressing. */
const lz4ParseFrame = (buf: Buffer): Lz4FrameInfo => {
  const c = "lz4"
  if (buf.length < 7) return fail(c, "corrupt", "truncated frame header")
  if (buf.readUInt32LE(0) !== LZ4_MAGIC) return fail(c, "corrupt", `bad frame magic 0x${buf.readUInt32LE(0).toString(16)}`)
  const flg = buf[4]!
  const bd = buf[5]!
  if ((flg >>> 6) !== 1) return fail(c, "corrupt", `unsupported frame version ${flg >>> 6}`)
  if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) return fail(c, "corrupt", "reserved frame descriptor bits set")
  const bsv = (bd >>> 4) & 7
  if (bsv < 4) return fail(c, "corrupt", `invalid block max size id ${bsv}`)
  const maxBlockSize = 1 << (2 * bsv + 8)
  const independent = (flg & 0x20) !== 0
  const blockChecksum = (flg & 0x10) !== 0
  const hasContentSize = (flg & 0x08) !== 0
  const contentChecksum = (flg & 0x04) !== 0
  const hasDictId = (flg & 0x01) !== 0
  let pos = 6
  let contentSize: number | undefined
  if (hasContentSize) {
    if (buf.length < pos + 9) return fail(c, "corrupt", "truncated frame header")
    const cs = buf.readBigUInt64LE(pos)
    contentSize = cs > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(cs)
    pos += 8
  }
  if (hasDictId) {
    if (buf.length < pos + 5) return fail(c, "corrupt", "truncated frame header")
    pos += 4
  }
  if (buf.length < pos + 1) return fail(c, "corrupt", "truncated frame header")
  const hc = lz4HeaderChecksum(buf, 4, pos)
  if (buf[pos] !== hc) return fail(c, "corrupt", "frame descriptor checksum mismatch")
  pos += 1
  const dataStart = pos
  const blocks: Array<readonly [number, number, boolean]> = []
  let bound = 0
  for (;;) {
    if (buf.length - pos < 4) return fail(c, "corrupt", "truncated frame (missing end mark)")
    const word = buf.readUInt32LE(pos)
    pos += 4
    if (word === 0) break
    const uncompressed = (word & 0x80000000) !== 0
    const len = word & 0x7fffffff
    if (len > maxBlockSize) return fail(c, "corrupt", `block size ${len} exceeds the frame's max ${maxBlockSize}`)
    const need = len + (blockChecksum ? 4 : 0)
    if (buf.length - pos < need) return fail(c, "corrupt", "truncated block")
    blocks.push([pos, len, uncompressed])
    bound += uncompressed ? len : maxBlockSize
    pos += need
  }
  if (contentChecksum) {
    if (buf.length - pos < 4) return fail(c, "corrupt", "truncated content checksum")
    pos += 4
  }
  return { flg, bd, maxBlockSize, blockChecksum, independent, contentSize, dataStart, frameEnd: pos, bound, blocks }
}

const lz4Decompress = (buf: Buffer, max: number): Buffer => {
  const info = lz4ParseFrame(buf)
  if (info.contentSize !== undefined && info.contentSize > max) return tooLarge("lz4", max)
  // Only the first frame counts, as in Kafka's Lz4BlockInputStream.
  const frame = info.frameEnd === buf.length ? buf : buf.subarray(0, info.frameEnd)
  if (info.bound <= max) {
    let out: Buffer
    try {
      out = lz4.decompressFrameSync(frame)
    } catch (e) {
      return fail("lz4", "corrupt", describe(e))
    }
    if (out.length > max) return tooLarge("lz4", max)
    return out
  }
  // The frame could exceed the limit: decode it block by block so we stop as
  // soon as the limit is crossed instead of materialising a bomb.
  if (!info.independent) return fail("lz4", "tooLarge", `frame with linked blocks may exceed the limit of ${max} bytes`)
  const flg = info.flg & 0xf0 // keep version, independence, block checksum; drop size, content checksum, dict id
  const hc = lz4HeaderChecksum(Buffer.from([flg, info.bd]))
  const chunks: Buffer[] = []
  let total = 0
  for (const [start, len, uncompressed] of info.blocks) {
    let out: Buffer
    if (uncompressed) {
      out = buf.subarray(start, start + len)
    } else {
      const payload = len + (info.blockChecksum ? 4 : 0)
      const mini = Buffer.allocUnsafe(7 + 4 + payload + 4)
      mini.writeUInt32LE(LZ4_MAGIC, 0)
      mini[4] = flg
      mini[5] = info.bd
      mini[6] = hc
      mini.writeUInt32LE(len, 7)
      buf.copy(mini, 11, start, start + payload)
      mini.writeUInt32LE(0, 11 + payload)
      try {
        out = lz4.decompressFrameSync(mini)
      } catch (e) {
        return fail("lz4", "corrupt", describe(e))
      }
    }
    total += out.length
    if (total > max) return tooLarge("lz4", max)
    chunks.push(out)
  }
  return Buffer.concat(chunks, total)
}

const lz4Compress = (buf: Buffer): Buffer => lz4.compressFrameSync(buf)

// ---------------------------------------------------------------------------
// zstd

let dctx: InstanceType<typeof zstd.DCtx> | undefined
let cctx: InstanceType<typeof zstd.CCtx> | undefined
const ZSTD_OUT_CHUNK = zstd.dStreamOutSize()

const zstdCompress = (buf: Buffer, level: number): Buffer => {
  cctx ??= new zstd.CCtx()
  const dst = Buffer.allocUnsafe(zstd.compressBound(buf.length))
  let n: number
  try {
    n = cctx.compress(dst, buf, level)
  } catch (e) {
    return fail("zstd", "corrupt", describe(e))
  }
  // do not pin a large slab for a small result
  return n < dst.length >>> 1 ? Buffer.from(dst.subarray(0, n)) : dst.subarray(0, n)
}

const zstdDecompress = (buf: Buffer, max: number): Buffer => {
  if (buf.length === 0) return fail("zstd", "corrupt", "empty input")
  dctx ??= new zstd.DCtx()
  const ctx = dctx
  try {
    ctx.reset(zstd.ResetDirective.sessionOnly)
    // Fast path: one frame that announces its content size.
    let contentSize: number | null = null
    let frameSize = -1
    try {
      contentSize = zstd.getFrameContentSize(buf)
      frameSize = zstd.findFrameCompressedSize(buf)
    } catch {
      contentSize = null
    }
    if (contentSize !== null && frameSize === buf.length) {
      if (contentSize > max) return tooLarge("zstd", max)
      const out = Buffer.allocUnsafe(contentSize)
      const n = ctx.decompress(out, buf)
      if (n !== contentSize) return fail("zstd", "corrupt", `frame decoded to ${n} bytes, header says ${contentSize}`)
      return out
    }
    // Streaming path: no content size (streaming producers), several frames, or skippable frames.
    const chunks: Buffer[] = []
    let total = 0
    let input = buf
    for (;;) {
      const room = max - total + 1
      const size = Math.min(Math.max(ZSTD_OUT_CHUNK, input.length * 4), room)
      const out = Buffer.allocUnsafe(size)
      const [ret, produced, consumed] = ctx.decompressStream(out, input)
      input = input.subarray(consumed)
      if (produced > 0) {
        total += produced
        if (total > max) return tooLarge("zstd", max)
        chunks.push(out.subarray(0, produced))
      }
      if (ret === 0 && input.length === 0) break
      if (produced === 0 && consumed === 0) return fail("zstd", "corrupt", "truncated frame")
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total)
  } catch (e) {
    if (e instanceof CompressionError) throw e
    try {
      ctx.reset(zstd.ResetDirective.sessionOnly)
    } catch {
      dctx = undefined
    }
    return fail("zstd", "corrupt", describe(e))
  }
}

// ---------------------------------------------------------------------------
// dispatch

/** Compresses `buf` with `codec` (0 returns `buf` itself). */
export const compress = (codec: number, buf: Buffer, options?: CompressOptions): Buffer => {
  switch (codec) {
    case Codec.None:
      return buf
    case Codec.Gzip:
      return gzipCompress(buf, options?.gzipLevel)
    case Codec.Snappy:
      return options?.snappyFormat === "raw" ? snappyCompressRaw(buf) : snappyCompressXerial(buf)
    case Codec.Lz4:
      return lz4Compress(buf)
    case Codec.Zstd:
      return zstdCompress(buf, options?.zstdLevel ?? 3)
    default:
      return fail(codecName(codec), "unsupported", `unknown compression codec ${codec}`)
  }
}

/** Decompresses `buf` (bounded by `options.maxOutputBytes`); codec 0 returns `buf` itself. */
export const decompress = (codec: number, buf: Buffer, options?: DecompressOptions): Buffer => {
  const max = options?.maxOutputBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES
  switch (codec) {
    case Codec.None:
      if (buf.length > max) return tooLarge("none", max)
      return buf
    case Codec.Gzip:
      return gzipDecompress(buf, max)
    case Codec.Snappy:
      return snappyDecompress(buf, max)
    case Codec.Lz4:
      return lz4Decompress(buf, max)
    case Codec.Zstd:
      return zstdDecompress(buf, max)
    default:
      return fail(codecName(codec), "unsupported", `unknown compression codec ${codec}`)
  }
}
