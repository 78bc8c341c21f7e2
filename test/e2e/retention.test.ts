/**
 * Retention by size runs in the background, deletes whole old segments and
 * moves the log start offset; reads below it get OFFSET_OUT_OF_RANGE.
 */
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { encodeBatch } from "../../src/protocol/recordBatch.js"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { connectRaw } from "../support/rawClient.js"

describe("retention (real process)", () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    broker = await startBroker({
      args: ["--log-segment-bytes", "4096", "--log-retention-bytes", "16384", "--log-retention-check-interval-ms", "200"]
    })
  })
  afterAll(async () => {
    await broker.cleanup()
  })

  it("deletes old segments and moves the log start offset", async () => {
    const client = await connectRaw(broker.port)
    await client.request(3, 12, { topics: [{ name: "retained" }], allowAutoTopicCreation: true })
    const value = Buffer.alloc(1000, 0x61)
    for (let i = 0; i < 100; i++) {
      const r = await client.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "retained", partitionData: [{ index: 0, records: encodeBatch({ records: [{ key: null, value }] }) }] }]
      })
      expect(r.responses[0]!.partitionResponses[0]!.errorCode).toBe(0)
    }
    const earliest = async () =>
      (await client.request(2, 7, {
        replicaId: -1,
        topics: [{ name: "retained", partitions: [{ partitionIndex: 0, timestamp: -2n }] }]
      })).topics[0]!.partitions[0]!.offset
    const dir = readdirSync(broker.dataDir).find((d) => d.startsWith("retained"))!
    const segments = () => readdirSync(join(broker.dataDir, dir)).filter((f) => f.endsWith(".log")).length
    // 100 KB written in 4 KiB segments; a retention pass after the last write keeps ~16 KiB plus the active segment.
    const deadline = Date.now() + 15_000
    while (segments() >= 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
    expect(segments()).toBeLessThan(10)
    const start = await earliest()
    expect(start).toBeGreaterThan(50n)
    const fetch = await client.request(1, 11, {
      maxWaitMs: 0,
      minBytes: 1,
      topics: [{ topic: "retained", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
    })
    expect(fetch.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE)
    expect(fetch.responses[0]!.partitions[0]!.logStartOffset).toBe(start)
    const latest = (await client.request(2, 7, {
      replicaId: -1,
      topics: [{ name: "retained", partitions: [{ partitionIndex: 0, timestamp: -1n }] }]
    })).topics[0]!.partitions[0]!.offset
    expect(latest).toBe(100n)
    client.close()
  })
})
