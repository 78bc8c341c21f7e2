/**
 * Compaction of the durable group log (`GroupStore.makeLogStore` over
 * `RecordLog`): a restart after compaction restores the same offsets and group
 * metadata; the log stays bounded under 100k commits to a few keys; offsets
 * retention still works across compaction and restart; and a kill -9 at every
 * file-system step of a compaction (MemoryFileIO's crash model, with and
 * without torn writes) or an injected I/O fault (FileIO `instrument`) never
 * loses a committed offset.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, TestClock } from "effect"
import type { GroupCoordinatorShape, OffsetCommitEntry } from "../../src/group/GroupCoordinator.js"
import {
  GroupStoreConfig,
  defaultConfig as storeDefaults,
  layerConfigFromEnv,
  encodeGroupRecord,
  makeLogStore,
  type GroupRecord,
  type GroupStoreConfigShape,
  type LogGroupStore
} from "../../src/group/GroupStore.js"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { type FileIO, MemoryFileIO, instrument } from "../../src/storage/FileIO.js"
import * as LogStore from "../../src/storage/LogStore.js"
import * as RecordLog from "../../src/storage/RecordLog.js"
import { StorageConfig, defaults as storageDefaults } from "../../src/storage/StorageConfig.js"
import { client, coordinator, rebalance } from "./helpers.js"

const DATA_DIR = "/chronik-data"

/** A GroupStore on a fresh LogStore over `io` (a "process start"), alive for the test's scope. */
const openStore = (io: FileIO, cfg: Partial<GroupStoreConfigShape> = {}, segmentBytes = 64 * 1024) =>
  Effect.gen(function* () {
    const ctx = yield* Layer.build(
      LogStore.layerFileIO.pipe(
        Layer.provide(
          Layer.mergeAll(
            Layer.succeed(LogStore.StorageFileIO, io),
            Layer.succeed(StorageConfig, { ...storageDefaults, dataDir: DATA_DIR, segmentBytes })
          )
        )
      )
    )
    return yield* makeLogStore.pipe(
      Effect.provide(ctx),
      Effect.provideService(GroupStoreConfig, { ...storeDefaults, ...cfg })
    )
  }).pipe(Effect.orDie)

/** The state a log replays to: latest record per key, tombstones removing keys; comparable with toEqual. */
const fold = (store: LogGroupStore) =>
  Effect.gen(function* () {
    const state = new Map<string, string>()
    yield* store.replay((r: GroupRecord) => {
      const { key, value } = encodeGroupRecord(r)
      if (value === null) state.delete(key.toString("hex"))
      else state.set(key.toString("hex"), value.toString("hex"))
    })
    return Object.fromEntries([...state].sort(([a], [b]) => (a < b ? -1 : 1)))
  }).pipe(Effect.orDie)

const entry = (topic: string, partition: number, offset: bigint, metadata: string | null = null): OffsetCommitEntry => ({
  topic,
  partition,
  offset,
  leaderEpoch: 1,
  metadata
})

const simpleCommit = (gc: GroupCoordinatorShape, groupId: string, offsets: ReadonlyArray<OffsetCommitEntry>, retentionTimeMs = -1) =>
  Effect.tap(gc.commitOffsets({ groupId, generationId: -1, memberId: "", groupInstanceId: null, retentionTimeMs, offsets }), (r) =>
    Effect.sync(() => expect(r.every((p) => p.errorCode === ErrorCode.NONE)).toBe(true))
  )

/** Everything a client can observe of a group: committed offsets (with timestamps), state, generation, members. */
const observe = (gc: GroupCoordinatorShape, groupIds: ReadonlyArray<string>) =>
  Effect.forEach(groupIds, (groupId) =>
    Effect.gen(function* () {
      const d = yield* gc.describeGroup(groupId)
      return {
        groupId,
        offsets: yield* gc.describeGroupOffsets(groupId),
        state: d.state,
        protocol: d.protocol,
        protocolType: d.protocolType,
        members: d.members
          .map((m) => ({
            memberId: m.memberId,
            instance: m.groupInstanceId,
            assignment: m.assignment.toString("hex"),
            metadata: m.metadata.toString("hex")
          }))
          .sort((a, b) => (a.memberId < b.memberId ? -1 : 1))
      }
    })
  )

/** A group with two members (one static) and offsets, a simple-consumer group, a deleted group, many superseded commits. */
const workload = (gc: GroupCoordinatorShape) =>
  Effect.gen(function* () {
    const a = client("a", ["t"], "instance-a")
    const b = client("b", ["t"])
    yield* rebalance(gc, [a, b], { t: 4 })
    for (let i = 0; i < 50; i++) {
      const r = yield* gc.commitOffsets({
        groupId: "g",
        generationId: a.generation,
        memberId: a.memberId,
        groupInstanceId: "instance-a",
        retentionTimeMs: -1,
        offsets: [entry("t", 0, BigInt(i), `m${i}`), entry("t", 1, BigInt(2 * i))]
      })
      expect(r.every((p) => p.errorCode === ErrorCode.NONE)).toBe(true)
      yield* simpleCommit(gc, "s", [entry("x", i % 3, BigInt(i))])
      yield* TestClock.adjust(10)
    }
    yield* simpleCommit(gc, "gone", [entry("x", 0, 5n)])
    expect((yield* gc.deleteGroups(["gone"]))[0]!.errorCode).toBe(ErrorCode.NONE)
    yield* simpleCommit(gc, "s", [entry("y", 0, 1n)])
    expect((yield* gc.deleteOffsets("s", [{ topic: "y", partition: 0 }])).errorCode).toBe(ErrorCode.NONE)
  })

const GROUPS = ["g", "s", "gone"]
const NO_AUTO = { compactMinSupersededRecords: 1_000_000_000 }

describe("GroupStore compaction", () => {
  it.scoped("a restart after compaction restores identical offsets and group metadata", () =>
    Effect.gen(function* () {
      const mem = new MemoryFileIO()
      const store = yield* openStore(mem, NO_AUTO)
      const gc = yield* coordinator({}, store)
      yield* workload(gc)
      const before = yield* observe(gc, GROUPS)
      const stateBefore = yield* fold(store)
      const statsBefore = yield* store.stats
      expect(statsBefore.records).toBeGreaterThan(150)

      const r = yield* Effect.orDie(store.compact)
      const statsAfter = yield* store.stats
      // live keys: g's metadata, g t-0/t-1, s x-0..2; tombstones and superseded records are gone
      expect(statsAfter.liveRecords).toBe(6)
      expect(statsAfter.records).toBe(6)
      expect(r.recordsAfter).toBe(6)
      expect(r.bytesAfter).toBeLessThan(r.bytesBefore)
      expect(statsAfter.compactions).toBe(1)
      expect(yield* fold(store)).toEqual(stateBefore)

      // kill -9 right after the compaction, restart on what the disk kept
      const disk2 = mem.crash()
      const restarted = yield* openStore(disk2, NO_AUTO)
      expect(yield* fold(restarted)).toEqual(stateBefore)
      expect((yield* restarted.stats).records).toBe(6)
      const gc2 = yield* coordinator({}, restarted)
      expect(yield* observe(gc2, GROUPS)).toEqual(before)
      expect(before[0]!.state).toBe("Stable")
      expect(before[0]!.offsets.map((o) => [o.partition, o.offset, o.metadata])).toEqual([
        [0, 49n, "m49"],
        [1, 98n, ""]
      ])
      expect(before[2]!.state).toBe("Dead")

      // the compacted log keeps working: new commits, another compaction, another restart
      yield* simpleCommit(gc2, "s", [entry("x", 0, 1000n)])
      yield* Effect.orDie(restarted.compact)
      const gc3 = yield* coordinator({}, yield* openStore(disk2.crash(), NO_AUTO))
      expect((yield* gc3.describeGroupOffsets("s")).map((o) => [o.topic, o.partition, o.offset])).toEqual([
        ["x", 0, 1000n],
        ["x", 1, 49n],
        ["x", 2, 47n]
      ])
    })
  )

  it.scoped(
    "the log stays bounded under 100k commits to a few keys (default thresholds)",
    () =>
      Effect.gen(function* () {
        const mem = new MemoryFileIO()
        const store = yield* openStore(mem)
        const gc = yield* coordinator({}, store)
        let maxRecords = 0
        let maxBytes = 0
        const KEYS = 5
        const COMMITS = 100_000
        for (let i = 0; i < COMMITS; i++) {
          yield* gc.commitOffsets({
            groupId: `group-${i % 2}`,
            generationId: -1,
            memberId: "",
            groupInstanceId: null,
            retentionTimeMs: -1,
            offsets: [entry("topic", i % KEYS, BigInt(i))]
          })
          if (i % 500 === 0) {
            const s = yield* store.stats
            maxRecords = Math.max(maxRecords, s.records)
            maxBytes = Math.max(maxBytes, s.sizeBytes)
          }
        }
        const s = yield* store.stats
        // at most the threshold of superseded records plus the live ones, whatever the number of commits
        expect(maxRecords).toBeLessThanOrEqual(storeDefaults.compactMinSupersededRecords + 2 * KEYS)
        expect(maxBytes).toBeLessThan(2 * 1024 * 1024)
        expect(s.compactions).toBeGreaterThanOrEqual(9)
        expect(s.liveRecords).toBe(2 * KEYS)
        const expected = yield* observe(gc, ["group-0", "group-1"])
        const gc2 = yield* coordinator({}, yield* openStore(mem.crash()))
        expect(yield* observe(gc2, ["group-0", "group-1"])).toEqual(expected)
        expect(expected[1]!.offsets.map((o) => o.offset)).toEqual([99_995n, 99_991n, 99_997n, 99_993n, 99_999n])
      }),
    120_000
  )

  it.scoped("offsets retention and explicit expiry still work across compaction and restart", () =>
    Effect.gen(function* () {
      const cfg = { offsetsRetentionMs: 60_000, offsetsRetentionCheckIntervalMs: 3_600_000 }
      const mem = new MemoryFileIO()
      const store = yield* openStore(mem, { compactMinSupersededRecords: 1, compactMinSupersededRatio: 0 })
      const gc = yield* coordinator(cfg, store)
      yield* simpleCommit(gc, "old", [entry("t", 0, 1n), entry("t", 1, 2n)])
      yield* simpleCommit(gc, "explicit", [entry("t", 0, 3n)], 200_000) // OffsetCommit v2-v4 retention time
      yield* TestClock.adjust(30_000)
      yield* simpleCommit(gc, "young", [entry("t", 0, 4n)])
      yield* TestClock.adjust(31_000)
      // "old" (61 s) expires; "young" (31 s) and "explicit" (200 s) stay
      expect(yield* gc.expireOffsets).toBe(2)
      expect((yield* gc.describeGroup("old")).state).toBe("Dead")
      // every append compacted (threshold 1): the expired offsets' tombstones are gone from the log
      const stats = yield* store.stats
      expect(stats.compactions).toBeGreaterThan(0)
      expect(stats.records).toBe(stats.liveRecords)

      const disk2 = mem.crash()
      const gc2 = yield* coordinator(cfg, yield* openStore(disk2, { compactMinSupersededRecords: 1, compactMinSupersededRatio: 0 }))
      expect((yield* gc2.describeGroup("old")).state).toBe("Dead")
      expect((yield* gc2.fetchOffsets("old", null, false)).offsets).toEqual([])
      expect((yield* gc2.describeGroupOffsets("young")).map((o) => o.offset)).toEqual([4n])
      // commit timestamps survive the rewrite: "young" still expires 60 s after its commit, not after the restart
      yield* TestClock.adjust(30_000)
      expect(yield* gc2.expireOffsets).toBe(1)
      expect((yield* gc2.describeGroupOffsets("young"))).toEqual([])
      expect((yield* gc2.describeGroupOffsets("explicit")).map((o) => o.offset)).toEqual([3n])
      // ... and the explicit expiry timestamp too
      yield* TestClock.adjust(199_000 - 91_000)
      expect(yield* gc2.expireOffsets).toBe(0)
      yield* TestClock.adjust(2000)
      expect(yield* gc2.expireOffsets).toBe(1)
      const gc3 = yield* coordinator(cfg, yield* openStore(disk2.crash()))
      expect((yield* gc3.listGroups([])).groups).toEqual([])
    })
  )
})

/**
 * A FileIO that takes a crash image of the memory file system before every
 * mutating call while armed: each image is what a kill -9 at that point would
 * leave on disk.
 */
const crashRecorder = (mem: MemoryFileIO, options: { tear?: boolean; random?: () => number } = {}) => {
  const images: Array<{ op: string; fs: MemoryFileIO }> = []
  let armed = false
  const at = (op: string) => {
    if (armed) images.push({ op, fs: mem.crash(options) })
  }
  const io: FileIO = {
    kind: `crash-recorder(${mem.kind})`,
    mkdirp: (d) => (at(`mkdirp ${d}`), mem.mkdirp(d)),
    readdir: (d) => mem.readdir(d),
    exists: (p) => mem.exists(p),
    unlink: (p) => (at(`unlink ${p}`), mem.unlink(p)),
    rmrf: (d) => (at(`rmrf ${d}`), mem.rmrf(d)),
    readFile: (p) => mem.readFile(p),
    writeFileDurable: (p, d) => (at(`writeFileDurable ${p}`), mem.writeFileDurable(p, d)),
    open: (p) => (at(`open ${p}`), mem.open(p)),
    size: (fd) => mem.size(fd),
    write: (fd, d, pos) => (at(`write ${fd}@${pos}`), mem.write(fd, d, pos)),
    writev: (fd, d, pos) => (at(`writev ${fd}@${pos}`), mem.writev(fd, d, pos)),
    read: (fd, into, off, len, pos) => mem.read(fd, into, off, len, pos),
    truncate: (fd, len) => (at(`truncate ${fd}`), mem.truncate(fd, len)),
    fdatasync: (fd) => (at(`fdatasync ${fd}`), mem.fdatasync(fd)),
    fsyncDir: (d) => (at(`fsyncDir ${d}`), mem.fsyncDir(d)),
    close: (fd) => mem.close(fd)
  }
  return {
    io,
    images,
    arm: () => (armed = true),
    disarm: () => {
      armed = false
      images.push({ op: "end", fs: mem.crash(options) })
    }
  }
}

/** A small seeded generator (mulberry32). */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("GroupStore compaction: crashes and I/O faults", () => {
  for (const tear of [false, true]) {
    it.scoped(`a kill -9 at every file-system step of a compaction keeps the committed state${tear ? " (torn writes)" : ""}`, () =>
      Effect.gen(function* () {
        const mem = new MemoryFileIO()
        const rec = crashRecorder(mem, { tear, random: seeded(tear ? 7 : 1) })
        // small segments: the log to compact spans several of them
        const store = yield* openStore(rec.io, NO_AUTO, 2048)
        const gc = yield* coordinator({}, store)
        yield* workload(gc)
        const expected = yield* fold(store)
        const observed = yield* observe(gc, GROUPS)
        expect((yield* store.stats).segments).toBeGreaterThan(3)

        rec.arm()
        yield* Effect.orDie(store.compact)
        rec.disarm()
        // roll, rewrite (write + fsync), checkpoint, segment deletions, ...
        expect(rec.images.length).toBeGreaterThan(8)

        for (const [i, image] of rec.images.entries()) {
          const restarted = yield* openStore(image.fs, NO_AUTO, 2048)
          const state = yield* fold(restarted)
          expect(state, `crash before step ${i}: ${image.op}`).toEqual(expected)
          const gc2 = yield* coordinator({}, restarted)
          expect(yield* observe(gc2, GROUPS), `crash before step ${i}: ${image.op}`).toEqual(observed)
          // and the recovered log compacts and restarts again to the same state
          yield* Effect.orDie(restarted.compact)
          expect(yield* fold(yield* openStore(image.fs.crash(), NO_AUTO, 2048))).toEqual(expected)
        }
      })
    )
  }

  for (const journalFileBytes of [0, 65536]) {
  it.scoped(`RecordLog: a kill -9 at every file-system step of a rewrite in many writes over many segments${journalFileBytes > 0 ? " (node journal)" : ""}`, () =>
    Effect.gen(function* () {
      // payload: "key=value", or "key" alone for a tombstone
      const compaction: RecordLog.Compaction = {
        keyOf: (b) => b.toString().split("=")[0]!,
        isTombstone: (b) => !b.includes(0x3d),
        minSupersededRecords: 1e9,
        minSupersededRatio: 1,
        rewriteChunkRecords: 50
      }
      const openLog = (io: FileIO) =>
        Effect.gen(function* () {
          const ctx = yield* Layer.build(
            LogStore.layerFileIO.pipe(
              Layer.provide(
                Layer.mergeAll(
                  Layer.succeed(LogStore.StorageFileIO, io),
                  Layer.succeed(StorageConfig, { ...storageDefaults, dataDir: DATA_DIR, segmentBytes: 4096, journalFileBytes })
                )
              )
            )
          )
          const store = Context.get(ctx, LogStore.LogStore)
          return yield* RecordLog.open(store, "records", { compaction })
        }).pipe(Effect.orDie)
      const state = (log: RecordLog.RecordLog) =>
        Effect.gen(function* () {
          const m = new Map<string, string>()
          yield* log.replay((p) => {
            const [k, v] = p.toString().split("=")
            if (v === undefined) m.delete(k!)
            else m.set(k!, v)
          })
          return Object.fromEntries(m)
        }).pipe(Effect.orDie)

      const mem = new MemoryFileIO()
      const rec = crashRecorder(mem, { tear: true, random: seeded(11) })
      const log = yield* openLog(rec.io)
      for (let round = 0; round < 3; round++) {
        const batch = Array.from({ length: 400 }, (_, k) => Buffer.from(k % 7 === round ? `k${k}` : `k${k}=${round}-${k}`))
        yield* Effect.orDie(log.append(batch))
      }
      const expected = yield* state(log)
      const live = Object.keys(expected).length
      expect(live).toBeGreaterThan(300)
      expect((yield* log.stats).liveRecords).toBe(live)
      rec.arm()
      const r = yield* Effect.orDie(log.compact)
      rec.disarm()
      expect(r.recordsAfter).toBe(live)
      expect(r.logStart).toBe(1200)
      // several rewrite writes and several segments rolled, written, synced and deleted
      expect(rec.images.filter((i) => i.op.startsWith("write")).length).toBeGreaterThanOrEqual(Math.ceil(live / 50))
      expect(rec.images.filter((i) => i.op.startsWith("unlink")).length).toBeGreaterThan(3)
      for (const [i, image] of rec.images.entries()) {
        const restarted = yield* openLog(image.fs)
        expect(yield* state(restarted), `crash before step ${i}: ${image.op}`).toEqual(expected)
        expect((yield* restarted.stats).liveRecords).toBe(live)
      }
    }),
    120_000
  )
  }

  it.scoped("a kill -9 during an automatic compaction triggered by a commit loses no acknowledged commit", () =>
    Effect.gen(function* () {
      const mem = new MemoryFileIO()
      const rec = crashRecorder(mem)
      const store = yield* openStore(rec.io, { compactMinSupersededRecords: 40 }, 1024)
      const gc = yield* coordinator({}, store)
      // images taken during commit i: a crash before that commit's fsync may lose it (it was not acknowledged), never i - 1
      const ranges: Array<{ commit: number; from: number; to: number }> = []
      let last = -1
      for (let i = 0; i < 200; i++) {
        const before = (yield* store.stats).compactions
        if (i === 150) rec.arm()
        const from = rec.images.length
        yield* simpleCommit(gc, "s", [entry("t", 0, BigInt(i))])
        ranges.push({ commit: i, from, to: rec.images.length })
        last = i
        if (i >= 150 && (yield* store.stats).compactions > before) break
      }
      rec.disarm()
      expect((yield* store.stats).compactions).toBeGreaterThan(1)
      expect(last).toBeGreaterThan(150)
      let checked = 0
      for (const { commit, from, to } of ranges) {
        for (const image of rec.images.slice(from, to)) {
          const gc2 = yield* coordinator({}, yield* openStore(image.fs, {}, 1024))
          const offset = (yield* gc2.describeGroupOffsets("s"))[0]?.offset
          expect([BigInt(commit - 1), BigInt(commit)], `commit ${commit}, crash before ${image.op}`).toContain(offset)
          checked++
        }
      }
      expect(checked).toBeGreaterThan(10)
      const gc3 = yield* coordinator({}, yield* openStore(rec.images.at(-1)!.fs, {}, 1024))
      expect((yield* gc3.describeGroupOffsets("s"))[0]!.offset).toBe(BigInt(last))
    })
  )

  it.scoped("an injected write fault (ENOSPC) fails the compaction, not the commit; the log stays usable and compacts later", () =>
    Effect.gen(function* () {
      const mem = new MemoryFileIO()
      const { io, plan } = instrument(mem)
      const store = yield* openStore(io, NO_AUTO, 2048)
      const gc = yield* coordinator({}, store)
      yield* workload(gc)
      const expected = yield* fold(store)
      plan.write = (file) => (file.endsWith(".log") ? { code: "ENOSPC", partial: 10 } : undefined)
      const failed = yield* Effect.either(store.compact)
      expect(failed._tag).toBe("Left")
      plan.write = undefined
      expect(yield* fold(store)).toEqual(expected)
      expect(yield* fold(yield* openStore(mem.crash(), NO_AUTO, 2048))).toEqual(expected)
      // still usable: a commit, a successful compaction, a restart
      yield* simpleCommit(gc, "s", [entry("x", 0, 777n)])
      yield* Effect.orDie(store.compact)
      const gc2 = yield* coordinator({}, yield* openStore(mem.crash(), NO_AUTO, 2048))
      expect((yield* gc2.describeGroupOffsets("s"))[0]!.offset).toBe(777n)
      expect((yield* observe(gc2, ["g"]))[0]!.offsets.map((o) => o.offset)).toEqual([49n, 98n])
    })
  )

  it.scoped("an automatic compaction that fails does not fail the commit that triggered it, and is retried only after more records", () =>
    Effect.gen(function* () {
      const mem = new MemoryFileIO()
      const { io, plan } = instrument(mem)
      const store = yield* openStore(io, { compactMinSupersededRecords: 20 })
      const gc = yield* coordinator({}, store)
      for (let i = 0; i < 15; i++) yield* simpleCommit(gc, "s", [entry("t", 0, BigInt(i))])
      // fail the first write into a fresh segment: the rewrite after the compaction's roll
      let armed = true
      plan.write = (file, position) => {
        if (armed && file.endsWith(".log") && position === 0) {
          armed = false
          return { code: "ENOSPC" }
        }
        return undefined
      }
      let i = 15
      while (armed && i < 40) yield* simpleCommit(gc, "s", [entry("t", 0, BigInt(i++))]) // each asserts NONE
      expect(armed).toBe(false)
      expect((yield* store.stats).compactions).toBe(0)
      const failedAt = i
      // no new attempt on the next appends ...
      for (let k = 0; k < 19; k++) yield* simpleCommit(gc, "s", [entry("t", 0, BigInt(i++))])
      expect((yield* store.stats).compactions).toBe(0)
      // ... then it compacts again
      while ((yield* store.stats).compactions === 0 && i < failedAt + 60) yield* simpleCommit(gc, "s", [entry("t", 0, BigInt(i++))])
      expect((yield* store.stats).compactions).toBe(1)
      expect((yield* store.stats).records).toBe(1)
      const gc2 = yield* coordinator({}, yield* openStore(mem.crash()))
      expect((yield* gc2.describeGroupOffsets("s"))[0]!.offset).toBe(BigInt(i - 1))
    })
  )

  it.scoped("an injected fsync fault (EIO) during a compaction fails the log (no silent retry); a restart recovers every commit", () =>
    Effect.gen(function* () {
      const mem = new MemoryFileIO()
      const { io, plan } = instrument(mem)
      const store = yield* openStore(io, NO_AUTO, 2048)
      const gc = yield* coordinator({}, store)
      yield* workload(gc)
      const expected = yield* fold(store)
      const observed = yield* observe(gc, GROUPS)
      plan.fdatasync = (file) => (file.endsWith(".log") ? "EIO" : undefined)
      expect((yield* Effect.either(store.compact))._tag).toBe("Left")
      plan.fdatasync = undefined
      // fsyncgate: the log refuses further writes; the coordinator answers with the store's error
      const r = yield* gc.commitOffsets({
        groupId: "s",
        generationId: -1,
        memberId: "",
        groupInstanceId: null,
        retentionTimeMs: -1,
        offsets: [entry("x", 0, 1n)]
      })
      expect(r[0]!.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
      const restarted = yield* openStore(mem.crash({ tear: true, random: seeded(3) }), NO_AUTO, 2048)
      expect(yield* fold(restarted)).toEqual(expected)
      expect(yield* observe(yield* coordinator({}, restarted), GROUPS)).toEqual(observed)
    })
  )
})

describe("GroupStore config", () => {
  it.effect("reads CHRONIK_GROUP_STORE_* from the environment, with defaults, and rejects invalid values", () =>
    Effect.gen(function* () {
      const read = (env: Record<string, string>) =>
        Effect.either(Effect.provide(GroupStoreConfig, layerConfigFromEnv(env)))
      expect(yield* read({})).toEqual(Either.right(storeDefaults))
      expect(
        yield* read({
          CHRONIK_GROUP_STORE_COMPACT_MIN_SUPERSEDED_RECORDS: "123",
          CHRONIK_GROUP_STORE_COMPACT_MIN_SUPERSEDED_RATIO: "0.25"
        })
      ).toEqual(Either.right({ compactMinSupersededRecords: 123, compactMinSupersededRatio: 0.25 }))
      expect(Either.isLeft(yield* read({ CHRONIK_GROUP_STORE_COMPACT_MIN_SUPERSEDED_RECORDS: "0" }))).toBe(true)
      expect(Either.isLeft(yield* read({ CHRONIK_GROUP_STORE_COMPACT_MIN_SUPERSEDED_RATIO: "1.5" }))).toBe(true)
    })
  )
})
