/**
 * Record-batch codec benchmark: `npx tsx bench/codec-records.ts`.
 *
 * (a) header + CRC-32C validation over 1 MiB of batches of 1 KiB records
 * (b) varint-heavy record decoding (many small records)
 * (c) encodeBatch
 * (d) compress / decompress of 1 MiB per codec
 *
 * `run()` returns the figures (MB/s = 10^6 bytes per CPU-second of this process)
 * so a bench runner can import it.
 */
import { pathToFileURL } from "node:url"
import { Codec, codecName, compress, decompress } from "../src/protocol/compression.js"
import { decodeRecords, encodeBatch, forEachBatch, validateBatch } from "../src/protocol/recordBatch.js"
import type { RecordInput } from "../src/protocol/recordBatch.js"

export interface CodecBenchResult {
  /** (a) forEachBatch + validateBatch, 16 x 1 KiB records per batch. */
  readonly validateMBps: number
  /** (a') the same with one 1 KiB record per batch (per-batch overhead dominates). */
  readonly validateSmallBatchesMBps: number
  /** (b) decodeRecords of batches of 1000 small records (8 B key, 16 B value, 1 header). */
  readonly decodeSmallRecordsMBps: number
  readonly decodeSmallRecordsPerSec: number
  /** (c) encodeBatch, small records and 1 KiB records. */
  readonly encodeSmallRecordsMBps: number
  readonly encodeSmallRecordsPerSec: number
  readonly encode1KiBRecordsMBps: number
  /** (d) per codec: MB/s of uncompressed bytes, and the compression ratio. */
  readonly codecs: Record<string, { readonly compressMBps: number; readonly decompressMBps: number; readonly ratio: number }>
}

/** Deterministic pseudo-random generator (xorshift32). */
const rng = (seed: number) => {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s
  }
}

const WORDS = ["order", "user", "id", "price", "status", "shipped", "pending", "eur", "usd", "item", "qty", "ts", "kafka", "event", "created", "true", "false", "null"]

/** JSON-ish text: compressible like real payloads, not trivially so. */
const textPayload = (size: number, seed: number): Buffer => {
  const next = rng(seed)
  const parts: string[] = []
  let len = 0
  while (len < size) {
    const w = next() % 3 === 0 ? String(next() % 100000) : WORDS[next() % WORDS.length]!
    const piece = `"${w}":`
    parts.push(piece)
    len += piece.length
  }
  return Buffer.from(parts.join("")).subarray(0, size)
}

/**
 * Runs `fn` repeatedly for about `ms` milliseconds of CPU time; returns CPU
 * seconds per call. CPU time (process.cpuUsage) rather than wall time, so a
 * machine shared with other work does not distort the figures much.
 */
const time = (fn: () => void, ms: number): number => {
  for (let i = 0; i < 3; i++) fn() // warm up
  let calls = 0
  const start = process.cpuUsage()
  const budget = ms * 1000
  let elapsed = 0
  do {
    fn()
    calls++
    const u = process.cpuUsage(start)
    elapsed = u.user + u.system
  } while (elapsed < budget)
  return elapsed / 1e6 / calls
}

const mbps = (bytes: number, secondsPerCall: number) => Math.round(bytes / secondsPerCall / 1e6)

let sink = 0

export const run = (options?: { readonly msPerCase?: number }): CodecBenchResult => {
  const ms = options?.msPerCase ?? 600
  const MiB = 1024 * 1024

  // (a) 1 MiB of batches of 16 x 1 KiB records
  const blobOf = (recordsPerBatch: number): Buffer => {
    const batches: Buffer[] = []
    let total = 0
    let base = 0
    while (total < MiB) {
      const records: RecordInput[] = Array.from({ length: recordsPerBatch }, (_, i) => ({
        key: Buffer.from(`key-${base + i}`),
        value: textPayload(1024, base + i + 1),
        timestamp: 1_700_000_000_000 + i
      }))
      const b = encodeBatch({ baseOffset: BigInt(base), records, producerId: 1n, producerEpoch: 0, baseSequence: base })
      batches.push(b)
      total += b.length
      base += recordsPerBatch
    }
    return Buffer.concat(batches)
  }
  const validateBlob = (blob: Buffer) => () => {
    forEachBatch(blob, (batch) => {
      sink += validateBatch(batch, 0, 1_048_588).recordCount
    })
  }
  const blob16 = blobOf(16)
  const blob1 = blobOf(1)
  const validateMBps = mbps(blob16.length, time(validateBlob(blob16), ms))
  const validateSmallBatchesMBps = mbps(blob1.length, time(validateBlob(blob1), ms))

  // (b)/(c) small records
  const small: RecordInput[] = Array.from({ length: 1000 }, (_, i) => ({
    key: textPayload(8, i + 7),
    value: textPayload(16, i + 11),
    headers: [{ key: "trace", value: Buffer.from("abcd") }],
    timestamp: 1_700_000_000_000 + i
  }))
  const smallBatch = encodeBatch({ records: small })
  const tDecode = time(() => {
    sink += decodeRecords(smallBatch).length
  }, ms)
  const tEncodeSmall = time(() => {
    sink += encodeBatch({ records: small }).length
  }, ms)
  const big: RecordInput[] = Array.from({ length: 64 }, (_, i) => ({
    key: Buffer.from(`key-${i}`),
    value: textPayload(1024, i + 3),
    timestamp: 1_700_000_000_000 + i
  }))
  const bigBytes = encodeBatch({ records: big }).length
  const tEncodeBig = time(() => {
    sink += encodeBatch({ records: big }).length
  }, ms)

  // (d) codecs over 1 MiB of record-like text
  const payload = textPayload(MiB, 42)
  const codecs: Record<string, { compressMBps: number; decompressMBps: number; ratio: number }> = {}
  for (const codec of [Codec.Gzip, Codec.Snappy, Codec.Lz4, Codec.Zstd]) {
    const packed = compress(codec, payload)
    const tc = time(() => {
      sink += compress(codec, payload).length
    }, ms)
    const td = time(() => {
      sink += decompress(codec, packed).length
    }, ms)
    codecs[codecName(codec)] = {
      compressMBps: mbps(MiB, tc),
      decompressMBps: mbps(MiB, td),
      ratio: Math.round((MiB / packed.length) * 100) / 100
    }
  }
  const rawSnappy = compress(Codec.Snappy, payload, { snappyFormat: "raw" })
  codecs["snappy-raw"] = {
    compressMBps: mbps(MiB, time(() => void (sink += compress(Codec.Snappy, payload, { snappyFormat: "raw" }).length), ms)),
    decompressMBps: mbps(MiB, time(() => void (sink += decompress(Codec.Snappy, rawSnappy).length), ms)),
    ratio: Math.round((MiB / rawSnappy.length) * 100) / 100
  }

  return {
    validateMBps,
    validateSmallBatchesMBps,
    decodeSmallRecordsMBps: mbps(smallBatch.length, tDecode),
    decodeSmallRecordsPerSec: Math.round(small.length / tDecode),
    encodeSmallRecordsMBps: mbps(smallBatch.length, tEncodeSmall),
    encodeSmallRecordsPerSec: Math.round(small.length / tEncodeSmall),
    encode1KiBRecordsMBps: mbps(bigBytes, tEncodeBig),
    codecs
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain) {
  const r = run()
  console.log("record batch codec (MB/s = 10^6 B per CPU-second)")
  console.log(`  (a) validate header+CRC, 16x1KiB records/batch : ${r.validateMBps} MB/s`)
  console.log(`  (a) validate header+CRC, 1x1KiB record/batch   : ${r.validateSmallBatchesMBps} MB/s`)
  console.log(`  (b) decodeRecords, 1000 small records/batch    : ${r.decodeSmallRecordsMBps} MB/s, ${r.decodeSmallRecordsPerSec} records/s`)
  console.log(`  (c) encodeBatch, small records                 : ${r.encodeSmallRecordsMBps} MB/s, ${r.encodeSmallRecordsPerSec} records/s`)
  console.log(`  (c) encodeBatch, 1 KiB records                 : ${r.encode1KiBRecordsMBps} MB/s`)
  for (const [name, c] of Object.entries(r.codecs)) {
    console.log(`  (d) ${name.padEnd(10)} 1 MiB: compress ${c.compressMBps} MB/s, decompress ${c.decompressMBps} MB/s, ratio ${c.ratio}`)
  }
  if (sink === -1) console.log(sink)
}
