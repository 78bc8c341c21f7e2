import { describe, expect, it } from "@effect/vitest"
import { FsyncPolicy, MemoryFileIO, WalSync, instrument, nodeFileIO } from "../../src/storage/index.js"
import { entry, holdingFdatasync, openCore, rmDir, tmpDir } from "./helpers.js"
import * as path from "node:path"

describe("group commit", () => {
  it("batch policy: many concurrent durable appends share few fdatasyncs (real files)", async () => {
    const d = tmpDir()
    try {
      const { io, stats } = instrument(nodeFileIO)
      const { log } = await openCore(io, d, { segmentBytes: 1 << 30 })
      const before = stats.fdatasyncs
      const N = 300
      await Promise.all(
        Array.from({ length: N }, (_, i) => {
          log.append([entry(i, 1, 200)], 0)
          return log.awaitDurable(i)
        })
      )
      const used = stats.fdatasyncs - before
      expect(log.durableNextKey).toBe(N)
      expect(used).toBeGreaterThan(0)
      expect(used).toBeLessThanOrEqual(N / 20)
      await log.close()
    } finally {
      rmDir(d)
    }
  })

  it("batch policy: one pass syncs all dirty logs of the node", async () => {
    const { io, stats } = instrument(new MemoryFileIO())
    const sync = new WalSync(io, FsyncPolicy.batch)
    const logs = await Promise.all(Array.from({ length: 20 }, (_, i) => openCore(io, `/d/log-${i}`, {}, { sync })))
    const before = { f: stats.fdatasyncs, p: sync.stats.passes }
    const waits: Array<Promise<void>> = []
    for (let round = 0; round < 10; round++) {
      for (const { log } of logs) {
        log.append([entry(round)], 0)
        waits.push(log.awaitDurable(round))
      }
    }
    await Promise.all(waits)
    expect(sync.stats.passes - before.p).toBeLessThanOrEqual(2)
    expect(stats.fdatasyncs - before.f).toBeLessThanOrEqual(40) // one per dirty file per pass
    for (const { log } of logs) await log.close()
  })

  it("a write that misses a running pass starts the next one at once; at most two overlap; durable marks only move forward", async () => {
    // while `state.hold`, fdatasync runs only when the test releases it
    const { io, state } = holdingFdatasync(new MemoryFileIO())
    const held = state.held
    const tick = () => new Promise((res) => setImmediate(res))
    const { log, sync } = await openCore(io, "/d/l")
    state.hold = true
    const passes = sync.stats.passes
    const done = [false, false, false]
    log.append([entry(0)], 0)
    void log.awaitDurable(0).then(() => (done[0] = true))
    await tick()
    expect(held.length).toBe(1) // pass 1 in flight
    log.append([entry(1)], 0)
    void log.awaitDurable(1).then(() => (done[1] = true))
    await tick()
    expect(held.length).toBe(2) // pass 2 started without waiting for pass 1
    log.append([entry(2)], 0)
    void log.awaitDurable(2).then(() => (done[2] = true))
    await tick()
    expect(held.length).toBe(2) // a third waits: two at most
    // pass 2 finishes first: it covers everything written before it started, key 0 included
    const [pass1, pass2] = held.splice(0, 2)
    pass2!()
    await tick()
    await tick()
    expect(log.durableNextKey).toBe(2)
    expect(done).toEqual([true, true, false])
    expect(held.length).toBe(1) // the waiting write got its pass
    pass1!()
    await tick()
    expect(log.durableNextKey).toBe(2) // the older pass does not move it back
    held.splice(0).forEach((release) => release())
    await tick()
    await tick()
    expect(log.durableNextKey).toBe(3)
    expect(done).toEqual([true, true, true])
    expect(sync.stats.passes - passes).toBe(3)
    state.hold = false
    await log.close()
  })

  it("acks=1 returns before durability, acks=all waits for the fsync", async () => {
    const { io, stats } = instrument(new MemoryFileIO())
    const { log } = await openCore(io, "/d/l")
    const before = stats.fdatasyncs
    log.append([entry(0)], 0)
    expect(log.nextKey).toBe(1)
    expect(log.durableNextKey).toBe(0)
    expect(stats.fdatasyncs).toBe(before)
    await log.awaitDurable(0)
    expect(log.durableNextKey).toBe(1)
    expect(stats.fdatasyncs).toBe(before + 1)
    await log.awaitDurable(0) // already durable: no new fsync
    expect(stats.fdatasyncs).toBe(before + 1)
    await log.close()
  })

  it("never policy: no fsync on the append path, waits return at once", async () => {
    const { io, stats } = instrument(new MemoryFileIO())
    const { log } = await openCore(io, "/d/l", {}, { policy: FsyncPolicy.never })
    const before = stats.fdatasyncs
    for (let i = 0; i < 50; i++) {
      log.append([entry(i)], 0)
      await log.awaitDurable(i)
    }
    expect(stats.fdatasyncs).toBe(before)
    await log.close() // close still syncs
    expect(stats.fdatasyncs).toBeGreaterThan(before)
  })

  it("interval policy: dirty files are synced on the timer", async () => {
    const { io, stats } = instrument(new MemoryFileIO())
    const sync = new WalSync(io, FsyncPolicy.interval(30))
    try {
      const { log } = await openCore(io, "/d/l", {}, { sync })
      const before = stats.fdatasyncs
      const t0 = Date.now()
      for (let i = 0; i < 100; i++) log.append([entry(i)], 0)
      const waits = Array.from({ length: 100 }, (_, i) => log.awaitDurable(i))
      expect(stats.fdatasyncs).toBe(before)
      await Promise.all(waits)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(10)
      expect(stats.fdatasyncs - before).toBe(1)
      await log.close()
    } finally {
      sync.close()
    }
  })

  it("background requests: a pass waits for the delay unless an urgent request starts it; requests in the window share it", async () => {
    const { io, stats } = instrument(new MemoryFileIO())
    const tick = () => new Promise((res) => setImmediate(res))
    // a delay no test waits for: only an urgent request can start the pass
    const sync = new WalSync(io, FsyncPolicy.batch, undefined, 60_000)
    try {
      const { log } = await openCore(io, "/d/l", {}, { sync })
      const passes = sync.stats.passes
      const before = stats.fdatasyncs
      const synced: Array<number> = []
      for (let i = 0; i < 5; i++) {
        log.append([entry(i)], 0)
        log.onSynced(() => synced.push(i), true)
      }
      for (let i = 0; i < 5; i++) await tick()
      expect(synced).toEqual([])
      expect(sync.stats.passes).toBe(passes)
      expect(stats.fdatasyncs).toBe(before)
      // an acks=all-style wait (by key) is urgent: one pass at once covers the background waiters too
      await log.awaitDurable(4)
      expect(synced).toEqual([0, 1, 2, 3, 4])
      expect(sync.stats.passes - passes).toBe(1)
      await log.close()
    } finally {
      sync.close()
    }
    // a short delay: the background waiters are answered by one pass after it
    const short = new WalSync(io, FsyncPolicy.batch, undefined, 20)
    try {
      const { log } = await openCore(io, "/d/m", {}, { sync: short })
      const passes = short.stats.passes
      const t0 = Date.now()
      const waits: Array<Promise<void>> = []
      for (let i = 0; i < 5; i++) {
        log.append([entry(i)], 0)
        waits.push(new Promise<void>((resolve, reject) => log.onSynced((e) => (e ? reject(e) : resolve()), true)))
      }
      await Promise.all(waits)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(15)
      expect(short.stats.passes - passes).toBe(1)
      expect(log.durableNextKey).toBe(5)
      await log.close()
    } finally {
      short.close()
    }
  })

  it("background requests: a waiter left behind a pass that answered a key waiter gets its pass at once", async () => {
    const { io, state } = holdingFdatasync(new MemoryFileIO())
    const held = state.held
    const tick = () => new Promise((res) => setImmediate(res))
    const sync = new WalSync(io, FsyncPolicy.batch, undefined, 60_000)
    try {
      const { log } = await openCore(io, "/d/l", {}, { sync })
      state.hold = true
      const passes = sync.stats.passes
      // an acks=all append: its key waiter starts a pass
      log.append([entry(0)], 0)
      let keyDone = false
      void log.awaitDurable(0).then(() => (keyDone = true))
      await tick()
      expect(held.length).toBe(1)
      // an acks=1 append, then the Raft commit notice for both (background): it needs a later pass
      log.append([entry(1)], 0)
      let noticeDone = false
      log.onSynced(() => (noticeDone = true), true)
      await tick()
      expect(held.length).toBe(1)
      held.splice(0).forEach((release) => release())
      for (let i = 0; i < 3; i++) await tick()
      expect(keyDone).toBe(true)
      expect(noticeDone).toBe(false)
      // the notice carries the acks=all commit: its pass starts without the delay
      expect(held.length).toBe(1)
      held.splice(0).forEach((release) => release())
      for (let i = 0; i < 3; i++) await tick()
      expect(noticeDone).toBe(true)
      expect(sync.stats.passes - passes).toBe(2)
      state.hold = false
      await log.close()
    } finally {
      state.hold = false
      sync.close()
    }
  })

  it("parses fsync policies", () => {
    expect(FsyncPolicy.parse("batch")).toEqual({ _tag: "batch" })
    expect(FsyncPolicy.parse("never")).toEqual({ _tag: "never" })
    expect(FsyncPolicy.parse("interval:250")).toEqual({ _tag: "interval", ms: 250 })
    expect(FsyncPolicy.parse("sometimes")).toBeUndefined()
    expect(FsyncPolicy.format(FsyncPolicy.interval(5))).toBe("interval:5")
    void path
  })
})

describe("roll sync", () => {
  it("a sealed segment is synced in the background even under policy never", async () => {
    const mem = new MemoryFileIO()
    const { io, stats } = instrument(mem)
    const { log } = await openCore(io, "/d/l", { segmentBytes: 1000 }, { policy: FsyncPolicy.never })
    const before = stats.fdatasyncs
    for (let i = 0; i < 10; i++) log.append([entry(i, 1, 300)], 0)
    expect(log.segmentBases.length).toBeGreaterThan(2)
    await new Promise((r) => setTimeout(r, 20))
    expect(stats.fdatasyncs).toBeGreaterThan(before)
    log.abandon()
    // after a crash, the sealed segments are trusted (below the recovery point) and not rescanned
    const { log: l2 } = await openCore(mem.crash(), "/d/l", { segmentBytes: 1000 })
    expect(l2.recovery.scannedSegments).toBe(1)
    expect(l2.nextKey).toBeGreaterThanOrEqual(9)
    await l2.close()
  })
})
