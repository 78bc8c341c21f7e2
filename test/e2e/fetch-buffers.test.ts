/**
 * Fetch responses are written from pooled read buffers that go back to the
 * pool once the socket has taken them. A client that stops reading leaves
 * responses queued in the broker's socket while other connections keep
 * fetching (and reusing pool buffers): every batch the slow client finally
 * reads must still be the bytes that were produced (each batch's CRC-32C and
 * its values are checked).
 */
import { createHash } from "node:crypto"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { decodeResponse, encodeRequest } from "../../src/protocol/messages.js"
import { decodeRecords, encodeBatch, splitBatches, validateBatch } from "../../src/protocol/recordBatch.js"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { connectRaw, type RawClient } from "../support/rawClient.js"

const TOPIC = "pooled"
const PARTITIONS = 4
const BATCHES = 60
const RECORDS = 16
const VALUE = 2000

/** The value of record `i` of batch `b` in partition `p`: deterministic, different everywhere. */
const valueOf = (p: number, b: number, i: number): Buffer => {
  const seed = createHash("sha256").update(`${p}/${b}/${i}`).digest()
  const out = Buffer.alloc(VALUE)
  for (let k = 0; k < VALUE; k += seed.length) seed.copy(out, k)
  return out
}

const frame = (body: Buffer): Buffer => {
  const size = Buffer.alloc(4)
  size.writeInt32BE(body.length)
  return Buffer.concat([size, body])
}

const fetchRequest = (correlationId: number, partition: number, offset: bigint) =>
  frame(
    encodeRequest(1, 11, correlationId, "slow-reader", {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 64 << 20,
      isolationLevel: 0,
      topics: [{ topic: TOPIC, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }]
    })
  )

/** Checks every batch of a Fetch response partition: CRC and the values produced at those offsets. */
const checkRecords = (partition: number, records: Buffer | null): number => {
  if (records === null) return 0
  let n = 0
  for (const batch of splitBatches(records, { allowPartialTail: true }).batches) {
    validateBatch(batch, 0)
    for (const r of decodeRecords(batch)) {
      const b = Number(r.offset) / RECORDS
      const i = Number(r.offset) % RECORDS
      expect(r.value!.equals(valueOf(partition, Math.floor(b), i))).toBe(true)
      n++
    }
  }
  return n
}

describe("pooled Fetch read buffers (real process)", () => {
  let broker: BrokerProcess
  let client: RawClient
  beforeAll(async () => {
    // a small memory tier: most reads come from the segment files through the pool
    broker = await startBroker({ args: ["--memory-tier-bytes", String(64 * 1024), "--num-partitions", String(PARTITIONS)] })
    client = await connectRaw(broker.port)
    await client.request(3, 12, { topics: [{ name: TOPIC }], allowAutoTopicCreation: true })
    for (let b = 0; b < BATCHES; b++) {
      await client.request(0, 9, {
        acks: -1,
        timeoutMs: 10_000,
        topicData: [
          {
            name: TOPIC,
            partitionData: Array.from({ length: PARTITIONS }, (_, p) => ({
              index: p,
              records: encodeBatch({ records: Array.from({ length: RECORDS }, (_, i) => ({ key: null, value: valueOf(p, b, i) })) })
            }))
          }
        ]
      })
    }
  }, 120_000)
  afterAll(async () => {
    client?.close()
    await broker?.cleanup()
  })

  it("a client that stops reading gets intact batches while other fetches reuse the pool", async () => {
    // The slow client pipelines many fetches and does not read for a while.
    const socket = net.connect(broker.port, "127.0.0.1")
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
    socket.pause()
    const requests: Array<{ partition: number; offset: bigint }> = []
    for (let k = 0; k < 40; k++) requests.push({ partition: k % PARTITIONS, offset: BigInt((k * 7 % BATCHES) * RECORDS) })
    socket.write(Buffer.concat(requests.map((r, k) => fetchRequest(k, r.partition, r.offset))))

    // Meanwhile other fetches run through the pool again and again.
    let busyRecords = 0
    for (let round = 0; round < 15; round++) {
      for (let p = 0; p < PARTITIONS; p++) {
        const r = await client.request(1, 11, {
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 64 << 20,
          isolationLevel: 0,
          topics: [{ topic: TOPIC, partitions: [{ partition: p, fetchOffset: BigInt((round * 3 % BATCHES) * RECORDS), partitionMaxBytes: 1 << 20 }] }]
        })
        busyRecords += checkRecords(p, r.responses[0]!.partitions[0]!.records)
      }
    }
    expect(busyRecords).toBeGreaterThan(0)

    // Now read everything the slow client was sent.
    const chunks: Array<Buffer> = []
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.resume()
    const responses: Array<Buffer> = []
    const deadline = Date.now() + 30_000
    while (responses.length < requests.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20))
      let all = Buffer.concat(chunks)
      chunks.length = 0
      while (all.length >= 4 && all.length >= 4 + all.readInt32BE(0)) {
        const size = all.readInt32BE(0)
        responses.push(all.subarray(4, 4 + size))
        all = all.subarray(4 + size)
      }
      if (all.length > 0) chunks.push(all)
    }
    socket.destroy()
    expect(responses.length).toBe(requests.length)
    let slowRecords = 0
    for (let k = 0; k < responses.length; k++) {
      const { correlationId, body } = decodeResponse(1, 11, responses[k]!)
      expect(correlationId).toBe(k)
      const p = body.responses[0]!.partitions[0]!
      expect(p.errorCode).toBe(0)
      slowRecords += checkRecords(requests[k]!.partition, p.records)
    }
    expect(slowRecords).toBeGreaterThan(requests.length * RECORDS)
  }, 120_000)
})
