/**
 * Disk full or I/O errors: produce gets KAFKA_STORAGE_ERROR, the broker keeps
 * serving, and everything acknowledged before stays readable.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { decodeRecords, encodeBatch, splitBatches } from "../../src/protocol/recordBatch.js"
import { type FaultPlan, instrument, nodeFileIO } from "../../src/storage/FileIO.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"

describe("storage faults", () => {
  let broker: InProcessBroker
  const faults = instrument(nodeFileIO, {})
  const plan: FaultPlan = faults.plan
  beforeAll(async () => {
    broker = await startInProcessBroker({}, undefined, { fileIO: faults.io })
    await broker.request(3, 12, { topics: [{ name: "disk" }], allowAutoTopicCreation: true })
  })
  afterAll(async () => {
    plan.write = undefined
    await broker.close()
  })

  const produce = (value: string) =>
    broker
      .request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "disk", partitionData: [{ index: 0, records: encodeBatch({ records: [{ key: null, value: Buffer.from(value) }] }) }] }]
      })
      .then((r) => r!.responses[0]!.partitionResponses[0]!)

  it("answers KAFKA_STORAGE_ERROR on ENOSPC and recovers when space returns", async () => {
    expect(await produce("before")).toMatchObject({ errorCode: 0, baseOffset: 0n })
    plan.write = (file) => (file.includes("disk-0") ? { code: "ENOSPC", partial: 7 } : undefined)
    const failed = await produce("during")
    expect(failed.errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR)
    // Still serving other requests.
    const md = await broker.request(3, 12, { topics: [{ name: "disk" }], allowAutoTopicCreation: false })
    expect(md!.topics[0]!.errorCode).toBe(0)
    plan.write = undefined
    expect(await produce("after")).toMatchObject({ errorCode: 0, baseOffset: 1n })
    const f = await broker.request(1, 12, {
      maxWaitMs: 0,
      minBytes: 1,
      topics: [{ topic: "disk", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
    })
    const values = splitBatches(f!.responses[0]!.partitions[0]!.records!).batches.flatMap((b) =>
      decodeRecords(b).map((r) => [r.offset, r.value!.toString()])
    )
    expect(values).toEqual([
      [0n, "before"],
      [1n, "after"]
    ])
  })
})

describe("storage faults with segment writes on the libuv pool (--wal-async-writes)", () => {
  const faults = instrument(nodeFileIO, {})
  const plan: FaultPlan = faults.plan
  const dataDir = mkdtempSync(join(tmpdir(), "chronik-async-faults-"))
  let broker: InProcessBroker
  beforeAll(async () => {
    broker = await startInProcessBroker({ walAsyncWrites: true }, dataDir, { fileIO: faults.io })
    for (const name of ["pool", "other"]) {
      await broker.request(3, 12, { topics: [{ name }], allowAutoTopicCreation: true })
    }
  })
  afterAll(async () => {
    plan.write = undefined
    await broker.close()
  })

  const produce = (topic: string, value: string, acks: number) =>
    broker.request(0, 9, {
      acks,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: 0, records: encodeBatch({ records: [{ key: null, value: Buffer.from(value) }] }) }] }]
    })
  const outcome = (r: Awaited<ReturnType<typeof produce>>) => r!.responses[0]!.partitionResponses[0]!
  const read = async (b: InProcessBroker, topic: string) => {
    const f = await b.request(1, 12, {
      maxWaitMs: 0,
      minBytes: 1,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
    })
    const records = f!.responses[0]!.partitions[0]!.records
    if (records === null) return []
    return splitBatches(records).batches.flatMap((b) => decodeRecords(b).map((r) => [r.offset, r.value!.toString()]))
  }

  it("a write that fails on the pool answers acks=1 with KAFKA_STORAGE_ERROR; the partition stays offline, others serve; a restart recovers", async () => {
    expect(outcome(await produce("pool", "one", 1))).toMatchObject({ errorCode: 0, baseOffset: 0n })
    expect(outcome(await produce("pool", "two", -1))).toMatchObject({ errorCode: 0, baseOffset: 1n })
    plan.write = (file) => (file.includes("pool-0") && file.endsWith(".log") ? { code: "ENOSPC", partial: 9 } : undefined)
    expect(outcome(await produce("pool", "lost", 1))).toMatchObject({ errorCode: ErrorCode.KAFKA_STORAGE_ERROR, baseOffset: -1n })
    plan.write = undefined
    // as in Kafka, a log whose write failed stays offline until the broker restarts
    expect(outcome(await produce("pool", "after", 1)).errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR)
    expect(outcome(await produce("other", "fine", 1))).toMatchObject({ errorCode: 0, baseOffset: 0n })
    // acks=0 gets no response; its failed write closes the connection so the client refreshes metadata
    expect(await produce("pool", "zero", 0)).toBeNull()
    expect(broker.closedConnections.at(-1)).toMatch(/acks=0 failed/)

    await broker.close(true)
    broker = await startInProcessBroker({ walAsyncWrites: true }, dataDir, { fileIO: faults.io })
    expect(await read(broker, "pool")).toEqual([
      [0n, "one"],
      [1n, "two"]
    ])
    expect(outcome(await produce("pool", "three", 1))).toMatchObject({ errorCode: 0, baseOffset: 2n })
    expect(outcome(await produce("pool", "four", -1))).toMatchObject({ errorCode: 0, baseOffset: 3n })
    expect(await read(broker, "other")).toEqual([[0n, "fine"]])
  })
})
