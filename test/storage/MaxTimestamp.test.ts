/**
 * `LogCore.maxTimestampBefore`: the entry with the largest maxTimestamp (the
 * first on ties) among entries with logStartKey <= lastKey < bound, answered
 * from per-segment maxima, equals a brute-force scan: across many segments,
 * with the log start moved into a segment, below arbitrary bounds, after a
 * reopen (maxima rebuilt by recovery) and after a tail truncation.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { instrument } from "../../src/storage/FileIO.js"
import type { LogCore } from "../../src/storage/SegmentedLog.js"
import { entry, openCore, readAll, useFileBackends } from "./helpers.js"

const { backends } = useFileBackends()

/** Brute force over a full read from the log start. */
const bruteForce = (log: LogCore, bound: number) => {
  let best: { firstKey: number; lastKey: number; maxTimestamp: number; term: number } | undefined
  for (const e of readAll(log, log.logStartKey)) {
    if (e.lastKey < log.logStartKey || e.lastKey >= bound) continue
    if (best === undefined || e.maxTimestamp > best.maxTimestamp) best = e
  }
  return best && { firstKey: best.firstKey, lastKey: best.lastKey, maxTimestamp: best.maxTimestamp, term: best.term }
}

const viaIndex = (log: LogCore, bound: number) => {
  const e = log.maxTimestampBefore(bound)
  return e && { firstKey: e.firstKey, lastKey: e.lastKey, maxTimestamp: e.maxTimestamp, term: e.term }
}

const check = (log: LogCore, bounds: ReadonlyArray<number>) => {
  for (const b of [...bounds, log.nextKey, log.logStartKey, log.nextKey + 5]) {
    expect(viaIndex(log, b)).toEqual(bruteForce(log, b))
  }
}

describe.each(backends)("maxTimestampBefore (%s)", (_name, mk) => {
  it("equals a brute-force scan (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            count: fc.integer({ min: 1, max: 4 }),
            size: fc.integer({ min: 0, max: 900 }),
            // few distinct timestamps: many ties; -1 (no timestamp) included
            ts: fc.oneof(
              { arbitrary: fc.integer({ min: -1, max: 6 }), weight: 4 },
              { arbitrary: fc.integer({ min: 1_000, max: 1_003 }), weight: 1 }
            )
          }),
          { minLength: 0, maxLength: 60 }
        ),
        fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 1 }),
        async (spec, probes, startProbe, cutProbe, tier) => {
          const { io, dir } = mk()
          const config = { segmentBytes: 2048, indexIntervalBytes: 256, memoryTierBytes: tier * 8000 }
          const { log, sync } = await openCore(io, dir, config)
          let k = 0
          for (const s of spec) {
            log.append([entry(k, s.count, s.size, { ts: s.ts, term: 1 + (k % 3) })], 0)
            k += s.count
          }
          const bounds = () => probes.map((p) => p % (log.nextKey + 2))
          check(log, bounds())
          // DeleteRecords into the middle of a segment
          if (k > 0) log.deleteBefore(startProbe % (k + 1))
          check(log, bounds())
          // reopen: per-segment maxima come from the indexes and the recovery scan
          await log.close()
          sync.close()
          const reopened = await openCore(io, dir, config)
          check(reopened.log, bounds())
          // a truncated tail
          if (reopened.log.nextKey > reopened.log.logStartKey) {
            const span = reopened.log.nextKey - reopened.log.logStartKey
            reopened.log.truncateAfter(reopened.log.logStartKey + (cutProbe % span) - 1)
            check(reopened.log, bounds())
          }
          await reopened.log.close()
          reopened.sync.close()
        }
      ),
      { numRuns: 60 }
    )
  })

  it("reads only the winning entry when the per-segment maxima answer", async () => {
    const { io: inner, dir } = mk()
    const { io, stats } = instrument(inner)
    const { log } = await openCore(io, dir, { segmentBytes: 4096, indexIntervalBytes: 256, memoryTierBytes: 0 })
    let k = 0
    for (let i = 0; i < 200; i++) {
      log.append([entry(k, 2, 300, { ts: i === 77 ? 5_000_000 : 1_000 + (i % 17) })], 0)
      k += 2
    }
    expect(log.segmentBases.length).toBeGreaterThan(10)
    const before = stats.reads
    const e = log.maxTimestampBefore(log.nextKey)
    expect(e).toMatchObject({ firstKey: 154, lastKey: 155, maxTimestamp: 5_000_000 })
    expect(stats.reads - before).toBeLessThanOrEqual(2)
    // the winner above the bound: the next best, still without a scan of whole segments
    const r2 = stats.reads
    const got = viaIndex(log, 154)
    const scanReads = stats.reads - r2
    expect(got).toEqual(bruteForce(log, 154))
    expect(scanReads).toBeLessThan(log.segmentBases.length)
    await log.close()
  })
})
