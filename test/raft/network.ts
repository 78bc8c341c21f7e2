/**
 * A tiny in-process network of Raft cores for tests: synchronous delivery,
 * persistence into MemoryStorage, a trivial state machine (list of applied
 * payload strings), link cuts and per-type drops.
 */
import { Either } from "effect"
import { MemoryStorage, RaftCore, seededRandom } from "../../src/raft/core/index.js"
import type {
  Entry,
  Message,
  MessageType,
  NodeId,
  RaftConfig,
  ReadState,
  Snapshot
} from "../../src/raft/core/index.js"

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

export type CoreOptions = Partial<Omit<RaftConfig, "id" | "storage" | "random">>

export interface NodeHandle {
  readonly id: NodeId
  core: RaftCore
  readonly storage: MemoryStorage
  /** Applied Normal payloads (the state machine). */
  state: Array<string>
  /** Every committed entry handed to the application, in order. */
  appliedEntries: Array<Entry>
  readStates: Array<ReadState>
  snapshotsInstalled: number
  options: CoreOptions
  seed: number
}

export interface NetworkOptions {
  readonly voters: ReadonlyArray<NodeId>
  readonly learners?: ReadonlyArray<NodeId>
  readonly seed?: number
  readonly core?: CoreOptions
  /** Pre-populated storages (e.g. Figure 7 logs). */
  readonly storages?: ReadonlyMap<NodeId, MemoryStorage>
  /** Extra nodes that exist on the network but not in the initial membership. */
  readonly spare?: ReadonlyArray<NodeId>
}

const encodeState = (s: ReadonlyArray<string>): Uint8Array => enc(JSON.stringify(s))
const decodeState = (b: Uint8Array): Array<string> => (b.length === 0 ? [] : (JSON.parse(dec(b)) as Array<string>))

export class Network {
  readonly nodes = new Map<NodeId, NodeHandle>()
  /** Messages in flight, FIFO. */
  queue: Array<Message> = []
  /** Every message ever sent (for assertions). */
  sent: Array<Message> = []
  private readonly cuts = new Set<string>()
  private readonly dropTypes = new Set<MessageType>()
  /** Optional filter: return false to drop. */
  filter: ((m: Message) => boolean) | null = null
  readonly group: string

  constructor(opts: NetworkOptions) {
    this.group = opts.core?.group ?? "g"
    const seed = opts.seed ?? 1
    const all = [...opts.voters, ...(opts.learners ?? []), ...(opts.spare ?? [])]
    for (const id of all) {
      const spare = opts.spare?.includes(id) ?? false
      const storage =
        opts.storages?.get(id) ??
        (spare ? MemoryStorage.make([]) : MemoryStorage.make(opts.voters, opts.learners ?? []))
      const options = { ...opts.core, group: this.group }
      const handle: NodeHandle = {
        id,
        core: undefined as unknown as RaftCore,
        storage,
        state: [],
        appliedEntries: [],
        readStates: [],
        snapshotsInstalled: 0,
        options,
        seed: seed * 7919 + id
      }
      handle.core = this.makeCore(handle)
      this.nodes.set(id, handle)
    }
  }

  private makeCore(h: NodeHandle): RaftCore {
    return new RaftCore({ ...h.options, id: h.id, storage: h.storage, random: seededRandom(h.seed) })
  }

  node(id: NodeId): NodeHandle {
    const n = this.nodes.get(id)
    if (n === undefined) throw new Error(`no node ${id}`)
    return n
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core
  }

  /** Process one node's Ready batches until it has none: persist, queue messages, apply, advance. */
  processReady(id: NodeId): void {
    const h = this.node(id)
    let guard = 0
    while (h.core.hasReady()) {
      if (guard++ > 10_000) throw new Error("processReady does not converge")
      const rd = h.core.ready()
      if (rd.snapshot !== null) {
        h.storage.applySnapshot(rd.snapshot)
        h.state = decodeState(rd.snapshot.data)
        h.snapshotsInstalled++
      }
      h.storage.append(rd.entries)
      if (rd.hardState !== null) h.storage.setHardState(rd.hardState)
      for (const m of rd.messages) this.enqueue(m)
      for (const e of rd.committedEntries) {
        h.appliedEntries.push(e)
        if (e.type === "Normal") h.state.push(dec(e.data))
      }
      for (const r of rd.readStates) h.readStates.push(r)
      h.core.advance(rd)
    }
  }

  processAll(): void {
    for (const id of this.nodes.keys()) this.processReady(id)
  }

  private linkKey(a: NodeId, b: NodeId): string {
    return `${a}->${b}`
  }

  enqueue(m: Message): void {
    this.sent.push(m)
    if (this.cuts.has(this.linkKey(m.from, m.to))) return
    if (this.dropTypes.has(m.type)) return
    if (this.filter !== null && !this.filter(m)) return
    if (!this.nodes.has(m.to)) return
    this.queue.push(m)
  }

  /** Deliver one message to its recipient and process the recipient's Ready. */
  deliver(m: Message): void {
    const h = this.nodes.get(m.to)
    if (h === undefined) return
    h.core.step(m)
    this.processReady(m.to)
  }

  /** Process all Readies and deliver until the network is quiet. */
  flush(maxMessages = 100_000): void {
    this.processAll()
    let n = 0
    while (this.queue.length > 0) {
      if (n++ > maxMessages) throw new Error("network does not quiesce")
      const m = this.queue.shift()!
      this.deliver(m)
    }
  }

  /** Drop everything in flight without delivering. */
  dropQueued(): void {
    this.queue = []
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.core(id).tick()
      this.processReady(id)
    }
  }

  /** Tick every node `n` times, flushing after each round. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const h of this.nodes.values()) h.core.tick()
      this.flush()
    }
  }

  campaign(id: NodeId): void {
    this.core(id).campaign()
    this.flush()
  }

  /** Propose a payload at `id` and deliver everything. Throws if the proposal fails. */
  propose(id: NodeId, data: string | ReadonlyArray<string>): void {
    const payloads = typeof data === "string" ? [enc(data)] : data.map(enc)
    const res = this.core(id).propose(payloads)
    if (Either.isLeft(res)) throw res.left
    this.flush()
  }

  /** Cut both directions between a and b. */
  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(this.linkKey(a, b))
    this.cuts.add(this.linkKey(b, a))
  }

  /** Cut one direction only. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(this.linkKey(from, to))
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other)
  }

  /** Split into two sides that cannot talk to each other. */
  partition(side: ReadonlyArray<NodeId>): void {
    for (const a of side) for (const b of this.nodes.keys()) if (!side.includes(b)) this.cut(a, b)
  }

  heal(): void {
    this.cuts.clear()
    this.dropTypes.clear()
    this.filter = null
  }

  dropType(t: MessageType): void {
    this.dropTypes.add(t)
  }

  allowType(t: MessageType): void {
    this.dropTypes.delete(t)
  }

  leaders(): Array<NodeId> {
    return [...this.nodes.values()].filter((h) => h.core.role === "Leader").map((h) => h.id)
  }

  /** The unique leader with the highest term, or undefined. */
  leader(): NodeId | undefined {
    let best: NodeHandle | undefined
    for (const h of this.nodes.values()) {
      if (h.core.role === "Leader" && (best === undefined || h.core.term > best.core.term)) best = h
    }
    return best?.id
  }

  /** Restart a node from its storage (volatile state lost; the state machine is rebuilt from the snapshot). */
  restart(id: NodeId): void {
    const h = this.node(id)
    const snap = h.storage.snapshot()
    h.state = snap === null ? [] : decodeState(snap.data)
    h.appliedEntries = []
    h.seed = h.seed + 1
    h.core = this.makeCore(h)
    // Drop messages addressed to the old incarnation that were in flight? Keep them: the network may deliver late.
  }

  /** Take an application snapshot at the applied index and compact the storage up to it. */
  compact(id: NodeId, keep = 0): Snapshot | undefined {
    const h = this.node(id)
    const applied = h.core.applied
    const first = h.storage.firstIndex()
    if (applied < first) return undefined
    const snap = h.storage.createSnapshot(applied, h.core.confState(), encodeState(h.state))
    const upTo = Math.max(first - 1, applied - keep)
    if (upTo >= first) h.storage.compact(upTo)
    return snap
  }

  /** Terms of the node's log from firstIndex..lastIndex. */
  logTerms(id: NodeId): Array<number> {
    const c = this.core(id)
    const out: Array<number> = []
    for (const e of c.log.allEntries()) out.push(e.term)
    return out
  }
}

/** Build a MemoryStorage whose log has the given terms at indexes 1.. and a hard state term. */
export const storageWithTerms = (
  voters: ReadonlyArray<NodeId>,
  terms: ReadonlyArray<number>,
  hardTerm?: number
): MemoryStorage => {
  const s = MemoryStorage.make(voters)
  s.append(terms.map((term, i) => ({ term, index: i + 1, type: "Normal" as const, data: enc(`t${term}i${i + 1}`) })))
  s.setHardState({ term: hardTerm ?? (terms.length > 0 ? terms[terms.length - 1]! : 0), vote: null, commit: 0 })
  return s
}
