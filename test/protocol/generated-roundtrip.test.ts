/**
 * Property tests for every generated codec at every valid version: values are
 * generated from the generated schema (test/protocol/arbitraries.ts), then
 * encode -> decode must give the value back (absent fields at their spec
 * defaults, unknown tagged fields preserved) and decode -> encode must give the
 * same bytes.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { MESSAGES } from "../../src/protocol/generated/index.js"
import { SCHEMA } from "../../src/protocol/generated/schema.js"
import { cursor, type MessageCodec } from "../../src/protocol/wire.js"
import type { SchemaMessage } from "../../src/protocol/generated/schema.js"
import { messageArb, versionsOf } from "./arbitraries.js"

/**
 * The same value as an encoder input with every field the version does not have left out
 * (the Input types make those optional): it must encode to the same bytes.
 */
const stripAbsent = (m: SchemaMessage, struct: string, v: number, value: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const f of m.structs[struct]!) {
    const present = f.versions !== null && v >= f.versions[0] && v <= f.versions[1]
    if (!present) continue
    const x = value[f.name]
    const et = f.type.startsWith("[]") ? f.type.slice(2) : f.type
    if (/^[A-Z]/.test(et) && x !== null) {
      out[f.name] = Array.isArray(x)
        ? x.map((e: Record<string, unknown>) => stripAbsent(m, et, v, e))
        : stripAbsent(m, et, v, x as Record<string, unknown>)
    } else out[f.name] = x
  }
  if (value._unknownTaggedFields !== undefined) out._unknownTaggedFields = value._unknownTaggedFields
  return out
}

const RUNS = 20

describe("generated codecs round-trip", () => {
  it("the schema and the codec table describe the same messages", () => {
    expect(SCHEMA.map((m) => m.name).sort()).toEqual(Object.keys(MESSAGES).sort())
    expect(SCHEMA.length).toBeGreaterThan(180)
  })

  for (const m of SCHEMA) {
    it(`${m.name} v${m.validVersions[0]}-${m.validVersions[1]}`, () => {
      const codec = (MESSAGES as Record<string, MessageCodec<unknown, unknown>>)[m.name]!
      expect(codec.minVersion).toBe(m.validVersions[0])
      expect(codec.maxVersion).toBe(m.validVersions[1])
      for (const v of versionsOf(m)) {
        fc.assert(
          fc.property(messageArb(m, v), (value) => {
            const bytes = codec.encode(v, value)
            const c = cursor(bytes)
            const decoded = codec.decode(v, c)
            expect(c.pos).toBe(bytes.length)
            expect(decoded).toEqual(value)
            expect(codec.encode(v, decoded).equals(bytes)).toBe(true)
            expect(codec.encode(v, stripAbsent(m, m.name, v, value)).equals(bytes)).toBe(true)
          }),
          { numRuns: RUNS, seed: 0x5eed + v }
        )
      }
    })
  }
})
