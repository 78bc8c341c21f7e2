/**
 * Protocol codec benchmark: `npx tsx bench/codec-protocol.ts`.
 *
 * (a) decode + validate a Produce request (v9) carrying 1 MiB of 1 KiB
 *     records: header and body decode with the generated codec, then every
 *     batch's header and CRC-32C checked, records left undecoded (the broker's
 *     produce path);
 * (b) encode a Fetch response (v12) carrying the same 1 MiB.
 *
 * MB/s are 10^6 bytes of frame per CPU-second of this process, so a loaded
 * machine distorts them less than wall-clock figures.
 */
import { pathToFileURL } from "node:url"
import { decodeRequest, encodeRequest, encodeResponse } from "../src/protocol/messages.js"
import { encodeBatch, forEachBatch, validateBatch } from "../src/protocol/recordBatch.js"

export interface ProtocolCodecBenchResult {
  readonly produceDecodeValidateMBps: number
  readonly fetchResponseEncodeMBps: number
  readonly frameBytes: number
}

/** 1 MiB as 64 batches (one per partition) of 16 records of 1 KiB. */
const makeBatches = (): Array<Buffer> =>
  Array.from({ length: 64 }, (_, b) =>
    encodeBatch({
      records: Array.from({ length: 16 }, (_, i) => ({ key: Buffer.from(`key-${b}-${i}`), value: Buffer.alloc(1024, (b + i) & 0xff) }))
    })
  )

const cpuSeconds = (f: () => void, minMs: number): { iterations: number; seconds: number } => {
  const start = process.cpuUsage()
  const wallStart = Date.now()
  let iterations = 0
  do {
    f()
    iterations++
  } while (Date.now() - wallStart < minMs)
  const used = process.cpuUsage(start)
  return { iterations, seconds: (used.user + used.system) / 1e6 }
}

export const run = (options?: { readonly msPerCase?: number }): ProtocolCodecBenchResult => {
  const ms = options?.msPerCase ?? 2000
  const batches = makeBatches()
  const produce = encodeRequest(0, 9, 1, "bench", {
    acks: -1,
    timeoutMs: 30_000,
    topicData: [{ name: "bench", partitionData: batches.map((records, index) => ({ index, records })) }]
  })
  const decodeValidate = () => {
    const req = decodeRequest(produce)
    if (req.apiKey !== 0) throw new Error("not a produce request")
    for (const t of req.body.topicData) {
      for (const p of t.partitionData) forEachBatch(p.records!, (batch, pos) => void validateBatch(batch, pos))
    }
  }
  const fetchBody = {
    responses: [
      {
        topic: "bench",
        partitions: batches.map((records, partitionIndex) => ({
          partitionIndex,
          errorCode: 0,
          highWatermark: 1_000_000n,
          lastStableOffset: 1_000_000n,
          logStartOffset: 0n,
          records
        }))
      }
    ]
  }
  const fetchFrame = encodeResponse(1, 12, 1, fetchBody)
  const encodeFetch = () => void encodeResponse(1, 12, 1, fetchBody)
  decodeValidate()
  encodeFetch()
  const a = cpuSeconds(decodeValidate, ms)
  const b = cpuSeconds(encodeFetch, ms)
  return {
    produceDecodeValidateMBps: (produce.length * a.iterations) / a.seconds / 1e6,
    fetchResponseEncodeMBps: (fetchFrame.length * b.iterations) / b.seconds / 1e6,
    frameBytes: produce.length
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const r = run()
  console.log(`produce v9 decode + batch validation (1 MiB, 1 KiB records): ${r.produceDecodeValidateMBps.toFixed(0)} MB/s`)
  console.log(`fetch v12 response encode (1 MiB):                          ${r.fetchResponseEncodeMBps.toFixed(0)} MB/s`)
}
