import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as path from "node:path"
import { MemoryFileIO, StorageConfig as SC, instrument } from "../../src/storage/index.js"
import * as LogStoreM from "../../src/storage/LogStore.js"
import { LogStore } from "../../src/storage/LogStore.js"
import { entries, entry, rmDir, tmpDir } from "./helpers.js"

/** A script exercising the public API; returns everything observable. */
const script = Effect.gen(function*() {
  const store = yield* LogStore
  const out: Array<unknown> = []
  const log = yield* store.open(LogStoreM.partitionLogId("orders", 3), { segmentBytes: 2000, indexIntervalBytes: 256 })
  for (let b = 0; b < 40; b++) {
    const r = yield* log.appendDurable([entry(b * 3, 3, 120 + b, { ts: 10_000 + b * 10, term: 1 + (b >> 4) })])
    out.push([r.firstKey, r.lastKey])
  }
  const read = yield* log.read(31, 700)
  out.push(read.entries.map((e) => [e.firstKey, e.lastKey, e.term, e.payload.length]))
  out.push((yield* log.offsetForTimestamp(10_205))?.firstKey)
  out.push(yield* log.read(500, 10).pipe(Effect.flip, Effect.map((e) => e._tag)))
  out.push(yield* log.append([entry(0)]).pipe(Effect.flip, Effect.map((e) => e._tag)))
  yield* log.truncateAfter(100)
  out.push(yield* log.nextKey)
  out.push(yield* log.enforceRetention({ retentionMs: -1, retentionBytes: 3000 }))
  out.push(yield* log.logStartKey)
  out.push((yield* log.stats).segments)
  out.push(yield* store.get("nope").pipe(Effect.flip, Effect.map((e) => e._tag)))
  const raft = yield* store.open("__raft/meta group")
  yield* raft.appendDurable(entries(1, 5, 1, 10))
  out.push(yield* raft.nextKey)
  out.push([...(yield* store.listOnDisk)].sort())
  yield* store.delete("__raft/meta group")
  out.push([...(yield* store.listOnDisk)].sort())
  out.push(yield* store.delete("__raft/meta group").pipe(Effect.flip, Effect.map((e) => e._tag)))
  return out
})

describe("LogStore", () => {
  it.effect("layerMemory and the file layer behave the same", () =>
    Effect.gen(function*() {
      const mem = yield* script.pipe(Effect.provide(LogStoreM.layerMemory))
      const dir = tmpDir()
      const files = yield* script.pipe(
        Effect.provide(LogStoreM.layer.pipe(Layer.provide(SC.layer({ dataDir: dir })))),
        Effect.ensuring(Effect.sync(() => rmDir(dir)))
      )
      expect(files).toEqual(mem)
      expect(mem[mem.length - 1]).toBe("LogNotFound")
      expect(mem).toContain("OffsetOutOfRange")
      expect(mem).toContain("InvalidAppend")
      expect(mem[mem.length - 3]).toEqual(["__raft%2Fmeta%20group", "orders-3"].map(LogStoreM.decodeLogId).sort())
    }))

  it.effect("data survives closing and reopening the store", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const layer = LogStoreM.layer.pipe(Layer.provide(SC.layer({ dataDir: dir })))
      yield* Effect.gen(function*() {
        const log = yield* (yield* LogStore).open("t-0")
        yield* log.appendDurable(entries(0, 100, 1, 64))
      }).pipe(Effect.provide(layer))
      const r = yield* Effect.gen(function*() {
        const store = yield* LogStore
        expect(yield* store.listOnDisk).toEqual(["t-0"])
        const log = yield* store.open("t-0")
        expect(log.recovery.clean).toBe(true)
        return yield* log.read(0, 1 << 20)
      }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => rmDir(dir))))
      expect(r.entries.length).toBe(100)
      void path
    }))

  it.effect("segment.ms rolls use the Effect clock (TestClock)", () =>
    Effect.gen(function*() {
      const log = yield* (yield* LogStore).open("t-1")
      yield* log.append([entry(0)])
      yield* TestClock.adjust("30 seconds")
      yield* log.append([entry(1)])
      expect((yield* log.stats).segments).toBe(1)
      yield* TestClock.adjust("31 seconds")
      yield* log.append([entry(2)])
      expect((yield* log.stats).segments).toBe(2)
    }).pipe(Effect.provide(LogStoreM.layerMemoryWith({ segmentMs: 60_000 }))))

  it.effect("I/O faults injected through StorageFileIO surface as StorageError", () => {
    const faulty = instrument(new MemoryFileIO())
    const layer = LogStoreM.layerFileIO.pipe(
      Layer.provide(Layer.succeed(LogStoreM.StorageFileIO, faulty.io)),
      Layer.provide(SC.layer({ dataDir: "/data" }))
    )
    return Effect.gen(function*() {
      const log = yield* (yield* LogStore).open("t-2")
      yield* log.appendDurable(entries(0, 3))
      faulty.plan.write = () => ({ code: "ENOSPC" })
      const e = yield* log.append([entry(3)]).pipe(Effect.flip)
      expect(e._tag).toBe("StorageError")
      const recovered = yield* log.append([entry(3)]).pipe(
        Effect.catchTag("StorageError", (err) => Effect.succeed(err.code))
      )
      expect(recovered).toBe("ENOSPC")
      faulty.plan.write = undefined
      yield* log.appendDurable([entry(3)])
      expect((yield* log.read(0, 1 << 20)).entries.length).toBe(4)
    }).pipe(Effect.provide(layer))
  })

  it.effect("many concurrent acks=all appends across partitions share group fsyncs", () => {
    const counted = instrument(new MemoryFileIO())
    const layer = LogStoreM.layerFileIO.pipe(
      Layer.provide(Layer.succeed(LogStoreM.StorageFileIO, counted.io)),
      Layer.provide(SC.layer({ dataDir: "/data" }))
    )
    return Effect.gen(function*() {
      const store = yield* LogStore
      const logs = yield* Effect.forEach([0, 1, 2, 3], (p) => store.open(`t-${p}`))
      const before = (yield* store.syncStats).fdatasyncs
      yield* Effect.forEach(
        Array.from({ length: 400 }, (_, i) => i),
        (i) => logs[i % 4]!.appendDurable([entry(Math.floor(i / 4))]),
        { concurrency: "unbounded", discard: true }
      )
      const used = (yield* store.syncStats).fdatasyncs - before
      expect(used).toBeGreaterThan(0)
      expect(used).toBeLessThanOrEqual(40)
      for (const l of logs) expect(yield* l.durableNextKey).toBe(100)
    }).pipe(Effect.provide(layer))
  })

  it.effect("Raft-style use: terms, conflict truncation, compaction, snapshot install", () =>
    Effect.gen(function*() {
      const log = yield* (yield* LogStore).open("__raft/group-7", { initialKey: 1, segmentBytes: 1500 })
      expect(yield* log.nextKey).toBe(1)
      // indexes 1..30, term 1 for 1..20, term 2 after
      for (let i = 1; i <= 30; i++) yield* log.append([entry(i, 1, 90, { term: i <= 20 ? 1 : 2, type: i % 3 })])
      yield* log.awaitDurable(30)
      expect((yield* log.entryAt(20))?.term).toBe(1)
      expect((yield* log.entryAt(21))?.term).toBe(2)
      expect((yield* log.entryAt(9))?.type).toBe(0)
      // a new leader's entry conflicts at 25: drop 25.. and append term 3
      yield* log.truncateAfter(24)
      yield* log.appendDurable([entry(25, 1, 90, { term: 3 })])
      expect((yield* log.entryAt(25))?.term).toBe(3)
      expect(yield* log.lastKey).toBe(25)
      // snapshot at 15: compact
      yield* log.deleteBefore(16)
      expect(yield* log.logStartKey).toBe(16)
      expect(yield* log.entryAt(10)).toBeUndefined()
      expect((yield* log.read(16, 1)).entries[0]!.lastKey).toBeGreaterThanOrEqual(16)
      // InstallSnapshot at 100: reset
      yield* log.reset(101)
      expect([yield* log.logStartKey, yield* log.nextKey]).toEqual([101, 101])
      yield* log.appendDurable([entry(101, 1, 10, { term: 4 })])
      expect((yield* log.entryAt(101))?.term).toBe(4)
    }).pipe(Effect.provide(LogStoreM.layerMemory)))

  it("encodes log ids as safe directory names", () => {
    expect(LogStoreM.encodeLogId("orders-3")).toBe("orders-3")
    expect(LogStoreM.encodeLogId("__raft/meta group")).toBe("__raft%2Fmeta%20group")
    expect(LogStoreM.encodeLogId("..")).toBe("%2E%2E")
    for (const id of ["a/b", "ü-0", "x y.z", "..", ".hidden"]) expect(LogStoreM.decodeLogId(LogStoreM.encodeLogId(id))).toBe(id)
  })
})
