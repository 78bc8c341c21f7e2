import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { decodeResponse } from "../../src/protocol/messages.js"
import { decodeRecords, encodeBatch } from "../../src/protocol/recordBatch.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"

const batch = (values: Array<string>, producer?: { id: bigint; epoch: number; seq: number }) =>
  encodeBatch({
    baseOffset: 0n,
    compression: 0,
    producerId: producer?.id ?? -1n,
    producerEpoch: producer?.epoch ?? -1,
    baseSequence: producer?.seq ?? -1,
    baseTimestamp: BigInt(Date.now()),
    records: values.map((v, i) => ({ offsetDelta: i, key: Buffer.from(`k${i}`), value: Buffer.from(v), headers: [] }))
  })

describe("standalone data path (in process)", () => {
  let broker: InProcessBroker
  beforeAll(async () => {
    broker = await startInProcessBroker()
  })
  afterAll(async () => {
    await broker.close()
  })

  it("auto-creates a topic through Metadata, produces and fetches whole batches", async () => {
    const md = await broker.request(3, 12, { topics: [{ name: "t1" }], allowAutoTopicCreation: true })
    expect(md!.topics[0]!.errorCode).toBe(ErrorCode.NONE)
    const topicId = md!.topics[0]!.topicId
    const produce = (values: Array<string>) =>
      broker.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "t1", partitionData: [{ index: 0, records: batch(values) }] }]
      })
    const r1 = await produce(["a", "b", "c"])
    expect(r1!.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: 0, baseOffset: 0n })
    const r2 = await produce(["d"])
    expect(r2!.responses[0]!.partitionResponses[0]!.baseOffset).toBe(3n)
    // Fetch v13+ names the topic by id; offset 1 falls inside the first batch, which comes back whole.
    const f = await broker.request(1, 13, {
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{ topicId, partitions: [{ partition: 0, fetchOffset: 1n, partitionMaxBytes: 1 << 20 }] }]
    })
    const p = f!.responses[0]!.partitions[0]!
    expect(p.errorCode).toBe(0)
    expect(p.highWatermark).toBe(4n)
    expect(p.lastStableOffset).toBe(4n)
    expect(p.logStartOffset).toBe(0n)
    const records = []
    let pos = 0
    const blob = p.records!
    while (pos < blob.length) {
      const len = blob.readInt32BE(pos + 8) + 12
      records.push(...decodeRecords(blob.subarray(pos, pos + len)))
      pos += len
    }
    expect(records.map((r) => [r.offset, r.value!.toString()])).toEqual([
      [0n, "a"],
      [1n, "b"],
      [2n, "c"],
      [3n, "d"]
    ])
  })

  it("answers per-partition errors: unknown topic, bad CRC, unknown topic id, out of range", async () => {
    const bad = batch(["x"])
    bad[bad.length - 1] ^= 0xff
    const r = await broker.request(0, 9, {
      acks: 1,
      timeoutMs: 1000,
      topicData: [
        { name: "nope", partitionData: [{ index: 0, records: batch(["x"]) }] },
        { name: "t1", partitionData: [{ index: 0, records: bad }, { index: 7, records: batch(["x"]) }] }
      ]
    })
    expect(r!.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    expect(r!.responses[1]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.CORRUPT_MESSAGE)
    expect(r!.responses[1]!.partitionResponses[1]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    const f = await broker.request(1, 13, {
      maxWaitMs: 0,
      minBytes: 1,
      topics: [
        { topicId: "AAAAAAAAAAAAAAAAAAAAAQ", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 100 }] }
      ]
    })
    expect(f!.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_ID)
    const o = await broker.request(1, 11, {
      maxWaitMs: 0,
      minBytes: 1,
      topics: [{ topic: "t1", partitions: [{ partition: 0, fetchOffset: 999n, partitionMaxBytes: 100 }] }]
    })
    expect(o!.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE)
  })

  it("deduplicates an idempotent retry and rejects a sequence gap", async () => {
    await broker.request(3, 12, { topics: [{ name: "idem" }], allowAutoTopicCreation: true })
    const send = (seq: number, values: Array<string>) =>
      broker.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "idem", partitionData: [{ index: 0, records: batch(values, { id: 42n, epoch: 0, seq }) }] }]
      })
    const first = await send(0, ["a", "b"])
    const retry = await send(0, ["a", "b"])
    expect(retry!.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: 0, baseOffset: first!.responses[0]!.partitionResponses[0]!.baseOffset })
    const gap = await send(5, ["c"])
    expect(gap!.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
  })

  it("a long-polling fetch is woken by a produce, not by its timeout", async () => {
    await broker.request(3, 12, { topics: [{ name: "poll" }], allowAutoTopicCreation: true })
    const started = Date.now()
    const fetch = broker.request(1, 12, {
      maxWaitMs: 10_000,
      minBytes: 1,
      topics: [{ topic: "poll", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
    })
    await new Promise((r) => setTimeout(r, 200))
    await broker.request(0, 9, {
      acks: 1,
      timeoutMs: 1000,
      topicData: [{ name: "poll", partitionData: [{ index: 0, records: batch(["wake"]) }] }]
    })
    const f = await fetch
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(f!.responses[0]!.partitions[0]!.records!.length).toBeGreaterThan(0)
  })

  it("lists exactly the served APIs in ApiVersions", async () => {
    const r = await broker.request(18, 3, { clientSoftwareName: "test", clientSoftwareVersion: "1.0" })
    expect(r!.errorCode).toBe(0)
    const produce = r!.apiKeys.find((k) => k.apiKey === 0)
    expect(produce).toEqual({ apiKey: 0, minVersion: 3, maxVersion: 11 })
    expect(r!.apiKeys.map((k) => k.apiKey)).toEqual(expect.arrayContaining([0, 1, 3, 18]))
  })

  it("answers ApiVersions at an unknown version with a v0 UNSUPPORTED_VERSION and our ranges (KIP-511)", async () => {
    // ApiVersions v9 (unknown to us), header v2: key, version, correlation id, client id, no tags; then a flexible body.
    const frame = Buffer.from([0, 18, 0, 9, 0, 0, 0, 77, 0, 1, 0x78, 0, 1, 1, 0])
    const raw = await broker.raw(frame)
    const decoded = decodeResponse(18, 0, raw!)
    expect(decoded.correlationId).toBe(77)
    expect(decoded.body.errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION)
    expect(decoded.body.apiKeys.find((k) => k.apiKey === 18)).toEqual({ apiKey: 18, minVersion: 0, maxVersion: 4 })
  })

  it("closes the connection for an unsupported version of another API", async () => {
    const before = broker.closedConnections.length
    const frame = Buffer.from([0, 0, 0, 1, 0, 0, 0, 5, 0, 1, 0x78])
    expect(await broker.raw(frame)).toBeNull()
    expect(broker.closedConnections.length).toBe(before + 1)
    expect(broker.closedConnections.at(-1)).toContain("unsupported version 1 of Produce")
  })
})
