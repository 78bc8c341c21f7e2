/**
 * ListOffsets MAX_TIMESTAMP (-3) answered from per-segment maxima equals a
 * brute-force answer over the produced batches: across many small segments,
 * after DeleteRecords moved the log start into a segment, after a restart,
 * and (replica level) excluding batches above the high watermark.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { smallSegmentTopicConfig } from "../support/topicConfig.js"
import { encodeBatch } from "../../src/protocol/recordBatch.js"
import { partitionLogFromSegmentedLog } from "../../src/replication/ReplicaManager.js"
import { nodeFileIO } from "../../src/storage/FileIO.js"
import { open as openSegmentedLog } from "../../src/storage/SegmentedLog.js"
import { FsyncPolicy, WalSync } from "../../src/storage/WalSync.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"
import { openTestReplica } from "../support/partitionGroup.js"

const t0 = Date.now() - 3_600_000

/** A batch of `count` records whose largest timestamp is t0 + maxTs (at record `at`). */
const batchWithMax = (count: number, maxTs: number, at: number) =>
  encodeBatch({
    records: Array.from({ length: count }, (_, i) => ({
      key: null,
      value: Buffer.alloc(300, i),
      timestamp: BigInt(t0 + (i === at ? maxTs : Math.min(maxTs, i)))
    }))
  })

interface Sent {
  readonly base: bigint
  readonly last: bigint
  readonly maxTs: number
}

/** The first batch with the largest max timestamp among those with start <= last < end. */
const bruteForce = (sent: ReadonlyArray<Sent>, start: bigint, end: bigint) => {
  let best: Sent | undefined
  for (const s of sent) {
    if (s.last < start || s.last >= end) continue
    if (best === undefined || s.maxTs > best.maxTs) best = s
  }
  return best === undefined
    ? { offset: -1n, timestamp: -1n }
    : { offset: best.last, timestamp: BigInt(t0 + best.maxTs) }
}

// deterministic pseudo-random max timestamps with ties
const maxes = Array.from({ length: 90 }, (_, i) => (i * 7919) % 23 === 0 ? 500 : ((i * 104729) % 37) * 10)

describe("ListOffsets MAX_TIMESTAMP over many segments", () => {
  let broker: InProcessBroker
  const sent: Array<Sent> = []
  beforeAll(async () => {
    broker = await startInProcessBroker({ logSegmentBytes: 4096 })
    await broker.request(3, 12, { topics: [{ name: "maxts" }], allowAutoTopicCreation: true })
    for (let i = 0; i < maxes.length; i++) {
      const count = 1 + (i % 3)
      const r = await broker.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "maxts", partitionData: [{ index: 0, records: batchWithMax(count, maxes[i]!, i % count) }] }]
      })
      const p = r!.responses[0]!.partitionResponses[0]!
      expect(p.errorCode).toBe(0)
      sent.push({ base: p.baseOffset, last: p.baseOffset + BigInt(count - 1), maxTs: maxes[i]! })
    }
    expect(fs.readdirSync(path.join(broker.dataDir, "maxts-0")).filter((f) => f.endsWith(".log")).length).toBeGreaterThan(8)
  })
  afterAll(async () => {
    await broker.close()
  })

  const listMax = () =>
    broker
      .request(2, 7, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [{ name: "maxts", partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -3n }] }]
      })
      .then((r) => r!.topics[0]!.partitions[0]!)

  const end = () => sent[sent.length - 1]!.last + 1n

  it("equals the brute force over the whole log, after DeleteRecords and after a restart", async () => {
    expect(await listMax()).toMatchObject({ errorCode: 0, ...bruteForce(sent, 0n, end()) })
    let start = 0n
    // the log start moves to the best batch's last offset (it still counts), then past it, twice
    for (const step of [0n, 1n, 1n]) {
      const target = bruteForce(sent, start, end()).offset + step
      const r = await broker.request(21, 2, { topics: [{ name: "maxts", partitions: [{ partitionIndex: 0, offset: target }] }], timeoutMs: 1000 })
      expect(r!.topics[0]!.partitions[0]!.errorCode).toBe(0)
      start = target
      expect(await listMax()).toMatchObject({ errorCode: 0, ...bruteForce(sent, start, end()) })
    }
    const dir = broker.dataDir
    await broker.close(true)
    broker = await startInProcessBroker({ logSegmentBytes: 4096 }, dir)
    expect(await listMax()).toMatchObject({ errorCode: 0, ...bruteForce(sent, start, end()) })
    // everything deleted: no answer
    await broker.request(21, 2, { topics: [{ name: "maxts", partitions: [{ partitionIndex: 0, offset: -1n }] }], timeoutMs: 1000 })
    expect(await listMax()).toMatchObject({ errorCode: 0, offset: -1n, timestamp: -1n })
  })
})

describe("PartitionReplica.maxTimestamp and the high watermark", () => {
  const config = smallSegmentTopicConfig

  it("ignores batches at or above the high watermark", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chronik-maxts-"))
    const sync = new WalSync(nodeFileIO, FsyncPolicy.batch)
    try {
      const log = await Effect.runPromise(
        openSegmentedLog({ io: nodeFileIO, sync, id: "m-0", dir, config: { segmentBytes: 2048, indexIntervalBytes: 256, memoryTierBytes: 0 } })
      )
      // durability is held back after `held` turns true: nothing commits after that, the high watermark stops
      let held = false
      const heldBack: Array<() => void> = []
      const base = partitionLogFromSegmentedLog(log)
      const group = await openTestReplica({
        topic: "m",
        log: {
          ...base,
          raft: { ...base.raft, onSynced: (done) => (held ? heldBack.push(() => base.raft.onSynced(done)) : base.raft.onSynced(done)) }
        },
        config: () => config
      })
      const replica = group.replica
      const sent: Array<Sent> = []
      const append = async (count: number, maxTs: number) => {
        const r = await Effect.runPromise(replica.append(batchWithMax(count, maxTs, count - 1), held ? 1 : -1))
        sent.push({ base: r.baseOffset, last: r.baseOffset + BigInt(count - 1), maxTs })
      }
      for (let i = 0; i < 30; i++) await append(1 + (i % 4), maxes[i]!)
      held = true
      for (let i = 0; i < 12; i++) await append(2, 10_000 + i)
      const hw = replica.highWatermark
      expect(hw).toBe(sent[29]!.last + 1n)
      expect(replica.logEndOffset).toBeGreaterThan(hw)
      const got = await Effect.runPromise(replica.maxTimestamp())
      const want = bruteForce(sent, 0n, hw)
      expect(got).toEqual({ offset: want.offset, timestamp: want.timestamp, leaderEpoch: replica.leaderEpoch })
      // log start inside the segment holding the best batch
      await Effect.runPromise(replica.deleteRecordsBefore(want.offset + 1n))
      const want2 = bruteForce(sent, want.offset + 1n, hw)
      expect(await Effect.runPromise(replica.maxTimestamp())).toEqual({
        offset: want2.offset,
        timestamp: want2.timestamp,
        leaderEpoch: replica.leaderEpoch
      })
      held = false
      for (const release of heldBack) release()
      await group.close()
      await Effect.runPromise(log.close)
    } finally {
      sync.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
