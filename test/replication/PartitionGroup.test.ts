/**
 * Every partition is a Raft group with this node as its only voter, and the
 * partition log is the group's Raft log (docs/partition-raft.md):
 * - the groups exist, lead, and commit what is produced; the leader epoch
 *   clients see is the group's term, and it grows with every restart;
 * - the log holds each Raft entry once, with dense Raft indexes: a no-op at
 *   the start of every term (no Kafka offset) and one frame per batch whose
 *   keys are its offsets; Fetch never returns the no-ops;
 * - acks=1 is answered at the leader's write, acks=all (and the high
 *   watermark) only once the group commits, i.e. after the log's sync.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { encodeBatch, decodeRecords, readBatchHeader } from "../../src/protocol/recordBatch.js"
import { EntryTypeCode } from "../../src/raft/core/types.js"
import { partitionGroupId, partitionLogFromSegmentedLog, RAFT_STATE_FILE } from "../../src/replication/ReplicaManager.js"
import { instrument, nodeFileIO } from "../../src/storage/FileIO.js"
import { encodeLogId } from "../../src/storage/LogStore.js"
import { open as openSegmentedLog, type SegmentedLog } from "../../src/storage/SegmentedLog.js"
import { FsyncPolicy, WalSync } from "../../src/storage/WalSync.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"
import { openTestReplica } from "../support/partitionGroup.js"
import { smallSegmentTopicConfig } from "../support/topicConfig.js"

const batch = (values: ReadonlyArray<string>) =>
  encodeBatch({ records: values.map((v, i) => ({ key: null, value: Buffer.from(v), timestamp: BigInt(Date.now() + i) })) })

const dirs: Array<string> = []
const brokers: Array<InProcessBroker> = []
afterEach(async () => {
  while (brokers.length) await brokers.pop()!.close(true)
  while (dirs.length) fs.rmSync(dirs.pop()!, { recursive: true, force: true })
})
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "chronik-pgroup-"))
  dirs.push(d)
  return d
}

const start = async (
  dataDir: string,
  fileIO?: Parameters<typeof startInProcessBroker>[2],
  overrides: Parameters<typeof startInProcessBroker>[0] = {}
) => {
  const b = await startInProcessBroker(overrides, dataDir, fileIO)
  brokers.push(b)
  return b
}

const stop = async (b: InProcessBroker) => {
  brokers.splice(brokers.indexOf(b), 1)
  await b.close(true)
}

const produce = (b: InProcessBroker, topic: string, partition: number, values: ReadonlyArray<string>, acks = -1) =>
  b
    .request(0, 9, { acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: partition, records: batch(values) }] }] })
    .then((r) => r!.responses[0]!.partitionResponses[0]!)

const fetchAll = async (b: InProcessBroker, topic: string, partition: number) => {
  const f = await b.request(1, 12, {
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1 << 20,
    topics: [{ topic, partitions: [{ partition, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
  })
  const p = f!.responses[0]!.partitions[0]!
  expect(p.errorCode).toBe(0)
  const out: Array<{ offset: bigint; value: string; epoch: number }> = []
  const blob = p.records ?? Buffer.alloc(0)
  let pos = 0
  while (pos < blob.length) {
    const len = blob.readInt32BE(pos + 8) + 12
    const one = blob.subarray(pos, pos + len)
    const epoch = readBatchHeader(one, 0).partitionLeaderEpoch
    for (const r of decodeRecords(one)) out.push({ offset: r.offset, value: r.value!.toString(), epoch })
    pos += len
  }
  return { records: out, highWatermark: p.highWatermark }
}

/** Every frame of a partition's log, by Raft index (opened after the broker closed). */
const framesOf = async (dataDir: string, logId: string) => {
  const sync = new WalSync(nodeFileIO, FsyncPolicy.batch)
  const log: SegmentedLog = await Effect.runPromise(
    openSegmentedLog({ io: nodeFileIO, sync, id: logId, dir: path.join(dataDir, encodeLogId(logId)), config: {} })
  )
  try {
    return log.core.entriesFromIndex(1, Number.MAX_SAFE_INTEGER).map((e) => ({
      index: e.index,
      term: e.term,
      type: e.type,
      firstKey: e.firstKey,
      lastKey: e.lastKey
    }))
  } finally {
    await Effect.runPromise(log.close)
    sync.close()
  }
}

describe("partitions as one-voter Raft groups (standalone)", () => {
  it("each partition leads its own group, commits what is produced, and the leader epoch is the group's term", async () => {
    const dataDir = tmp()
    const b = await start(dataDir)
    const created = await b.request(19, 7, {
      topics: [{ name: "rg", numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 5000
    })
    expect(created!.topics[0]!.errorCode).toBe(0)
    for (let p = 0; p < 3; p++) {
      expect(await produce(b, "rg", p, [`a${p}`, `b${p}`])).toMatchObject({ errorCode: 0, baseOffset: 0n })
      expect(await produce(b, "rg", p, [`c${p}`], 1)).toMatchObject({ errorCode: 0, baseOffset: 2n })
      expect(await produce(b, "rg", p, [`d${p}`])).toMatchObject({ errorCode: 0, baseOffset: 3n })
    }
    const groups = (await b.raftGroups()).filter((g) => g.group.startsWith("kafka/rg/"))
    expect(groups.map((g) => g.group).sort()).toEqual([0, 1, 2].map((p) => partitionGroupId("rg", p)))
    for (const g of groups) {
      expect(g.role).toBe("Leader")
      expect(g.leader).toBe(b.nodeId)
      expect(g.confState.voters).toEqual([b.nodeId])
      expect(g.term).toBe(1)
      // the no-op of term 1 and three batches, all committed and applied
      expect(g.lastIndex).toBe(4)
      expect(g.commitIndex).toBe(4)
      expect(g.appliedIndex).toBe(4)
    }
    const md = await b.request(3, 12, { topics: [{ name: "rg" }] })
    for (const p of md!.topics[0]!.partitions) expect(p.leaderEpoch).toBe(1)
    const f = await fetchAll(b, "rg", 1)
    expect(f.highWatermark).toBe(4n)
    expect(f.records.map((r) => [r.offset, r.value, r.epoch])).toEqual([
      [0n, "a1", 1],
      [1n, "b1", 1],
      [2n, "c1", 1],
      [3n, "d1", 1]
    ])
    expect(fs.existsSync(path.join(dataDir, encodeLogId("rg-1"), RAFT_STATE_FILE))).toBe(true)
  })

  it("a restart starts a new term: a no-op without an offset, then the new batches, in one dense Raft log", async () => {
    const dataDir = tmp()
    let b = await start(dataDir)
    await b.request(3, 12, { topics: [{ name: "rr" }], allowAutoTopicCreation: true })
    expect((await produce(b, "rr", 0, ["x", "y"])).errorCode).toBe(0)
    await stop(b)
    b = await start(dataDir)
    const md = await b.request(3, 12, { topics: [{ name: "rr" }] })
    expect(md!.topics[0]!.partitions[0]!.leaderEpoch).toBe(2)
    // everything recovered is committed at once
    const before = await fetchAll(b, "rr", 0)
    expect(before.highWatermark).toBe(2n)
    expect(await produce(b, "rr", 0, ["z"], 1)).toMatchObject({ errorCode: 0, baseOffset: 2n })
    expect(await produce(b, "rr", 0, ["w"])).toMatchObject({ errorCode: 0, baseOffset: 3n })
    const after = await fetchAll(b, "rr", 0)
    expect(after.records.map((r) => [r.offset, r.value, r.epoch])).toEqual([
      [0n, "x", 1],
      [1n, "y", 1],
      [2n, "z", 2],
      [3n, "w", 2]
    ])
    // OffsetForLeaderEpoch: epoch 1 ended where epoch 2 began
    const ofe = await b.request(23, 4, {
      replicaId: -1,
      topics: [{ topic: "rr", partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 1 }] }]
    })
    expect(ofe!.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, leaderEpoch: 1, endOffset: 2n })
    await stop(b)

    const noop = EntryTypeCode.Noop
    expect(await framesOf(dataDir, "rr-0")).toEqual([
      { index: 1, term: 1, type: noop, firstKey: 0, lastKey: -1 },
      { index: 2, term: 1, type: 0, firstKey: 0, lastKey: 1 },
      { index: 3, term: 2, type: noop, firstKey: 2, lastKey: 1 },
      { index: 4, term: 2, type: 0, firstKey: 2, lastKey: 2 },
      { index: 5, term: 2, type: 0, firstKey: 3, lastKey: 3 }
    ])
  })

  it("acks=1 is answered at the leader's write; acks=all and the high watermark wait for the sync", async () => {
    const dir = tmp()
    const sync = new WalSync(nodeFileIO, FsyncPolicy.batch)
    const log = await Effect.runPromise(
      openSegmentedLog({ io: nodeFileIO, sync, id: "h-0", dir, config: { segmentBytes: 1 << 20, indexIntervalBytes: 256, memoryTierBytes: 0 } })
    )
    let held = false
    const heldBack: Array<() => void> = []
    const base = partitionLogFromSegmentedLog(log)
    const group = await openTestReplica({
      topic: "h",
      log: {
        ...base,
        raft: { ...base.raft, onSynced: (done) => (held ? heldBack.push(() => base.raft.onSynced(done)) : base.raft.onSynced(done)) }
      },
      config: () => smallSegmentTopicConfig
    })
    const r = group.replica
    try {
      await Effect.runPromise(r.append(batch(["a"]), -1))
      expect(r.highWatermark).toBe(1n)
      held = true
      const one = await Effect.runPromise(r.append(batch(["b", "c"]), 1))
      expect(one.baseOffset).toBe(1n)
      let allDone = false
      const all = Effect.runPromise(r.append(batch(["d"]), -1)).then((res) => {
        allDone = true
        return res
      })
      await new Promise((res) => setTimeout(res, 100))
      expect(allDone).toBe(false)
      expect(r.logEndOffset).toBe(4n)
      expect(r.highWatermark).toBe(1n)
      const fetched = await Effect.runPromise(r.read(0n, 1 << 20, true))
      expect(fetched.records.length).toBe(1)
      held = false
      for (const release of heldBack.splice(0)) release()
      expect((await all).baseOffset).toBe(3n)
      expect(r.highWatermark).toBe(4n)
    } finally {
      held = false
      for (const release of heldBack.splice(0)) release()
      await group.close()
      await Effect.runPromise(log.close)
      sync.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("with a background sync delay, acks=1 records are committed at the delayed sync; an acks=all produce syncs at once and commits them too", async () => {
    const b = await start(tmp(), undefined, { walBackgroundSyncMs: 1000 })
    const created = await b.request(19, 7, {
      topics: [{ name: "bg", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 5000
    })
    expect(created!.topics[0]!.errorCode).toBe(0)
    expect(await produce(b, "bg", 0, ["a", "b"], 1)).toMatchObject({ errorCode: 0, baseOffset: 0n })
    // written and answered, not yet synced: not committed, not visible
    await new Promise((res) => setTimeout(res, 100))
    expect((await fetchAll(b, "bg", 0)).highWatermark).toBe(0n)
    // acks=all does not wait for the background delay, and its commit covers the acks=1 records
    const t0 = Date.now()
    expect(await produce(b, "bg", 0, ["c"])).toMatchObject({ errorCode: 0, baseOffset: 2n })
    expect(Date.now() - t0).toBeLessThan(900)
    const f = await fetchAll(b, "bg", 0)
    expect(f.highWatermark).toBe(3n)
    expect(f.records.map((r) => r.value)).toEqual(["a", "b", "c"])
    // with nobody waiting, the background sync commits acks=1 records after the delay
    expect(await produce(b, "bg", 0, ["d"], 1)).toMatchObject({ errorCode: 0, baseOffset: 3n })
    const deadline = Date.now() + 10_000
    while ((await fetchAll(b, "bg", 0)).highWatermark < 4n && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50))
    }
    expect((await fetchAll(b, "bg", 0)).records.map((r) => r.value)).toEqual(["a", "b", "c", "d"])
  })

  it("without the node journal, a failed sync stops that partition's group only: KAFKA_STORAGE_ERROR there, the others go on, a restart recovers it", async () => {
    const dataDir = tmp()
    const faults = instrument(nodeFileIO, {})
    // every pass fdatasyncs the partition's own segment (with the journal, see the next test)
    const noJournal = { walJournalFileBytes: 0 }
    let b = await start(dataDir, { fileIO: faults.io }, noJournal)
    await b.request(19, 7, {
      topics: [{ name: "ff", numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 5000
    })
    expect((await produce(b, "ff", 0, ["a"])).errorCode).toBe(0)
    expect((await produce(b, "ff", 1, ["b"])).errorCode).toBe(0)
    faults.plan.fdatasync = (file) => (file.includes(`${path.sep}ff-0${path.sep}`) ? "EIO" : undefined)
    expect((await produce(b, "ff", 0, ["lost"])).errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR)
    faults.plan.fdatasync = undefined
    // the group of ff-0 stopped (when the engine's persist saw the failed sync): its log cannot be
    // trusted until a restart
    const running = async () => (await b.raftGroups()).map((g) => g.group)
    for (let i = 0; i < 100 && (await running()).includes(partitionGroupId("ff", 0)); i++) {
      await new Promise((res) => setTimeout(res, 20))
    }
    expect(await running()).not.toContain(partitionGroupId("ff", 0))
    expect(await running()).toContain(partitionGroupId("ff", 1))
    expect((await produce(b, "ff", 0, ["later"])).errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR)
    // the other partition is unaffected
    expect(await produce(b, "ff", 1, ["c"])).toMatchObject({ errorCode: 0, baseOffset: 1n })
    expect((await fetchAll(b, "ff", 1)).records.map((r) => r.value)).toEqual(["b", "c"])
    // acknowledged data of the failed partition is still readable
    expect((await fetchAll(b, "ff", 0)).records.map((r) => r.value)).toEqual(["a"])
    await stop(b)
    b = await start(dataDir, undefined, noJournal)
    const r = await produce(b, "ff", 0, ["again"])
    expect(r.errorCode).toBe(0)
    const values = (await fetchAll(b, "ff", 0)).records.map((x) => x.value)
    // "lost" was never acknowledged: whether its write survived the failed sync is not promised
    expect(values[0]).toBe("a")
    expect(values.at(-1)).toBe("again")
    expect(values.length).toBeLessThanOrEqual(3)
  })
})
