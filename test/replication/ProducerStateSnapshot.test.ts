/**
 * Producer-state snapshots (`<offset>.snapshot` next to a partition's
 * segments): a clean restart loads the idempotent producer table and the
 * leader-epoch history from the snapshot instead of scanning the log; a
 * missing, corrupt or out-of-range snapshot falls back to the scan with the
 * same result.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { smallSegmentTopicConfig } from "../support/topicConfig.js"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { encodeBatch, readBatchHeader } from "../../src/protocol/recordBatch.js"
import type { PartitionLog } from "../../src/replication/PartitionLog.js"
import type { PartitionReplica } from "../../src/replication/PartitionReplica.js"
import { decodeSnapshot, encodeSnapshot, parseSnapshotFileName } from "../../src/replication/ProducerSnapshot.js"
import { partitionLogFromSegmentedLog } from "../../src/replication/ReplicaManager.js"
import { type Fd, type FileIO, nodeFileIO } from "../../src/storage/FileIO.js"
import { open as openSegmentedLog, type SegmentedLog } from "../../src/storage/SegmentedLog.js"
import { FsyncPolicy, WalSync } from "../../src/storage/WalSync.js"
import { startInProcessBroker } from "../support/inProcessBroker.js"
import { openTestReplica, type TestReplica } from "../support/partitionGroup.js"

const dirs: Array<string> = []
afterEach(() => {
  while (dirs.length) fs.rmSync(dirs.pop()!, { recursive: true, force: true })
})
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "chronik-pss-"))
  dirs.push(d)
  return d
}

/** node:fs, counting the bytes read from each file. */
const countingIO = () => {
  const paths = new Map<Fd, string>()
  const bytes = new Map<string, number>()
  const io: FileIO = {
    ...nodeFileIO,
    kind: "counting(node)",
    open: (p) => {
      const fd = nodeFileIO.open(p)
      paths.set(fd, p)
      return fd
    },
    close: (fd) => {
      paths.delete(fd)
      nodeFileIO.close(fd)
    },
    read: (fd, into, offset, length, position) => {
      const got = nodeFileIO.read(fd, into, offset, length, position)
      const p = paths.get(fd) ?? "?"
      bytes.set(p, (bytes.get(p) ?? 0) + got)
      return got
    }
  }
  return { io, bytes }
}

/** Total size of the sealed segments of `dir`. */
const sealedSize = (dir: string) => {
  const logs = fs.readdirSync(dir).filter((f) => f.endsWith(".log")).sort()
  let n = 0
  for (const f of logs.slice(0, -1)) n += fs.statSync(path.join(dir, f)).size
  return n
}

/** Bytes read from the sealed segments (every .log but the last) of `dir`. */
const sealedBytesRead = (dir: string, bytes: Map<string, number>) => {
  const logs = fs.readdirSync(dir).filter((f) => f.endsWith(".log")).sort()
  let n = 0
  for (const f of logs.slice(0, -1)) n += bytes.get(path.join(dir, f)) ?? 0
  return { n, sealed: logs.length - 1 }
}

const topicConfig = smallSegmentTopicConfig

const batch = (producerId: bigint, producerEpoch: number, baseSequence: number, count: number, valueBytes = 150) =>
  encodeBatch({
    producerId,
    producerEpoch,
    baseSequence,
    records: Array.from({ length: count }, (_, i) => ({ key: null, value: Buffer.alloc(valueBytes, i), timestamp: BigInt(Date.now() + i) }))
  })

const plain = (count: number) => batch(-1n, -1, -1, count)

const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e)

interface Opened {
  readonly log: SegmentedLog
  readonly sync: WalSync
  readonly close: () => Promise<void>
}

const openLog = async (dir: string, io: FileIO = nodeFileIO, segmentBytes = 2048): Promise<Opened> => {
  const sync = new WalSync(io, FsyncPolicy.batch)
  const log = await run(
    openSegmentedLog({ io, sync, id: "t-0", dir, config: { segmentBytes, indexIntervalBytes: 256, memoryTierBytes: 0 } })
  )
  return {
    log,
    sync,
    close: async () => {
      await run(log.close)
      sync.close()
    }
  }
}

const opened = new Map<PartitionReplica, TestReplica>()

/** The replica with its one-voter group (each open is a new leader term). */
const openReplica = async (log: SegmentedLog, wrap: (l: PartitionLog) => PartitionLog = (l) => l) => {
  const t = await openTestReplica({ log: wrap(partitionLogFromSegmentedLog(log)), config: () => topicConfig })
  opened.set(t.replica, t)
  return t.replica
}

const closeReplica = async (r: PartitionReplica) => {
  const t = opened.get(r)
  opened.delete(r)
  await t?.close()
}

/** Appends a batch straight to the log in leader epoch `term` (as a former leader would have). */
const rawAppend = (log: SegmentedLog, term: number, b: Buffer) => {
  const first = log.core.nextKey
  const h = readBatchHeader(b, 0)
  log.core.append(
    [{ firstKey: first, lastKey: first + h.lastOffsetDelta, term, maxTimestamp: Number(h.maxTimestamp), type: 0, payload: b }],
    Date.now()
  )
}

const tick = () => new Promise((res) => setImmediate(res))

const PIDS = [1n, 2n, 3n, 4n]

/**
 * What restarts must preserve: producer state, the answers for the epochs
 * written before (each open is a new leader term of the partition's group, so
 * the current epoch itself moves), offsets.
 */
const fingerprint = (r: PartitionReplica) => ({
  producers: PIDS.map((p) => r.describeProducer(p) ?? null),
  epochs: [-1, 0, 1, 2, 3, 4, 5, 6].map((e) => r.endOffsetForEpoch(e)),
  start: r.logStartOffset,
  end: r.logEndOffset
})

const snapshotsIn = (dir: string) =>
  fs.readdirSync(dir).map(parseSnapshotFileName).filter((o): o is number => o !== undefined).sort((a, b) => a - b)

/** Reopens with every snapshot removed: the full-scan answer. */
const scanFingerprint = async (dir: string) => {
  for (const o of snapshotsIn(dir)) fs.rmSync(path.join(dir, `${String(o).padStart(20, "0")}.snapshot`))
  const o = await openLog(dir)
  const r = await openReplica(o.log)
  expect(r.recovery.snapshotOffset).toBeUndefined()
  const f = fingerprint(r)
  await closeReplica(r)
  await o.close()
  return f
}

const copyDir = (from: string) => {
  const to = tmp()
  fs.cpSync(from, to, { recursive: true })
  return to
}

/**
 * A partition written by former leaders (epochs 0, 2, 5) and then by the
 * replica (epoch 5): four idempotent producers (one bumps its epoch) and
 * plain batches, across many 2 KiB segments.
 */
const populate = async (dir: string) => {
  const o = await openLog(dir)
  const seq = new Map<bigint, number>()
  const next = (pid: bigint, n: number) => {
    const s = seq.get(pid) ?? 0
    seq.set(pid, s + n)
    return s
  }
  for (const [term, rounds] of [[0, 3], [2, 2], [5, 2]] as const) {
    for (let i = 0; i < rounds; i++) {
      rawAppend(o.log, term, batch(1n, 0, next(1n, 2), 2))
      rawAppend(o.log, term, batch(2n, 3, next(2n, 1), 1))
      rawAppend(o.log, term, plain(2))
    }
  }
  await o.close()
  const o2 = await openLog(dir)
  const r = await openReplica(o2.log)
  // the group's first term follows the former leaders' epoch 5
  expect(r.leaderEpoch).toBe(6)
  const ok = async (b: Buffer) => {
    const out = r.appendNow(b)
    expect(out._tag).toBe("Appended")
    // let the snapshot a roll scheduled be written
    await tick()
    return out
  }
  for (let i = 0; i < 4; i++) {
    await ok(batch(1n, 0, next(1n, 3), 3))
    await ok(batch(3n, 0, next(3n, 2), 2))
    await ok(plain(1))
  }
  // producer 3 bumps its epoch; producer 4 writes once
  seq.set(3n, 0)
  await ok(batch(3n, 1, next(3n, 2), 2))
  const last4 = await ok(batch(4n, 7, next(4n, 4), 4))
  await ok(batch(1n, 0, next(1n, 1), 1))
  return { o: o2, r, seq, last4 }
}

describe("producer-state snapshots (replica)", () => {
  it("a clean restart loads the snapshot, reads no sealed segment, and keeps dedup, sequence and fencing", async () => {
    const dir = tmp()
    const { o, r, seq, last4 } = await populate(dir)
    const before = fingerprint(r)
    await run(r.writeSnapshot())
    await closeReplica(r)
    await o.close()
    expect(snapshotsIn(dir).at(-1)).toBe(Number(before.end))
    expect(snapshotsIn(dir).length).toBeLessThanOrEqual(2)

    const { io, bytes } = countingIO()
    const o2 = await openLog(dir, io)
    // what the replica reads (the log's own recovery reads segment tails)
    bytes.clear()
    const r2 = await openReplica(o2.log)
    expect(r2.recovery).toEqual({ snapshotOffset: Number(before.end), replayedBatches: 0 })
    expect(sealedBytesRead(dir, bytes).sealed).toBeGreaterThan(5)
    expect([...bytes.keys()].filter((f) => f.endsWith(".log"))).toEqual([])
    expect(fingerprint(r2)).toEqual(before)

    // a retried batch is acknowledged with its original offset
    const dup = r2.appendNow(batch(4n, 7, 0, 4))
    expect(dup).toMatchObject({ _tag: "Appended", result: { baseOffset: (last4 as { result: { baseOffset: bigint } }).result.baseOffset } })
    expect(r2.logEndOffset).toBe(before.end)
    // a gap in the sequence is still refused
    expect(r2.appendNow(batch(1n, 0, seq.get(1n)! + 1, 1))).toMatchObject({ _tag: "Failed", error: { _tag: "OutOfOrderSequence" } })
    // the old epoch of producer 3 is still fenced
    expect(r2.appendNow(batch(3n, 0, 100, 1))).toMatchObject({ _tag: "Failed", error: { _tag: "ProducerFenced" } })
    expect(r2.appendNow(batch(1n, 0, seq.get(1n)!, 1))._tag).toBe("Appended")
    await closeReplica(r2)
    await o2.close()

    // the same directory without snapshots: a full scan, reading every sealed segment, same answers
    const copy = copyDir(dir)
    const o3 = await openLog(dir)
    const r3 = await openReplica(o3.log)
    const after = fingerprint(r3)
    await closeReplica(r3)
    await o3.close()
    const { io: io4, bytes: bytes4 } = countingIO()
    for (const s of snapshotsIn(copy)) fs.rmSync(path.join(copy, `${String(s).padStart(20, "0")}.snapshot`))
    const o4 = await openLog(copy, io4)
    bytes4.clear()
    const r4 = await openReplica(o4.log)
    expect(r4.recovery.snapshotOffset).toBeUndefined()
    expect(sealedBytesRead(copy, bytes4).n).toBeGreaterThanOrEqual(sealedSize(copy))
    expect(fingerprint(r4)).toEqual(after)
    await closeReplica(r4)
    await o4.close()
  })

  it("a corrupt snapshot falls back to an older one or to the scan, with identical results", async () => {
    const dir = tmp()
    const { o, r } = await populate(dir)
    const before = fingerprint(r)
    await run(r.writeSnapshot())
    await closeReplica(r)
    await o.close()
    const snaps = snapshotsIn(dir)
    expect(snaps.length).toBe(2)
    const file = (s: number) => path.join(dir, `${String(s).padStart(20, "0")}.snapshot`)
    const flip = (s: number) => {
      const b = fs.readFileSync(file(s))
      b[b.length - 3] ^= 0xff
      fs.writeFileSync(file(s), b)
    }
    const scan = await scanFingerprint(copyDir(dir))
    expect(scan).toEqual(before)

    // newest corrupt: the older (roll) snapshot is used and only the batches after it are replayed
    flip(snaps[1]!)
    let o2 = await openLog(dir)
    let r2 = await openReplica(o2.log)
    expect(r2.recovery.snapshotOffset).toBe(snaps[0])
    expect(r2.recovery.replayedBatches).toBeGreaterThan(0)
    expect(fingerprint(r2)).toEqual(scan)
    await closeReplica(r2)
    await o2.close()
    // the corrupt file was removed
    expect(snapshotsIn(dir)).toEqual([snaps[0]])

    // every snapshot corrupt (or truncated): the full scan
    flip(snaps[0]!)
    o2 = await openLog(dir)
    r2 = await openReplica(o2.log)
    expect(r2.recovery.snapshotOffset).toBeUndefined()
    expect(fingerprint(r2)).toEqual(scan)
    await run(r2.writeSnapshot())
    await closeReplica(r2)
    await o2.close()
    const newest = snapshotsIn(dir).at(-1)!
    fs.writeFileSync(file(newest), fs.readFileSync(file(newest)).subarray(0, 20))
    o2 = await openLog(dir)
    r2 = await openReplica(o2.log)
    expect(r2.recovery.snapshotOffset).toBeUndefined()
    expect(fingerprint(r2)).toEqual(scan)
    await closeReplica(r2)
    await o2.close()
  })

  it("never trusts a snapshot past the log end (lost tail), even once the log grows past it again", async () => {
    const dir = tmp()
    const { o, r } = await populate(dir)
    await run(r.writeSnapshot())
    const S = Number(r.logEndOffset)
    await closeReplica(r)
    await o.close()
    // a crash lost the tail: the log now ends well before the snapshot
    const t = await openLog(dir)
    const cut = S - 12
    t.log.core.truncateAfter(cut - 1)
    const end = t.log.core.nextKey
    expect(end).toBeLessThan(S)
    await t.close()
    const scan = await scanFingerprint(copyDir(dir))

    const o2 = await openLog(dir)
    const r2 = await openReplica(o2.log)
    expect(r2.recovery.snapshotOffset === undefined || r2.recovery.snapshotOffset <= end).toBe(true)
    expect(fingerprint(r2)).toEqual(scan)
    expect(snapshotsIn(dir).every((s) => s <= end)).toBe(true)
    // different data now fills the offsets the stale snapshot covered; then a crash (no close-time snapshot)
    for (let i = 0; i < 6; i++) expect(r2.appendNow(batch(9n, 0, i * 3, 3))).toMatchObject({ _tag: "Appended" })
    expect(Number(r2.logEndOffset)).toBeGreaterThan(S)
    await new Promise((res) => setImmediate(res))
    await closeReplica(r2)
    await o2.close()
    const scan2 = await scanFingerprint(copyDir(dir))
    const o3 = await openLog(dir)
    const r3 = await openReplica(o3.log)
    expect(r3.recovery.snapshotOffset).not.toBe(S)
    expect(fingerprint(r3)).toEqual(scan2)
    expect(r3.describeProducer(9n)).toMatchObject({ lastSequence: 17 })
    await closeReplica(r3)
    await o3.close()
  })

  it("snapshots taken at segment rolls bound the replay after a crash; at most two files are kept", async () => {
    const dir = tmp()
    const { o, r } = await populate(dir)
    const before = fingerprint(r)
    const bases = o.log.core.segmentBases
    const lastRoll = bases[bases.length - 1]!
    const snaps = snapshotsIn(dir)
    expect(snaps.length).toBe(2)
    expect(snaps.at(-1)).toBe(lastRoll)
    // no close-time snapshot (as after a crash)
    await closeReplica(r)
    await o.close()
    const o2 = await openLog(dir)
    const r2 = await openReplica(o2.log)
    expect(r2.recovery.snapshotOffset).toBe(lastRoll)
    expect(r2.recovery.replayedBatches).toBeGreaterThan(0)
    expect(r2.recovery.replayedBatches).toBeLessThan(6)
    expect(fingerprint(r2)).toEqual(before)
    await closeReplica(r2)
    await o2.close()
  })

  it("after DeleteRecords the snapshot drops producers below the log start exactly like the scan", async () => {
    const dir = tmp()
    const { o, r } = await populate(dir)
    // producer 2 only wrote in the first 21 batches (offsets < ~30)
    const target = r.describeProducer(2n)!.lastOffset + 3n
    await run(r.deleteRecordsBefore(target))
    expect(r.describeProducer(2n)).toBeUndefined()
    await run(r.writeSnapshot())
    await closeReplica(r)
    await o.close()
    const scan = await scanFingerprint(copyDir(dir))
    const o2 = await openLog(dir)
    const r2 = await openReplica(o2.log)
    expect(r2.recovery.snapshotOffset).toBeDefined()
    expect(fingerprint(r2)).toEqual(scan)
    expect(r2.logStartOffset).toBe(target)
    await closeReplica(r2)
    await o2.close()
    // a snapshot below the log start is not used
    const o3 = await openLog(dir)
    const r3 = await openReplica(o3.log)
    await run(r3.deleteRecordsBefore(r3.logEndOffset))
    await closeReplica(r3)
    await o3.close()
    const o4 = await openLog(dir)
    const r4 = await openReplica(o4.log)
    expect(r4.recovery.snapshotOffset === undefined || r4.recovery.snapshotOffset >= Number(r4.logStartOffset)).toBe(true)
    expect(fingerprint(r4)).toEqual(await scanFingerprint(copyDir(dir)))
    await closeReplica(r4)
    await o4.close()
  })

  it("the format round-trips and rejects damage", () => {
    const producers = [
      [5n, { epoch: 2, lastTimestamp: 99n, batches: [{ firstSeq: 0, lastSeq: 2, firstOffset: 10n, lastOffset: 12n, maxTimestamp: 98n }] }],
      [6n, { epoch: 0, lastTimestamp: -1n, batches: [{ firstSeq: 2147483646, lastSeq: 1, firstOffset: 13n, lastOffset: 16n, maxTimestamp: -1n }] }]
    ] as const
    const buf = encodeSnapshot(20, [{ epoch: 0, startOffset: 0 }, { epoch: 3, startOffset: 11 }], producers)
    expect(decodeSnapshot(buf)).toEqual({
      offset: 20,
      epochs: [{ epoch: 0, startOffset: 0 }, { epoch: 3, startOffset: 11 }],
      producers: producers.map(([p, e]) => [p, e])
    })
    for (let i = 0; i < buf.length; i++) {
      const b = Buffer.from(buf)
      b[i] ^= 0x40
      expect(decodeSnapshot(b)).toBeUndefined()
    }
    expect(decodeSnapshot(buf.subarray(0, buf.length - 1))).toBeUndefined()
    expect(decodeSnapshot(Buffer.concat([buf, Buffer.alloc(1)]))).toBeUndefined()
  })
})

describe("producer-state snapshots (broker restart)", () => {
  it("idempotent producers and leader epochs survive a clean restart without a log scan", async () => {
    const first = countingIO()
    let broker = await startInProcessBroker({ logSegmentBytes: 65536 }, undefined, { fileIO: first.io })
    const dataDir = broker.dataDir
    try {
      await broker.request(3, 12, { topics: [{ name: "idem" }], allowAutoTopicCreation: true })
      const pid = await broker.request(22, 4, { transactionalId: null, transactionTimeoutMs: 60_000 })
      const producerId = pid!.producerId
      const producerEpoch = pid!.producerEpoch
      const produce = async (b: Buffer) => {
        const r = await broker.request(0, 9, {
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name: "idem", partitionData: [{ index: 0, records: b }] }]
        })
        return r!.responses[0]!.partitionResponses[0]!
      }
      const offsets: Array<bigint> = []
      for (let i = 0; i < 60; i++) {
        const r = await produce(batch(producerId, producerEpoch, i * 3, 3, 4000))
        expect(r.errorCode).toBe(0)
        offsets.push(r.baseOffset)
      }
      const epochs = () =>
        broker
          .request(23, 4, {
            replicaId: -1,
            topics: [{ topic: "idem", partitions: [0, 1, 5].map((leaderEpoch) => ({ partition: 0, currentLeaderEpoch: -1, leaderEpoch })) }]
          })
          .then((r) => r!.topics[0]!.partitions)
      const epochsBefore = await epochs()
      await broker.close(true)
      // the clean shutdown wrote a snapshot at the log end offset (next to the roll-time one)
      const snaps = snapshotsIn(path.join(dataDir, "idem-0"))
      expect(snaps.length).toBe(2)
      expect(snaps.at(-1)).toBe(Number(offsets[59]! + 3n))

      const second = countingIO()
      broker = await startInProcessBroker({ logSegmentBytes: 65536 }, dataDir, { fileIO: second.io })
      const partDir = path.join(dataDir, "idem-0")
      // the log's recovery reads each sealed segment's tail after its last index entry; a scan reads them all
      const sealed = sealedBytesRead(partDir, second.bytes)
      expect(sealed.sealed).toBeGreaterThan(5)
      expect(sealed.n).toBeLessThan(sealedSize(partDir) / 2)
      expect(await epochs()).toEqual(epochsBefore)
      // the last batch retried: acknowledged with its original offset, not appended again
      const dup = await produce(batch(producerId, producerEpoch, 59 * 3, 3, 4000))
      expect(dup).toMatchObject({ errorCode: 0, baseOffset: offsets[59] })
      // an out-of-order sequence is still refused
      expect((await produce(batch(producerId, producerEpoch, 59 * 3 + 7, 1))).errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
      // the next sequence is accepted right after the last offset
      expect(await produce(batch(producerId, producerEpoch, 60 * 3, 1))).toMatchObject({ errorCode: 0, baseOffset: offsets[59]! + 3n })
      // a newer epoch fences the old one, and that survives another restart
      expect((await produce(batch(producerId, producerEpoch + 1, 0, 1))).errorCode).toBe(0)
      await broker.close(true)
      broker = await startInProcessBroker({ logSegmentBytes: 65536 }, dataDir)
      expect((await produce(batch(producerId, producerEpoch, 60 * 3 + 1, 1))).errorCode).toBe(ErrorCode.INVALID_PRODUCER_EPOCH)
      // epochs 0 and 1 ended where they did (the batches since went to later leader terms)
      expect(await epochs()).toEqual(epochsBefore)
    } finally {
      await broker.close()
    }
  })
})
