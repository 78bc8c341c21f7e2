import { afterEach, describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as fs from "node:fs"
import * as path from "node:path"
import { FRAME_HEADER, MemoryFileIO, WalCorrupt, nodeFileIO } from "../../src/storage/index.js"
import { entries, entry, openCore, payloadFor, readAll, rmDir, tmpDir } from "./helpers.js"

const dirs: Array<string> = []
afterEach(() => {
  while (dirs.length) rmDir(dirs.pop()!)
})

const seg = (dir: string, base: number, ext: string) => path.join(dir, `${String(base).padStart(20, "0")}.${ext}`)

/** A seeded [0,1) generator. */
const rng = (seed: number) => {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 4294967296
  }
}

describe("recovery", () => {
  it("torn last write: truncating the file anywhere inside the last frame loses only that frame (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 2000 }), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), async (n, lastSize, cutFrac) => {
        const io = new MemoryFileIO()
        const dir = "/d/log"
        const { log } = await openCore(io, dir, { segmentBytes: 4000, indexIntervalBytes: 300 })
        for (let i = 0; i < n; i++) log.append([entry(i, 1, 150)], 0)
        await log.awaitDurable(n - 1)
        log.append([entry(n, 1, lastSize)], 0) // written, not durable
        const bases = log.segmentBases
        log.abandon() // crash: no clean close
        const file = seg(dir, bases.at(-1)!, "log")
        const size = io.fileSize(file)!
        const frame = FRAME_HEADER + lastSize
        const cut = size - frame + 1 + Math.floor(cutFrac * (frame - 1)) // strictly inside the last frame
        io.mutate(file, (b) => b.subarray(0, cut))
        const { log: l2 } = await openCore(io, dir, { segmentBytes: 4000, indexIntervalBytes: 300 })
        expect(l2.nextKey).toBe(n)
        expect(l2.recovery.truncatedBytes).toBe(cut - (size - frame))
        expect(l2.recovery.truncation?.position).toBe(size - frame)
        const got = readAll(l2, 0)
        expect(got.length).toBe(n)
        got.forEach((e, i) => expect(e.payload.equals(payloadFor(i, 150))).toBe(true))
        // and the log keeps working
        l2.append([entry(n, 1, 10)], 0)
        expect(l2.read(n, 10).entries[0]!.payload.length).toBe(10)
        await l2.close()
      }),
      { numRuns: 60 }
    )
  })

  it("torn last write on real files (truncate + garbage tail)", async () => {
    const d = tmpDir()
    dirs.push(d)
    const { log } = await openCore(nodeFileIO, d, { segmentBytes: 100_000 })
    log.append(entries(0, 50, 2, 300), 0)
    await log.awaitDurable(99)
    log.append([entry(100, 5, 5000)], 0)
    log.abandon()
    const file = seg(d, 0, "log")
    const size = fs.statSync(file).size
    fs.truncateSync(file, size - 1234)
    fs.appendFileSync(file, Buffer.from([1, 2, 3, 4, 5, 6, 7]))
    const { log: l2 } = await openCore(nodeFileIO, d, { segmentBytes: 100_000 })
    expect(l2.nextKey).toBe(100)
    expect(l2.recovery.truncatedBytes).toBe(5000 + FRAME_HEADER - 1234 + 7)
    expect(l2.recovery.truncation?.file).toBe(file)
    expect(fs.statSync(file).size).toBe(size - 5000 - FRAME_HEADER)
    expect(readAll(l2).length).toBe(50)
    await l2.close()
  })

  it("flipped bytes in the tail frame are detected by CRC and truncated", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (where, xor) => {
        const io = new MemoryFileIO()
        const dir = "/d/log"
        const { log } = await openCore(io, dir)
        log.append(entries(0, 10, 1, 100), 0)
        await log.awaitDurable(9)
        log.append([entry(10, 1, 200)], 0)
        log.abandon()
        const file = seg(dir, 0, "log")
        const size = io.fileSize(file)!
        const at = size - (FRAME_HEADER + 200) + (where % (FRAME_HEADER + 200))
        io.mutate(file, (b) => {
          b[at] = b[at]! ^ xor
          return b
        })
        const { log: l2 } = await openCore(io, dir)
        expect(l2.nextKey).toBe(10)
        expect(l2.recovery.truncation).toBeDefined()
        expect(readAll(l2).length).toBe(10)
        await l2.close()
      }),
      { numRuns: 50 }
    )
  })

  it("a crash that loses or tears unsynced writes never loses durable entries (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("append" as const), n: fc.integer({ min: 1, max: 6 }), size: fc.integer({ min: 0, max: 900 }) }),
            fc.record({ op: fc.constant("durable" as const) }),
            fc.record({ op: fc.constant("roll" as const) })
          ),
          { minLength: 1, maxLength: 40 }
        ),
        fc.integer({ min: 1, max: 2 ** 30 }),
        async (ops, seed) => {
          const io = new MemoryFileIO()
          const dir = "/d/log"
          const cfg = { segmentBytes: 3000, indexIntervalBytes: 400 }
          const { log } = await openCore(io, dir, cfg)
          const model: Array<{ firstKey: number; size: number }> = []
          let k = 0
          for (const o of ops) {
            if (o.op === "append") {
              const es = []
              for (let i = 0; i < o.n; i++) {
                es.push(entry(k, 2, o.size))
                model.push({ firstKey: k, size: o.size })
                k += 2
              }
              log.append(es, 0)
            } else if (o.op === "durable") {
              await log.awaitDurable(k - 1)
            } else {
              log.roll(k, 0)
            }
          }
          const durable = log.durableNextKey
          log.abandon()
          const crashed = io.crash({ tear: true, random: rng(seed) })
          const { log: l2 } = await openCore(crashed, dir, cfg)
          const got = readAll(l2, 0)
          // a prefix of what was written, covering everything durable
          expect(got.length).toBeLessThanOrEqual(model.length)
          got.forEach((e, i) => {
            expect(e.firstKey).toBe(model[i]!.firstKey)
            expect(e.payload.equals(payloadFor(model[i]!.firstKey, model[i]!.size))).toBe(true)
          })
          expect(l2.nextKey).toBeGreaterThanOrEqual(durable)
          // the recovered log accepts new appends at its end
          l2.append([entry(l2.nextKey)], 0)
          await l2.close()
        }
      ),
      { numRuns: Number(process.env.STORAGE_PROPERTY_RUNS ?? 150) }
    )
  })

  it("crashes around truncations never lose durable entries nor invent data (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("append" as const), n: fc.integer({ min: 1, max: 5 }), size: fc.integer({ min: 0, max: 700 }) }),
            fc.record({ op: fc.constant("durable" as const) }),
            fc.record({ op: fc.constant("truncate" as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) })
          ),
          { minLength: 1, maxLength: 40 }
        ),
        fc.integer({ min: 1, max: 2 ** 30 }),
        async (ops, seed) => {
          const io = new MemoryFileIO()
          const dir = "/d/log"
          const cfg = { segmentBytes: 2500, indexIntervalBytes: 300 }
          const { log } = await openCore(io, dir, cfg)
          let model: Array<{ firstKey: number; term: number; size: number }> = []
          const written = new Set<string>()
          const id = (k: number, t: number, sz: number) => `${k}:${t}:${sz}`
          let term = 1
          for (const o of ops) {
            if (o.op === "append") {
              const es = []
              for (let i = 0; i < o.n; i++) {
                const k = log.nextKey + i
                es.push({ ...entry(k, 1, o.size, { term }), payload: payloadFor(k * 7 + term, o.size) })
                model.push({ firstKey: k, term, size: o.size })
                written.add(id(k, term, o.size))
              }
              log.append(es, 0)
            } else if (o.op === "durable") {
              await log.awaitDurable(log.nextKey - 1)
            } else {
              const k = Math.floor(o.frac * log.nextKey) - 1
              log.truncateAfter(k)
              model = model.filter((e) => e.firstKey <= k)
              term++
            }
          }
          const durable = log.durableNextKey
          log.abandon()
          const { log: l2 } = await openCore(io.crash({ tear: true, random: rng(seed) }), dir, cfg)
          const got = readAll(l2, 0)
          got.forEach((e, i) => {
            expect(e.firstKey).toBe(i)
            expect(written.has(id(e.firstKey, e.term, e.payload.length))).toBe(true)
            expect(e.payload.equals(payloadFor(e.firstKey * 7 + e.term, e.payload.length))).toBe(true)
          })
          for (const m of model) {
            if (m.firstKey < durable) {
              const g = got[m.firstKey]
              expect(g && [g.term, g.payload.length]).toEqual([m.term, m.size])
            }
          }
          await l2.close()
        }
      ),
      { numRuns: Number(process.env.STORAGE_PROPERTY_RUNS ?? 150) }
    )
  })

  it("repeated crashes with appends, truncations, rolls and prefix deletes keep every durable entry (property)", async () => {
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ op: fc.constant("append" as const), n: fc.integer({ min: 1, max: 5 }), size: fc.integer({ min: 0, max: 600 }) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant("durable" as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("roll" as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("deleteBefore" as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }) }
    )
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { maxLength: 25 }), { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 2 ** 30 }), async (rounds, seed) => {
        const random = rng(seed)
        let io = new MemoryFileIO()
        const dir = "/d/log"
        const cfg = { segmentBytes: 2000, indexIntervalBytes: 300 }
        const written = new Set<string>()
        const id = (k: number, t: number, sz: number) => `${k}:${t}:${sz}`
        let term = 1
        for (const ops of rounds) {
          const { log } = await openCore(io, dir, cfg)
          // the model is what was recovered
          const model = new Map<number, { term: number; size: number }>()
          for (const e of readAll(log, log.logStartKey)) model.set(e.firstKey, { term: e.term, size: e.payload.length })
          term++
          for (const o of ops) {
            if (o.op === "append") {
              const es = []
              for (let i = 0; i < o.n; i++) {
                const k = log.nextKey + i
                es.push({ ...entry(k, 1, o.size, { term }), payload: payloadFor(k * 7 + term, o.size) })
                model.set(k, { term, size: o.size })
                written.add(id(k, term, o.size))
              }
              log.append(es, 0)
            } else if (o.op === "durable") {
              await log.awaitDurable(log.nextKey - 1)
            } else if (o.op === "roll") {
              log.roll(log.nextKey, 0)
            } else if (o.op === "truncate") {
              const k = log.logStartKey + Math.floor(o.frac * (log.nextKey - log.logStartKey)) - 1
              log.truncateAfter(k)
              for (const key of [...model.keys()]) if (key > k) model.delete(key)
              term++
            } else {
              log.deleteBefore(log.logStartKey + Math.floor(o.frac * (log.nextKey - log.logStartKey)), 0)
            }
          }
          const durable = log.durableNextKey
          const start = log.logStartKey
          log.abandon()
          io = io.crash({ tear: true, random })
          const { log: l2 } = await openCore(io, dir, cfg)
          const got = readAll(l2, l2.logStartKey)
          let prev = -1
          for (const e of got) {
            if (prev >= 0) expect(e.firstKey).toBe(prev + 1)
            prev = e.firstKey
            expect(written.has(id(e.firstKey, e.term, e.payload.length))).toBe(true)
          }
          const byKey = new Map(got.map((e) => [e.firstKey, e]))
          for (const [k, m] of model) {
            if (k < durable && k >= Math.max(start, l2.logStartKey)) {
              const g = byKey.get(k)
              expect(g && [g.term, g.payload.length]).toEqual([m.term, m.size])
            }
          }
          expect(l2.nextKey).toBeGreaterThanOrEqual(durable)
          expect(l2.logStartKey).toBeGreaterThanOrEqual(Math.min(start, l2.nextKey))
          await l2.close()
        }
      }),
      { numRuns: Number(process.env.STORAGE_PROPERTY_RUNS ?? 100) }
    )
  })

  it("truncateAfter followed by durable appends survives a crash", async () => {
    const io = new MemoryFileIO()
    const dir = "/d/log"
    const { log } = await openCore(io, dir, { segmentBytes: 2000 })
    log.append(entries(0, 30, 1, 200), 0)
    await log.awaitDurable(29)
    log.truncateAfter(12)
    log.append([entry(13, 1, 77, { term: 5 }), entry(14, 1, 77, { term: 5 })], 0)
    await log.awaitDurable(14)
    log.abandon()
    const { log: l2 } = await openCore(io.crash({ tear: true, random: rng(7) }), dir, { segmentBytes: 2000 })
    expect(l2.nextKey).toBe(15)
    const got = readAll(l2)
    expect(got.map((e) => e.term)).toEqual([...Array(13).fill(1), 5, 5])
    await l2.close()
  })

  it("rebuilds a deleted or garbled index", async () => {
    const d = tmpDir()
    dirs.push(d)
    const cfg = { segmentBytes: 5000, indexIntervalBytes: 200 }
    const { log } = await openCore(nodeFileIO, d, cfg)
    for (let i = 0; i < 100; i++) log.append([entry(i, 1, 180, { ts: 5000 + i })], 0)
    const bases = log.segmentBases
    await log.close()
    const idx = seg(d, bases[1]!, "index")
    const before = fs.readFileSync(idx)
    expect(before.length).toBeGreaterThan(0)
    fs.unlinkSync(idx)
    fs.writeFileSync(seg(d, bases[2]!, "index"), Buffer.from("garbage!!!"))
    fs.writeFileSync(seg(d, bases[3]!, "timeindex"), Buffer.alloc(32, 0))
    const { log: l2 } = await openCore(nodeFileIO, d, cfg)
    expect(l2.recovery.rebuiltIndexes).toEqual([seg(d, bases[1]!, "log"), seg(d, bases[2]!, "log"), seg(d, bases[3]!, "log")])
    expect(fs.readFileSync(idx).equals(before)).toBe(true)
    for (let i = 0; i < 100; i += 7) expect(l2.read(i, 1).entries[0]!.firstKey).toBe(i)
    expect(l2.offsetForTimestamp(5050)!.firstKey).toBe(50)
    await l2.close()
  })

  it("a corrupt record in the middle of a sealed segment is WalCorrupt", async () => {
    const d = tmpDir()
    dirs.push(d)
    const cfg = { segmentBytes: 5000, indexIntervalBytes: 200 }
    const { log } = await openCore(nodeFileIO, d, cfg)
    for (let i = 0; i < 100; i++) log.append([entry(i, 1, 180)], 0)
    const bases = log.segmentBases
    await log.close()
    const file = seg(d, bases[1]!, "log")
    const b = fs.readFileSync(file)
    b[1000] = b[1000]! ^ 0xff
    fs.writeFileSync(file, b)
    // indexes intact: open succeeds, reading the damaged frame fails with WalCorrupt
    const { log: l2 } = await openCore(nodeFileIO, d, cfg)
    let caught: unknown
    try {
      l2.read(bases[1]!, 100_000)
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(WalCorrupt)
    expect((caught as WalCorrupt).file).toBe(file)
    expect(l2.read(bases[2]!, 1).entries[0]!.firstKey).toBe(bases[2])
    await l2.close()
    // index missing: the rebuild scan finds it and open fails with WalCorrupt (not a silent truncation)
    fs.unlinkSync(seg(d, bases[1]!, "index"))
    await expect(openCore(nodeFileIO, d, cfg)).rejects.toBeInstanceOf(WalCorrupt)
  })

  it("a clean shutdown reopens without scanning", async () => {
    const io = new MemoryFileIO()
    const { log } = await openCore(io, "/d/l", { segmentBytes: 3000 })
    log.append(entries(0, 100, 1, 100), 0)
    await log.close()
    const { log: l2 } = await openCore(io, "/d/l", { segmentBytes: 3000 })
    expect(l2.recovery.clean).toBe(true)
    expect(l2.recovery.scannedSegments).toBe(0)
    expect(l2.nextKey).toBe(100)
    l2.abandon()
    const { log: l3 } = await openCore(io, "/d/l", { segmentBytes: 3000 })
    expect(l3.recovery.clean).toBe(false)
    expect(l3.recovery.scannedSegments).toBe(1)
    expect(l3.recovery.truncatedBytes).toBe(0)
    expect(l3.nextKey).toBe(100)
    await l3.close()
  })
})

describe("recovery of the active segment", () => {
  it("rebuilds a missing index of the last segment after a clean shutdown", async () => {
    const io = new MemoryFileIO()
    const { log } = await openCore(io, "/d/l", { indexIntervalBytes: 200 })
    log.append(entries(0, 50, 1, 150), 0)
    await log.close()
    io.unlink(seg("/d/l", 0, "index"))
    const { log: l2 } = await openCore(io, "/d/l", { indexIntervalBytes: 200 })
    expect(l2.recovery.rebuiltIndexes).toEqual([seg("/d/l", 0, "log")])
    expect(l2.recovery.truncatedBytes).toBe(0)
    expect(io.fileSize(seg("/d/l", 0, "index"))).toBeGreaterThan(0)
    for (let k = 0; k < 50; k += 3) expect(l2.read(k, 1).entries[0]!.firstKey).toBe(k)
    await l2.close()
  })
})
