import { describe, expect, it } from "vitest"
import { FRAME_HEADER, type LogEntry } from "../../src/storage/Frame.js"
import { Effect } from "effect"
import * as LS from "../../src/storage/LogStore.js"
import { MemoryTier } from "../../src/storage/MemoryTier.js"

const entry = (key: number, size: number): LogEntry => ({
  firstKey: key,
  lastKey: key,
  term: 1,
  maxTimestamp: key,
  type: 0,
  payload: Buffer.alloc(size, key & 0xff)
})

describe("MemoryTier", () => {
  it("keeps only the newest entries within its capacity and serves reads from them", () => {
    const size = 1000
    const capacity = 10 * (size + FRAME_HEADER)
    const tier = new MemoryTier(capacity)
    for (let k = 0; k < 25; k++) tier.push(entry(k, size))
    expect(tier.size).toBe(10)
    expect(tier.firstKey()).toBe(15)
    expect(tier.byteSize).toBe(capacity)
    const out: Array<LogEntry> = []
    tier.read(20, 1 << 20, Number.MAX_SAFE_INTEGER, out)
    expect(out.map((e) => e.firstKey)).toEqual([20, 21, 22, 23, 24])
  })

  it("releases evicted payloads at once, not when its array is next compacted (bounded memory)", () => {
    // 1 KiB entries into a 64 KiB tier: before the fix, up to ~1,000 evicted entries per log stayed
    // referenced between compactions (a broker writing 1.7 GB held ~1.4 GB of RSS).
    const size = 1024
    const capacity = 64 * (size + FRAME_HEADER)
    const tier = new MemoryTier(capacity)
    for (let k = 0; k < 5000; k++) {
      tier.push(entry(k, size))
      expect(tier.referencedPayloadBytes()).toBeLessThanOrEqual(capacity)
    }
    tier.dropBefore(4990)
    expect(tier.size).toBe(10)
    expect(tier.referencedPayloadBytes()).toBe(10 * size)
  })
})

describe("LogStore memory tier budget", () => {
  it("divides the node-wide budget among the open logs that do not set their own", async () => {
    const budget = 1_000_000
    const layer = LS.layerMemoryWith({ memoryTierBytes: budget })
    const tierBytes = (l: { core: { stats(): { memoryTierBytes: number } } }) => l.core.stats().memoryTierBytes
    const program = Effect.gen(function* () {
      const store = yield* LS.LogStore
      const logs = []
      for (let i = 0; i < 4; i++) logs.push(yield* store.open(`t-${i}`))
      const own = yield* store.open("own", { memoryTierBytes: 0 })
      // fill every log well past its share
      const payload = Buffer.alloc(10_000, 7)
      for (let n = 0; n < 200; n++) {
        for (const l of [...logs, own]) yield* l.append([{ firstKey: n, lastKey: n, term: 1, maxTimestamp: n, type: 0, payload }])
      }
      const filled = logs.map(tierBytes)
      const total4 = filled.reduce((a, b) => a + b, 0)
      expect(total4).toBeLessThanOrEqual(budget)
      for (const b of filled) expect(b).toBeGreaterThan(budget / 4 - 20_000)
      expect(tierBytes(own)).toBe(0)
      // closing two logs gives the others a larger share (filled by later appends)
      yield* store.close("t-0")
      yield* store.delete("t-1")
      for (let n = 200; n < 400; n++) {
        for (const l of logs.slice(2)) yield* l.append([{ firstKey: n, lastKey: n, term: 1, maxTimestamp: n, type: 0, payload }])
      }
      const after = logs.slice(2).map(tierBytes)
      expect(after.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(budget)
      for (const b of after) expect(b).toBeGreaterThan(budget / 2 - 20_000)
    })
    await Effect.runPromise(Effect.scoped(Effect.provide(program, layer)))
  })
})
