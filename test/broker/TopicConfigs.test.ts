/** Topic configs that change the produce path: LogAppendTime, min.insync.replicas, max.message.bytes. */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { encodeBatch, readBatchHeader, validateBatch } from "../../src/protocol/recordBatch.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"

describe("topic configs on the produce path", () => {
  let broker: InProcessBroker
  beforeAll(async () => {
    broker = await startInProcessBroker()
    const r = await broker.request(19, 7, {
      topics: [
        { name: "appendtime", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: "message.timestamp.type", value: "LogAppendTime" }] },
        { name: "minisr", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: "min.insync.replicas", value: "2" }] },
        { name: "small", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: "max.message.bytes", value: "200" }] }
      ],
      timeoutMs: 5000,
      validateOnly: false
    })
    expect(r!.topics.map((t) => t.errorCode)).toEqual([0, 0, 0])
  })
  afterAll(async () => {
    await broker.close()
  })

  const produce = (topic: string, acks: number, value: Buffer) =>
    broker
      .request(0, 9, {
        acks,
        timeoutMs: 5000,
        topicData: [{ name: topic, partitionData: [{ index: 0, records: encodeBatch({ baseTimestamp: 1000n, records: [{ key: null, value }] }) }] }]
      })
      .then((r) => r!.responses[0]!.partitionResponses[0]!)

  it("stamps LogAppendTime on the batch, with a valid CRC, and reports it", async () => {
    const before = Date.now()
    const r = await produce("appendtime", -1, Buffer.from("x"))
    expect(r.errorCode).toBe(0)
    expect(Number(r.logAppendTimeMs)).toBeGreaterThanOrEqual(before)
    const f = await broker.request(1, 12, {
      maxWaitMs: 0,
      minBytes: 1,
      topics: [{ topic: "appendtime", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
    })
    const batch = f!.responses[0]!.partitions[0]!.records!
    const h = validateBatch(batch, 0, { origin: "log" })
    expect(h.timestampType).toBe(1)
    expect(h.maxTimestamp).toBe(r.logAppendTimeMs)
    expect(readBatchHeader(batch).baseTimestamp).toBe(1000n)
  })

  it("refuses acks=all when min.insync.replicas exceeds the in-sync replicas, but not acks=1", async () => {
    expect((await produce("minisr", -1, Buffer.from("x"))).errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS)
    expect((await produce("minisr", 1, Buffer.from("x"))).errorCode).toBe(0)
  })

  it("refuses a batch larger than max.message.bytes", async () => {
    expect((await produce("small", -1, Buffer.alloc(10))).errorCode).toBe(0)
    expect((await produce("small", -1, Buffer.alloc(500))).errorCode).toBe(ErrorCode.MESSAGE_TOO_LARGE)
  })
})
