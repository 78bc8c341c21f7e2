import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { KvInput, KvOutput, Operation } from "../support/linearizability.js"
import { checkLinearizable, describeResult, fromEvents } from "../support/linearizability.js"

// ---------------------------------------------------------------------------
// Small constructors: op(client, call, return, input, output)

const put = (key: string, value: string): KvInput => ({ type: "put", key, value })
const cas = (key: string, expected: string | undefined, value: string): KvInput => ({ type: "cas", key, expected, value })
const read = (key: string): KvInput => ({ type: "read", key })
const okPut: KvOutput = { type: "put" }
const casOk: KvOutput = { type: "cas", ok: true }
const casFail: KvOutput = { type: "cas", ok: false }
const got = (value: string | undefined): KvOutput => ({ type: "read", value })

const op = (clientId: number, call: number, ret: number | undefined, input: KvInput, output?: KvOutput): Operation => {
  if (ret === undefined) return { clientId, call, input }
  return output === undefined ? { clientId, call, return: ret, input } : { clientId, call, return: ret, input, output }
}

const verdict = (h: ReadonlyArray<Operation>) => checkLinearizable(h).verdict

describe("linearizability checker: known-good histories", () => {
  it("accepts the empty history and a sequential one", () => {
    expect(verdict([])).toBe("ok")
    expect(
      verdict([
        op(1, 0, 1, read("x"), got(undefined)),
        op(1, 2, 3, put("x", "a"), okPut),
        op(2, 4, 5, read("x"), got("a")),
        op(2, 6, 7, cas("x", "a", "b"), casOk),
        op(1, 8, 9, cas("x", "a", "c"), casFail),
        op(1, 10, 11, read("x"), got("b")),
        op(3, 12, 13, cas("x", "b", "d"), casOk),
        op(3, 14, 15, read("y"), got(undefined))
      ])
    ).toBe("ok")
  })

  it("accepts overlapping operations in either order", () => {
    // put a and put b overlap; reads after both may see whichever was last
    const base = [op(1, 0, 10, put("x", "a"), okPut), op(2, 5, 15, put("x", "b"), okPut)]
    expect(verdict([...base, op(3, 20, 21, read("x"), got("a"))])).toBe("ok")
    expect(verdict([...base, op(3, 20, 21, read("x"), got("b"))])).toBe("ok")
    // a read overlapping a put may see the old or the new value
    expect(verdict([op(1, 0, 10, put("x", "a"), okPut), op(2, 2, 3, read("x"), got(undefined))])).toBe("ok")
    expect(verdict([op(1, 0, 10, put("x", "a"), okPut), op(2, 2, 3, read("x"), got("a"))])).toBe("ok")
    // two concurrent cas from the same expected value: exactly one wins
    expect(
      verdict([
        op(1, 0, 1, put("x", "0"), okPut),
        op(2, 2, 10, cas("x", "0", "a"), casOk),
        op(3, 3, 9, cas("x", "0", "b"), casFail),
        op(1, 11, 12, read("x"), got("a"))
      ])
    ).toBe("ok")
    // equal times count as concurrent
    expect(verdict([op(1, 0, 5, put("x", "a"), okPut), op(2, 5, 6, read("x"), got(undefined))])).toBe("ok")
  })

  it("treats operations that never returned as maybe-applied", () => {
    // the pending put was applied: a later read sees it
    expect(verdict([op(1, 0, undefined, put("x", "a")), op(2, 5, 6, read("x"), got("a"))])).toBe("ok")
    // ... or it was not: a later read does not
    expect(verdict([op(1, 0, undefined, put("x", "a")), op(2, 5, 6, read("x"), got(undefined))])).toBe("ok")
    // but it cannot take effect before it was called
    expect(verdict([op(2, 0, 1, read("x"), got("a")), op(1, 5, undefined, put("x", "a"))])).toBe("illegal")
    // an unknown outcome reported as a return without output is accepted either way
    expect(verdict([op(1, 0, 3, cas("x", undefined, "a")), op(2, 5, 6, read("x"), got("a"))])).toBe("ok")
    // a pending cas only takes effect if its expectation held
    expect(
      verdict([
        op(1, 0, 1, put("x", "z"), okPut),
        op(1, 2, undefined, cas("x", "q", "a")),
        op(2, 5, 6, read("x"), got("a"))
      ])
    ).toBe("illegal")
  })

  it("builds operations from invoke/return events", () => {
    const ops = fromEvents([
      { kind: "invoke", id: 1, clientId: 1, time: 0, input: put("x", "a") },
      { kind: "invoke", id: 2, clientId: 2, time: 1, input: read("x") },
      { kind: "return", id: 2, time: 2, output: got("a") },
      { kind: "invoke", id: 3, clientId: 3, time: 3, input: put("x", "b") }
    ])
    expect(ops).toHaveLength(3)
    expect(ops.find((o) => o.clientId === 1)?.return).toBeUndefined()
    expect(verdict(ops)).toBe("ok")
    expect(() => fromEvents([{ kind: "return", id: 9, time: 0, output: okPut }])).toThrow()
  })
})

describe("linearizability checker: known-bad histories", () => {
  it("flags a stale read after a completed write", () => {
    const r = checkLinearizable([
      op(1, 0, 1, put("x", "a"), okPut),
      op(1, 2, 3, put("x", "b"), okPut),
      op(2, 4, 5, read("x"), got("a"))
    ])
    expect(r.verdict).toBe("illegal")
    expect(r.failing?.key).toBe("x")
    expect(describeResult(r)).toContain("read(x)")
  })

  it("flags a lost write", () => {
    // an acknowledged write, then a read that sees the value from before it
    expect(
      verdict([
        op(1, 0, 1, put("x", "a"), okPut),
        op(2, 0, 4, put("x", "b"), okPut),
        op(3, 5, 6, read("x"), got("a")),
        op(3, 7, 8, read("x"), got("a"))
      ])
    ).toBe("ok") // b may have been linearized before a: not lost
    expect(
      verdict([
        op(1, 0, 1, put("x", "a"), okPut),
        op(2, 2, 4, put("x", "b"), okPut),
        op(3, 5, 6, read("x"), got("a"))
      ])
    ).toBe("illegal")
    // a lost write seen through a cas: cas(b -> c) fails after b was written
    expect(
      verdict([op(1, 0, 1, put("x", "b"), okPut), op(2, 2, 3, cas("x", "b", "c"), casFail)])
    ).toBe("illegal")
  })

  it("flags a cas that succeeded on the wrong value", () => {
    expect(verdict([op(1, 0, 1, put("x", "a"), okPut), op(2, 2, 3, cas("x", "z", "c"), casOk)])).toBe("illegal")
    expect(verdict([op(2, 2, 3, cas("x", "a", "c"), casOk)])).toBe("illegal")
    // both concurrent cas from the same value succeeded
    expect(
      verdict([
        op(1, 0, 1, put("x", "0"), okPut),
        op(2, 2, 10, cas("x", "0", "a"), casOk),
        op(3, 3, 9, cas("x", "0", "b"), casOk)
      ])
    ).toBe("illegal")
  })

  it("flags a read of a value never written", () => {
    const r = checkLinearizable([op(1, 0, 1, put("x", "a"), okPut), op(2, 0, 5, read("x"), got("ghost"))])
    expect(r.verdict).toBe("illegal")
    // the other keys are still checked and reported
    const r2 = checkLinearizable([op(1, 0, 1, put("y", "a"), okPut), op(2, 0, 5, read("x"), got("ghost"))])
    expect(r2.verdict).toBe("illegal")
    expect(r2.partitions.map((p) => [p.key, p.verdict])).toEqual([
      ["x", "illegal"],
      ["y", "ok"]
    ])
  })

  it("flags a non-monotonic pair of reads (new then old)", () => {
    expect(
      verdict([
        op(1, 0, 10, put("x", "a"), okPut),
        op(2, 1, 2, read("x"), got("a")),
        op(3, 3, 4, read("x"), got(undefined))
      ])
    ).toBe("illegal")
  })

  it("answers unknown, not a hang, when the step bound is hit", () => {
    // 18 fully concurrent puts, then a read of a value nobody wrote: refuting it
    // needs the whole (subset x last value) space; a small bound gives up.
    const h: Array<Operation> = []
    for (let i = 0; i < 18; i++) h.push(op(i, 0, 100, put("x", `v${i}`), okPut))
    h.push(op(99, 200, 201, read("x"), got("nope")))
    const bounded = checkLinearizable(h, { maxStepsPerKey: 5_000 })
    expect(bounded.verdict).toBe("unknown")
    expect(bounded.failing?.verdict).toBe("unknown")
    // with the default bound memoization finishes it
    expect(checkLinearizable([...h.slice(0, 12), h[18]!]).verdict).toBe("illegal")
  })
})

// ---------------------------------------------------------------------------
// Generated histories: a real sequential execution, stretched into intervals

interface GenOp {
  readonly key: number
  readonly kind: number // 0 put, 1 cas, 2 read
  readonly pick: number
  readonly before: number
  readonly after: number
  readonly pending: number // 0: returns; 1: never returns but applied; 2: never returns, not applied
}

const genOps = fc.array(
  fc.record({
    key: fc.nat({ max: 2 }),
    kind: fc.nat({ max: 2 }),
    pick: fc.nat({ max: 5 }),
    before: fc.nat({ max: 40 }),
    after: fc.nat({ max: 40 }),
    pending: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }) })
  }),
  { minLength: 1, maxLength: 60 }
)

/**
 * Executes the ops sequentially on a map, op i at time 10*i, and gives it the
 * interval [10i - before, 10i + after]: every interval contains its
 * linearization point, so the history is linearizable.
 */
const materialize = (gen: ReadonlyArray<GenOp>): Array<Operation> => {
  const state = new Map<string, string>()
  const written: Array<string> = []
  const out: Array<Operation> = []
  gen.forEach((g, i) => {
    const key = `k${g.key}`
    const t = 10 * i
    const call = Math.max(0, t - g.before)
    const ret = g.pending === 0 ? t + g.after : undefined
    const clientId = i % 5
    const cur = state.get(key)
    let input: KvInput
    let output: KvOutput
    if (g.kind === 0 || written.length === 0) {
      const value = `v${i}`
      input = put(key, value)
      output = okPut
      if (g.pending !== 2) state.set(key, value)
      written.push(value)
    } else if (g.kind === 1) {
      // expect the current value half of the time, some older value otherwise
      const expected = g.pick % 2 === 0 ? cur : written[g.pick % written.length]
      const value = `v${i}`
      input = cas(key, expected, value)
      output = { type: "cas", ok: expected === cur }
      if (expected === cur && g.pending !== 2) state.set(key, value)
      written.push(value)
    } else {
      input = read(key)
      output = got(cur)
    }
    out.push(ret === undefined ? op(clientId, call, undefined, input) : op(clientId, call, ret, input, output))
  })
  return out
}

/** Sequential (no overlap) version: op i occupies [10i, 10i + 1]. */
const sequential = (gen: ReadonlyArray<GenOp>): Array<Operation> =>
  materialize(gen.map((g) => ({ ...g, before: 0, after: 1, pending: 0 })))

describe("linearizability checker: generated histories", () => {
  it("accepts every history produced by a real sequential execution with random overlap", () => {
    fc.assert(
      fc.property(genOps, (gen) => {
        const h = materialize(gen)
        const r = checkLinearizable(h)
        if (r.verdict !== "ok") throw new Error(describeResult(r))
      }),
      { numRuns: 400, seed: 42 }
    )
  })

  it("flags constructed violations appended to any generated history", () => {
    fc.assert(
      fc.property(genOps, fc.nat({ max: 2 }), fc.nat({ max: 3 }), (gen, keyNo, which) => {
        const h = materialize(gen.map((g) => ({ ...g, pending: 0 })))
        const key = `k${keyNo}`
        const end = 10 * gen.length + 100
        let bad: Array<Operation>
        switch (which) {
          case 0: // read of a value never written
            bad = [op(9, end, end + 1, read(key), got("never"))]
            break
          case 1: // stale read after a completed write
            bad = [op(9, end, end + 1, put(key, "w1"), okPut), op(9, end + 2, end + 3, put(key, "w2"), okPut), op(8, end + 4, end + 5, read(key), got("w1"))]
            break
          case 2: // cas succeeding on the wrong value
            bad = [op(9, end, end + 1, put(key, "w1"), okPut), op(8, end + 2, end + 3, cas(key, "w0", "w2"), casOk)]
            break
          default: // lost write: acknowledged write, later read of the absent value... after a put
            bad = [op(9, end, end + 1, put(key, "w1"), okPut), op(8, end + 2, end + 3, read(key), got(undefined))]
        }
        expect(checkLinearizable([...h, ...bad]).verdict).toBe("illegal")
      }),
      { numRuns: 200, seed: 7 }
    )
  })

  it("flags most random mutations of a sequential history", () => {
    // In a history without overlap there is exactly one legal output per
    // operation, so changing one read's value or flipping one cas result must be caught.
    fc.assert(
      fc.property(genOps, fc.nat(), (gen, pickOp) => {
        const h = sequential(gen)
        const idx = h.findIndex((_, i) => h[(i + pickOp) % h.length]!.input.type !== "put")
        if (idx < 0) return
        const i = (idx + pickOp) % h.length
        const o = h[i]!
        const mutated: Operation =
          o.output?.type === "cas"
            ? { ...o, output: { type: "cas", ok: !o.output.ok } }
            : { ...o, output: got(o.output?.type === "read" && o.output.value === "v0" ? "v1" : "v0") }
        if (o.output?.type === "read" && (mutated.output as { value?: string }).value === o.output.value) return
        const h2 = h.slice()
        h2[i] = mutated
        const r = checkLinearizable(h2)
        if (r.verdict !== "illegal") throw new Error(`not flagged: ${JSON.stringify(mutated)}\n${describeResult(r)}`)
      }),
      { numRuns: 300, seed: 11 }
    )

    // With overlap some mutations stay legal; count how many are flagged.
    const samples = fc.sample(fc.tuple(genOps, fc.nat()), { numRuns: 300, seed: 5 })
    let mutated = 0
    let flagged = 0
    for (const [gen, pickOp] of samples) {
      const h = materialize(gen.map((g) => ({ ...g, pending: 0 })))
      const reads = h.map((o, i) => [o, i] as const).filter(([o]) => o.output?.type === "read")
      if (reads.length === 0) continue
      const [o, i] = reads[pickOp % reads.length]!
      const old = o.output?.type === "read" ? o.output.value : undefined
      const h2 = h.slice()
      h2[i] = { ...o, output: got(old === "v0" ? "v1" : "v0") }
      mutated++
      if (checkLinearizable(h2).verdict === "illegal") flagged++
    }
    expect(mutated).toBeGreaterThan(100)
    expect(flagged / mutated).toBeGreaterThan(0.5)
  })

  it("checks a large concurrent history quickly (memoization)", () => {
    const gen = fc.sample(genOps, { numRuns: 150, seed: 3 }).flat()
    const h = materialize(gen.map((g, i) => ({ ...g, before: 30 + (i % 7) * 10, after: 30 + (i % 5) * 10 })))
    const t0 = performance.now()
    const r = checkLinearizable(h)
    const ms = performance.now() - t0
    expect(r.verdict).toBe("ok")
    expect(h.length).toBeGreaterThan(500)
    expect(ms).toBeLessThan(5_000)
  })
})
