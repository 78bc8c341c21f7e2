/**
 * Segment writes off the event loop (docs/async-segment-writes.md): the
 * `withAsyncWrites` FileIO and the log over it, with writes held and completed
 * by the test so a read, a sync pass, a truncation, a close or a crash can sit
 * between a write's start and its end.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { withAsyncWrites } from "../../src/storage/AsyncWriteFileIO.js"
import { type Fd, MemoryFileIO, instrument, nodeFileIO } from "../../src/storage/FileIO.js"
import { FRAME_HEADER } from "../../src/storage/Frame.js"
import { FsyncPolicy, StorageError, WalSync } from "../../src/storage/index.js"
import type { LogConfig } from "../../src/storage/SegmentedLog.js"
import { entries, entry, openCore, payloadFor, readAll, rmDir, tmpDir } from "./helpers.js"

/** Lets pending callbacks (setImmediate, promise jobs) run. */
const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/** A promise's state without waiting for it. */
const settled = <A>(p: Promise<A>): { done: boolean; error: unknown } => {
  const s = { done: false, error: undefined as unknown }
  p.then(
    () => void (s.done = true),
    (e) => {
      s.done = true
      s.error = e
    }
  )
  return s
}

const setup = () => {
  const mem = new MemoryFileIO()
  mem.mkdirp("/d")
  const io = withAsyncWrites(mem)
  return { mem, io }
}

/** A new file /d/f through the wrapper, its asynchronous writes held. */
const heldFile = () => {
  const { mem, io } = setup()
  const fd = io.open("/d/f")
  mem.holdWrites()
  return { mem, io, fd }
}

describe("withAsyncWrites", () => {
  it("reads and sizes a file as if its pending writes had landed; the bytes land when the write completes", async () => {
    const { mem, io } = setup()
    const fd = io.open("/d/f")
    io.write(fd, Buffer.from("hello "), 0)
    await turns()
    mem.holdWrites()
    io.writev(fd, [Buffer.from("pending"), Buffer.from(" world")], 6)
    expect(mem.heldWrites).toBe(1)
    expect(mem.size(fd)).toBe(6)
    expect(io.size(fd)).toBe(19)
    const into = Buffer.alloc(32)
    expect(io.read(fd, into, 0, 32, 0)).toBe(19)
    expect(into.subarray(0, 19).toString()).toBe("hello pending world")
    // a window inside the pending bytes
    expect(io.read(fd, into, 1, 5, 8)).toBe(5)
    expect(into.subarray(1, 6).toString()).toBe("nding")
    expect(io.readFile("/d/f")!.toString()).toBe("hello pending world")
    mem.completeWrite()
    expect(mem.readFile("/d/f")!.toString()).toBe("hello pending world")
    expect(io.read(fd, into, 0, 32, 0)).toBe(19)
  })

  it("a truncation made while a write is pending runs after it: the write never resurrects cut bytes", async () => {
    const { mem, io, fd } = heldFile()
    io.write(fd, Buffer.from("aaaaaaaaaa"), 0) // [0, 10)
    io.truncate(fd, 4)
    io.write(fd, Buffer.from("bbb"), 4)
    expect(io.size(fd)).toBe(7)
    const into = Buffer.alloc(16)
    expect(io.read(fd, into, 0, 16, 0)).toBe(7)
    expect(into.subarray(0, 7).toString()).toBe("aaaabbb")
    mem.completeWrite() // the first write lands whole, then the truncation, then the second write starts
    expect(mem.readFile("/d/f")!.toString()).toBe("aaaa")
    expect(mem.heldWrites).toBe(1)
    expect(io.read(fd, into, 0, 16, 0)).toBe(7)
    expect(into.subarray(0, 7).toString()).toBe("aaaabbb")
    mem.completeWrite()
    expect(mem.readFile("/d/f")!.toString()).toBe("aaaabbb")
    expect(io.size(fd)).toBe(7)
  })

  it("fdatasync starts only after the writes made before it completed (a crash before loses them)", async () => {
    const { mem, io, fd } = heldFile()
    io.write(fd, Buffer.from("durable?"), 0)
    const sync = settled(io.fdatasync(fd))
    await turns()
    expect(sync.done).toBe(false)
    expect(mem.crash().readFile("/d/f")!.length).toBe(0)
    mem.completeWrite()
    await turns()
    expect(sync).toEqual({ done: true, error: undefined })
    expect(mem.crash().readFile("/d/f")!.toString()).toBe("durable?")
  })

  it("contiguous writes queued behind one in flight go out as one vectored write", async () => {
    const { mem, io, fd } = heldFile()
    io.write(fd, Buffer.from("0123"), 0)
    io.write(fd, Buffer.from("45"), 4)
    io.writev(fd, [Buffer.from("67"), Buffer.from("89")], 6)
    expect(mem.heldWrites).toBe(1)
    mem.completeWrite()
    expect(mem.heldWrites).toBe(1)
    expect(io.stats).toMatchObject({ issued: 2, coalesced: 3, pendingBytes: 6 })
    mem.completeWrite()
    expect(mem.readFile("/d/f")!.toString()).toBe("0123456789")
    expect(io.stats.pendingBytes).toBe(0)
  })

  it("close waits for pending writes; another fd on the same path sees them", async () => {
    const { mem, io, fd } = heldFile()
    io.write(fd, Buffer.from("abc"), 0)
    io.close(fd)
    expect(mem.size(fd)).toBe(0) // the inner fd is still open
    const fd2 = io.open("/d/f")
    const into = Buffer.alloc(3)
    expect(io.read(fd2, into, 0, 3, 0)).toBe(3)
    expect(into.toString()).toBe("abc")
    mem.completeWrite()
    expect(() => mem.size(fd)).toThrow(/EBADF/)
    expect(mem.readFile("/d/f")!.toString()).toBe("abc")
    io.close(fd2)
  })

  it("after unlink, a new file at the same path does not see the old file's pending writes", async () => {
    const { mem, io, fd } = heldFile()
    io.write(fd, Buffer.from("old"), 0)
    io.close(fd)
    io.unlink("/d/f")
    const fd2 = io.open("/d/f")
    expect(io.size(fd2)).toBe(0)
    mem.releaseWrites()
    expect(mem.readFile("/d/f")!.length).toBe(0)
  })

  it("a failed write fails the file: whenWritten reports it, later writes, truncations and syncs refuse", async () => {
    const { mem, io, fd } = heldFile()
    io.write(fd, Buffer.from("first"), 0)
    io.write(fd, Buffer.from("second"), 5)
    const reported: Array<unknown> = []
    io.whenWritten!(fd, (e) => reported.push(e))
    mem.completeWrite(0, "ENOSPC")
    expect(reported).toHaveLength(1)
    expect((reported[0] as NodeJS.ErrnoException).code).toBe("ENOSPC")
    expect(mem.heldWrites).toBe(0) // the queued write was never started
    expect(() => io.write(fd, Buffer.from("x"), 11)).toThrow(/ENOSPC/)
    expect(() => io.truncate(fd, 0)).toThrow(/ENOSPC/)
    await expect(io.fdatasync(fd)).rejects.toThrow(/ENOSPC/)
    expect(io.stats.pendingBytes).toBe(0)
    io.close(fd)
  })

  it("continues a short write with the rest of its bytes", async () => {
    class ShortWrites extends MemoryFileIO {
      calls = 0
      override writevAsync(
        fd: Fd,
        data: ReadonlyArray<Uint8Array>,
        position: number,
        done: (error: Error | null, written: number) => void
      ): void {
        this.calls++
        const all = Buffer.concat(data as Array<Uint8Array>)
        const half = this.calls === 1 ? Math.floor(all.length / 2) : all.length
        super.writevAsync(fd, [all.subarray(0, half)], position, (e) => done(e, half))
      }
    }
    const mem = new ShortWrites()
    mem.mkdirp("/d")
    const io = withAsyncWrites(mem)
    const fd = io.open("/d/f")
    io.writev(fd, [Buffer.from("abcdef"), Buffer.from("ghij")], 0)
    await new Promise<void>((resolve) => io.whenWritten!(fd, () => resolve()))
    expect(mem.calls).toBe(2)
    expect(mem.readFile("/d/f")!.toString()).toBe("abcdefghij")
  })

  it("an fd the inner FileIO opened itself passes through with synchronous writes", () => {
    const { mem, io } = setup()
    const fd = mem.open("/d/journal")
    io.write(fd, Buffer.from("now"), 0)
    expect(mem.readFile("/d/journal")!.toString()).toBe("now")
    let called = false
    io.whenWritten!(fd, () => (called = true))
    expect(called).toBe(true)
  })
})

describe("LogCore over asynchronous writes", () => {
  const dirs: Array<string> = []
  afterEach(() => {
    while (dirs.length) rmDir(dirs.pop()!)
  })

  it("a durability waiter is answered only after its write completed and the sync that followed", async () => {
    const { mem, io } = setup()
    const { log } = await openCore(io, "/d/l")
    mem.holdWrites()
    log.append(entries(0, 5, 1, 100), 0)
    const durable = settled(log.awaitDurable(4))
    await turns(10)
    expect(durable.done).toBe(false)
    expect(mem.crash().fileSize("/d/l/00000000000000000000.log")).toBe(0)
    mem.completeWrite()
    await turns(10)
    expect(durable).toEqual({ done: true, error: undefined })
    const { log: l2 } = await openCore(mem.crash(), "/d/l")
    expect(readAll(l2).map((e) => e.firstKey)).toEqual([0, 1, 2, 3, 4])
    await l2.close()
  })

  /** A log holding `count` durable entries of `size` bytes, with later writes held. */
  const durableThenHeld = async (count: number, size: number, config: Partial<LogConfig> = {}) => {
    const { mem, io } = setup()
    const { log } = await openCore(io, "/d/l", config)
    log.append(entries(0, count, 1, size), 0)
    await log.awaitDurable(count - 1)
    mem.holdWrites()
    return { mem, log }
  }

  /** A log under fsync never with three entries appended and their write held. */
  const neverWithHeldWrite = async () => {
    const { mem, io } = setup()
    const { log } = await openCore(io, "/d/l", {}, { policy: FsyncPolicy.never })
    mem.holdWrites()
    log.append(entries(0, 3, 1, 100), 0)
    return { mem, log }
  }

  it("onWritten answers once the entries appended before it are written", async () => {
    const { mem, log } = await neverWithHeldWrite()
    const answers: Array<unknown> = []
    log.onWritten((e) => answers.push(e ?? "written"))
    expect(answers).toEqual([])
    mem.releaseWrites()
    expect(answers).toEqual(["written"])
    let now = false
    log.onWritten(() => (now = true))
    expect(now).toBe(true)
    await log.close()
  })

  it("under fsync never, durability (the page cache: it survives the process) still waits for the write", async () => {
    const { mem, log } = await neverWithHeldWrite()
    const answers: Array<string> = []
    log.onDurable(2, (e) => answers.push(e === undefined ? "durable" : "error"))
    log.onSynced((e) => answers.push(e === undefined ? "synced" : "error"))
    await turns(5)
    expect(answers).toEqual([])
    mem.releaseWrites()
    expect(answers).toEqual(["durable", "synced"])
    await log.close()
  })

  it("reads entries still being written from the file view (no memory tier), vectored and copied paths alike", async () => {
    const { mem, io } = setup()
    const { log } = await openCore(io, "/d/l", { memoryTierBytes: 0, indexIntervalBytes: 256 })
    mem.holdWrites()
    log.append(entries(0, 20, 1, 100), 0) // one copied buffer
    log.append(entries(20, 5, 2, 6000), 0) // vectored: headers in buffers of their own
    log.append(entries(30, 20, 1, 100), 0)
    expect(mem.heldWrites).toBe(1)
    const all = readAll(log)
    expect(all.map((e) => e.firstKey)).toEqual([...Array.from({ length: 20 }, (_, i) => i), 20, 22, 24, 26, 28, ...Array.from({ length: 20 }, (_, i) => 30 + i)])
    for (const e of all) expect(e.payload.equals(payloadFor(e.firstKey, e.payload.length))).toBe(true)
    expect(log.entryAt(23)!.firstKey).toBe(22)
    expect(log.offsetForTimestamp(1_000_000 + 31)!.firstKey).toBe(31)
    mem.releaseWrites()
    await log.close()
    const { log: l2 } = await openCore(mem, "/d/l", { memoryTierBytes: 0 })
    expect(l2.recovery.truncatedBytes).toBe(0)
    expect(readAll(l2)).toEqual(all)
    await l2.close()
  })

  it("headers of held vectored writes stay intact while later appends encode theirs", async () => {
    const { mem, io } = setup()
    const { log } = await openCore(io, "/d/l", { memoryTierBytes: 0 })
    mem.holdWrites()
    for (let k = 0; k < 40; k += 4) log.append([entry(k, 2, 5000), entry(k + 2, 2, 5000)], 0)
    mem.releaseWrites()
    await log.close()
    // reopened through the plain FileIO: every frame's CRC is checked against the bytes that landed
    const { log: l2 } = await openCore(mem, "/d/l", { memoryTierBytes: 0 })
    expect(l2.recovery.truncatedBytes).toBe(0)
    expect(readAll(l2).map((e) => e.firstKey)).toEqual(Array.from({ length: 20 }, (_, i) => i * 2))
    await l2.close()
  })

  it("truncateAfter while the cut entries are still being written: they never come back", async () => {
    const { mem, log } = await durableThenHeld(10, 100, { memoryTierBytes: 0 })
    log.append(entries(10, 10, 1, 100), 0)
    log.truncateAfter(14)
    log.append(entries(15, 3, 1, 50), 0)
    expect(readAll(log).map((e) => e.payload.length)).toEqual([...Array(15).fill(100), 50, 50, 50])
    const durable = log.awaitDurable(17)
    mem.releaseWrites()
    await durable
    const { log: l2 } = await openCore(mem.crash(), "/d/l", { memoryTierBytes: 0 })
    expect(l2.recovery.truncatedBytes).toBe(0)
    expect(readAll(l2).map((e) => [e.firstKey, e.payload.length])).toEqual([
      ...Array.from({ length: 15 }, (_, i) => [i, 100]),
      [15, 50],
      [16, 50],
      [17, 50]
    ])
    await l2.close()
  })

  it("rolls, prefix deletes and a close with writes pending keep every entry (segments of 4 KiB)", async () => {
    const { mem, io } = setup()
    const { log } = await openCore(io, "/d/l", { segmentBytes: 4096, memoryTierBytes: 0 })
    mem.holdWrites()
    for (let k = 0; k < 100; k += 5) log.append(entries(k, 5, 1, 300), 0)
    expect(log.segmentBases.length).toBeGreaterThan(5)
    log.deleteBefore(log.segmentBases[2]!)
    const start = log.logStartKey
    const closed = settled(log.close())
    await turns(10)
    expect(closed.done).toBe(false) // close waits for the writes
    mem.releaseWrites()
    await turns(20)
    expect(closed).toEqual({ done: true, error: undefined })
    const { log: l2 } = await openCore(mem.crash(), "/d/l", { segmentBytes: 4096, memoryTierBytes: 0 })
    expect(l2.recovery.clean).toBe(true)
    expect(readAll(l2).map((e) => e.firstKey)).toEqual(Array.from({ length: 100 - start }, (_, i) => start + i))
    await l2.close()
  })

  it("close returns only after the index writes it made have landed", async () => {
    const { mem, io } = setup()
    const { log } = await openCore(io, "/d/l", { indexIntervalBytes: 256 })
    mem.holdWrites()
    log.append(entries(0, 50, 1, 200), 0)
    const closed = settled(log.close()) // writes the offset and time index entries not yet in their files
    await turns(10)
    expect(mem.heldWrites).toBe(3) // the segment, its offset index, its time index
    mem.completeWrite(0) // the segment's write: its fdatasync and the checkpoint follow
    await turns(10)
    expect(mem.heldWrites).toBe(2)
    expect(closed.done).toBe(false)
    mem.releaseWrites()
    await turns(10)
    expect(closed).toEqual({ done: true, error: undefined })
    expect(mem.fileSize("/d/l/00000000000000000000.index")).toBeGreaterThan(0)
  })

  it("a crash with writes pending keeps every durable entry and loses only undurable ones", async () => {
    const { mem, log } = await durableThenHeld(10, 200)
    log.append(entries(10, 10, 1, 200), 0)
    log.append(entries(20, 10, 1, 200), 0)
    mem.completeWrite() // 10..19 land; 20..29 stay in flight
    const crashed = mem.crash({ tear: true, random: () => 0.5 })
    const { log: l2 } = await openCore(crashed, "/d/l")
    const keys = readAll(l2).map((e) => e.firstKey)
    expect(keys.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => i))
    expect(keys.every((k, i) => k === i)).toBe(true)
    expect(keys.length).toBeLessThanOrEqual(20)
    await l2.close()
    mem.releaseWrites()
  })

  it("a failed write fails the log: onWritten and durability waiters get the error, appends are refused", async () => {
    const { mem, log } = await durableThenHeld(5, 100)
    log.append(entries(5, 5, 1, 100), 0)
    const written: Array<unknown> = []
    log.onWritten((e) => written.push(e))
    const durable = settled(log.awaitDurable(9))
    mem.completeWrite(0, "ENOSPC")
    await turns(10)
    expect(written).toHaveLength(1)
    expect(written[0]).toBeInstanceOf(StorageError)
    expect((written[0] as StorageError).code).toBe("ENOSPC")
    expect(durable.done).toBe(true)
    expect((durable.error as StorageError).code).toBe("ENOSPC")
    expect(() => log.append([entry(10, 1, 100)], 0)).toThrow(StorageError)
    await log.close().catch(() => undefined)
    const { log: l2 } = await openCore(mem.crash(), "/d/l")
    expect(readAll(l2).map((e) => e.firstKey)).toEqual([0, 1, 2, 3, 4])
    await l2.close()
  })

  it("the fault plan's write faults arrive at completion through instrument", async () => {
    const base = new MemoryFileIO()
    const { io: faulty, plan } = instrument(base)
    const io = withAsyncWrites(faulty)
    const sync = new WalSync(io, FsyncPolicy.batch)
    const { log } = await openCore(io, "/d/l", {}, { sync })
    plan.write = (file) => (file.endsWith(".log") ? { code: "EIO", partial: 30 } : undefined)
    log.append(entries(0, 3, 1, 100), 0) // returns: the fault comes later
    const error = await new Promise<unknown>((resolve) => log.onWritten(resolve))
    expect((error as StorageError).code).toBe("EIO")
    plan.write = undefined
    await log.close().catch(() => undefined)
    const { log: l2 } = await openCore(base.crash(), "/d/l")
    expect(l2.nextKey).toBe(0)
    await l2.close()
  })

  it("on real files: appends, reads, a sync and a reopen agree", async () => {
    const d = tmpDir()
    dirs.push(d)
    const io = withAsyncWrites(nodeFileIO)
    const dir = path.join(d, "l")
    const { log } = await openCore(io, dir, { segmentBytes: 100_000, memoryTierBytes: 0 })
    for (let k = 0; k < 400; k += 4) log.append([entry(k, 2, 3000), entry(k + 2, 2, 50)], 0)
    const before = readAll(log)
    expect(before).toHaveLength(200)
    await log.awaitDurable(399)
    await log.close()
    const segs = fs.readdirSync(dir).filter((f) => f.endsWith(".log"))
    expect(segs.length).toBeGreaterThan(2)
    const { log: l2 } = await openCore(nodeFileIO, dir, { segmentBytes: 100_000, memoryTierBytes: 0 })
    expect(l2.recovery.truncatedBytes).toBe(0)
    expect(readAll(l2)).toEqual(before)
    expect(l2.stats().sizeBytes).toBe(100 * (2 * FRAME_HEADER + 3050))
    await l2.close()
  })
})
