import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { encodeBatch } from "../../src/protocol/recordBatch.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"

const batchAt = (timestamp: number, count: number) =>
  encodeBatch({
    baseOffset: 0n,
    compression: 0,
    baseTimestamp: BigInt(timestamp),
    records: Array.from({ length: count }, (_, i) => ({
      offsetDelta: i,
      timestamp: BigInt(timestamp + i),
      key: null,
      value: Buffer.from(`v${i}`),
      headers: []
    }))
  })

describe("ListOffsets, OffsetForLeaderEpoch and InitProducerId", () => {
  let broker: InProcessBroker
  const t0 = Date.now() - 60_000
  beforeAll(async () => {
    broker = await startInProcessBroker()
    await broker.request(3, 12, { topics: [{ name: "times" }], allowAutoTopicCreation: true })
    for (const [ts, n] of [[t0, 3], [t0 + 10_000, 2], [t0 + 5_000, 4]] as const) {
      const r = await broker.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "times", partitionData: [{ index: 0, records: batchAt(ts, n) }] }]
      })
      expect(r!.responses[0]!.partitionResponses[0]!.errorCode).toBe(0)
    }
  })
  afterAll(async () => {
    await broker.close()
  })

  const list = (timestamp: bigint, version = 7, currentLeaderEpoch = -1) =>
    broker
      .request(2, version, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [{ name: "times", partitions: [{ partitionIndex: 0, currentLeaderEpoch, timestamp }] }]
      })
      .then((r) => r!.topics[0]!.partitions[0]!)

  it("answers earliest, latest, by timestamp and max timestamp", async () => {
    expect(await list(-2n)).toMatchObject({ errorCode: 0, offset: 0n })
    // the leader epoch is the term of the partition's Raft group: 1 after its first election
    expect(await list(-1n)).toMatchObject({ errorCode: 0, offset: 9n, leaderEpoch: 1 })
    // The first batch whose max timestamp >= t0+5000 is the second one (offsets 3-4, max t0+10001).
    expect(await list(BigInt(t0 + 5_000))).toMatchObject({ errorCode: 0, offset: 3n })
    expect(await list(BigInt(t0 + 10_001))).toMatchObject({ errorCode: 0, offset: 3n })
    expect(await list(BigInt(t0 + 99_999))).toMatchObject({ errorCode: 0, offset: -1n, timestamp: -1n })
    expect(await list(-3n)).toMatchObject({ errorCode: 0, timestamp: BigInt(t0 + 10_001), offset: 4n })
    expect(await list(-1n, 1)).toMatchObject({ errorCode: 0, offset: 9n })
  })

  it("fences a stale leader epoch and reports an unknown newer one", async () => {
    expect((await list(-1n, 7, 5)).errorCode).toBe(ErrorCode.UNKNOWN_LEADER_EPOCH)
    expect((await list(-1n, 7, 1)).errorCode).toBe(ErrorCode.NONE)
    expect((await list(-1n, 7, 0)).errorCode).toBe(ErrorCode.FENCED_LEADER_EPOCH)
  })

  it("gives the end offset of a leader epoch", async () => {
    const r = await broker.request(23, 4, {
      replicaId: -1,
      topics: [
        { topic: "times", partitions: [{ partition: 0, currentLeaderEpoch: 1, leaderEpoch: 1 }, { partition: 3, currentLeaderEpoch: -1, leaderEpoch: 0 }] }
      ]
    })
    expect(r!.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, leaderEpoch: 1, endOffset: 9n })
    expect(r!.topics[0]!.partitions[1]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
  })

  it("hands out distinct producer ids that survive a restart, and refuses transactional ids", async () => {
    const a = await broker.request(22, 4, { transactionalId: null, transactionTimeoutMs: 60_000 })
    const b = await broker.request(22, 0, { transactionalId: null, transactionTimeoutMs: 60_000 })
    expect(a!.errorCode).toBe(0)
    expect(b!.producerId).toBeGreaterThan(a!.producerId)
    const txn = await broker.request(22, 4, { transactionalId: "tx", transactionTimeoutMs: 60_000 })
    expect(txn!.errorCode).toBe(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    const dir = broker.dataDir
    await broker.close(true)
    broker = await startInProcessBroker({}, dir)
    const c = await broker.request(22, 4, { transactionalId: null, transactionTimeoutMs: 60_000 })
    expect(c!.producerId).toBeGreaterThan(b!.producerId)
    // Data and offsets survived the restart too.
    expect(await list(-1n)).toMatchObject({ errorCode: 0, offset: 9n })
  })
})
