/** Property tests for the core's building blocks against naive models. */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { MemoryStorage } from "../../src/raft/core/index.js"
import type { Entry } from "../../src/raft/core/index.js"
import { Inflights, ProgressTracker } from "../../src/raft/core/progress.js"

describe("ProgressTracker.committedIndex", () => {
  it("is the largest index held by a majority of voters", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(100), { minLength: 1, maxLength: 7 }), (matches) => {
        const t = new ProgressTracker(16, 0)
        const voters = matches.map((_, i) => i + 1)
        t.setConf({ voters, learners: [99] }, 1)
        matches.forEach((m, i) => (t.progress.get(i + 1)!.match = m))
        t.progress.get(99)!.match = 1000 // learners never count
        const c = t.committedIndex()
        const atLeast = (x: number) => matches.filter((m) => m >= x).length
        const q = Math.floor(matches.length / 2) + 1
        expect(atLeast(c)).toBeGreaterThanOrEqual(q)
        expect(atLeast(c + 1)).toBeLessThan(q)
      })
    )
  })
})

describe("Inflights", () => {
  it("tracks count and bytes like a FIFO of (index, bytes)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("add" as const), bytes: fc.integer({ min: 1, max: 50 }) }),
      fc.record({ kind: fc.constant("free" as const), upTo: fc.nat(60) }),
      fc.record({ kind: fc.constant("freeFirst" as const) })
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const inf = new Inflights(5, 120)
        const model: Array<{ index: number; bytes: number }> = []
        let next = 1
        for (const o of ops) {
          if (o.kind === "add") {
            if (inf.full()) continue
            inf.add(next, o.bytes)
            model.push({ index: next++, bytes: o.bytes })
          } else if (o.kind === "free") {
            inf.freeLE(o.upTo)
            while (model.length > 0 && model[0]!.index <= o.upTo) model.shift()
          } else {
            inf.freeFirstOne()
            model.shift()
          }
          const bytes = model.reduce((a, b) => a + b.bytes, 0)
          expect(inf.count()).toBe(model.length)
          expect(inf.inflightBytes()).toBe(bytes)
          expect(inf.full()).toBe(model.length >= 5 || bytes >= 120)
        }
      })
    )
  })
})

describe("MemoryStorage", () => {
  it("append (with truncation) and compact behave like an array of terms", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("append" as const), back: fc.nat(5), n: fc.integer({ min: 1, max: 4 }), term: fc.integer({ min: 1, max: 9 }) }),
      fc.record({ kind: fc.constant("compact" as const), back: fc.nat(6) })
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const st = MemoryStorage.make([1])
        const model: Array<number> = [0] // model[i] = term of index i; model[0] the dummy
        let first = 1
        for (const o of ops) {
          const last = model.length - 1
          if (o.kind === "append") {
            const start = Math.max(first, last + 1 - o.back)
            const ents: Array<Entry> = []
            for (let k = 0; k < o.n; k++) ents.push({ index: start + k, term: o.term, type: "Normal", data: new Uint8Array(k) })
            st.append(ents)
            model.length = start
            for (const e of ents) model.push(e.term)
          } else {
            const idx = last - o.back
            if (idx >= first) {
              st.compact(idx)
              first = idx + 1
            }
          }
          expect(st.firstIndex()).toBe(first)
          expect(st.lastIndex()).toBe(model.length - 1)
          for (let i = first - 1; i < model.length; i++) expect(st.term(i)).toBe(model[i])
          if (st.lastIndex() >= first) {
            expect(st.entries(first, st.lastIndex() + 1, Number.MAX_SAFE_INTEGER).map((e) => e.term)).toEqual(model.slice(first))
          }
        }
      })
    )
  })
})
