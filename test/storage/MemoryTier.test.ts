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
  index: 0,
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

  it("holds one ring of its capacity, allocated once, whatever is pushed through it", () => {
    const size = 1024
    const capacity = 64 * (size + FRAME_HEADER)
    const tier = new MemoryTier(capacity)
    expect(tier.allocatedBytes).toBe(0)
    for (let k = 0; k < 5000; k++) {
      tier.push(entry(k, size))
      expect(tier.byteSize).toBeLessThanOrEqual(capacity)
      expect(tier.allocatedBytes).toBe(capacity)
    }
    tier.dropBefore(4990)
    expect(tier.size).toBe(10)
    expect(tier.byteSize).toBe(10 * (size + FRAME_HEADER))
  })

  it("keeps the newest entries intact across wrap-arounds, with payloads of any size (model check)", () => {
    // deterministic pseudo-random sizes, pushes, truncations and drops, checked against a plain list
    let seed = 12345
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const capacity = 20_000
    const tier = new MemoryTier(capacity)
    let model: Array<LogEntry> = []
    let key = 0
    for (let step = 0; step < 20_000; step++) {
      const op = rnd(100)
      if (op < 90) {
        const e = entry(key++, rnd(4) === 0 ? rnd(9000) : rnd(700))
        tier.push(e)
        model.push(e)
        let bytes = model.reduce((n, m) => n + m.payload.length + FRAME_HEADER, 0)
        while (bytes > capacity) bytes -= model.shift()!.payload.length + FRAME_HEADER
      } else if (op < 95 && model.length > 0) {
        const cut = model[rnd(model.length)]!.lastKey
        tier.truncateAfter(cut)
        model = model.filter((m) => m.lastKey <= cut)
        key = cut + 1
      } else if (model.length > 0) {
        const from = model[rnd(model.length)]!.firstKey
        tier.dropBefore(from)
        model = model.filter((m) => m.lastKey >= from)
      }
      // the tier may have evicted more than the model (ring gaps), never less than it cached
      const first = tier.firstKey()
      const expected = first === undefined ? [] : model.filter((m) => m.firstKey >= first)
      expect(tier.size).toBe(expected.length)
      if (expected.length > 0) {
        const out: Array<LogEntry> = []
        tier.read(expected[0]!.firstKey, 1 << 30, Number.MAX_SAFE_INTEGER, out)
        expect(out.map((e) => e.firstKey)).toEqual(expected.map((e) => e.firstKey))
        for (let i = 0; i < out.length; i++) expect(out[i]!.payload.equals(expected[i]!.payload)).toBe(true)
      }
    }
    // pushes only: a ring gap costs at most about two of the largest payloads
    const pushesOnly = new MemoryTier(capacity)
    const recent: Array<number> = []
    for (let k = 0; k < 5000; k++) {
      const size = rnd(4) === 0 ? rnd(9000) : rnd(700)
      pushesOnly.push(entry(k, size))
      recent.push(size + FRAME_HEADER)
      let wanted = recent.reduce((n, b) => n + b, 0)
      while (wanted > capacity) wanted -= recent.shift()!
      expect(pushesOnly.byteSize).toBeGreaterThanOrEqual(Math.min(wanted, capacity - 2 * (9000 + FRAME_HEADER)))
    }
  })

  it("copies: later changes to a pushed buffer, and later pushes over the same ring bytes, do not change what was read", () => {
    const tier = new MemoryTier(3 * (1000 + FRAME_HEADER))
    const source = Buffer.alloc(1000, 1)
    tier.push({ ...entry(0, 0), payload: source })
    source.fill(9)
    const out: Array<LogEntry> = []
    tier.read(0, 1 << 20, Number.MAX_SAFE_INTEGER, out)
    expect(out[0]!.payload.every((b) => b === 1)).toBe(true)
    for (let k = 1; k < 20; k++) tier.push(entry(k, 1000))
    expect(tier.firstKey()).toBe(17)
    expect(out[0]!.payload.every((b) => b === 1)).toBe(true)
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
