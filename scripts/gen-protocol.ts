/**
 * Kafka wire-protocol codec generator.
 *
 *   npx tsx scripts/gen-protocol.ts <specDir> <outDir>
 *
 * Reads Kafka's JSON message specs (`// comments` allowed) and writes, into
 * `outDir`:
 * - one module per spec file (`ProduceRequest.ts`, ...) with the TS types,
 *   `decodeX(version, cursor)`, `encodeX(version, value)`, the size/write
 *   passes and an `XCodec` descriptor;
 * - `index.ts`: API table (key, name, versions, first flexible version,
 *   codecs) and type maps by API key;
 * - `schema.ts`: a machine-readable description of every message, used by the
 *   property tests (and handy for tooling).
 *
 * Output is deterministic: files and structs are emitted in sorted / spec
 * order, nothing depends on time or environment. See docs/protocol-codec.md.
 */
import * as fs from "node:fs"
import * as path from "node:path"

// ---------------------------------------------------------------------------
// Spec parsing
// ---------------------------------------------------------------------------

interface RawField {
  readonly name: string
  readonly type: string
  readonly versions: string
  readonly nullableVersions?: string
  readonly taggedVersions?: string
  readonly tag?: number
  readonly default?: string | number | boolean
  readonly ignorable?: boolean
  readonly flexibleVersions?: string
  readonly zeroCopy?: boolean
  readonly mapKey?: boolean
  readonly about?: string
  readonly fields?: ReadonlyArray<RawField>
}

interface RawSpec {
  readonly name: string
  readonly type: "request" | "response" | "header" | "data"
  readonly apiKey?: number
  readonly validVersions: string
  readonly flexibleVersions: string
  readonly latestVersionUnstable?: boolean
  readonly fields: ReadonlyArray<RawField>
  readonly commonStructs?: ReadonlyArray<{ readonly name: string; readonly fields: ReadonlyArray<RawField> }>
}

/** Removes `//` line comments outside JSON strings. */
export const stripComments = (text: string): string => {
  let out = ""
  let inStr = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (inStr) {
      out += ch
      if (ch === "\\") {
        out += text[i + 1] ?? ""
        i++
      } else if (ch === '"') inStr = false
    } else if (ch === '"') {
      inStr = true
      out += ch
    } else if (ch === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++
      out += "\n"
    } else out += ch
  }
  return out
}

const OPEN = 32767

interface Range {
  readonly lo: number
  readonly hi: number
}

const parseRange = (s: string | undefined): Range | null => {
  if (s === undefined || s === "none" || s === "") return null
  const plus = /^(\d+)\+$/.exec(s)
  if (plus) return { lo: Number(plus[1]), hi: OPEN }
  const span = /^(\d+)-(\d+)$/.exec(s)
  if (span) return { lo: Number(span[1]), hi: Number(span[2]) }
  if (/^\d+$/.test(s)) return { lo: Number(s), hi: Number(s) }
  throw new Error(`bad version range: ${s}`)
}

const inRange = (r: Range | null, v: number): boolean => r !== null && v >= r.lo && v <= r.hi

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

const PRIMS = ["bool", "int8", "int16", "uint16", "int32", "uint32", "int64", "float64", "uuid", "string", "bytes", "records"] as const
type Prim = (typeof PRIMS)[number]
const isPrim = (s: string): s is Prim => (PRIMS as ReadonlyArray<string>).includes(s)

type TypeRef =
  | { readonly k: "prim"; readonly p: Prim }
  | { readonly k: "struct"; readonly s: string }
  | { readonly k: "array"; readonly e: { readonly k: "prim"; readonly p: Prim } | { readonly k: "struct"; readonly s: string } }

interface Field {
  readonly specName: string
  readonly prop: string
  readonly rawType: string
  readonly type: TypeRef
  readonly versions: Range | null
  readonly nullable: Range | null
  readonly tag: number | null
  readonly tagged: Range | null
  /** Field-level override of the message's flexibleVersions (RequestHeader.ClientId: "none"). */
  readonly flexOverride: Range | null | undefined
  readonly ignorable: boolean
  readonly explicitDefault: string | undefined
  readonly zeroCopy: boolean
  readonly mapKey: boolean
  readonly about: string
}

interface Variant {
  /** JS expression (on `v`) telling whether the compact encoding applies within `set`. */
  readonly compact: string
  readonly nullable: boolean
  readonly set: Set<number>
}

interface Struct {
  readonly name: string
  readonly fields: Array<Field>
  domain: Array<number>
}

interface Msg {
  readonly file: string
  readonly name: string
  readonly type: RawSpec["type"]
  readonly apiKey: number
  readonly valid: Range
  readonly flexible: Range | null
  readonly latestVersionUnstable: boolean
  /** Structs in emit order: root first, then depth-first in spec order. */
  readonly structs: Array<Struct>
  readonly byName: Map<string, Struct>
}

const RESERVED = new Set(["W", "Buffer", "Array", "ReadonlyArray", "Object", "Error", "String", "Number", "Boolean", "BigInt", "Record", "Partial", "Map", "Set", "Date", "Promise", "Symbol"])

const camel = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1)

const parseType = (t: string): TypeRef => {
  if (t.startsWith("[]")) {
    const inner = t.slice(2)
    return { k: "array", e: isPrim(inner) ? { k: "prim", p: inner } : { k: "struct", s: inner } }
  }
  if (isPrim(t)) return { k: "prim", p: t }
  if (!/^[A-Z]/.test(t)) throw new Error(`unknown type ${t}`)
  return { k: "struct", s: t }
}

const structOf = (t: TypeRef): string | null => (t.k === "struct" ? t.s : t.k === "array" && t.e.k === "struct" ? t.e.s : null)

const buildMsg = (file: string, spec: RawSpec): Msg => {
  const valid = parseRange(spec.validVersions)
  if (valid === null) throw new Error(`${file}: no valid versions`)
  const flexible = parseRange(spec.flexibleVersions)
  const byName = new Map<string, Struct>()
  const order: Array<Struct> = []
  const mkFields = (raws: ReadonlyArray<RawField>, owner: string): Array<Field> => {
    const props = new Set<string>()
    return raws.map((r) => {
      const type = parseType(r.type)
      const prop = camel(r.name)
      if (props.has(prop)) throw new Error(`${file}: duplicate field ${owner}.${prop}`)
      props.add(prop)
      const f: Field = {
        specName: r.name,
        prop,
        rawType: r.type,
        type,
        versions: parseRange(r.versions),
        nullable: parseRange(r.nullableVersions),
        tag: r.tag ?? null,
        tagged: parseRange(r.taggedVersions),
        flexOverride: r.flexibleVersions === undefined ? undefined : parseRange(r.flexibleVersions),
        ignorable: r.ignorable === true,
        explicitDefault: r.default === undefined ? undefined : String(r.default),
        zeroCopy: r.zeroCopy === true,
        mapKey: r.mapKey === true,
        about: r.about ?? ""
      }
      if ((f.tag === null) !== (f.tagged === null)) throw new Error(`${file}: ${owner}.${prop}: tag without taggedVersions`)
      const sname = structOf(type)
      if (sname !== null && r.fields !== undefined) define(sname, r.fields)
      return f
    })
  }
  const define = (name: string, raws: ReadonlyArray<RawField>): void => {
    if (byName.has(name)) throw new Error(`${file}: struct ${name} defined twice`)
    if (RESERVED.has(name)) throw new Error(`${file}: struct name ${name} is reserved`)
    const s: Struct = { name, fields: [], domain: [] }
    byName.set(name, s)
    order.push(s)
    s.fields.push(...mkFields(raws, name))
  }
  define(spec.name, spec.fields)
  for (const cs of spec.commonStructs ?? []) define(cs.name, cs.fields)
  // every referenced struct must exist
  for (const s of order) {
    for (const f of s.fields) {
      const n = structOf(f.type)
      if (n !== null && !byName.has(n)) throw new Error(`${file}: unknown struct ${n}`)
    }
  }
  // version domains: the message versions in which each struct can appear (fixpoint for common structs)
  const all: Array<number> = []
  for (let v = valid.lo; v <= valid.hi; v++) all.push(v)
  const dom = new Map<string, Set<number>>([[spec.name, new Set(all)]])
  let changed = true
  while (changed) {
    changed = false
    for (const s of order) {
      const d = dom.get(s.name)
      if (d === undefined) continue
      for (const f of s.fields) {
        const n = structOf(f.type)
        if (n === null) continue
        let t = dom.get(n)
        if (t === undefined) dom.set(n, (t = new Set()))
        for (const v of d) {
          if (inRange(f.versions, v) && !t.has(v)) {
            t.add(v)
            changed = true
          }
        }
      }
    }
  }
  for (const s of order) {
    const d = [...(dom.get(s.name) ?? [])].sort((a, b) => a - b)
    s.domain = d.length > 0 ? d : all
  }
  // emit order: root, then depth-first by first reference
  const emitted: Array<Struct> = []
  const seen = new Set<string>()
  const visit = (name: string): void => {
    if (seen.has(name)) return
    seen.add(name)
    const s = byName.get(name)!
    emitted.push(s)
    for (const f of s.fields) {
      const n = structOf(f.type)
      if (n !== null) visit(n)
    }
  }
  visit(spec.name)
  for (const s of order) visit(s.name)
  return {
    file,
    name: spec.name,
    type: spec.type,
    apiKey: spec.apiKey ?? -1,
    valid,
    flexible,
    latestVersionUnstable: spec.latestVersionUnstable === true,
    structs: emitted,
    byName
  }
}

// ---------------------------------------------------------------------------
// Version conditions
// ---------------------------------------------------------------------------

/** A JS condition on `v` true exactly for the versions of `domain` in `set` ("true"/"false" when constant). */
const cond = (set: (v: number) => boolean, domain: ReadonlyArray<number>): string => {
  const ins = domain.map(set)
  if (ins.every((x) => x)) return "true"
  if (!ins.some((x) => x)) return "false"
  const parts: Array<string> = []
  let i = 0
  while (i < domain.length) {
    if (!ins[i]) {
      i++
      continue
    }
    let j = i
    while (j + 1 < domain.length && ins[j + 1]) j++
    const lo = domain[i]!
    const hi = domain[j]!
    const needLo = i > 0
    const needHi = j < domain.length - 1
    if (needLo && needHi) parts.push(lo === hi ? `v === ${lo}` : `(v >= ${lo} && v <= ${hi})`)
    else if (needLo) parts.push(`v >= ${lo}`)
    else parts.push(`v <= ${hi}`)
    i = j + 1
  }
  return parts.length === 1 ? parts[0]!.replace(/^\((.*)\)$/, "$1") : parts.join(" || ")
}

const and = (a: string, b: string): string => (a === "true" ? b : b === "true" ? a : `(${a}) && (${b})`)

// ---------------------------------------------------------------------------
// Per-field helpers
// ---------------------------------------------------------------------------

const FIXED: Partial<Record<Prim, number>> = { bool: 1, int8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, float64: 8, uuid: 16 }

const TS_PRIM: Record<Prim, string> = {
  bool: "boolean",
  int8: "number",
  int16: "number",
  uint16: "number",
  int32: "number",
  uint32: "number",
  int64: "bigint",
  float64: "number",
  uuid: "string",
  string: "string",
  bytes: "Buffer",
  records: "Buffer"
}

const READ_FIXED: Partial<Record<Prim, string>> = {
  bool: "rBool",
  int8: "rInt8",
  int16: "rInt16",
  uint16: "rUint16",
  int32: "rInt32",
  uint32: "rUint32",
  int64: "rInt64",
  float64: "rFloat64",
  uuid: "rUuid"
}

const WRITE_FIXED: Partial<Record<Prim, string>> = {
  bool: "wBool",
  int8: "wInt8",
  int16: "wInt16",
  uint16: "wUint16",
  int32: "wInt32",
  uint32: "wUint32",
  int64: "wInt64",
  float64: "wFloat64",
  uuid: "wUuid"
}

const lit = (s: string): string => JSON.stringify(s)

class Gen {
  constructor(readonly msg: Msg) {}

  /** Nullable in some version the field can appear in (within its struct's domain). */
  nullableAnywhere(f: Field, s: Struct): boolean {
    return s.domain.some((v) => inRange(f.versions, v) && inRange(f.nullable, v)) || f.explicitDefault === "null"
  }

  tsType(f: Field, s: Struct, input: boolean): string {
    const t = f.type
    let base: string
    if (t.k === "prim") base = TS_PRIM[t.p]
    else if (t.k === "struct") base = input ? `${t.s}Input` : t.s
    else {
      const e = t.e.k === "prim" ? TS_PRIM[t.e.p] : input ? `${t.e.s}Input` : t.e.s
      base = input ? `ReadonlyArray<${e}>` : `Array<${e}>`
    }
    return this.nullableAnywhere(f, s) ? `${base} | null` : base
  }

  /** Whether the field may be omitted in the Input type (encoder substitutes the default). */
  optionalInput(f: Field, s: Struct): boolean {
    return f.explicitDefault !== undefined || f.tag !== null || !s.domain.every((v) => inRange(f.versions, v))
  }

  defaultExpr(f: Field, s: Struct): string {
    const t = f.type
    const d = f.explicitDefault
    if (d !== undefined) {
      if (d === "null") {
        if (!this.nullableAnywhere(f, s)) throw new Error(`${this.msg.file}: ${f.prop}: null default on non-nullable field`)
        return "null"
      }
      if (t.k !== "prim") throw new Error(`${this.msg.file}: ${f.prop}: unsupported default ${d}`)
      switch (t.p) {
        case "bool":
          if (d !== "true" && d !== "false") throw new Error(`bad bool default ${d}`)
          return d
        case "int8":
        case "int16":
        case "uint16":
        case "int32":
        case "uint32":
        case "float64": {
          const n = Number(d)
          if (!Number.isFinite(n)) throw new Error(`${this.msg.file}: bad numeric default ${d}`)
          return String(n)
        }
        case "int64":
          return `${BigInt(d).toString()}n`
        case "string":
          return lit(d)
        default:
          throw new Error(`${this.msg.file}: ${f.prop}: unsupported default ${d}`)
      }
    }
    if (this.nullableAnywhere(f, s)) return "null"
    if (t.k === "array") return "[]"
    if (t.k === "struct") return `default${t.s}()`
    switch (t.p) {
      case "bool":
        return "false"
      case "int64":
        return "0n"
      case "uuid":
        return "W.ZERO_UUID"
      case "string":
        return '""'
      case "bytes":
      case "records":
        return "W.EMPTY_BUFFER"
      default:
        return "0"
    }
  }

  /** Boolean expression: `val` (already normalised) equals the field default. */
  isDefaultExpr(f: Field, s: Struct, val: string): string {
    const d = this.defaultExpr(f, s)
    if (d === "null") return `${val} === null`
    const t = f.type
    if (t.k === "array" || (t.k === "prim" && (t.p === "bytes" || t.p === "records"))) return `W.isEmpty(${val})`
    if (t.k === "struct") return this.nullableAnywhere(f, s) ? `(${val} !== null && isDefault${t.s}(${val}))` : `isDefault${t.s}(${val})`
    return `${val} === ${d}`
  }

  compactAt(f: Field, v: number): boolean {
    return inRange(f.flexOverride === undefined ? this.msg.flexible : f.flexOverride, v)
  }

  isRegular(f: Field, v: number): boolean {
    return inRange(f.versions, v) && !inRange(f.tagged, v)
  }

  isTagged(f: Field, v: number): boolean {
    return inRange(f.versions, v) && inRange(f.tagged, v)
  }

  /**
   * Groups the versions of the struct domain where `pick` holds by nullability; within a
   * group the compact/classic choice is a runtime expression on `v` (or a constant).
   */
  variants(f: Field, s: Struct, pick: (v: number) => boolean, forceCompact: boolean): Array<Variant> {
    const t = f.type
    const compactMatters = t.k === "array" || (t.k === "prim" && (t.p === "string" || t.p === "bytes" || t.p === "records"))
    const nullMatters = t.k !== "prim" || FIXED[t.p] === undefined
    const groups = new Map<boolean, { set: Set<number>; compactSet: Set<number> }>()
    for (const v of s.domain) {
      if (!pick(v)) continue
      const nullable = nullMatters && inRange(f.nullable, v)
      let g = groups.get(nullable)
      if (g === undefined) groups.set(nullable, (g = { set: new Set(), compactSet: new Set() }))
      g.set.add(v)
      if (compactMatters && (forceCompact || this.compactAt(f, v))) g.compactSet.add(v)
    }
    return [...groups].map(([nullable, g]) => ({
      nullable,
      set: g.set,
      compact: cond((v) => g.compactSet.has(v), [...g.set])
    }))
  }

  minStructSize(name: string, stack: ReadonlyArray<string> = []): number {
    if (stack.includes(name)) return 0
    const s = this.msg.byName.get(name)!
    let best = Infinity
    for (const v of s.domain) {
      let n = inRange(this.msg.flexible, v) ? 1 : 0
      for (const f of s.fields) {
        if (!this.isRegular(f, v)) continue
        n += this.minFieldSize(f, v, [...stack, name])
      }
      best = Math.min(best, n)
    }
    return best === Infinity ? 0 : best
  }

  minFieldSize(f: Field, v: number, stack: ReadonlyArray<string>): number {
    const compact = this.compactAt(f, v)
    const t = f.type
    if (t.k === "array") return compact ? 1 : 4
    if (t.k === "struct") return inRange(f.nullable, v) ? 1 : this.minStructSize(t.s, stack)
    const fixed = FIXED[t.p]
    if (fixed !== undefined) return fixed
    if (t.p === "string") return compact ? 1 : 2
    return compact ? 1 : 4
  }

  /** Smallest encoded element size; with a version-dependent `compact` the smaller (compact) bound. */
  minElemSize(e: TypeRef, compactExpr: string): number {
    const compact = compactExpr !== "false"
    if (e.k === "struct") return Math.max(1, this.minStructSize(e.s))
    if (e.k === "prim") {
      const fixed = FIXED[e.p]
      if (fixed !== undefined) return fixed
      return e.p === "string" ? (compact ? 1 : 2) : compact ? 1 : 4
    }
    return 1
  }

  // ----- read -----

  readValue(f: Field, compact: string, nullable: boolean, target: string, ind: string, out: Array<string>): void {
    const F = lit(f.prop)
    const t = f.type
    if (t.k === "prim") {
      const fx = READ_FIXED[t.p]
      if (fx !== undefined) out.push(`${ind}${target} = W.${fx}(c, ${F})`)
      else if (t.p === "string") out.push(`${ind}${target} = W.${nullable ? "rNullableString" : "rString"}(c, ${F}, ${compact})`)
      else {
        const view = t.p === "records" || f.zeroCopy
        out.push(`${ind}${target} = W.${nullable ? "rNullableBytes" : "rBytes"}(c, ${F}, ${compact}, ${view})`)
      }
      return
    }
    if (t.k === "struct") {
      if (nullable) {
        out.push(`${ind}if (W.rInt8(c, ${F}) < 0) ${target} = null`)
        out.push(`${ind}else {`)
        out.push(`${ind}  try {`)
        out.push(`${ind}    ${target} = read${t.s}(c, v)`)
        out.push(`${ind}  } catch (e) {`)
        out.push(`${ind}    throw W.pfx(e, ${F}, -1)`)
        out.push(`${ind}  }`)
        out.push(`${ind}}`)
      } else {
        out.push(`${ind}try {`)
        out.push(`${ind}  ${target} = read${t.s}(c, v)`)
        out.push(`${ind}} catch (e) {`)
        out.push(`${ind}  throw W.pfx(e, ${F}, -1)`)
        out.push(`${ind}}`)
      }
      return
    }
    const e = t.e
    const elemTs = e.k === "prim" ? TS_PRIM[e.p] : e.s
    const min = this.minElemSize(e, compact)
    out.push(`${ind}{`)
    out.push(`${ind}  const n = W.${nullable ? "rNullableArrayLen" : "rArrayLen"}(c, ${F}, ${compact}, ${min})`)
    let i2 = `${ind}  `
    if (nullable) {
      out.push(`${ind}  if (n < 0) ${target} = null`)
      out.push(`${ind}  else {`)
      i2 = `${ind}    `
    }
    out.push(`${i2}const a: Array<${elemTs}> = []`)
    if (e.k === "struct") {
      out.push(`${i2}let i = 0`)
      out.push(`${i2}try {`)
      out.push(`${i2}  for (; i < n; i++) a.push(read${e.s}(c, v))`)
      out.push(`${i2}} catch (e) {`)
      out.push(`${i2}  throw W.pfx(e, ${F}, i)`)
      out.push(`${i2}}`)
    } else {
      const fx = READ_FIXED[e.p]
      let call: string
      if (fx !== undefined) call = `W.${fx}(c, ${F})`
      else if (e.p === "string") call = `W.rString(c, ${F}, ${compact})`
      else call = `W.rBytes(c, ${F}, ${compact}, false)`
      out.push(`${i2}for (let i = 0; i < n; i++) a.push(${call})`)
    }
    out.push(`${i2}${target} = a`)
    if (nullable) out.push(`${ind}  }`)
    out.push(`${ind}}`)
  }

  // ----- size -----

  sizeValue(f: Field, compact: string, nullable: boolean, val: string, acc: string, ind: string, out: Array<string>): void {
    const F = lit(f.prop)
    const t = f.type
    if (t.k === "prim") {
      const fixed = FIXED[t.p]
      if (fixed !== undefined) out.push(`${ind}${acc} += ${fixed}`)
      else if (t.p === "string") out.push(`${ind}${acc} += W.sStr(${val}, L, ${compact}, ${nullable}, ${F})`)
      else out.push(`${ind}${acc} += W.sBytes(${val}, ${compact}, ${nullable}, ${F})`)
      return
    }
    if (t.k === "struct") {
      if (nullable) {
        out.push(`${ind}if (${val} === null) ${acc} += 1`)
        out.push(`${ind}else {`)
        out.push(`${ind}  try {`)
        out.push(`${ind}    ${acc} += 1 + size${t.s}(v, ${val}, L)`)
        out.push(`${ind}  } catch (e) {`)
        out.push(`${ind}    throw W.pfx(e, ${F}, -1)`)
        out.push(`${ind}  }`)
        out.push(`${ind}}`)
      } else {
        out.push(`${ind}W.notNull(${val}, ${F})`)
        out.push(`${ind}try {`)
        out.push(`${ind}  ${acc} += size${t.s}(v, ${val}!, L)`)
        out.push(`${ind}} catch (e) {`)
        out.push(`${ind}  throw W.pfx(e, ${F}, -1)`)
        out.push(`${ind}}`)
      }
      return
    }
    const e = t.e
    out.push(`${ind}${acc} += W.sArr(${val}, ${compact}, ${nullable}, ${F})`)
    out.push(`${ind}if (${val} !== null) {`)
    if (e.k === "struct") {
      out.push(`${ind}  let i = 0`)
      out.push(`${ind}  try {`)
      out.push(`${ind}    for (; i < ${val}.length; i++) ${acc} += size${e.s}(v, ${val}[i]!, L)`)
      out.push(`${ind}  } catch (e) {`)
      out.push(`${ind}    throw W.pfx(e, ${F}, i)`)
      out.push(`${ind}  }`)
    } else {
      const fixed = FIXED[e.p]
      if (fixed !== undefined) out.push(`${ind}  ${acc} += ${val}.length * ${fixed}`)
      else if (e.p === "string") out.push(`${ind}  for (let i = 0; i < ${val}.length; i++) ${acc} += W.sStr(${val}[i]!, L, ${compact}, false, ${F})`)
      else out.push(`${ind}  for (let i = 0; i < ${val}.length; i++) ${acc} += W.sBytes(${val}[i]!, ${compact}, false, ${F})`)
    }
    out.push(`${ind}}`)
  }

  // ----- write -----

  writeValue(f: Field, compact: string, nullable: boolean, val: string, ind: string, out: Array<string>): void {
    const F = lit(f.prop)
    const t = f.type
    if (t.k === "prim") {
      const fx = WRITE_FIXED[t.p]
      if (fx !== undefined) out.push(`${ind}W.${fx}(w, ${val}, ${F})`)
      else if (t.p === "string") out.push(`${ind}W.wStr(w, ${val}, ${compact})`)
      else out.push(`${ind}W.wBytes(w, ${val}, ${compact})`)
      return
    }
    if (t.k === "struct") {
      if (nullable) {
        out.push(`${ind}if (${val} === null) W.wInt8(w, -1, ${F})`)
        out.push(`${ind}else {`)
        out.push(`${ind}  W.wInt8(w, 1, ${F})`)
        out.push(`${ind}  try {`)
        out.push(`${ind}    write${t.s}(v, ${val}, w)`)
        out.push(`${ind}  } catch (e) {`)
        out.push(`${ind}    throw W.pfx(e, ${F}, -1)`)
        out.push(`${ind}  }`)
        out.push(`${ind}}`)
      } else {
        out.push(`${ind}try {`)
        out.push(`${ind}  write${t.s}(v, ${val}!, w)`)
        out.push(`${ind}} catch (e) {`)
        out.push(`${ind}  throw W.pfx(e, ${F}, -1)`)
        out.push(`${ind}}`)
      }
      return
    }
    const e = t.e
    out.push(`${ind}if (${val} === null) W.wArrLen(w, -1, ${compact})`)
    out.push(`${ind}else {`)
    out.push(`${ind}  W.wArrLen(w, ${val}.length, ${compact})`)
    if (e.k === "struct") {
      out.push(`${ind}  let i = 0`)
      out.push(`${ind}  try {`)
      out.push(`${ind}    for (; i < ${val}.length; i++) write${e.s}(v, ${val}[i]!, w)`)
      out.push(`${ind}  } catch (e) {`)
      out.push(`${ind}    throw W.pfx(e, ${F}, i)`)
      out.push(`${ind}  }`)
    } else {
      const fx = WRITE_FIXED[e.p]
      let call: string
      if (fx !== undefined) call = `W.${fx}(w, ${val}[i]!, ${F})`
      else if (e.p === "string") call = `W.wStr(w, ${val}[i]!, ${compact})`
      else call = `W.wBytes(w, ${val}[i]!, ${compact})`
      out.push(`${ind}  for (let i = 0; i < ${val}.length; i++) ${call}`)
    }
    out.push(`${ind}}`)
  }

  /**
   * Emits `if (c1) {...} else if (c2) {...} [else {...}]` over version groups. Conditions are
   * relative to `scope` (the versions that can reach this point); the last branch becomes a
   * plain `else` when the groups cover the scope.
   */
  chain(groups: ReadonlyArray<{ readonly set: ReadonlySet<number>; readonly emit: (ind: string) => void }>, scope: ReadonlyArray<number>, ind: string, out: Array<string>): void {
    const live = groups.filter((g) => scope.some((v) => g.set.has(v)))
    if (live.length === 0) return
    const complete = scope.every((v) => live.some((g) => g.set.has(v)))
    if (live.length === 1 && complete) {
      live[0]!.emit(ind)
      return
    }
    live.forEach((g, k) => {
      const last = k === live.length - 1
      const c = cond((v) => g.set.has(v), scope)
      const head = k === 0 ? `if (${c}) {` : last && complete ? "} else {" : `} else if (${c}) {`
      out.push(`${ind}${head}`)
      g.emit(`${ind}  `)
    })
    out.push(`${ind}}`)
  }

  everFlexible(s: Struct): boolean {
    return s.domain.some((v) => inRange(this.msg.flexible, v))
  }

  taggedFields(s: Struct): Array<Field> {
    return s.fields.filter((f) => f.tag !== null && s.domain.some((v) => this.isTagged(f, v))).sort((a, b) => a.tag! - b.tag!)
  }

  fieldDoc(f: Field): string {
    const r = (x: Range | null): string => (x === null ? "none" : x.hi === OPEN ? `${x.lo}+` : x.lo === x.hi ? `${x.lo}` : `${x.lo}-${x.hi}`)
    const bits = [`versions ${r(f.versions)}`]
    if (f.nullable !== null) bits.push(`nullable ${r(f.nullable)}`)
    if (f.tag !== null) bits.push(`tag ${f.tag} (${r(f.tagged)})`)
    if (f.explicitDefault !== undefined) bits.push(`default ${f.explicitDefault}`)
    if (f.ignorable) bits.push("ignorable")
    if (f.mapKey) bits.push("map key")
    const about = f.about.replace(/\*\//g, "* /").replace(/\s+/g, " ").trim()
    return `/** ${about === "" ? "" : `${about} `}(${bits.join("; ")}) */`
  }

  emitStruct(s: Struct, out: Array<string>): void {
    const flex = this.everFlexible(s)
    const isRoot = s.name === this.msg.name
    const exp = "export "
    // types
    for (const input of [false, true]) {
      const tname = input ? `${s.name}Input` : s.name
      out.push(
        input
          ? `/** What the encoder accepts for {@link ${s.name}}: fields not present in every version, tagged or with a spec default may be omitted. */`
          : isRoot
            ? `/** ${this.msg.name} (${this.msg.type}), one type for all versions ${this.msg.valid.lo}-${this.msg.valid.hi}. */`
            : `/** Struct ${s.name} of ${this.msg.name}. */`
      )
      out.push(`${exp}interface ${tname} {`)
      for (const f of s.fields) {
        out.push(`  ${this.fieldDoc(f)}`)
        const opt = input && this.optionalInput(f, s) ? "?" : ""
        out.push(`  ${input ? "readonly " : ""}${f.prop}${opt}: ${this.tsType(f, s, input)}`)
      }
      if (flex) {
        out.push("  /** Tagged fields unknown at the decoded version, kept verbatim and re-encoded in tag order. */")
        out.push(`  ${input ? "readonly " : ""}_unknownTaggedFields?: ${input ? "ReadonlyArray<W.TaggedField>" : "Array<W.TaggedField>"}`)
      }
      out.push("}")
      out.push("")
    }
    // default constructor
    out.push(`/** A ${s.name} with every field at its default. */`)
    out.push(`export function default${s.name}(): ${s.name} {`)
    out.push("  return {")
    s.fields.forEach((f, k) => out.push(`    ${f.prop}: ${this.defaultExpr(f, s)}${k < s.fields.length - 1 ? "," : ""}`))
    out.push("  }")
    out.push("}")
    out.push("")
    // isDefault
    out.push(`function isDefault${s.name}(x: ${s.name}Input): boolean {`)
    const checks = s.fields.map((f) => {
      const val = `x.${f.prop}`
      return `(${val} === undefined || ${this.isDefaultExpr(f, s, val)})`
    })
    if (flex) checks.push("(x._unknownTaggedFields === undefined || x._unknownTaggedFields.length === 0)")
    if (checks.length === 0) out.push("  return true")
    else {
      out.push("  return (")
      checks.forEach((c, k) => out.push(`    ${c}${k < checks.length - 1 ? " &&" : ""}`))
      out.push("  )")
    }
    out.push("}")
    out.push("")

    const flexCond = cond((v) => inRange(this.msg.flexible, v), s.domain)
    const tagged = this.taggedFields(s)
    const vParam = s.domain.length > 0 ? "v" : "_v"

    // read
    const usesV = (lines: Array<string>): boolean => lines.some((l) => /\bv\b/.test(l))
    const dom = s.domain
    const setOf = (p: (v: number) => boolean): Set<number> => new Set(dom.filter(p))
    /** Versions reaching a tagged-field section (tagged conditions are relative to these). */
    const flexDom = dom.filter((v) => inRange(this.msg.flexible, v))
    /** Declares `const name = <normalised x.prop>` in front of `lines` when they use it. */
    const withVal = (f: Field, name: string, ind: string, lines: Array<string>, out2: Array<string>): void => {
      if (lines.some((l) => new RegExp(`\\b${name}\\b`).test(l))) {
        out2.push(`${ind}const ${name} = x.${f.prop} === undefined ? ${this.defaultExpr(f, s)} : x.${f.prop}`)
      }
      out2.push(...lines)
    }
    {
      const body: Array<string> = []
      for (const f of s.fields) {
        const regular = this.variants(f, s, (v) => this.isRegular(f, v), false)
        const lines: Array<string> = []
        this.chain(
          [
            ...regular.map((g) => ({ set: g.set, emit: (ind: string) => this.readValue(f, g.compact, g.nullable, `f_${f.prop}`, ind, lines) })),
            { set: setOf((v) => !this.isRegular(f, v)), emit: (ind: string) => void lines.push(`${ind}f_${f.prop} = ${this.defaultExpr(f, s)}`) }
          ],
          dom,
          "  ",
          lines
        )
        const assign = `  f_${f.prop} = `
        if (f.tag === null && lines.length === 1 && lines[0]!.startsWith(assign)) {
          // a single unconditional read: declare and assign at once
          body.push(`  const f_${f.prop}: ${this.tsType(f, s, false)} = ${lines[0]!.slice(assign.length)}`)
        } else {
          body.push(`  let f_${f.prop}: ${this.tsType(f, s, false)}`, ...lines)
        }
      }
      if (flex) {
        body.push("  let unk: Array<W.TaggedField> | undefined")
        const ind = flexCond === "true" ? "  " : "    "
        if (flexCond !== "true") body.push(`  if (${flexCond}) {`)
        body.push(`${ind}const nt = W.rTagCount(c)`)
        body.push(`${ind}for (let t = 0; t < nt; t++) {`)
        body.push(`${ind}  const tag = W.rUvarint(c, "_tag")`)
        body.push(`${ind}  const sz = W.rTagSize(c, "_tagSize")`)
        let first = true
        for (const f of tagged) {
          const tset = setOf((v) => this.isTagged(f, v))
          const tc = cond((v) => tset.has(v), flexDom)
          const vars = this.variants(f, s, (v) => this.isTagged(f, v), true)
          body.push(`${ind}  ${first ? "if" : "} else if"} (tag === ${f.tag}${tc === "true" ? "" : ` && (${tc})`}) {`)
          first = false
          const i3 = `${ind}    `
          body.push(`${i3}const end = c.pos + sz`)
          body.push(`${i3}const e0 = c.end`)
          body.push(`${i3}c.end = end`)
          this.chain(
            vars.map((g) => ({ set: g.set, emit: (i4: string) => this.readValue(f, g.compact, g.nullable, `f_${f.prop}`, i4, body) })),
            [...tset],
            i3,
            body
          )
          body.push(`${i3}c.end = e0`)
          body.push(`${i3}W.tagEnd(c, end, ${lit(f.prop)})`)
        }
        if (first) body.push(`${ind}  unk = W.rUnknownTag(c, unk, tag, sz)`)
        else {
          body.push(`${ind}  } else unk = W.rUnknownTag(c, unk, tag, sz)`)
        }
        body.push(`${ind}}`)
        if (flexCond !== "true") body.push("  }")
      }
      body.push(`  const r: ${s.name} = {`)
      s.fields.forEach((f, k) => body.push(`    ${f.prop}: f_${f.prop}${k < s.fields.length - 1 ? "," : ""}`))
      body.push("  }")
      if (flex) body.push("  if (unk !== undefined) r._unknownTaggedFields = W.sortTags(unk)")
      body.push("  return r")
      const cParam = body.some((l) => /\bc\b/.test(l)) ? "c" : "_c"
      out.push(`function read${s.name}(${cParam}: W.Cursor, ${usesV(body) ? vParam : "_v"}: number): ${s.name} {`)
      out.push(...body)
      out.push("}")
      out.push("")
    }

    // size
    {
      const body: Array<string> = []
      body.push("  let n = 0")
      for (const f of s.fields) {
        const regular = this.variants(f, s, (v) => this.isRegular(f, v), false)
        const absentStrict = f.ignorable || f.tag !== null ? () => false : (v: number) => !inRange(f.versions, v)
        const val = `x_${f.prop}`
        const lines: Array<string> = []
        this.chain(
          [
            ...regular.map((g) => ({ set: g.set, emit: (ind: string) => this.sizeValue(f, g.compact, g.nullable, val, "n", ind, lines) })),
            {
              set: setOf(absentStrict),
              emit: (ind: string) =>
                void lines.push(`${ind}if (!(${this.isDefaultExpr(f, s, val)})) W.encFail(${lit(f.prop)}, "non-default value for a field this version does not have")`)
            }
          ],
          dom,
          "  ",
          lines
        )
        withVal(f, val, "  ", lines, body)
      }
      if (flex) {
        const ind = flexCond === "true" ? "  " : "    "
        if (flexCond !== "true") body.push(`  if (${flexCond}) {`)
        body.push(`${ind}const U = W.sortedTags(x._unknownTaggedFields)`)
        body.push(`${ind}const cs = L.length`)
        body.push(`${ind}L.push(0)`)
        body.push(`${ind}${tagged.length > 0 ? "let" : "const"} cnt = U.length`)
        const known = tagged.map((f) => {
          const tc = cond((v) => this.isTagged(f, v), flexDom)
          return tc === "true" ? String(f.tag) : `${tc} ? ${f.tag} : -1`
        })
        body.push(`${ind}${tagged.length > 0 ? "let" : "const"} tn = U.length === 0 ? 0 : W.sUnknownTags(U, [${known.join(", ")}])`)
        for (const f of tagged) {
          const tset = setOf((v) => this.isTagged(f, v))
          const tc = cond((v) => tset.has(v), flexDom)
          const vars = this.variants(f, s, (v) => this.isTagged(f, v), true)
          const val = `t_${f.prop}`
          const lines: Array<string> = []
          lines.push(`${ind}if (${and(tc, `!(${this.isDefaultExpr(f, s, val)})`)}) {`)
          const i2 = `${ind}  `
          lines.push(`${i2}cnt++`)
          lines.push(`${i2}const s0 = L.length`)
          lines.push(`${i2}L.push(0)`)
          lines.push(`${i2}let ds = 0`)
          this.chain(
            vars.map((g) => ({ set: g.set, emit: (i3: string) => this.sizeValue(f, g.compact, g.nullable, val, "ds", i3, lines) })),
            [...tset],
            i2,
            lines
          )
          lines.push(`${i2}L[s0] = ds`)
          lines.push(`${i2}tn += ${f.tag! < 0x80 ? 1 : f.tag! < 0x4000 ? 2 : 3} + W.uvSize(ds) + ds`)
          lines.push(`${ind}}`)
          withVal(f, val, ind, lines, body)
        }
        body.push(`${ind}L[cs] = cnt`)
        body.push(`${ind}n += W.uvSize(cnt) + tn`)
        if (flexCond !== "true") body.push("  }")
      }
      body.push("  return n")
      const xParam = body.some((l) => /\bx\b/.test(l)) ? "x" : "_x"
      const lParam = body.some((l) => /\bL\b/.test(l)) ? "L" : "_L"
      out.push(`${isRoot ? "export " : ""}function size${s.name}(${usesV(body) ? vParam : "_v"}: number, ${xParam}: ${s.name}Input, ${lParam}: Array<number>): number {`)
      out.push(...body)
      out.push("}")
      out.push("")
    }

    // write
    {
      const body: Array<string> = []
      for (const f of s.fields) {
        const regular = this.variants(f, s, (v) => this.isRegular(f, v), false)
        const val = `x_${f.prop}`
        const lines: Array<string> = []
        this.chain(
          regular.map((g) => ({ set: g.set, emit: (ind: string) => this.writeValue(f, g.compact, g.nullable, val, ind, lines) })),
          dom,
          "  ",
          lines
        )
        withVal(f, val, "  ", lines, body)
      }
      if (flex) {
        const ind = flexCond === "true" ? "  " : "    "
        if (flexCond !== "true") body.push(`  if (${flexCond}) {`)
        body.push(`${ind}const U = W.sortedTags(x._unknownTaggedFields)`)
        body.push(`${ind}W.wUvarint(w, w.lens[w.li++]!)`)
        if (tagged.length > 0) body.push(`${ind}let ui = 0`)
        for (const f of tagged) {
          const tset = setOf((v) => this.isTagged(f, v))
          const tc = cond((v) => tset.has(v), flexDom)
          const vars = this.variants(f, s, (v) => this.isTagged(f, v), true)
          const val = `t_${f.prop}`
          body.push(`${ind}ui = W.wTagsBelow(w, U, ui, ${f.tag})`)
          const lines: Array<string> = []
          lines.push(`${ind}if (${and(tc, `!(${this.isDefaultExpr(f, s, val)})`)}) {`)
          const i2 = `${ind}  `
          lines.push(`${i2}W.wUvarint(w, ${f.tag})`)
          lines.push(`${i2}W.wUvarint(w, w.lens[w.li++]!)`)
          this.chain(
            vars.map((g) => ({ set: g.set, emit: (i3: string) => this.writeValue(f, g.compact, g.nullable, val, i3, lines) })),
            [...tset],
            i2,
            lines
          )
          lines.push(`${ind}}`)
          withVal(f, val, ind, lines, body)
        }
        body.push(`${ind}W.wTagsBelow(w, U, ${tagged.length > 0 ? "ui" : "0"}, 0x80000000)`)
        if (flexCond !== "true") body.push("  }")
      }
      const xParam = body.some((l) => /\bx\b/.test(l)) ? "x" : "_x"
      const wParam = body.some((l) => /\bw\b/.test(l)) ? "w" : "_w"
      out.push(`${isRoot ? "export " : ""}function write${s.name}(${usesV(body) ? vParam : "_v"}: number, ${xParam}: ${s.name}Input, ${wParam}: W.Writer): void {`)
      out.push(...body)
      out.push("}")
      out.push("")
    }
  }

  module(): string {
    const m = this.msg
    const out: Array<string> = []
    out.push(`// Generated by scripts/gen-protocol.ts from ${m.file}. Do not edit.`)
    out.push("// Kafka message definition: Apache License 2.0 (see the spec folder's LICENSE/NOTICE).")
    out.push("/* eslint-disable */")
    out.push('import { KafkaDecodeError, KafkaEncodeError } from "../errors.js"')
    out.push('import * as W from "../wire.js"')
    out.push("")
    const body: Array<string> = []
    for (const s of m.structs) this.emitStruct(s, body)
    // keep only the isDefaultX helpers that are reachable from non-helper code
    const chunks: Array<{ name: string | null; lines: Array<string> }> = []
    for (const line of body) {
      const head = /^function isDefault(\w+)\(/.exec(line)
      if (head !== null || chunks.length === 0 || chunks[chunks.length - 1]!.lines.at(-1) === "") {
        chunks.push({ name: head !== null ? head[1]! : null, lines: [] })
      }
      chunks[chunks.length - 1]!.lines.push(line)
    }
    const needed = new Set<string>()
    const scan = (lines: ReadonlyArray<string>): void => {
      for (const l of lines) for (const mm of l.matchAll(/isDefault(\w+)\(/g)) needed.add(mm[1]!)
    }
    for (const ch of chunks) if (ch.name === null) scan(ch.lines)
    for (let grew = true; grew; ) {
      const before = needed.size
      for (const ch of chunks) if (ch.name !== null && needed.has(ch.name)) scan(ch.lines.slice(1))
      grew = needed.size > before
    }
    for (const ch of chunks) if (ch.name === null || needed.has(ch.name)) out.push(...ch.lines)
    const N = m.name
    const lo = m.valid.lo
    const hi = m.valid.hi
    out.push(`/** Decodes ${N} at \`version\` from \`c.pos\`; leaves the cursor after it. Throws KafkaDecodeError. */`)
    out.push(`export function decode${N}(version: number, c: W.Cursor): ${N} {`)
    out.push(`  if (!(version >= ${lo} && version <= ${hi})) {`)
    out.push(`    throw new KafkaDecodeError({ api: ${lit(N)}, version, field: "", offset: c.pos, reason: "unsupported version" })`)
    out.push("  }")
    out.push("  try {")
    out.push(`    return read${N}(c, version)`)
    out.push("  } catch (e) {")
    out.push(`    throw W.decodeCtx(e, ${lit(N)}, version)`)
    out.push("  }")
    out.push("}")
    out.push("")
    out.push(`/** Encodes ${N} at \`version\` into a new Buffer. Throws KafkaEncodeError. */`)
    out.push(`export function encode${N}(version: number, value: ${N}Input): Buffer {`)
    out.push(`  if (!(version >= ${lo} && version <= ${hi})) {`)
    out.push(`    throw new KafkaEncodeError({ api: ${lit(N)}, version, field: "", reason: "unsupported version" })`)
    out.push("  }")
    out.push("  try {")
    out.push(`    return W.encodeWith(version, value, size${N}, write${N})`)
    out.push("  } catch (e) {")
    out.push(`    throw W.encodeCtx(e, ${lit(N)}, version)`)
    out.push("  }")
    out.push("}")
    out.push("")
    const ff = m.flexible === null || m.flexible.lo > hi ? -1 : Math.max(m.flexible.lo, lo)
    out.push(`export const ${N}Codec: W.MessageCodec<${N}, ${N}Input> = {`)
    out.push(`  name: ${lit(N)},`)
    out.push(`  type: ${lit(m.type)},`)
    out.push(`  apiKey: ${m.apiKey},`)
    out.push(`  minVersion: ${lo},`)
    out.push(`  maxVersion: ${hi},`)
    out.push(`  firstFlexibleVersion: ${ff},`)
    out.push(`  latestVersionUnstable: ${m.latestVersionUnstable},`)
    out.push(`  decode: decode${N},`)
    out.push(`  encode: encode${N},`)
    out.push(`  size: size${N},`)
    out.push(`  write: write${N}`)
    out.push("}")
    out.push("")
    return out.join("\n")
  }

  schema(): string {
    const m = this.msg
    const r = (x: Range | null): string => (x === null ? "null" : `[${x.lo}, ${x.hi}]`)
    const lines: Array<string> = []
    lines.push("  {")
    lines.push(`    name: ${lit(m.name)},`)
    lines.push(`    type: ${lit(m.type)},`)
    lines.push(`    apiKey: ${m.apiKey},`)
    lines.push(`    validVersions: ${r(m.valid)},`)
    lines.push(`    flexibleVersions: ${r(m.flexible)},`)
    lines.push("    structs: {")
    m.structs.forEach((s, si) => {
      lines.push(`      ${s.name}: [`)
      s.fields.forEach((f, k) => {
        const parts = [
          `name: ${lit(f.prop)}`,
          `type: ${lit(f.rawType)}`,
          `versions: ${r(f.versions)}`,
          `nullable: ${r(f.nullable)}`,
          `tag: ${f.tag === null ? "null" : f.tag}`,
          `tagged: ${r(f.tagged)}`,
          `flex: ${f.flexOverride === undefined ? '"inherit"' : r(f.flexOverride)}`,
          `default: ${f.explicitDefault === undefined ? "null" : lit(f.explicitDefault)}`,
          `ignorable: ${f.ignorable}`
        ]
        lines.push(`        { ${parts.join(", ")} }${k < s.fields.length - 1 ? "," : ""}`)
      })
      lines.push(`      ]${si < m.structs.length - 1 ? "," : ""}`)
    })
    lines.push("    }")
    lines.push("  }")
    return lines.join("\n")
  }
}

// ---------------------------------------------------------------------------
// index.ts / schema.ts
// ---------------------------------------------------------------------------

const apiName = (m: Msg): string => m.name.replace(/(Request|Response)$/, "")

const indexModule = (msgs: ReadonlyArray<Msg>): string => {
  const out: Array<string> = []
  out.push("// Generated by scripts/gen-protocol.ts. Do not edit.")
  out.push("/* eslint-disable */")
  out.push('import type { MessageCodec } from "../wire.js"')
  for (const m of msgs) {
    out.push(`import { ${m.name}Codec, type ${m.name}, type ${m.name}Input } from "./${m.name}.js"`)
  }
  out.push("")
  out.push("export type {")
  msgs.forEach((m, k) => out.push(`  ${m.name},`, `  ${m.name}Input${k < msgs.length - 1 ? "," : ""}`))
  out.push("}")
  out.push("export {")
  msgs.forEach((m, k) => out.push(`  ${m.name}Codec${k < msgs.length - 1 ? "," : ""}`))
  out.push("}")
  out.push("")
  out.push("/** Every generated codec by message name (requests, responses, headers and data types). */")
  out.push("export const MESSAGES = {")
  msgs.forEach((m, k) => out.push(`  ${m.name}: ${m.name}Codec${k < msgs.length - 1 ? "," : ""}`))
  out.push("} as const")
  out.push("")
  const reqs = msgs.filter((m) => m.type === "request").sort((a, b) => a.apiKey - b.apiKey)
  const resByKey = new Map(msgs.filter((m) => m.type === "response").map((m) => [m.apiKey, m]))
  for (const q of reqs) if (!resByKey.has(q.apiKey)) throw new Error(`no response for api key ${q.apiKey}`)
  out.push("/** API keys by name. */")
  out.push("export const ApiKey = {")
  reqs.forEach((q, k) => out.push(`  ${apiName(q)}: ${q.apiKey}${k < reqs.length - 1 ? "," : ""}`))
  out.push("} as const")
  out.push("export type ApiKey = (typeof ApiKey)[keyof typeof ApiKey]")
  out.push("")
  for (const [tname, pick] of [
    ["RequestTypes", (q: Msg) => q.name],
    ["RequestInputTypes", (q: Msg) => `${q.name}Input`],
    ["ResponseTypes", (q: Msg) => resByKey.get(q.apiKey)!.name],
    ["ResponseInputTypes", (q: Msg) => `${resByKey.get(q.apiKey)!.name}Input`]
  ] as const) {
    out.push(`export interface ${tname} {`)
    for (const q of reqs) out.push(`  ${q.apiKey}: ${pick(q)}`)
    out.push("}")
    out.push("")
  }
  out.push("/** One API: its key, name, valid versions, first flexible version (-1: none) and codecs. */")
  out.push("export interface ApiEntry<K extends ApiKey = ApiKey> {")
  out.push("  readonly apiKey: K")
  out.push("  readonly name: string")
  out.push("  readonly requestMinVersion: number")
  out.push("  readonly requestMaxVersion: number")
  out.push("  readonly responseMinVersion: number")
  out.push("  readonly responseMaxVersion: number")
  out.push("  readonly firstFlexibleVersion: number")
  out.push("  readonly latestVersionUnstable: boolean")
  out.push("  readonly request: MessageCodec<RequestTypes[K], RequestInputTypes[K]>")
  out.push("  readonly response: MessageCodec<ResponseTypes[K], ResponseInputTypes[K]>")
  out.push("}")
  out.push("")
  out.push("/** The API table, by API key. */")
  out.push("export const API_TABLE: { readonly [K in ApiKey]: ApiEntry<K> } = {")
  reqs.forEach((q, k) => {
    const r = resByKey.get(q.apiKey)!
    const ff = q.flexible === null || q.flexible.lo > q.valid.hi ? -1 : Math.max(q.flexible.lo, q.valid.lo)
    out.push(`  ${q.apiKey}: {`)
    out.push(`    apiKey: ${q.apiKey},`)
    out.push(`    name: ${lit(apiName(q))},`)
    out.push(`    requestMinVersion: ${q.valid.lo},`)
    out.push(`    requestMaxVersion: ${q.valid.hi},`)
    out.push(`    responseMinVersion: ${r.valid.lo},`)
    out.push(`    responseMaxVersion: ${r.valid.hi},`)
    out.push(`    firstFlexibleVersion: ${ff},`)
    out.push(`    latestVersionUnstable: ${q.latestVersionUnstable},`)
    out.push(`    request: ${q.name}Codec,`)
    out.push(`    response: ${r.name}Codec`)
    out.push(`  }${k < reqs.length - 1 ? "," : ""}`)
  })
  out.push("}")
  out.push("")
  out.push("/** Every API entry, sorted by key. */")
  out.push("export const APIS: ReadonlyArray<ApiEntry> = Object.values(API_TABLE).sort((a, b) => a.apiKey - b.apiKey)")
  out.push("")
  out.push("const BY_KEY: Array<ApiEntry | undefined> = []")
  out.push("for (const e of APIS) BY_KEY[e.apiKey] = e")
  out.push("for (let k = 0; k < BY_KEY.length; k++) BY_KEY[k] ??= undefined")
  out.push("")
  out.push("/** Looks up an API entry; undefined for an unknown key. */")
  out.push("export const apiEntry = (apiKey: number): ApiEntry | undefined =>")
  out.push("  apiKey >= 0 && apiKey < BY_KEY.length ? BY_KEY[apiKey] : undefined")
  out.push("")
  return out.join("\n")
}

const schemaModule = (gens: ReadonlyArray<Gen>): string => {
  const out: Array<string> = []
  out.push("// Generated by scripts/gen-protocol.ts. Do not edit.")
  out.push("// Machine-readable description of every message: field names are the TS property names,")
  out.push("// version ranges are [lo, hi] with hi = 32767 for an open range, `flex` is a field-level")
  out.push("// flexibleVersions override (\"inherit\" when absent), `default` the raw spec default.")
  out.push("/* eslint-disable */")
  out.push("")
  out.push("export type SchemaRange = readonly [number, number]")
  out.push("export interface SchemaField {")
  out.push("  readonly name: string")
  out.push("  readonly type: string")
  out.push("  readonly versions: SchemaRange | null")
  out.push("  readonly nullable: SchemaRange | null")
  out.push("  readonly tag: number | null")
  out.push("  readonly tagged: SchemaRange | null")
  out.push('  readonly flex: SchemaRange | null | "inherit"')
  out.push("  readonly default: string | null")
  out.push("  readonly ignorable: boolean")
  out.push("}")
  out.push("export interface SchemaMessage {")
  out.push("  readonly name: string")
  out.push('  readonly type: "request" | "response" | "header" | "data"')
  out.push("  readonly apiKey: number")
  out.push("  readonly validVersions: SchemaRange")
  out.push("  readonly flexibleVersions: SchemaRange | null")
  out.push("  /** Struct fields by struct name; the root struct has the message's name. */")
  out.push("  readonly structs: Readonly<Record<string, ReadonlyArray<SchemaField>>>")
  out.push("}")
  out.push("")
  out.push("export const SCHEMA: ReadonlyArray<SchemaMessage> = [")
  gens.forEach((g, k) => out.push(g.schema() + (k < gens.length - 1 ? "," : "")))
  out.push("]")
  out.push("")
  return out.join("\n")
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

export const generate = (specDir: string): Map<string, string> => {
  const files = fs
    .readdirSync(specDir)
    .filter((f) => f.endsWith(".json"))
    .sort()
  const msgs: Array<Msg> = []
  for (const file of files) {
    const spec = JSON.parse(stripComments(fs.readFileSync(path.join(specDir, file), "utf8"))) as RawSpec
    if (`${spec.name}.json` !== file) throw new Error(`${file}: name ${spec.name} does not match the file name`)
    msgs.push(buildMsg(file, spec))
  }
  msgs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const gens = msgs.map((m) => new Gen(m))
  const out = new Map<string, string>()
  for (const g of gens) out.set(`${g.msg.name}.ts`, g.module())
  out.set("index.ts", indexModule(msgs))
  out.set("schema.ts", schemaModule(gens))
  return out
}

const main = (): void => {
  const [specDir, outDir] = process.argv.slice(2)
  if (specDir === undefined || outDir === undefined) {
    process.stderr.write("usage: tsx scripts/gen-protocol.ts <specDir> <outDir>\n")
    process.exit(2)
  }
  const files = generate(specDir)
  fs.mkdirSync(outDir, { recursive: true })
  // remove stale generated modules
  for (const f of fs.readdirSync(outDir)) {
    if (f.endsWith(".ts") && !files.has(f)) fs.rmSync(path.join(outDir, f))
  }
  for (const [name, text] of files) {
    const p = path.join(outDir, name)
    if (!fs.existsSync(p) || fs.readFileSync(p, "utf8") !== text) fs.writeFileSync(p, text)
  }
  process.stdout.write(`generated ${files.size} files into ${outDir}\n`)
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]).endsWith(path.join("scripts", "gen-protocol.ts"))
if (invokedDirectly) main()
