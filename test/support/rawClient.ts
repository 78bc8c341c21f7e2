/**
 * A minimal Kafka client over our own codec, for tests that need exact
 * control of requests (reading a whole partition back after a crash, hostile
 * frames). Requests are pipelined; responses are matched by correlation id.
 */
import { type Socket, connect } from "node:net"
import { type ApiKey, type RequestInputTypes, type ResponseTypes, decodeResponse, encodeRequest } from "../../src/protocol/messages.js"
import { decodeRecords, splitBatches } from "../../src/protocol/recordBatch.js"

export interface RawClient {
  readonly request: <K extends ApiKey>(apiKey: K, version: number, body: RequestInputTypes[K]) => Promise<ResponseTypes[K]>
  /** Writes bytes as they are (no framing), for hostile-input tests. */
  readonly writeRaw: (bytes: Buffer) => void
  readonly closed: Promise<void>
  readonly close: () => void
}

export const connectRaw = (port: number, host = "127.0.0.1"): Promise<RawClient> =>
  new Promise((resolve, reject) => {
    const socket: Socket = connect({ host, port }, () => resolve(client))
    socket.once("error", reject)
    let correlationId = 0
    const pending = new Map<number, { apiKey: ApiKey; version: number; resolve: (b: any) => void; reject: (e: Error) => void }>()
    let buffered: Buffer = Buffer.alloc(0)
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      while (buffered.length >= 4) {
        const size = buffered.readInt32BE(0)
        if (buffered.length < 4 + size) break
        const frame = buffered.subarray(4, 4 + size)
        buffered = buffered.subarray(4 + size)
        const id = frame.readInt32BE(0)
        const p = pending.get(id)
        if (p === undefined) continue
        pending.delete(id)
        try {
          p.resolve(decodeResponse(p.apiKey, p.version, frame).body)
        } catch (e) {
          p.reject(e as Error)
        }
      }
    })
    const closed = new Promise<void>((res) =>
      socket.once("close", () => {
        for (const p of pending.values()) p.reject(new Error("connection closed"))
        pending.clear()
        res()
      })
    )
    const client: RawClient = {
      request: (apiKey, version, body) =>
        new Promise((res, rej) => {
          const id = ++correlationId
          const frame = encodeRequest(apiKey, version, id, "raw-test-client", body)
          const size = Buffer.alloc(4)
          size.writeInt32BE(frame.length)
          pending.set(id, { apiKey, version, resolve: res, reject: rej })
          socket.write(Buffer.concat([size, frame]))
        }),
      writeRaw: (bytes) => socket.write(bytes),
      closed,
      close: () => socket.destroy()
    }
  })

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
