/**
 * The node journal (docs/node-log.md): logs write through it, a pass
 * fdatasyncs it alone, checkpoints sync the segments, and replay after a
 * crash gives back everything acknowledged, and nothing that was removed.
 * Crashes use the memory FileIO's model: only fdatasynced bytes survive
 * (with `tear`, a file may keep part of its unsynced tail plus garbage).
 */
import { describe, expect, it } from "@effect/vitest"
import * as path from "node:path"
import { MemoryFileIO, instrument, type FileIO } from "../../src/storage/FileIO.js"
import { JOURNAL_DIR, type Journal } from "../../src/storage/Journal.js"
import { openJournal, type ReplayReport } from "../../src/storage/JournalReplay.js"
import { LogCore, type LogConfig } from "../../src/storage/SegmentedLog.js"
import { FsyncPolicy, WalSync } from "../../src/storage/WalSync.js"
import { entries, entry, holdingFdatasync, payloadFor, readAll, testConfig } from "./helpers.js"

const ROOT = "/data"

interface Node {
  readonly io: FileIO
  readonly journal: Journal
  readonly sync: WalSync
  readonly replay: ReplayReport
  readonly logs: Map<string, LogCore>
}

const startNode = async (io: FileIO, fileBytes = 1 << 20): Promise<Node> => {
  io.mkdirp(ROOT)
  const { journal, replay } = await openJournal(io, ROOT, { fileBytes, keepFiles: 3 })
  const sync = new WalSync(io, FsyncPolicy.batch, journal)
  return { io, journal: journal!, sync, replay, logs: new Map() }
}

const openLog = async (node: Node, id: string, config: Partial<LogConfig> = {}): Promise<LogCore> => {
  const log = LogCore.open(node.io, node.sync, id, path.join(ROOT, id), testConfig(config), 0)
  await log.syncAll()
  log.markOpened()
  node.logs.set(id, log)
  return log
}

/** Append and wait until durable (acknowledged). */
const put = async (log: LogCore, from: number, n: number, size = 100): Promise<void> => {
  log.append(entries(from, n, 1, size), 0)
  await log.awaitDurable(from + n - 1)
}

const keys = (log: LogCore): Array<number> => readAll(log).map((e) => e.firstKey)
const range = (from: number, n: number): Array<number> => Array.from({ length: n }, (_, i) => from + i)

describe("node journal", () => {
  it("a pass fdatasyncs the journal alone, and acknowledged appends survive a crash that lost every segment write", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem)
    const logs = await Promise.all(["a-0", "a-1", "a-2", "a-3"].map((id) => openLog(node, id)))
    const before = node.sync.stats.fdatasyncs
    for (const log of logs) log.append(entries(0, 20), 0)
    await Promise.all(logs.map((log) => log.awaitDurable(19)))
    // one pass covered the four logs with one fdatasync (the journal file)
    expect(node.sync.stats.fdatasyncs - before).toBe(1)
    // the segments themselves were never synced: their durable content is still empty
    expect(mem.crash().fileSize(path.join(ROOT, "a-0", "00000000000000000000.log"))).toBe(0)

    const after = await startNode(mem.crash())
    expect(after.replay.records).toBe(4)
    for (const id of ["a-0", "a-1", "a-2", "a-3"]) {
      const log = await openLog(after, id)
      expect(keys(log)).toEqual(range(0, 20))
      expect(readAll(log)[7]!.payload).toEqual(payloadFor(7, 100))
    }
  })

  it("torn journal tails: every acknowledged entry is back, and each log holds a gap-free prefix of what was written", async () => {
    for (let seed = 1; seed <= 40; seed++) {
      let s = seed
      const random = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
      const mem = new MemoryFileIO()
      const node = await startNode(mem, 16 * 1024)
      const logs = await Promise.all(["t-0", "t-1", "t-2"].map((id) => openLog(node, id, { segmentBytes: 4096 })))
      const acked = [0, 0, 0]
      const written = [0, 0, 0]
      for (let round = 0; round < 12; round++) {
        const waits: Array<Promise<void>> = []
        for (let i = 0; i < 3; i++) {
          const n = 1 + Math.floor(random() * 4)
          const from = written[i]!
          logs[i]!.append(entries(from, n, 1, 60 + Math.floor(random() * 200)), 0)
          written[i] = from + n
          if (random() < 0.7) waits.push(logs[i]!.awaitDurable(from + n - 1).then(() => void (acked[i] = Math.max(acked[i]!, from + n))))
        }
        await Promise.all(waits)
      }
      // a last round nobody waits for
      for (let i = 0; i < 3; i++) {
        logs[i]!.append(entries(written[i]!, 3, 1, 120), 0)
        written[i] = written[i]! + 3
      }
      const after = await startNode(mem.crash({ tear: true, random }))
      for (let i = 0; i < 3; i++) {
        const log = await openLog(after, `t-${i}`, { segmentBytes: 4096 })
        const got = keys(log)
        expect(got, `seed ${seed} log ${i}`).toEqual(range(0, got.length))
        expect(got.length, `seed ${seed} log ${i}`).toBeGreaterThanOrEqual(acked[i]!)
        expect(got.length).toBeLessThanOrEqual(written[i]!)
        for (const e of readAll(log)) expect(e.payload.subarray(0, 8)).toEqual(payloadFor(e.firstKey, 8))
      }
    }
  })

  it("files are reused after checkpoints: their older records never come back, and the file count stays bounded", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem, 8 * 1024)
    const log = await openLog(node, "r-0", { segmentBytes: 16 * 1024 })
    for (let k = 0; k < 400; k += 4) await put(log, k, 4, 200)
    // let the last checkpoint settle
    await node.journal.checkpoint()
    expect(node.journal.stats.checkpoints).toBeGreaterThan(5)
    expect(node.journal.stats.files).toBeLessThanOrEqual(4)
    const files = mem.readdir(path.join(ROOT, JOURNAL_DIR)).filter((f) => f.endsWith(".wal"))
    expect(files.length).toBe(node.journal.stats.files)
    await put(log, 400, 4, 200)
    const after = await startNode(mem.crash())
    // only the records after the last checkpoint are replayed
    expect(after.replay.records).toBeLessThan(10)
    const reopened = await openLog(after, "r-0", { segmentBytes: 16 * 1024 })
    expect(keys(reopened)).toEqual(range(0, 404))
  })

  it("a truncated tail stays truncated: replay applies the cut before the entries written after it", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem)
    const log = await openLog(node, "c-0")
    await put(log, 0, 10)
    log.truncateAfter(4)
    log.append([entry(5, 1, 100, { term: 2 }), entry(6, 1, 100, { term: 2 })], 0)
    await log.awaitDurable(6)
    const after = await startNode(mem.crash())
    const reopened = await openLog(after, "c-0")
    const all = readAll(reopened)
    expect(all.map((e) => e.firstKey)).toEqual(range(0, 7))
    expect(all.map((e) => e.term)).toEqual([1, 1, 1, 1, 1, 2, 2])
  })

  it("a deleted log is not brought back, and a log created again under its name gets only its own entries", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem)
    const gone = await openLog(node, "d-0")
    await put(gone, 0, 30)
    const other = await openLog(node, "d-1")
    await put(other, 0, 5)
    await gone.destroy()
    const again = await openLog(node, "d-0")
    // same frame sizes as before: the old frames would line up after the new ones if they came back
    await put(again, 0, 3, 100)
    const stays = await openLog(node, "e-0")
    await put(stays, 0, 2)
    const dropped = await openLog(node, "f-0")
    await put(dropped, 0, 2)
    await dropped.destroy()

    const after = await startNode(mem.crash())
    const reopened = await openLog(after, "d-0")
    expect(keys(reopened)).toEqual(range(0, 3))
    expect(keys(await openLog(after, "d-1"))).toEqual(range(0, 5))
    expect(keys(await openLog(after, "e-0"))).toEqual(range(0, 2))
    expect(mem.crash().exists(path.join(ROOT, "f-0"))).toBe(false)
    expect(after.io.exists(path.join(ROOT, "f-0"))).toBe(false)
  })

  it("a segment removed by a truncation and started again under the same name gets only its new entries", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem)
    const log = await openLog(node, "s-0", { segmentBytes: 2048 })
    await put(log, 0, 60, 100)
    const base = log.segmentBases[2]!
    // cut one entry before a segment boundary: the segment at `base` and those after it go
    log.truncateAfter(base - 2)
    expect(log.segmentBases.at(-1)).toBeLessThan(base)
    // the append fills the segment again and rolls to one at the same base: frames of the same size, another term
    log.append([1, 0].map((back) => entry(base - back, 1, 100, { term: 2 })).concat(entry(base + 1, 1, 100, { term: 2 })), 0)
    expect(log.segmentBases.at(-1)).toBe(base)
    await log.awaitDurable(base + 1)
    const after = await startNode(mem.crash())
    const all = readAll(await openLog(after, "s-0", { segmentBytes: 2048 }))
    expect(all.map((e) => e.firstKey)).toEqual(range(0, base + 2))
    expect(all.slice(base - 2).map((e) => e.term)).toEqual([1, 2, 2, 2])
  })

  it("segments removed by retention are not brought back by replay", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem)
    const log = await openLog(node, "p-0", { segmentBytes: 2048 })
    await put(log, 0, 60, 100)
    expect(log.segmentBases.length).toBeGreaterThan(3)
    const start = log.segmentBases[2]!
    log.deleteBefore(start)
    await log.awaitSynced()
    await put(log, 60, 5, 100)
    const after = await startNode(mem.crash())
    expect(after.replay.skipped).toBeGreaterThan(0)
    const reopened = await openLog(after, "p-0", { segmentBytes: 2048 })
    expect(reopened.logStartKey).toBe(start)
    expect(reopened.segmentBases[0]).toBe(start)
    expect(keys(reopened)).toEqual(range(start, 65 - start))
  })

  it("a clean close leaves nothing to replay", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem)
    const log = await openLog(node, "n-0")
    await put(log, 0, 10)
    await log.close()
    node.sync.close()
    await node.journal.close()
    const after = await startNode(mem.crash())
    expect(after.replay.records).toBe(0)
    expect(keys(await openLog(after, "n-0"))).toEqual(range(0, 10))
  })

  it("a node started without the journal after a crash still replays it, then removes it", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem)
    const log = await openLog(node, "w-0")
    await put(log, 0, 25)
    const crashed = mem.crash()
    const { journal, replay } = await openJournal(crashed, ROOT, undefined)
    expect(journal).toBeUndefined()
    expect(replay.records).toBe(1)
    expect(crashed.exists(path.join(ROOT, JOURNAL_DIR))).toBe(false)
    // every pass now fdatasyncs the segments themselves
    const sync = new WalSync(crashed, FsyncPolicy.batch)
    const reopened = LogCore.open(crashed, sync, "w-0", path.join(ROOT, "w-0"), testConfig(), 0)
    expect(keys(reopened)).toEqual(range(0, 25))
    reopened.append(entries(25, 5), 0)
    await reopened.awaitDurable(29)
    expect(keys(LogCore.open(crashed.crash(), sync, "w-0", path.join(ROOT, "w-0"), testConfig(), 0))).toEqual(range(0, 30))
  })

  it("a replay interrupted by a crash can run again with the same result", async () => {
    const mem = new MemoryFileIO()
    const node = await startNode(mem)
    const log = await openLog(node, "i-0", { segmentBytes: 2048 })
    await put(log, 0, 40, 100)
    await log.destroy()
    const again = await openLog(node, "i-0", { segmentBytes: 2048 })
    await put(again, 0, 10, 100)
    const crashed = mem.crash()
    // a first replay whose result is lost: the journal checkpoint was not yet moved
    const { replayJournal } = await import("../../src/storage/JournalReplay.js")
    await replayJournal(crashed, ROOT)
    const after = await startNode(crashed.crash())
    expect(keys(await openLog(after, "i-0", { segmentBytes: 2048 }))).toEqual(range(0, 10))
  })
})

describe("node journal passes", () => {
  it("a pass completes only after every earlier pass has (a later pass may sync only the next journal file)", async () => {
    const { io, state } = holdingFdatasync(new MemoryFileIO())
    const held = state.held
    const tick = () => new Promise((res) => setImmediate(res))
    const node = await startNode(io)
    const log = await openLog(node, "o-0")
    state.hold = true
    log.append([entry(0)], 0)
    const done = [false, false]
    void log.awaitDurable(0).then(() => (done[0] = true))
    await tick()
    log.append([entry(1)], 0)
    void log.awaitDurable(1).then(() => (done[1] = true))
    await tick()
    expect(held.length).toBe(2)
    held[1]!()
    await tick()
    await tick()
    // the second pass is done, but the first is not: nothing is acknowledged yet
    expect(done).toEqual([false, false])
    expect(log.durableNextKey).toBe(0)
    held[0]!()
    state.hold = false
    await tick()
    await tick()
    expect(done).toEqual([true, true])
    expect(log.durableNextKey).toBe(2)
  })
})

describe("node journal failures", () => {
  it("a failed journal fdatasync fails the waiting appends and stops every log's writes; acknowledged data survives", async () => {
    const mem = new MemoryFileIO()
    const { io, plan } = instrument(mem)
    const node = await startNode(io)
    const a = await openLog(node, "x-0")
    const b = await openLog(node, "x-1")
    await put(a, 0, 5)
    await put(b, 0, 5)
    plan.fdatasync = (file) => (file.includes(JOURNAL_DIR) ? "EIO" : undefined)
    a.append([entry(5)], 0)
    await expect(a.awaitDurable(5)).rejects.toMatchObject({ _tag: "StorageError" })
    plan.fdatasync = undefined
    // the journal's state is unknown after a failed fdatasync: nothing more is written through it
    expect(() => b.append([entry(5)], 0)).toThrow()
    const after = await startNode(mem.crash())
    expect(keys(await openLog(after, "x-0")).slice(0, 5)).toEqual(range(0, 5))
    expect(keys(await openLog(after, "x-1"))).toEqual(range(0, 5))
  })

  it("a failed segment fdatasync in a checkpoint fails that log only, and keeps its records replayable", async () => {
    const mem = new MemoryFileIO()
    const { io, plan } = instrument(mem)
    const node = await startNode(io)
    const a = await openLog(node, "y-0")
    const b = await openLog(node, "y-1")
    await put(a, 0, 5)
    await put(b, 0, 5)
    plan.fdatasync = (file) => (file.includes(`${path.sep}y-0${path.sep}`) ? "EIO" : undefined)
    await expect(node.journal.checkpoint()).rejects.toThrow()
    plan.fdatasync = undefined
    expect(() => a.append([entry(5)], 0)).toThrow()
    await put(b, 5, 5)
    // until a restart replays them, the failed log's acknowledged writes keep the checkpoint where it is
    await expect(node.journal.checkpoint()).rejects.toThrow()
    await a.close().catch(() => undefined)
    await expect(node.journal.checkpoint()).rejects.toThrow()
    const after = await startNode(mem.crash())
    expect(keys(await openLog(after, "y-0"))).toEqual(range(0, 5))
    expect(keys(await openLog(after, "y-1"))).toEqual(range(0, 10))
  })
})
