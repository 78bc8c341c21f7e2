import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as fs from "node:fs"
import { FRAME_HEADER, InvalidAppend, OffsetOutOfRange, nodeFileIO, type AppendEntry } from "../../src/storage/index.js"
import { entries, entry, openCore, payloadFor, readAll, tmpDir, useFileBackends } from "./helpers.js"

const { dirs, backends } = useFileBackends()

describe.each(backends)("SegmentedLog (%s)", (_name, mk) => {
  it("appends and reads back batches across many segments (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(fc.record({ gap: fc.integer({ min: 0, max: 3 }), count: fc.integer({ min: 1, max: 5 }), size: fc.oneof(fc.integer({ min: 0, max: 700 }), fc.integer({ min: 4000, max: 9000 })) }), { minLength: 1, maxLength: 8 }),
          { minLength: 1, maxLength: 25 }
        ),
        fc.integer({ min: 0, max: 1 }),
        fc.nat(),
        fc.integer({ min: 1, max: 6000 }),
        async (batches, tier, probe, maxBytes) => {
          const { io, dir } = mk()
          const { log } = await openCore(io, dir, { segmentBytes: 2048, indexIntervalBytes: 256, memoryTierBytes: tier * 30000 })
          const all: Array<AppendEntry> = []
          let k = 0
          for (const b of batches) {
            const es = b.map((x) => {
              k += x.gap
              const e = entry(k, x.count, x.size)
              k += x.count
              return e
            })
            const r = log.append(es, 0)
            expect(r.firstKey).toBe(es[0]!.firstKey)
            all.push(...es)
          }
          expect(log.nextKey).toBe(k)
          // full scan equals what was written
          const got = readAll(log, 0, maxBytes)
          expect(got.map((e) => [e.firstKey, e.lastKey])).toEqual(all.map((e) => [e.firstKey, e.lastKey]))
          for (let i = 0; i < all.length; i++) expect(got[i]!.payload.equals(Buffer.from(all[i]!.payload))).toBe(true)
          // a read from any key returns the entry containing it (or the next one) first
          const key = probe % (k + 1)
          const r = log.read(key, maxBytes)
          const expectFirst = all.find((e) => e.lastKey >= key)
          if (!expectFirst) expect(r.entries.length).toBe(0)
          else {
            expect(r.entries[0]!.firstKey).toBe(expectFirst.firstKey)
            expect(r.bytes).toBe(r.entries.reduce((s, e) => s + e.payload.length, 0))
            expect(r.entries.length === 1 || r.bytes <= maxBytes).toBe(true)
          }
          // reopen: same content, indexes from disk
          await log.close()
          const { log: log2 } = await openCore(io, dir, { segmentBytes: 2048, indexIntervalBytes: 256 })
          const got2 = readAll(log2, 0, maxBytes)
          expect(got2.map((e) => [e.firstKey, e.lastKey, e.payload.length])).toEqual(all.map((e) => [e.firstKey, e.lastKey, e.payload.length]))
          expect(log2.recovery.clean).toBe(true)
          await log2.close()
          io.rmrf(dir)
        }
      ),
      { numRuns: 25 }
    )
  })

  it("reads starting inside an entry return the whole entry", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir)
    log.append([entry(0, 10), entry(10, 10), entry(20, 10)], 0)
    for (const k of [0, 5, 9]) expect(log.read(k, 1).entries.map((e) => e.firstKey)).toEqual([0])
    expect(log.read(15, 1).entries.map((e) => e.firstKey)).toEqual([10])
    expect(log.read(15, 10_000).entries.map((e) => e.firstKey)).toEqual([10, 20])
    expect(log.read(29, 10_000).nextFetchKey).toBe(30)
    expect(log.read(30, 10).entries).toEqual([])
    expect(() => log.read(31, 10)).toThrow(OffsetOutOfRange)
    // maxKey bounds the result to entries ending at or below it
    expect(log.read(0, 10_000, 19).entries.map((e) => e.lastKey)).toEqual([9, 19])
    expect(log.read(0, 10_000, 18).entries.map((e) => e.lastKey)).toEqual([9])
    expect(log.entryAt(15)?.firstKey).toBe(10)
    expect(log.entryAt(30)).toBeUndefined()
    // term/type/timestamp preserved
    const e = log.read(20, 1).entries[0]!
    expect([e.term, e.maxTimestamp, e.type]).toEqual([1, 1_000_020, 0])
    await log.close()
  })

  it("rejects keys that go backwards", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir)
    log.append([entry(0, 5)], 0)
    expect(() => log.append([entry(3)], 0)).toThrow(InvalidAppend)
    expect(() => log.append([{ ...entry(5), lastKey: 3 }], 0)).toThrow(InvalidAppend)
    // an empty-range entry (lastKey = firstKey - 1) must sit exactly at nextKey
    expect(() => log.append([{ ...entry(6), lastKey: 5 }], 0)).toThrow(InvalidAppend)
    expect(log.nextKey).toBe(5)
    await log.close()
  })

  it("index lookups stay correct after many segments and a reopen", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { segmentBytes: 8192, indexIntervalBytes: 300 })
    for (let b = 0; b < 200; b++) log.append(entries(b * 10, 10, 1, 57 + (b % 13)), 0)
    expect(log.segmentBases.length).toBeGreaterThan(20)
    await log.close()
    const { log: l2 } = await openCore(io, dir, { segmentBytes: 8192, indexIntervalBytes: 300 })
    expect(l2.recovery.scannedSegments).toBe(0)
    for (let k = 0; k < 2000; k += 37) {
      const r = l2.read(k, 1)
      expect(r.entries[0]!.firstKey).toBe(k)
      expect(r.entries[0]!.payload.equals(payloadFor(k, 57 + (Math.floor(k / 10) % 13)))).toBe(true)
    }
    await l2.close()
  })

  it("rolls by size and by age", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { segmentBytes: 1000, segmentMs: 60_000 }, { now: 0 })
    log.append([entry(0, 1, 400)], 0)
    log.append([entry(1, 1, 400)], 1)
    expect(log.segmentBases).toEqual([0])
    log.append([entry(2, 1, 400)], 2)
    expect(log.segmentBases).toEqual([0, 2])
    // a batch larger than a segment still goes in (alone), split at entry boundaries
    log.append([entry(3, 1, 900), entry(4, 1, 900), entry(5, 1, 2)], 3)
    expect(log.segmentBases).toEqual([0, 2, 3, 4])
    // age: segment 6 is started at t=10_000, rolls once it is 60 s old
    log.append([entry(6, 1, 10)], 10_000)
    expect(log.segmentBases).toEqual([0, 2, 3, 4, 6])
    log.append([entry(7, 1, 10)], 69_999)
    expect(log.segmentBases).toEqual([0, 2, 3, 4, 6])
    log.append([entry(8, 1, 10)], 70_000)
    expect(log.segmentBases).toEqual([0, 2, 3, 4, 6, 8])
    const files = io.readdir(dir).filter((f) => f.endsWith(".log")).sort()
    expect(files[1]).toBe("00000000000000000002.log")
    expect(readAll(log).map((e) => e.firstKey)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8])
    await log.close()
  })

  it("truncateAfter removes a suffix (whole entries) and survives reopen", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { segmentBytes: 2000, memoryTierBytes: 1500 })
    for (let b = 0; b < 30; b++) log.append([entry(b * 5, 5, 200, { term: 1 + Math.floor(b / 10), ts: 100 + b })], 0)
    expect(log.segmentBases.length).toBeGreaterThan(3)
    log.truncateAfter(77) // entry 75..79 straddles 77: removed whole
    expect(log.nextKey).toBe(75)
    expect(readAll(log).at(-1)!.lastKey).toBe(74)
    expect(log.offsetForTimestamp(1000)).toBeUndefined()
    expect(log.offsetForTimestamp(114)!.firstKey).toBe(70)
    // new entries with a new term take the truncated keys
    log.append([entry(75, 5, 300, { term: 9, ts: 500 })], 0)
    expect(log.read(75, 1).entries[0]!.term).toBe(9)
    await log.close()
    const { log: l2 } = await openCore(io, dir, { segmentBytes: 2000 })
    expect(l2.nextKey).toBe(80)
    expect(readAll(l2).map((e) => e.firstKey)).toEqual(Array.from({ length: 16 }, (_, i) => i * 5))
    expect(l2.read(75, 1).entries[0]!.term).toBe(9)
    l2.truncateAfter(-1)
    expect(l2.nextKey).toBe(0)
    expect(readAll(l2)).toEqual([])
    l2.append([entry(0)], 0)
    expect(readAll(l2).length).toBe(1)
    await l2.close()
  })

  it("deleteBefore and retention remove whole segments and move logStartKey durably", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { segmentBytes: 1100 })
    for (let i = 0; i < 20; i++) log.append([entry(i * 2, 2, 500, { ts: 1000 + i * 100 })], 0)
    const bases = log.segmentBases
    expect(bases.length).toBe(10)
    expect(log.deleteBefore(5)).toBe(1) // segment [0..3] gone, [4..7] keeps key 5
    expect(log.logStartKey).toBe(5)
    expect(() => log.read(4, 10)).toThrow(OffsetOutOfRange)
    expect(log.read(5, 1).entries[0]!.firstKey).toBe(4) // entry containing logStartKey
    // retention by time: segment j (keys 4j..4j+3) has newest ts 1000 + 200j + 100
    const r = log.enforceRetention({ retentionMs: 1000, retentionBytes: -1, now: 2700 })
    expect(r.deletedSegments).toBe(2)
    expect(log.logStartKey).toBe(12)
    // retention by size: delete while the rest stays >= retentionBytes
    const r2 = log.enforceRetention({ retentionMs: -1, retentionBytes: 2500, now: 0 })
    expect(r2.deletedSegments).toBe(4)
    expect(log.stats().sizeBytes).toBe(3 * 2 * (500 + FRAME_HEADER))
    expect(log.logStartKey).toBe(28)
    // the active segment is never deleted by retention
    log.enforceRetention({ retentionMs: 0, retentionBytes: 0, now: 1e12 })
    expect(log.segmentBases.length).toBe(1)
    const start = log.logStartKey
    expect(start).toBe(36)
    await log.close()
    const { log: l2 } = await openCore(io, dir, { segmentBytes: 1100 })
    expect(l2.logStartKey).toBe(start)
    expect(readAll(l2).map((e) => e.firstKey)).toEqual([36, 38])
    // deleting everything rolls the active segment (Raft compaction after a snapshot)
    l2.deleteBefore(40)
    expect(l2.logStartKey).toBe(40)
    expect(l2.nextKey).toBe(40)
    expect(l2.segmentBases).toEqual([40])
    l2.append([entry(40)], 0)
    await l2.close()
  })

  it("offsetForTimestamp finds the first entry with maxTimestamp >= ts (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 120 }), fc.array(fc.integer({ min: -5, max: 1010 }), { maxLength: 20 }), async (tss, queries) => {
        const { io, dir } = mk()
        const { log } = await openCore(io, dir, { segmentBytes: 1500, indexIntervalBytes: 200 })
        tss.forEach((ts, i) => log.append([entry(i, 1, 90, { ts })], 0))
        const check = (l: typeof log) => {
          for (const q of queries) {
            const want = tss.findIndex((t) => t >= q)
            const got = l.offsetForTimestamp(q)
            expect(got?.firstKey ?? -1).toBe(want)
          }
        }
        check(log)
        await log.close()
        const { log: l2 } = await openCore(io, dir, { segmentBytes: 1500, indexIntervalBytes: 200 })
        check(l2)
        await l2.close()
        io.rmrf(dir)
      }),
      { numRuns: 30 }
    )
  })

  it("reset drops everything and restarts at a key", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { segmentBytes: 1000 })
    log.append(entries(0, 20, 1, 200), 0)
    log.reset(1000)
    expect([log.logStartKey, log.nextKey]).toEqual([1000, 1000])
    expect(() => log.append([entry(999)], 0)).toThrow(InvalidAppend)
    log.append([entry(1000)], 0)
    await log.close()
    const { log: l2 } = await openCore(io, dir)
    expect([l2.logStartKey, l2.nextKey]).toEqual([1000, 1001])
    await l2.close()
  })

  it("memory tier serves recent reads without touching disk", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { memoryTierBytes: 10_000 })
    log.append(entries(0, 100, 1, 200), 0)
    const r = log.read(90, 100_000)
    expect(r.fromMemory).toBe(true)
    expect(r.entries.map((e) => e.firstKey)).toEqual([90, 91, 92, 93, 94, 95, 96, 97, 98, 99])
    const old = log.read(0, 1000)
    expect(old.fromMemory).toBe(false)
    expect(old.entries.map((e) => e.firstKey)).toEqual([0, 1, 2, 3, 4])
    expect(log.stats().memoryTierBytes).toBeLessThanOrEqual(10_000)
    log.truncateAfter(94)
    const r2 = log.read(90, 100_000)
    expect(r2.fromMemory).toBe(true)
    expect(r2.entries.map((e) => e.firstKey)).toEqual([90, 91, 92, 93, 94])
    await log.close()
  })
})

describe("SegmentedLog files", () => {
  it("uses Kafka-style 20-digit segment names with .index and .timeindex", async () => {
    const d = tmpDir()
    dirs.push(d)
    const { log } = await openCore(nodeFileIO, d, { segmentBytes: 1000, indexIntervalBytes: 100 })
    log.append(entries(0, 10, 1, 300), 0)
    await log.close()
    const files = fs.readdirSync(d).sort()
    expect(files).toContain("00000000000000000000.log")
    expect(files).toContain("00000000000000000002.index")
    expect(files).toContain("00000000000000000002.timeindex")
    expect(files).toContain("checkpoint.json")
  })
})
