/**
 * Frame v2 (Raft index), empty-range entries, the Raft-index API of LogCore
 * and onSynced (docs/storage.md, docs/partition-raft.md).
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  FRAME_HEADER,
  FsyncPolicy,
  InvalidAppend,
  MemoryFileIO,
  WalSync,
  encodeFrame,
  instrument,
  type AppendEntry,
  type FileIO
} from "../../src/storage/index.js"
import type { LogCore } from "../../src/storage/SegmentedLog.js"
import { entry, openCore, payloadFor, readAll, useFileBackends } from "./helpers.js"

const { backends } = useFileBackends()

/** A data entry with a Raft index. */
const data = (firstKey: number, count: number, index: number, opts: { term?: number; size?: number; ts?: number } = {}): AppendEntry => ({
  ...entry(firstKey, count, opts.size ?? 100, { term: opts.term ?? 1, ...(opts.ts !== undefined ? { ts: opts.ts } : {}) }),
  index
})

/** An empty-range entry (takes no key) at `key` with a Raft index. */
const noop = (key: number, index: number, opts: { term?: number; size?: number; type?: number } = {}): AppendEntry => ({
  firstKey: key,
  lastKey: key - 1,
  term: opts.term ?? 1,
  maxTimestamp: 5_000_000, // ignored: stored as -1
  type: opts.type ?? 1,
  payload: payloadFor(key + 1000 * index, opts.size ?? 0),
  index
})

/**
 * Appends a mixed Raft log: for each step, a data batch of 5 keys and, every
 * third step, a no-op before it and a config-change entry after it. Returns
 * the entries appended, in order.
 */
const appendMixed = (log: LogCore, steps: number, size = 300, term = 1): Array<AppendEntry> => {
  const out: Array<AppendEntry> = []
  let key = log.nextKey
  let index = log.lastIndex() + 1
  for (let s = 0; s < steps; s++) {
    const batch: Array<AppendEntry> = []
    if (s % 3 === 0) batch.push(noop(key, index++, { term }))
    batch.push(data(key, 5, index++, { term, size, ts: 1_000_000 + key }))
    key += 5
    if (s % 3 === 0) batch.push(noop(key, index++, { term, size: 20, type: 2 }))
    log.append(batch, 0)
    out.push(...batch)
  }
  return out
}

const keyed = (es: ReadonlyArray<AppendEntry>) => es.filter((e) => e.lastKey >= e.firstKey)

describe.each(backends)("Raft index and empty-range entries (%s)", (_name, mk) => {
  it("key reads skip empty-range entries across segment rolls; nextKey, sparse and time indexes are unaffected", async () => {
    const { io, dir } = mk()
    for (const tier of [0, 64 * 1024]) {
      const d = `${dir}-${tier}`
      const { log } = await openCore(io, d, { segmentBytes: 2000, indexIntervalBytes: 300, memoryTierBytes: tier })
      const all = appendMixed(log, 40)
      expect(log.segmentBases.length).toBeGreaterThan(5)
      expect(log.nextKey).toBe(200)
      expect(log.lastIndex()).toBe(all.length)
      // every read returns exactly the keyed entries
      const got = readAll(log, 0, 1000)
      expect(got.map((e) => [e.firstKey, e.lastKey, e.index])).toEqual(keyed(all).map((e) => [e.firstKey, e.lastKey, e.index]))
      for (const e of got) expect(e.lastKey).toBeGreaterThanOrEqual(e.firstKey)
      // a read from every key finds the entry containing it first (boundary keys sit right after a no-op)
      for (let k = 0; k < 200; k++) {
        const r = log.read(k, 1)
        expect(r.entries[0]!.firstKey).toBe(k - (k % 5))
        expect(r.entries[0]!.payload).toEqual(payloadFor(k - (k % 5), 300))
        expect(log.entryAt(k)!.firstKey).toBe(k - (k % 5))
      }
      // time index: first entry with maxTimestamp >= ts is a keyed one (no-ops carry -1)
      expect(log.offsetForTimestamp(-1)!.firstKey).toBe(0)
      expect(log.offsetForTimestamp(1_000_000 + 97)!.firstKey).toBe(100)
      expect(log.offsetForTimestamp(1_000_000 + 196)).toBeUndefined()
      expect(log.maxTimestampBefore(200)!.firstKey).toBe(195)
      expect(log.maxTimestampBefore(100)!.firstKey).toBe(95)
      // the sparse index never holds the same key twice and is found again after a reopen
      await log.close()
      const { log: l2 } = await openCore(io, d, { segmentBytes: 2000, indexIntervalBytes: 300, memoryTierBytes: tier })
      expect(l2.recovery.clean).toBe(true)
      expect(l2.recovery.rebuiltIndexes).toEqual([])
      expect(l2.nextKey).toBe(200)
      expect(l2.lastIndex()).toBe(all.length)
      expect(l2.lastIndexTerm()).toBe(1)
      expect(l2.firstIndex()).toBe(1)
      for (let k = 0; k < 200; k += 5) expect(l2.read(k, 1).entries[0]!.firstKey).toBe(k)
      expect(readAll(l2, 0, 700).length).toBe(40)
      await l2.close()
    }
  })

  it("a segment holding only empty-range entries is not rolled (its successor would get the same base)", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { segmentBytes: 500 })
    log.append([data(0, 1, 1, { size: 300 })], 0)
    log.roll(1, 0)
    expect(log.segmentBases).toEqual([0, 1])
    for (let i = 0; i < 10; i++) log.append([noop(1, 2 + i, { size: 100 })], 0)
    // full of no-ops, past segmentBytes: still one segment based at 1
    expect(log.segmentBases).toEqual([0, 1])
    expect(log.stats().sizeBytes).toBe(300 + FRAME_HEADER + 10 * (100 + FRAME_HEADER))
    log.roll(1, 0) // no-op
    log.append([data(1, 1, 12, { size: 300 })], 0)
    log.append([data(2, 1, 13, { size: 300 })], 0)
    expect(log.segmentBases).toEqual([0, 1, 2])
    expect(log.read(1, 1).entries[0]!.firstKey).toBe(1)
    expect(log.entriesFromIndex(2, 1 << 20).map((e) => e.index)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])
    await log.close()
    const { log: l2 } = await openCore(io, dir, { segmentBytes: 500 })
    expect(l2.segmentBases).toEqual([0, 1, 2])
    expect(l2.lastIndex()).toBe(13)
    expect(readAll(l2).map((e) => e.firstKey)).toEqual([0, 1, 2])
    await l2.close()
  })

  it("the vectored write path (large payloads) writes the same frames, empty payloads included", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { segmentBytes: 1 << 20, memoryTierBytes: 1 << 16 })
    const batch = [noop(0, 1), data(0, 2, 2, { size: 20_000 }), noop(2, 3, { size: 3 }), data(2, 1, 4, { size: 9000 })]
    log.append(batch, 0)
    expect([log.nextKey, log.lastIndex(), log.stats().sizeBytes]).toEqual([3, 4, 4 * FRAME_HEADER + 29_003])
    const check = (l: LogCore) => {
      const es = l.entriesFromIndex(1, 1 << 30)
      expect(es.map((e) => [e.index, e.firstKey, e.lastKey, e.payload.length])).toEqual(
        batch.map((e) => [e.index, e.firstKey, e.lastKey, e.payload.length])
      )
      for (let i = 0; i < es.length; i++) expect(Buffer.compare(es[i]!.payload, Buffer.from(batch[i]!.payload))).toBe(0)
      expect(readAll(l).map((e) => e.index)).toEqual([2, 4])
    }
    check(log)
    await log.close()
    const { log: l2 } = await openCore(io, dir, { segmentBytes: 1 << 20 })
    expect(l2.recovery.truncatedBytes).toBe(0)
    check(l2)
    await l2.close()
  })

  it("validates Raft indexes and empty ranges on append; reset accepts any index next", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir)
    log.append([data(0, 2, 7, { term: 3 })], 0)
    expect(log.lastIndex()).toBe(7)
    expect(log.lastIndexTerm()).toBe(3)
    expect(() => log.append([data(2, 1, 9)], 0)).toThrow(InvalidAppend) // gap
    expect(() => log.append([data(2, 1, 7)], 0)).toThrow(InvalidAppend) // repeat
    expect(() => log.append([entry(2)], 0)).toThrow(InvalidAppend) // no index in a Raft log
    expect(() => log.append([noop(3, 8)], 0)).toThrow(InvalidAppend) // empty range not at nextKey
    expect(() => log.append([data(2, 1, 8), data(3, 1, 10)], 0)).toThrow(InvalidAppend) // gap inside a batch
    expect(log.nextKey).toBe(2)
    expect(log.lastIndex()).toBe(7)
    log.append([noop(2, 8, { term: 4 }), data(2, 1, 9, { term: 4 }), noop(3, 10, { term: 4 })], 0)
    expect(log.nextKey).toBe(3)
    expect(log.lastIndex()).toBe(10)
    expect(log.lastIndexTerm()).toBe(4)
    expect(log.termAtIndex(7)).toBe(3)
    expect(log.termAtIndex(8)).toBe(4)
    expect(log.termAtIndex(6)).toBeUndefined()
    expect(log.termAtIndex(11)).toBeUndefined()
    log.reset(100, 0)
    expect(log.lastIndex()).toBe(0)
    expect(log.lastIndexTerm()).toBe(0)
    expect(log.firstIndex()).toBe(0)
    log.append([noop(100, 500, { term: 9 })], 0)
    expect(log.nextKey).toBe(100)
    expect(log.lastIndex()).toBe(500)
    expect(log.firstIndex()).toBe(500)
    expect(log.lastIndexTerm()).toBe(9)
    await log.close()
    // a log without indexes keeps working as before
    const { log: plain } = await openCore(io, `${dir}-plain`)
    plain.append([entry(0), entry(1)], 0)
    expect(plain.lastIndex()).toBe(0)
    expect(plain.lastIndexTerm()).toBe(0)
    expect(plain.entriesFromIndex(1, 100)).toEqual([])
    await plain.close()
  })

  it("recovery keeps lastIndex/lastIndexTerm: clean reopen, torn tail, index discontinuity at the tail", async () => {
    const { io, dir } = mk()
    const cfg = { segmentBytes: 3000, indexIntervalBytes: 400 }
    const { log } = await openCore(io, dir, cfg)
    const all = appendMixed(log, 30, 200, 2)
    const n = all.length
    await log.close()
    // clean reopen
    let o = await openCore(io, dir, cfg)
    expect(o.log.recovery.clean).toBe(true)
    expect([o.log.lastIndex(), o.log.lastIndexTerm(), o.log.firstIndex(), o.log.nextKey]).toEqual([n, 2, 1, 150])
    // append a frame, then tear it: the last frame is cut, lastIndex goes back
    o.log.append([data(150, 2, n + 1, { term: 3, size: 500 })], 0)
    await o.log.syncAll()
    const last = path.join(dir, o.log.segmentBases.map((b) => String(b).padStart(20, "0")).pop()! + ".log")
    await o.log.close()
    const cp = path.join(dir, "checkpoint.json")
    const tear = (io: FileIO, cut: number) => {
      const fd = io.open(last)
      const size = io.size(fd)
      io.truncate(fd, size - cut)
      io.close(fd)
      io.writeFileDurable(cp, Buffer.from(JSON.stringify({ logStartKey: 0, recoveryPoint: 0, clean: false, activeSize: -1 })))
    }
    tear(io, 100)
    o = await openCore(io, dir, cfg)
    expect(o.log.recovery.truncatedBytes).toBe(500 + FRAME_HEADER - 100)
    expect([o.log.lastIndex(), o.log.lastIndexTerm(), o.log.nextKey]).toEqual([n, 2, 150])
    // a frame with a good CRC whose index does not follow: treated as a torn tail
    const bad = Buffer.alloc(FRAME_HEADER + 40)
    encodeFrame(bad, 0, data(150, 1, n + 5, { term: 3, size: 40 }))
    const good = Buffer.alloc(FRAME_HEADER + 10)
    encodeFrame(good, 0, { ...noop(150, n + 1, { term: 3, size: 10 }) })
    await o.log.close()
    {
      const fd = io.open(last)
      const size = io.size(fd)
      io.write(fd, good, size)
      io.write(fd, bad, size + good.length)
      await io.fdatasync(fd)
      io.close(fd)
      io.writeFileDurable(cp, Buffer.from(JSON.stringify({ logStartKey: 0, recoveryPoint: 0, clean: false, activeSize: -1 })))
    }
    o = await openCore(io, dir, cfg)
    expect(o.log.recovery.truncation?.reason).toMatch(/index .* does not follow/)
    expect(o.log.recovery.truncatedBytes).toBe(bad.length)
    expect([o.log.lastIndex(), o.log.lastIndexTerm(), o.log.nextKey]).toEqual([n + 1, 3, 150])
    // appends continue from the recovered index
    expect(() => o.log.append([data(150, 1, n + 5)], 0)).toThrow(InvalidAppend)
    o.log.append([data(150, 1, n + 2, { term: 3 })], 0)
    expect(o.log.lastIndex()).toBe(n + 2)
    await o.log.close()
  })

  it("an index discontinuity inside a trusted sealed segment is WalCorrupt, not a silent truncation", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { segmentBytes: 1500 })
    for (let i = 0; i < 30; i++) log.append([data(i, 1, i + 1, { size: 100 })], 0)
    expect(log.segmentBases.length).toBeGreaterThan(2)
    await log.close()
    // frame 3 of the first (sealed, trusted) segment gets another index, with a valid CRC
    const seg0 = path.join(dir, "00000000000000000000")
    const fd = io.open(`${seg0}.log`)
    const at = 3 * (FRAME_HEADER + 100)
    const frame = Buffer.alloc(FRAME_HEADER + 100)
    io.read(fd, frame, 0, frame.length, at)
    encodeFrame(frame, 0, { ...data(3, 1, 77, { size: 100 }), payload: frame.subarray(FRAME_HEADER) })
    io.write(fd, frame, at)
    await io.fdatasync(fd)
    io.close(fd)
    // without index files the sealed segment gets a full (strict) scan
    io.unlink(`${seg0}.index`)
    io.unlink(`${seg0}.timeindex`)
    const err = await openCore(io, dir, { segmentBytes: 1500 }).then(() => undefined, (e: unknown) => e)
    expect((err as { _tag?: string })?._tag).toBe("WalCorrupt")
    expect(String((err as { reason?: string }).reason)).toMatch(/index 77 does not follow 3/)
  })

  it("truncateAfterIndex inside a segment, across segments and to 0; the tier, indexes and reopen agree", async () => {
    const { io, dir } = mk()
    const cfg = { segmentBytes: 2500, indexIntervalBytes: 300, memoryTierBytes: 16 * 1024 }
    const { log } = await openCore(io, dir, cfg)
    const all = appendMixed(log, 45, 200, 1)
    const n = all.length
    const segs = log.segmentBases.length
    expect(segs).toBeGreaterThan(4)
    const keysUpTo = (index: number) => {
      const kept = all.filter((e) => e.index! <= index)
      const ks = keyed(kept)
      return { kept, next: ks.length > 0 ? ks[ks.length - 1]!.lastKey + 1 : 0 }
    }
    // inside the last segment: drop just the trailing no-op, then a data entry
    const check = async (index: number) => {
      log.truncateAfterIndex(index)
      const { kept, next } = keysUpTo(index)
      expect(log.lastIndex()).toBe(index)
      expect(log.nextKey).toBe(next)
      expect(log.lastIndexTerm()).toBe(index === 0 ? 0 : 1)
      expect(readAll(log, 0, 10_000).map((e) => e.firstKey)).toEqual(keyed(kept).map((e) => e.firstKey))
      const fromIdx = log.entriesFromIndex(1, 1 << 30)
      expect(fromIdx.map((e) => e.index)).toEqual(kept.map((e) => e.index))
      for (let k = 0; k < next; k += 5) expect(log.read(k, 1).entries[0]!.firstKey).toBe(k)
    }
    await check(n - 1)
    await check(n - 3)
    // across segments
    const mid = Math.floor(n / 2)
    await check(mid)
    expect(log.segmentBases.length).toBeLessThan(segs)
    // the log goes on from there, by index
    const more = appendMixed(log, 6, 200, 2)
    expect(more[0]!.index).toBe(mid + 1)
    expect(log.lastIndexTerm()).toBe(2)
    expect(log.termAtIndex(mid)).toBe(1)
    expect(log.termAtIndex(mid + 1)).toBe(2)
    await log.close()
    const { log: l2 } = await openCore(io, dir, cfg)
    expect(l2.lastIndex()).toBe(mid + more.length)
    expect(l2.entriesFromIndex(mid + 1, 1 << 30).map((e) => [e.index, e.term, e.firstKey, e.lastKey])).toEqual(
      more.map((e) => [e.index, e.term, e.firstKey, e.lastKey])
    )
    // to 0: everything goes
    l2.truncateAfterIndex(0)
    expect([l2.lastIndex(), l2.firstIndex(), l2.nextKey, l2.stats().sizeBytes]).toEqual([0, 0, 0, 0])
    expect(l2.entriesFromIndex(1, 100)).toEqual([])
    l2.append([data(0, 1, 1, { term: 5 })], 0)
    await l2.close()
    const { log: l3 } = await openCore(io, dir, cfg)
    expect([l3.lastIndex(), l3.lastIndexTerm(), l3.nextKey]).toEqual([1, 5, 1])
    await l3.close()
  })

  it("truncateAfter(key) keeps the empty-range frames right after the last kept entry and drops later ones", async () => {
    const { io, dir } = mk()
    const { log } = await openCore(io, dir, { memoryTierBytes: 8192 })
    // data 0..4 [1], no-op@5 [2], data 5..9 [3], no-op@10 [4], no-op@10 [5]
    log.append([data(0, 5, 1), noop(5, 2), data(5, 5, 3), noop(10, 4), noop(10, 5)], 0)
    log.truncateAfter(9)
    expect([log.nextKey, log.lastIndex()]).toEqual([10, 5]) // nothing has lastKey > 9
    log.truncateAfter(4)
    expect([log.nextKey, log.lastIndex()]).toEqual([5, 2]) // no-op@5 has lastKey 4: kept
    expect(log.entriesFromIndex(1, 1 << 20).map((e) => e.index)).toEqual([1, 2])
    log.append([data(5, 1, 3)], 0)
    expect(readAll(log).map((e) => e.firstKey)).toEqual([0, 5])
    await log.close()
  })

  it("deleteBefore, retention and roll keep working with empty-range entries present", async () => {
    const { io, dir } = mk()
    const cfg = { segmentBytes: 1500, indexIntervalBytes: 300, memoryTierBytes: 4096 }
    const { log } = await openCore(io, dir, cfg)
    const all = appendMixed(log, 24, 200)
    const n = all.length
    const bases = log.segmentBases
    expect(bases.length).toBeGreaterThan(4)
    // every segment base is a key boundary; no two segments share a base
    expect(new Set(bases).size).toBe(bases.length)
    for (const b of bases) expect(b % 5).toBe(0)
    // deleteBefore a segment boundary: whole segments go, firstIndex follows
    expect(log.deleteBefore(bases[2]!, 0)).toBe(2)
    expect(log.logStartKey).toBe(bases[2])
    // the segment now first starts with the data entry at its base, or with the no-op before it
    // (a no-op at the base that went at the end of the previous segment was deleted with it)
    const dataAtBase = all.find((e) => e.lastKey >= e.firstKey && e.firstKey === bases[2]!)!
    expect([dataAtBase.index! - 1, dataAtBase.index!]).toContain(log.firstIndex())
    const fromFirst = log.entriesFromIndex(log.firstIndex(), 1 << 30)
    expect(fromFirst[fromFirst.length - 1]!.index).toBe(n)
    expect(fromFirst.map((e) => e.index)).toEqual(all.filter((e) => e.index! >= log.firstIndex()).map((e) => e.index))
    expect(readAll(log).map((e) => e.firstKey)).toEqual(keyed(all).filter((e) => e.firstKey >= bases[2]!).map((e) => e.firstKey))
    // retention by size keeps the active segment; lastIndex unchanged
    const r = log.enforceRetention({ retentionMs: -1, retentionBytes: 0, now: 0 })
    expect(r.deletedSegments).toBeGreaterThan(0)
    expect(log.segmentBases.length).toBe(1)
    expect(log.lastIndex()).toBe(n)
    expect(log.read(log.logStartKey, 1).entries[0]!.firstKey).toBe(log.logStartKey)
    // deleting everything by key (DeleteRecords to the end, compaction): the segment holding the
    // last frame stays, so the Raft index is not lost, and it survives a restart
    const segsBefore = log.segmentBases.length
    log.deleteBefore(log.nextKey, 0)
    expect(log.logStartKey).toBe(log.nextKey)
    expect(log.read(log.nextKey, 100).entries).toEqual([])
    expect(log.segmentBases.length).toBe(segsBefore + 1) // rolled; the old segment is kept
    expect([log.lastIndex(), log.lastIndexTerm()]).toEqual([n, 1])
    expect(log.enforceRetention({ retentionMs: 0, retentionBytes: 0, now: 1e15 }).deletedSegments).toBe(0)
    await log.close()
    const { log: l1 } = await openCore(io, dir, cfg)
    expect([l1.lastIndex(), l1.lastIndexTerm(), l1.nextKey, l1.logStartKey]).toEqual([n, 1, 120, 120])
    l1.append([noop(l1.nextKey, n + 1), data(l1.nextKey, 1, n + 2)], 0)
    expect(l1.lastIndex()).toBe(n + 2)
    // now a later segment holds frames: the old one can go
    expect(l1.enforceRetention({ retentionMs: -1, retentionBytes: 0, now: 0 }).deletedSegments).toBe(1)
    expect(l1.firstIndex()).toBe(n + 1)
    await l1.close()
    const { log: l2 } = await openCore(io, dir, cfg)
    expect(l2.lastIndex()).toBe(n + 2)
    expect(readAll(l2).length).toBe(1)
    await l2.close()
  })

  it("entriesFromIndex serves the tier and the disk (after reopen) with payloads safe to keep", async () => {
    const { io, dir } = mk()
    const cfg = { segmentBytes: 4000, indexIntervalBytes: 500, memoryTierBytes: 6000 }
    const { log } = await openCore(io, dir, cfg)
    const all = appendMixed(log, 60, 250, 1)
    const n = all.length
    const same = (got: ReadonlyArray<{ index: number; payload: Buffer; type: number; firstKey: number; lastKey: number }>, lo: number) => {
      const want = all.filter((e) => e.index! >= lo).slice(0, got.length)
      expect(got.map((e) => [e.index, e.type, e.firstKey, e.lastKey])).toEqual(want.map((e) => [e.index, e.type & 0xff, e.firstKey, e.lastKey]))
      for (let i = 0; i < got.length; i++) expect(Buffer.compare(got[i]!.payload, Buffer.from(want[i]!.payload))).toBe(0)
    }
    // near the end: from the tier (no read syscalls)
    const tierOnly = log.entriesFromIndex(n - 3, 1 << 20)
    expect(tierOnly.length).toBe(4)
    same(tierOnly, n - 3)
    // far behind: from disk, bounded by maxBytes, at least one entry
    const far = log.entriesFromIndex(2, 1000)
    expect(far.length).toBeGreaterThan(1)
    expect(far.reduce((s, e) => s + e.payload.length, 0)).toBeLessThanOrEqual(1000)
    same(far, 2)
    expect(log.entriesFromIndex(3, 0).length).toBe(1)
    // payloads stay valid after other reads reuse pooled buffers
    const kept = log.entriesFromIndex(1, 1 << 30)
    expect(kept.length).toBe(n)
    for (let k = 0; k < 300; k += 5) log.read(k, 4096)
    same(kept, 1)
    await log.close()
    const { log: l2 } = await openCore(io, dir, cfg)
    for (const lo of [1, 2, 17, Math.floor(n / 2), n - 1, n]) same(l2.entriesFromIndex(lo, 2000), lo)
    expect(l2.entriesFromIndex(n + 1, 100)).toEqual([])
    // below the first index: starts at the first one
    expect(l2.entriesFromIndex(0, 0)[0]!.index).toBe(1)
    for (let i = 1; i <= n; i++) expect(l2.termAtIndex(i)).toBe(1)
    await l2.close()
  })
})

describe("onSynced", () => {
  it("batch: an empty-range frame alone is made durable by a group-commit pass", async () => {
    const mem = new MemoryFileIO()
    const { io, stats } = instrument(mem)
    const { log } = await openCore(io, "/d/l", {}, { policy: FsyncPolicy.batch })
    log.append([data(0, 1, 1)], 0)
    await log.awaitDurable(0)
    const before = stats.fdatasyncs
    log.append([noop(1, 2, { size: 30 })], 0)
    // onDurable(key) has nothing to wait for: the no-op takes no key
    let byKey = false
    log.onDurable(0, () => (byKey = true))
    expect(byKey).toBe(true)
    // a crash now loses the no-op
    {
      const crashed = mem.crash()
      const { log: c } = await openCore(crashed, "/d/l")
      expect(c.lastIndex()).toBe(1)
      await c.close()
    }
    let done: Array<unknown> = []
    const synced = new Promise<void>((resolve) =>
      log.onSynced((e) => {
        done.push(e)
        resolve()
      })
    )
    expect(done).toEqual([]) // pending until the pass
    await synced
    expect(done).toEqual([undefined])
    expect(stats.fdatasyncs).toBeGreaterThan(before)
    // now the no-op survives a crash
    const crashed = mem.crash()
    const { log: c } = await openCore(crashed, "/d/l")
    expect([c.lastIndex(), c.nextKey]).toEqual([2, 1])
    await c.close()
    // already durable: called at once
    done = []
    log.onSynced((e) => done.push(e))
    expect(done).toEqual([undefined])
    await log.close()
  })

  it("never: called at once; interval: after the next timer pass", async () => {
    const never = await openCore(new MemoryFileIO(), "/d/n", {}, { policy: FsyncPolicy.never })
    never.log.append([noop(0, 1)], 0)
    let called = 0
    never.log.onSynced(() => called++)
    expect(called).toBe(1)
    await never.log.close()
    const mem = new MemoryFileIO()
    const sync = new WalSync(mem, FsyncPolicy.interval(20))
    const iv = await openCore(mem, "/d/i", {}, { sync })
    iv.log.append([noop(0, 1)], 0)
    let ivDone = false
    const p = iv.log.awaitSynced().then(() => (ivDone = true))
    expect(ivDone).toBe(false)
    await p
    expect(ivDone).toBe(true)
    const crashed = mem.crash()
    const { log: c } = await openCore(crashed, "/d/i")
    expect(c.lastIndex()).toBe(1)
    await c.close()
    await iv.log.close()
    sync.close()
  })

  it("rejects with the error when the fsync fails", async () => {
    const { io, plan } = instrument(new MemoryFileIO())
    const { log } = await openCore(io, "/d/f", {}, { policy: FsyncPolicy.batch })
    log.append([noop(0, 1)], 0)
    plan.fdatasync = () => "EIO"
    const err = await log.awaitSynced().then(() => undefined, (e: unknown) => e)
    expect(String(err)).toMatch(/EIO|injected/)
    let after: unknown
    log.onSynced((e) => (after = e))
    expect(after).toBeDefined()
    await log.close().catch(() => undefined)
  })
})

describe("node-only file checks", () => {
  it("frames on disk carry the 49-byte header with the index at byte 40", async () => {
    const [, mkNode] = backends.find(([n]) => n === "node")!
    const { io, dir } = mkNode()
    const { log } = await openCore(io, dir)
    log.append([data(0, 1, 42, { size: 10 })], 0)
    await log.close()
    const raw = fs.readFileSync(path.join(dir, "00000000000000000000.log"))
    expect(raw.length).toBe(FRAME_HEADER + 10)
    expect(raw.readUInt32BE(0)).toBe(FRAME_HEADER - 4 + 10)
    expect(raw.readUInt32BE(44)).toBe(42)
  })
})

describe("write faults with Raft indexes", () => {
  it("a failed indexed append (ENOSPC, partial write) leaves lastIndex and the file as they were; the same index then succeeds", async () => {
    const mem = new MemoryFileIO()
    const { io, plan } = instrument(mem)
    const { log } = await openCore(io, "/d/w", { memoryTierBytes: 8192 })
    log.append([data(0, 1, 1), noop(1, 2)], 0)
    const size = log.stats().sizeBytes
    for (const vectoredSize of [100, 10_000]) {
      plan.write = () => ({ code: "ENOSPC", partial: 7 })
      expect(() => log.append([data(1, 1, 3, { size: vectoredSize })], 0)).toThrow()
      plan.write = undefined
      expect([log.lastIndex(), log.nextKey, log.stats().sizeBytes]).toEqual([2, 1, size])
      expect(log.entriesFromIndex(1, 1 << 20).map((e) => e.index)).toEqual([1, 2])
    }
    log.append([data(1, 1, 3)], 0)
    expect(log.lastIndex()).toBe(3)
    await log.close()
    const { log: l2 } = await openCore(mem, "/d/w")
    expect(l2.recovery.truncatedBytes).toBe(0)
    expect(l2.entriesFromIndex(1, 1 << 20).map((e) => [e.index, e.firstKey, e.lastKey])).toEqual([[1, 0, 0], [2, 1, 0], [3, 1, 1]])
    await l2.close()
  })
})
