/**
 * Shared helpers of the load generators (bench/loadgen/producer.ts, consumer.ts):
 * a tiny `--flag value` parser, percentiles, and the JSON result line.
 */

export const parseArgs = (argv: ReadonlyArray<string>): Map<string, string> => {
  const m = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith("--")) continue
    const eq = a.indexOf("=")
    if (eq > 0) m.set(a.slice(2, eq), a.slice(eq + 1))
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) m.set(a.slice(2), argv[++i]!)
    else m.set(a.slice(2), "true")
  }
  return m
}

export const num = (args: Map<string, string>, name: string, dflt: number): number => {
  const v = args.get(name)
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${v}`)
  return n
}

export const str = (args: Map<string, string>, name: string, dflt: string): string => args.get(name) ?? dflt

/** Percentile (0..1) of an ascending-sorted array; NaN when empty. */
export const percentile = (sorted: ArrayLike<number>, p: number): number => {
  if (sorted.length === 0) return Number.NaN
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[idx]!
}

export const round = (x: number, digits = 2): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x)

/** The one line of JSON the runner parses (last line of stdout). */
export const report = (obj: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(obj) + "\n")
}

export const errorText = (e: unknown): string => {
  if (e instanceof Error) {
    const cause = (e as Error & { errors?: ReadonlyArray<unknown> }).errors
    const inner = Array.isArray(cause) && cause.length > 0 ? ` [${cause.slice(0, 2).map(errorText).join("; ")}]` : ""
    return `${e.name}: ${e.message}${inner}`
  }
  return String(e)
}

/** Payload of `size` bytes: mixed text so compressing codecs have real work (not all zeros). */
export const payload = (size: number, seed: number): Buffer => {
  const b = Buffer.alloc(size)
  let s = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    // 48 distinct printable bytes: compressible about 1.3-1.5x, like JSON-ish payloads
    b[i] = 0x30 + (s % 48)
  }
  return b
}
