/**
 * A linearizability checker for a key-value register (put / cas / read),
 * after Wing & Gong's search with Lowe's improvements ("Testing for
 * linearizability", 2017):
 *
 * - The history is split by key (P-compositionality: a history is
 *   linearizable iff each per-key sub-history is), and each part is checked
 *   on its own.
 * - Within a part, the invocation and return events are put in one list in
 *   time order. The search walks the list: at an invocation it tries to
 *   linearize that operation now (the model must accept its output); at a
 *   return of an operation that is not linearized yet, it backtracks.
 *   Linearized operations are unlinked from the list (and relinked on
 *   backtrack), so the search only ever looks at the "frontier".
 * - Lowe's memoization: a configuration is (set of linearized operations as a
 *   bitset, model state). A configuration seen before is never explored again.
 * - A step bound per part: when exceeded the verdict is "unknown", never a hang.
 *
 * Operations that never returned (a client timed out, a node crashed) have an
 * unknown outcome: they get a return time of +infinity and any output. They
 * may be linearized anywhere after their call, including after everything
 * else, which is the same as "did not take effect".
 *
 * Times are numbers on one (global, real) time line. An operation A precedes B
 * iff A.returned < B.called; equal times count as concurrent.
 */

/** Absent values are `undefined` (`null` is accepted as input and means the same). */
export type Value = string | undefined

export type KvInput =
  | { readonly type: "put"; readonly key: string; readonly value: string }
  | { readonly type: "cas"; readonly key: string; readonly expected: Value | null; readonly value: string }
  | { readonly type: "read"; readonly key: string }

export type KvOutput =
  | { readonly type: "put" }
  | { readonly type: "cas"; readonly ok: boolean }
  | { readonly type: "read"; readonly value: Value | null }

/** One operation of a history. */
export interface Operation {
  readonly clientId: number
  readonly input: KvInput
  /** Invocation time. */
  readonly call: number
  /** Return time; absent = never returned (unknown outcome). */
  readonly return?: number
  /** Absent = unknown outcome (any output is accepted). */
  readonly output?: KvOutput
}

/** Event-style history: invoke and return events paired by `id`. */
export type HistoryEvent =
  | { readonly kind: "invoke"; readonly id: number; readonly clientId: number; readonly time: number; readonly input: KvInput }
  | { readonly kind: "return"; readonly id: number; readonly time: number; readonly output: KvOutput }

/** Pairs invoke/return events into operations; an invoke without a return is pending. */
export const fromEvents = (events: ReadonlyArray<HistoryEvent>): Array<Operation> => {
  const open = new Map<number, { clientId: number; time: number; input: KvInput }>()
  const out: Array<Operation> = []
  for (const e of events) {
    if (e.kind === "invoke") {
      if (open.has(e.id)) throw new Error(`history: operation ${e.id} invoked twice`)
      open.set(e.id, { clientId: e.clientId, time: e.time, input: e.input })
    } else {
      const o = open.get(e.id)
      if (o === undefined) throw new Error(`history: return of ${e.id} without an invoke`)
      open.delete(e.id)
      if (e.time < o.time) throw new Error(`history: operation ${e.id} returns before it was called`)
      out.push({ clientId: o.clientId, input: o.input, call: o.time, return: e.time, output: e.output })
    }
  }
  for (const o of open.values()) out.push({ clientId: o.clientId, input: o.input, call: o.time })
  return out
}

// ---------------------------------------------------------------------------
// The model: one register (one key)

const norm = (v: Value | null): Value => (v === null ? undefined : v)

/** The register's step: undefined when the operation cannot produce this output in this state. */
const step = (state: Value, op: Operation): { readonly state: Value } | undefined => {
  const input = op.input
  const output = op.output
  switch (input.type) {
    case "put":
      if (output !== undefined && output.type !== "put") return undefined
      return { state: input.value }
    case "cas": {
      const matches = state === norm(input.expected)
      if (output === undefined) return { state: matches ? input.value : state }
      if (output.type !== "cas" || output.ok !== matches) return undefined
      return { state: matches ? input.value : state }
    }
    case "read":
      if (output === undefined) return { state }
      if (output.type !== "read" || norm(output.value) !== state) return undefined
      return { state }
  }
}

// ---------------------------------------------------------------------------
// Results

export type Verdict = "ok" | "illegal" | "unknown"

export interface PartitionResult {
  readonly key: string
  readonly verdict: Verdict
  readonly operations: number
  readonly steps: number
  /** For "illegal": the operations of this key, in call order (for the report). */
  readonly history?: ReadonlyArray<Operation>
  /** For "illegal": the longest sequence the search could linearize. */
  readonly longestLinearized?: ReadonlyArray<Operation>
}

export interface CheckResult {
  readonly verdict: Verdict
  readonly partitions: ReadonlyArray<PartitionResult>
  /** Total search steps over all keys. */
  readonly steps: number
  /** The first illegal (else unknown) key, if any. */
  readonly failing?: PartitionResult
}

export interface CheckOptions {
  /** Search-step bound per key; beyond it the key's verdict is "unknown". Default 2,000,000. */
  readonly maxStepsPerKey?: number
  /** The register's value before the history (default: absent). */
  readonly initial?: (key: string) => Value
}

// ---------------------------------------------------------------------------
// The search (one key)

interface Node {
  /** Operation index within the partition. */
  readonly op: number
  readonly isCall: boolean
  /** For a call entry: its return entry. */
  match: Node | null
  prev: Node | null
  next: Node | null
}

const unlink = (n: Node): void => {
  n.prev!.next = n.next
  if (n.next !== null) n.next.prev = n.prev
}

const relink = (n: Node): void => {
  n.prev!.next = n
  if (n.next !== null) n.next.prev = n
}

class BitSet {
  readonly words: Uint32Array
  constructor(n: number) {
    this.words = new Uint32Array((n + 31) >>> 5)
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31)
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31))
  }
  /** A key for the memo table, with bit i set in addition. */
  keyWith(i: number, state: Value): string {
    const w = i >>> 5
    const bit = 1 << (i & 31)
    let s = ""
    for (let j = 0; j < this.words.length; j++) {
      const v = j === w ? (this.words[j]! | bit) >>> 0 : this.words[j]!
      s += v.toString(36) + ","
    }
    return state === undefined ? s + "\u0000" : s + "=" + state
  }
}

const checkKey = (key: string, ops: ReadonlyArray<Operation>, initial: Value, maxSteps: number): PartitionResult => {
  const n = ops.length
  if (n === 0) return { key, verdict: "ok", operations: 0, steps: 0 }
  // events in time order; calls before returns at equal times (= concurrent)
  const events: Array<{ time: number; isCall: boolean; op: number }> = []
  for (let i = 0; i < n; i++) {
    const o = ops[i]!
    events.push({ time: o.call, isCall: true, op: i })
    events.push({ time: o.return ?? Infinity, isCall: false, op: i })
  }
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1))
  const head: Node = { op: -1, isCall: false, match: null, prev: null, next: null }
  let last = head
  const calls = new Array<Node>(n)
  for (const e of events) {
    const node: Node = { op: e.op, isCall: e.isCall, match: null, prev: last, next: null }
    last.next = node
    last = node
    if (e.isCall) calls[e.op] = node
    else calls[e.op]!.match = node
  }

  const linearized = new BitSet(n)
  const seen = new Set<string>()
  const stack: Array<{ node: Node; state: Value }> = []
  let longest: Array<number> = []
  let state = initial
  let entry: Node | null = head.next
  let steps = 0
  while (head.next !== null) {
    if (++steps > maxSteps) return { key, verdict: "unknown", operations: n, steps }
    if (entry === null) throw new Error("linearizability: ran off the end of the history")
    if (entry.isCall) {
      const r = step(state, ops[entry.op]!)
      if (r !== undefined) {
        const k = linearized.keyWith(entry.op, r.state)
        if (!seen.has(k)) {
          seen.add(k)
          stack.push({ node: entry, state })
          state = r.state
          linearized.set(entry.op)
          unlink(entry)
          unlink(entry.match!)
          if (stack.length > longest.length) longest = stack.map((s) => s.node.op)
          entry = head.next
          continue
        }
      }
      entry = entry.next
    } else {
      // a return whose operation is not linearized yet: backtrack
      const top = stack.pop()
      if (top === undefined) {
        const byCall = ops.slice().sort((a, b) => a.call - b.call)
        return {
          key,
          verdict: "illegal",
          operations: n,
          steps,
          history: byCall,
          longestLinearized: longest.map((i) => ops[i]!)
        }
      }
      state = top.state
      linearized.clear(top.node.op)
      relink(top.node.match!)
      relink(top.node)
      entry = top.node.next
    }
  }
  return { key, verdict: "ok", operations: n, steps }
}

/** Checks a history of KV operations for linearizability. */
export const checkLinearizable = (history: ReadonlyArray<Operation>, options: CheckOptions = {}): CheckResult => {
  const maxSteps = options.maxStepsPerKey ?? 2_000_000
  const byKey = new Map<string, Array<Operation>>()
  for (const op of history) {
    if (op.return !== undefined && op.return < op.call) throw new Error("history: an operation returns before it was called")
    // a pending read has no effect and constrains nothing
    if (op.input.type === "read" && (op.return === undefined || op.output === undefined)) continue
    const list = byKey.get(op.input.key)
    if (list === undefined) byKey.set(op.input.key, [op])
    else list.push(op)
  }
  const partitions: Array<PartitionResult> = []
  let steps = 0
  let failing: PartitionResult | undefined
  let unknown: PartitionResult | undefined
  for (const [key, ops] of [...byKey].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const r = checkKey(key, ops, options.initial?.(key), maxSteps)
    partitions.push(r)
    steps += r.steps
    if (r.verdict === "illegal" && failing === undefined) failing = r
    if (r.verdict === "unknown" && unknown === undefined) unknown = r
  }
  const verdict: Verdict = failing !== undefined ? "illegal" : unknown !== undefined ? "unknown" : "ok"
  const pick = failing ?? unknown
  return pick === undefined ? { verdict, partitions, steps } : { verdict, partitions, steps, failing: pick }
}

const showValue = (v: Value | null): string => (v === null || v === undefined ? "∅" : JSON.stringify(v))

export const describeOperation = (o: Operation): string => {
  const i = o.input
  const call =
    i.type === "put"
      ? `put(${i.key}, ${showValue(i.value)})`
      : i.type === "cas"
        ? `cas(${i.key}, ${showValue(i.expected)}, ${showValue(i.value)})`
        : `read(${i.key})`
  const out =
    o.output === undefined
      ? "?"
      : o.output.type === "put"
        ? "ok"
        : o.output.type === "cas"
          ? o.output.ok
            ? "ok"
            : "fail"
          : showValue(o.output.value)
  return `c${o.clientId} [${o.call}, ${o.return ?? "∞"}] ${call} -> ${out}`
}

/** A readable account of a failing check (for test failure messages). */
export const describeResult = (r: CheckResult, maxLines = 40): string => {
  if (r.failing === undefined) return `${r.verdict} (${r.partitions.length} keys, ${r.steps} steps)`
  const f = r.failing
  const lines = [`${f.verdict} on key ${JSON.stringify(f.key)} (${f.operations} operations, ${f.steps} steps)`]
  if (f.history !== undefined) {
    lines.push("history:")
    for (const o of f.history.slice(0, maxLines)) lines.push("  " + describeOperation(o))
    if (f.history.length > maxLines) lines.push(`  ... ${f.history.length - maxLines} more`)
  }
  if (f.longestLinearized !== undefined) {
    lines.push("longest linearizable prefix:")
    for (const o of f.longestLinearized.slice(0, maxLines)) lines.push("  " + describeOperation(o))
  }
  return lines.join("\n")
}
