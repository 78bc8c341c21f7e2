/**
 * A string key-value state machine (for the test cluster and examples):
 * `put(key, value)` and `cas(key, expected, value)`.
 */
import type { Entry } from "./core/types.js"
import type { StateMachine } from "./RaftEngine.js"

export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  /** Sets `value` only if the current value equals `expected` (null = absent). */
  | { readonly op: "cas"; readonly key: string; readonly expected: string | null; readonly value: string }

export interface KvResult {
  readonly ok: boolean
  /** Value before the command. */
  readonly previous: string | null
  /** Raft index the command was applied at. */
  readonly index: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const encodeKvCommand = (c: KvCommand): Uint8Array => encoder.encode(JSON.stringify(c))

export const decodeKvCommand = (data: Uint8Array): KvCommand | undefined => {
  try {
    const v = JSON.parse(decoder.decode(data)) as KvCommand
    return typeof v === "object" && v !== null && (v.op === "put" || v.op === "cas") ? v : undefined
  } catch {
    return undefined
  }
}

export class KvStateMachine implements StateMachine<KvResult> {
  readonly map = new Map<string, string>()
  appliedIndex = 0

  get(key: string): string | null {
    return this.map.get(key) ?? null
  }

  apply(entry: Entry): KvResult {
    this.appliedIndex = entry.index
    const c = decodeKvCommand(entry.data)
    if (c === undefined) return { ok: false, previous: null, index: entry.index }
    const previous = this.map.get(c.key) ?? null
    if (c.op === "put" || previous === c.expected) {
      this.map.set(c.key, c.value)
      return { ok: true, previous, index: entry.index }
    }
    return { ok: false, previous, index: entry.index }
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ index: this.appliedIndex, entries: [...this.map] }))
  }

  restore(data: Uint8Array): void {
    this.map.clear()
    if (data.length === 0) return
    const v = JSON.parse(decoder.decode(data)) as { index: number; entries: Array<[string, string]> }
    this.appliedIndex = v.index
    for (const [k, val] of v.entries) this.map.set(k, val)
  }
}
