/**
 * Produce acknowledgements against a disk whose fdatasync is held back:
 * acks=1 answers once the batch is written, acks=all only once it is durable
 * (or REQUEST_TIMED_OUT after the request's timeoutMs), and consumers only see
 * batches below the high watermark, which follows durability.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { encodeBatch } from "../../src/protocol/recordBatch.js"
import { type FileIO, nodeFileIO } from "../../src/storage/FileIO.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"
import { waitFor } from "../support/wait.js"

/** node:fs, except that fdatasync waits while `held` is true. */
const gatedSync = () => {
  let held = false
  let waiting: Array<() => void> = []
  const io: FileIO = {
    ...nodeFileIO,
    fdatasync: (fd) =>
      held
        ? new Promise<void>((resolve, reject) => {
          waiting.push(() => nodeFileIO.fdatasync(fd).then(resolve, reject))
        })
        : nodeFileIO.fdatasync(fd)
  }
  return {
    io,
    hold: () => {
      held = true
    },
    release: () => {
      held = false
      const w = waiting
      waiting = []
      for (const f of w) f()
    }
  }
}

describe("produce acks against a slow disk", () => {
  let broker: InProcessBroker
  const disk = gatedSync()
  beforeAll(async () => {
    broker = await startInProcessBroker({ numPartitions: 2 }, undefined, { fileIO: disk.io })
    await broker.request(3, 12, { topics: [{ name: "acks" }], allowAutoTopicCreation: true })
  })
  afterAll(async () => {
    disk.release()
    await broker.close()
  })

  const produce = (acks: number, timeoutMs: number, partitions: ReadonlyArray<number>, value: string) =>
    broker
      .request(0, 9, {
        acks,
        timeoutMs,
        topicData: [
          {
            name: "acks",
            partitionData: partitions.map((index) => ({
              index,
              records: encodeBatch({ records: [{ key: null, value: Buffer.from(value) }] })
            }))
          }
        ]
      })
      .then((r) => r!.responses[0]!.partitionResponses)

  const highWatermark = async (partition: number) => {
    const f = await broker.request(1, 12, {
      maxWaitMs: 0,
      minBytes: 1,
      topics: [{ topic: "acks", partitions: [{ partition, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
    })
    return f!.responses[0]!.partitions[0]!.highWatermark
  }

  it("acks=all times out per partition while the disk does not sync; acks=1 still answers", async () => {
    expect(await produce(-1, 5000, [0, 1], "durable")).toMatchObject([
      { index: 0, errorCode: 0, baseOffset: 0n },
      { index: 1, errorCode: 0, baseOffset: 0n }
    ])
    disk.hold()
    const started = Date.now()
    const timedOut = await produce(-1, 300, [0, 1, 7], "held")
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    expect(timedOut).toMatchObject([
      { index: 0, errorCode: ErrorCode.REQUEST_TIMED_OUT, baseOffset: -1n },
      { index: 1, errorCode: ErrorCode.REQUEST_TIMED_OUT, baseOffset: -1n },
      { index: 7, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }
    ])
    // acks=1 answers once written; the high watermark waits for durability.
    expect(await produce(1, 300, [0], "leader-only")).toMatchObject([{ index: 0, errorCode: 0, baseOffset: 2n }])
    expect(await highWatermark(0)).toBe(1n)
    disk.release()
    await waitFor(async () => (await highWatermark(0)) === 3n, 5000, "the high watermark to follow the released sync")
    expect(await highWatermark(1)).toBe(2n)
  })

  it("acks=all answers as soon as every partition is durable, before the timeout", async () => {
    disk.hold()
    const pending = produce(-1, 10_000, [0, 1], "later")
    await new Promise((r) => setTimeout(r, 100))
    const started = Date.now()
    disk.release()
    expect(await pending).toMatchObject([
      { index: 0, errorCode: 0, baseOffset: 3n },
      { index: 1, errorCode: 0, baseOffset: 2n }
    ])
    expect(Date.now() - started).toBeLessThan(5000)
  })
})
