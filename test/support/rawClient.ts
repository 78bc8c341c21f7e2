/** Test helpers over the wire client. */
import { type KafkaWireClient, connect } from "../../src/client/KafkaWireClient.js"
import { decodeRecords, splitBatches } from "../../src/protocol/recordBatch.js"

export type RawClient = KafkaWireClient
export const connectRaw = (port: number, host = "127.0.0.1"): Promise<RawClient> => connect(port, host, "raw-test-client")

/** Reads every record of a partition from offset 0 up to the high watermark. */
export const readPartition = async (client: RawClient, topic: string, partition = 0) => {
  const out: Array<{ offset: bigint; key: string | null; value: string | null; headers: Record<string, string> }> = []
  let offset = 0n
  for (;;) {
    const r = await client.request(1, 11, {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 8 << 20,
      isolationLevel: 0,
      topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 8 << 20 }] }]
    })
    const p = r.responses[0]!.partitions[0]!
    if (p.errorCode !== 0) throw new Error(`fetch error ${p.errorCode} at offset ${offset}`)
    const blob = p.records ?? Buffer.alloc(0)
    if (blob.length === 0) break
    for (const batch of splitBatches(blob, { allowPartialTail: true }).batches) {
      for (const rec of decodeRecords(batch)) {
        if (rec.offset < offset) continue
        out.push({
          offset: rec.offset,
          key: rec.key === null ? null : rec.key.toString(),
          value: rec.value === null ? null : rec.value.toString(),
          headers: Object.fromEntries(rec.headers.map((h) => [h.key, h.value === null ? "" : h.value.toString()]))
        })
        offset = rec.offset + 1n
      }
    }
    if (offset >= p.highWatermark) break
  }
  return out
}
