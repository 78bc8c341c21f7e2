/**
 * Disk full or I/O errors: produce gets KAFKA_STORAGE_ERROR, the broker keeps
 * serving, and everything acknowledged before stays readable.
 */
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
