/**
 * fast-check arbitraries for every generated message, built from the generated
 * machine-readable schema (src/protocol/generated/schema.ts), not from the codecs.
 * Absent fields get the spec default computed here independently of the
 * generator, so a round trip also checks the generated defaults.
 */
import fc from "fast-check"
import { SCHEMA, type SchemaField, type SchemaMessage, type SchemaRange } from "../../src/protocol/generated/schema.js"
import { ZERO_UUID, type TaggedField } from "../../src/protocol/wire.js"

export const SCHEMA_BY_NAME: ReadonlyMap<string, SchemaMessage> = new Map(SCHEMA.map((m) => [m.name, m]))

const inR = (r: SchemaRange | null, v: number): boolean => r !== null && v >= r[0] && v <= r[1]

export const versionsOf = (m: SchemaMessage): Array<number> => {
  const out: Array<number> = []
  for (let v = m.validVersions[0]; v <= m.validVersions[1]; v++) out.push(v)
  return out
}

const elemType = (t: string): string => (t.startsWith("[]") ? t.slice(2) : t)
const isStructType = (t: string): boolean => /^[A-Z]/.test(elemType(t))

/** Nullable in some valid version where the field exists. */
const nullableAnywhere = (m: SchemaMessage, f: SchemaField): boolean => {
  if (f.default === "null") return true
  for (let v = m.validVersions[0]; v <= m.validVersions[1]; v++) if (inR(f.versions, v) && inR(f.nullable, v)) return true
  return false
}

export const defaultOf = (m: SchemaMessage, f: SchemaField): unknown => {
  const t = f.type
  if (f.default !== null) {
    if (f.default === "null") return null
    switch (t) {
      case "bool":
        return f.default === "true"
      case "int64":
        return BigInt(f.default)
      case "string":
        return f.default
      default:
        return Number(f.default)
    }
  }
  if (nullableAnywhere(m, f)) return null
  if (t.startsWith("[]")) return []
  if (isStructType(t)) return defaultStruct(m, t)
  switch (t) {
    case "bool":
      return false
    case "int64":
      return 0n
    case "uuid":
      return ZERO_UUID
    case "string":
      return ""
    case "bytes":
    case "records":
      return Buffer.alloc(0)
    default:
      return 0
  }
}

export const defaultStruct = (m: SchemaMessage, name: string): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const f of m.structs[name]!) out[f.name] = defaultOf(m, f)
  return out
}

const INT_RANGES: Record<string, readonly [number, number]> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295]
}

export const uuidArb: fc.Arbitrary<string> = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString("base64url"))
const bytesArb: fc.Arbitrary<Buffer> = fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b))
const stringArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 8 }) }
)

const primArb = (t: string): fc.Arbitrary<unknown> => {
  const r = INT_RANGES[t]
  if (r !== undefined) return fc.integer({ min: r[0], max: r[1] })
  switch (t) {
    case "bool":
      return fc.boolean()
    case "int64":
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
    case "float64":
      return fc.double()
    case "uuid":
      return uuidArb
    case "string":
      return stringArb
    case "bytes":
    case "records":
      return bytesArb
    default:
      throw new Error(`unknown type ${t}`)
  }
}

/** Unknown tagged fields: tags far above any known tag, sorted (the decoder returns wire order). */
const unknownTagsArb: fc.Arbitrary<Array<TaggedField>> = fc
  .uniqueArray(fc.record({ tag: fc.integer({ min: 64, max: 20000 }), data: bytesArb }), { selector: (x) => x.tag, minLength: 1, maxLength: 2 })
  .map((a) => a.sort((x, y) => x.tag - y.tag))

const memo = new Map<string, fc.Arbitrary<Record<string, unknown>>>()

/** Values of struct `name` of message `m` as they decode at version `v`. */
export const structArb = (m: SchemaMessage, name: string, v: number, depth = 0): fc.Arbitrary<Record<string, unknown>> => {
  const key = `${m.name}/${name}/${v}`
  const hit = memo.get(key)
  if (hit !== undefined) return hit
  const flexible = inR(m.flexibleVersions, v)
  const parts: Record<string, fc.Arbitrary<unknown>> = {}
  for (const f of m.structs[name]!) {
    if (!inR(f.versions, v)) {
      parts[f.name] = fc.constant(defaultOf(m, f))
      continue
    }
    const maxLength = depth >= 2 ? 1 : 3
    let a: fc.Arbitrary<unknown>
    if (f.type.startsWith("[]")) {
      const et = f.type.slice(2)
      const ea: fc.Arbitrary<unknown> = isStructType(et) ? structArb(m, et, v, depth + 1) : primArb(et)
      a = fc.array(ea, { maxLength })
    } else if (isStructType(f.type)) {
      a = structArb(m, f.type, v, depth + 1)
    } else a = primArb(f.type)
    if (inR(f.nullable, v)) a = fc.option(a, { nil: null, freq: 4 })
    parts[f.name] = a
  }
  let arb: fc.Arbitrary<Record<string, unknown>> = fc.record(parts)
  if (flexible) {
    arb = fc.tuple(arb, fc.option(unknownTagsArb, { nil: undefined, freq: 3 })).map(([r, u]) => (u === undefined ? r : { ...r, _unknownTaggedFields: u }))
  }
  memo.set(key, arb)
  return arb
}

export const messageArb = (m: SchemaMessage, v: number): fc.Arbitrary<Record<string, unknown>> => structArb(m, m.name, v)
