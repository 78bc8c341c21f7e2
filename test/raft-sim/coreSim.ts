/**
 * A discrete-event simulation of 5 `RaftCore`s (the pure core) with a KV state
 * machine, concurrent clients and a linearizability check: the fast sibling of
 * the `makeRaftTestCluster` simulation (clusterSim.ts), cheap enough for
 * hundreds of seeds per `npm test`.
 *
 * Model:
 * - Virtual time in ms; one event queue ordered by (time, sequence).
 * - Each node ticks every `tickMs / rate` ms (clock skew: rate in [0.7, 1.3],
 *   changed at random). A paused node neither ticks nor handles messages (they
 *   queue until it resumes).
 * - The driver does what the engine does: `ready()`, write entries and hard
 *   state to an unsynced journal, fsync after 1..3 ms, then persist to the
 *   node's `MemoryStorage`, send the messages, apply committed entries,
 *   answer read states and `advance()`. Persist-before-send is kept because
 *   nothing leaves the node before its fsync. A crash drops the unsynced
 *   journal (lost unsynced writes) and everything the node held.
 * - Links: drop, duplicate, delay uniform in [1, 9) ms (so messages reorder),
 *   partitions and one-way cuts.
 * - Clients: each runs one operation at a time against the node it believes
 *   is the leader (put / cas / linearizable read through ReadIndex), with a
 *   client timeout; a timed-out or crashed-under operation has an unknown
 *   outcome.
 *
 * Checked after every event: at most one leader per term; committed logs
 * agree (every entry a node applies matches what any node applied at that
 * index); a node's commit index never goes back within one incarnation; every
 * acknowledged write is committed at its index. At the end, after healing,
 * every node has applied every acknowledged write, no definitely-failed write
 * was committed, and the client history is linearizable.
 */
import { Either } from "effect"
import type { Entry, Message, NodeId, Ready } from "../../src/raft/core/index.js"
import { MemoryStorage, Mulberry32, RaftCore } from "../../src/raft/core/index.js"
import type { CheckResult, KvInput, KvOutput, Operation } from "../support/linearizability.js"
import { checkLinearizable, describeResult } from "../support/linearizability.js"

export interface CoreSimOptions {
  readonly nodes?: number
  /** Virtual ms of faulty operation before healing. */
  readonly durationMs?: number
  readonly clients?: number
  readonly keys?: number
  readonly drop?: number
  readonly duplicate?: number
  /** Inject a bug, to show the checks catch it (tests of the test). */
  readonly bug?: "stale-follower-read" | "ack-before-commit"
}

export interface CoreSimStats {
  readonly seed: number
  readonly simulatedMs: number
  readonly invoked: number
  readonly acknowledged: number
  readonly failed: number
  readonly unknown: number
  readonly readsOk: number
  readonly crashes: number
  readonly partitions: number
  readonly leaders: number
  readonly committed: number
  readonly events: number
  readonly check: CheckResult
}

export class CoreSimFailure extends Error {
  constructor(
    readonly seed: number,
    detail: string
  ) {
    super(`raft core-sim seed ${seed}: ${detail}\n(rerun with RAFT_SIM_SEED=${seed})`)
  }
}

type Cmd =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "cas"; readonly key: string; readonly expected: string | null; readonly value: string }

const te = new TextEncoder()
const td = new TextDecoder()
const encodeCmd = (c: Cmd): Uint8Array => te.encode(JSON.stringify(c))
const decodeCmd = (b: Uint8Array): Cmd | undefined => {
  if (b.length === 0) return undefined
  try {
    return JSON.parse(td.decode(b)) as Cmd
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------
// Event queue

interface Ev {
  readonly at: number
  readonly seq: number
  readonly run: () => void
}

class EventQueue {
  private heap: Array<Ev> = []
  private seq = 0
  now = 0
  get size(): number {
    return this.heap.length
  }
  at(t: number, run: () => void): void {
    const e: Ev = { at: Math.max(t, this.now), seq: this.seq++, run }
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (less(h[p]!, e)) break
      h[i] = h[p]!
      i = p
    }
    h[i] = e
  }
  after(ms: number, run: () => void): void {
    this.at(this.now + ms, run)
  }
  pop(): Ev | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= h.length) break
        const r = l + 1
        const c = r < h.length && less(h[r]!, h[l]!) ? r : l
        if (less(last, h[c]!)) break
        h[i] = h[c]!
        i = c
      }
      h[i] = last
    }
    return top
  }
}

const less = (a: Ev, b: Ev): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

// ---------------------------------------------------------------------------
// Nodes

interface ClientRequest {
  readonly opId: number
  readonly client: number
  readonly kind: "propose" | "read"
  readonly cmd?: Cmd
  readonly key: string
}

type Reply =
  | { readonly tag: "ok"; readonly output: KvOutput; readonly index?: number }
  | { readonly tag: "failed"; readonly hint: NodeId | null }

interface SimNode {
  readonly id: NodeId
  readonly storage: MemoryStorage
  core: RaftCore | null
  incarnation: number
  /** Ready being fsynced (the core is blocked until then). */
  syncing: boolean
  paused: boolean
  inbox: Array<Message>
  pendingClient: Array<ClientRequest>
  rate: number
  kv: Map<string, string>
  applied: number
  lastCommit: number
  /** index -> proposal waiting for apply */
  proposals: Map<number, { readonly term: number; readonly req: ClientRequest }>
  /** read context -> request */
  reads: Map<string, ClientRequest>
  /** read states waiting for applied >= index */
  readyReads: Array<{ readonly index: number; readonly req: ClientRequest }>
}

export const runCoreSeed = (seed: number, options: CoreSimOptions = {}): CoreSimStats => {
  const nNodes = options.nodes ?? 5
  const durationMs = options.durationMs ?? 1_500
  const nClients = options.clients ?? 4
  const nKeys = options.keys ?? 3
  const dropP = options.drop ?? 0.1
  const dupP = options.duplicate ?? 0.1
  const tickMs = 10
  const clientTimeoutMs = 200
  const rng = new Mulberry32(seed)
  const chance = (p: number): boolean => rng.nextFloat() < p
  const pick = <T>(xs: ReadonlyArray<T>): T => xs[rng.nextInt(xs.length)]!
  const q = new EventQueue()
  const ids: Array<NodeId> = Array.from({ length: nNodes }, (_, i) => i + 1)
  const fail = (detail: string): never => {
    throw new CoreSimFailure(seed, `t=${q.now.toFixed(2)}ms ${detail}`)
  }

  // ---- global observations
  const committedAt = new Map<number, { term: number; data: string }>()
  let maxCommitted = 0
  const leaderOfTerm = new Map<number, NodeId>()
  const acked: Array<{ value: string; index: number }> = []
  const definitelyFailed = new Set<string>()
  let crashes = 0
  let partitions = 0
  let events = 0

  // ---- network
  const blocked = new Set<string>()
  const link = (a: NodeId, b: NodeId): string => `${a}>${b}`
  let faulty = true

  const nodes = new Map<NodeId, SimNode>()
  const node = (id: NodeId): SimNode => nodes.get(id)!

  const makeCore = (n: SimNode): RaftCore =>
    new RaftCore({
      id: n.id,
      group: "kv",
      storage: n.storage,
      random: new Mulberry32((seed * 7919 + n.id * 104729 + n.incarnation) >>> 0),
      electionTick: 10,
      heartbeatTick: 1,
      preVote: true,
      checkQuorum: true,
      readOnlyOption: "Safe"
    })

  for (const id of ids) {
    const n: SimNode = {
      id,
      storage: MemoryStorage.make(ids),
      core: null,
      incarnation: 0,
      syncing: false,
      paused: false,
      inbox: [],
      pendingClient: [],
      rate: 1,
      kv: new Map(),
      applied: 0,
      lastCommit: 0,
      proposals: new Map(),
      reads: new Map(),
      readyReads: []
    }
    n.core = makeCore(n)
    nodes.set(id, n)
  }

  const send = (m: Message): void => {
    const deliverOne = (delay: number) =>
      q.after(delay, () => {
        const to = nodes.get(m.to)
        if (to === undefined || to.core === null) return // down: lost
        to.inbox.push(m)
        pump(to)
      })
    if (blocked.has(link(m.from, m.to))) return
    if (faulty && chance(dropP)) return
    deliverOne(1 + rng.nextInt(8) + rng.nextFloat())
    if (faulty && chance(dupP)) deliverOne(1 + rng.nextInt(8) + rng.nextFloat())
  }

  // ---- clients (replies go back over a reliable 0..2 ms link)
  const replyTo = new Map<number, (r: Reply) => void>()
  const reply = (req: ClientRequest, r: Reply): void => {
    const cb = replyTo.get(req.opId)
    if (cb === undefined) return
    q.after(rng.nextFloat() * 2, () => cb(r))
  }

  const apply = (n: SimNode, e: Entry): void => {
    // agreement: what this node applies at an index is what everyone applies there
    const data = `${e.type}:${td.decode(e.data)}`
    const prev = committedAt.get(e.index)
    if (prev === undefined) committedAt.set(e.index, { term: e.term, data })
    else if (prev.term !== e.term || prev.data !== data) {
      fail(`node ${n.id} applied index ${e.index} term ${e.term}, but term ${prev.term} was applied there elsewhere`)
    }
    if (e.index > maxCommitted) maxCommitted = e.index
    if (e.index !== n.applied + 1) fail(`node ${n.id} applied ${e.index} after ${n.applied}`)
    n.applied = e.index
    let result: { ok: boolean } | undefined
    const cmd = e.type === "Normal" ? decodeCmd(e.data) : undefined
    if (cmd !== undefined) {
      const cur = n.kv.get(cmd.key) ?? null
      const ok = cmd.op === "put" || cur === cmd.expected
      if (ok) n.kv.set(cmd.key, cmd.value)
      result = { ok }
    }
    const p = n.proposals.get(e.index)
    if (p !== undefined) {
      n.proposals.delete(e.index)
      if (p.term === e.term && result !== undefined) {
        reply(p.req, { tag: "ok", output: p.req.cmd!.op === "put" ? { type: "put" } : { type: "cas", ok: result.ok }, index: e.index })
      } else reply(p.req, { tag: "failed", hint: null }) // overwritten by another leader's entry
    }
  }

  const serveReads = (n: SimNode): void => {
    if (n.readyReads.length === 0) return
    const rest: typeof n.readyReads = []
    for (const r of n.readyReads) {
      if (n.applied >= r.index) reply(r.req, { tag: "ok", output: { type: "read", value: n.kv.get(r.req.key) ?? null } })
      else rest.push(r)
    }
    n.readyReads = rest
  }

  const handleClient = (n: SimNode, req: ClientRequest): void => {
    const core = n.core!
    if (req.kind === "propose") {
      const res = core.propose(encodeCmd(req.cmd!))
      if (Either.isLeft(res)) {
        const e = res.left
        reply(req, { tag: "failed", hint: e._tag === "NotLeader" ? e.leaderId : null })
        return
      }
      n.proposals.set(res.right.lastIndex, { term: res.right.term, req })
      if (options.bug === "ack-before-commit") {
        // BUG: acknowledge as soon as the leader appended (not committed)
        n.proposals.delete(res.right.lastIndex)
        reply(req, { tag: "ok", output: req.cmd!.op === "put" ? { type: "put" } : { type: "cas", ok: (n.kv.get(req.key) ?? null) === (req.cmd as { expected?: string | null }).expected }, index: res.right.lastIndex })
      }
      return
    }
    if (options.bug === "stale-follower-read" && core.role !== "Leader") {
      // BUG: serve reads from the local state without ReadIndex
      reply(req, { tag: "ok", output: { type: "read", value: n.kv.get(req.key) ?? null } })
      return
    }
    const ctx = `${n.id}/${req.opId}`
    const res = core.readIndex(ctx)
    if (Either.isLeft(res)) {
      const e = res.left
      reply(req, { tag: "failed", hint: e._tag === "NotLeader" ? e.leaderId : null })
      return
    }
    n.reads.set(ctx, req)
  }

  /** Runs the node: inbound messages and client requests, then one Ready cycle (with an fsync delay). */
  const pump = (n: SimNode): void => {
    const core = n.core
    if (core === null || n.paused || n.syncing) return
    const inc = n.incarnation
    if (n.inbox.length > 0) {
      const msgs = n.inbox
      n.inbox = []
      for (const m of msgs) core.step(m)
    }
    if (n.pendingClient.length > 0) {
      const reqs = n.pendingClient
      n.pendingClient = []
      for (const r of reqs) handleClient(n, r)
    }
    if (!core.hasReady()) return
    const rd = core.ready()
    const finish = (): void => {
      if (n.core !== core || n.incarnation !== inc) return // crashed meanwhile: the journal is gone
      n.syncing = false
      complete(n, core, rd)
      pump(n)
    }
    if (rd.mustSync || rd.entries.length > 0 || rd.hardState !== null || rd.snapshot !== null) {
      n.syncing = true
      q.after(1 + rng.nextInt(3), finish)
    } else finish()
  }

  const complete = (n: SimNode, core: RaftCore, rd: Ready): void => {
    // 1. persist (the fsync just completed)
    if (rd.snapshot !== null) n.storage.applySnapshot(rd.snapshot)
    if (rd.entries.length > 0) n.storage.append(rd.entries)
    if (rd.hardState !== null) n.storage.setHardState(rd.hardState)
    // 2. send
    for (const m of rd.messages) send(m)
    // 3. apply, answer reads
    for (const e of rd.committedEntries) apply(n, e)
    for (const rs of rd.readStates) {
      const req = n.reads.get(rs.context)
      if (req === undefined) continue
      n.reads.delete(rs.context)
      n.readyReads.push({ index: rs.index, req })
    }
    core.advance(rd)
    serveReads(n)
    observe(n)
  }

  const observe = (n: SimNode): void => {
    const core = n.core
    if (core === null) return
    if (core.role === "Leader") {
      const prev = leaderOfTerm.get(core.term)
      if (prev !== undefined && prev !== n.id) fail(`two leaders in term ${core.term}: ${prev} and ${n.id}`)
      leaderOfTerm.set(core.term, n.id)
    }
    if (core.committed < n.lastCommit) fail(`node ${n.id} commit index went back ${n.lastCommit} -> ${core.committed}`)
    n.lastCommit = core.committed
  }

  // ---- ticks (per node, skewed)
  const scheduleTick = (n: SimNode, inc: number): void => {
    q.after(tickMs / n.rate, () => {
      if (n.incarnation !== inc || n.core === null) return
      if (!n.paused) {
        n.core.tick()
        pump(n)
        observe(n)
      }
      scheduleTick(n, inc)
    })
  }
  for (const n of nodes.values()) scheduleTick(n, 0)

  // ---- faults
  const crash = (n: SimNode): void => {
    // everything not fsynced is lost, and so are in-memory requests
    n.core = null
    n.incarnation++
    n.syncing = false
    n.paused = false
    n.inbox = []
    n.pendingClient = []
    n.proposals.clear()
    n.reads.clear()
    n.readyReads = []
    crashes++
  }
  const restart = (n: SimNode): void => {
    n.kv = new Map()
    n.applied = 0
    n.core = makeCore(n)
    n.lastCommit = n.core.committed
    scheduleTick(n, n.incarnation)
  }
  const up = (): Array<SimNode> => [...nodes.values()].filter((n) => n.core !== null)
  const impaired = (): number => [...nodes.values()].filter((n) => n.core === null || n.paused).length

  const chaos = (): void => {
    const r = rng.nextFloat()
    if (r < 0.1 && impaired() < 2) crash(pick(up().filter((n) => !n.paused)))
    else if (r < 0.2) {
      const downs = [...nodes.values()].filter((n) => n.core === null)
      if (downs.length > 0) restart(pick(downs))
    } else if (r < 0.3) {
      blocked.clear()
      const side = ids.filter(() => chance(0.5))
      for (const a of ids) for (const b of ids) if (side.includes(a) !== side.includes(b)) blocked.add(link(a, b))
      partitions++
    } else if (r < 0.38) {
      const a = pick(ids)
      const b = pick(ids)
      if (a !== b) blocked.add(link(a, b))
    } else if (r < 0.55) blocked.clear()
    else if (r < 0.65) pick([...nodes.values()]).rate = 0.7 + rng.nextFloat() * 0.6
    else if (r < 0.72 && impaired() < 2) {
      const cands = up().filter((n) => !n.paused)
      if (cands.length > 0) pick(cands).paused = true
    } else if (r < 0.8) {
      for (const n of nodes.values()) {
        if (n.paused) {
          n.paused = false
          pump(n)
        }
      }
    }
  }
  const scheduleChaos = (): void => {
    q.after(10 + rng.nextInt(60), () => {
      if (q.now >= durationMs) return
      chaos()
      scheduleChaos()
    })
  }
  scheduleChaos()

  // ---- clients
  const history: Array<Operation> = []
  let opSeq = 0
  let invoked = 0
  let acknowledged = 0
  let failed = 0
  let readsOk = 0
  const inflight = new Map<number, { client: number; input: KvInput; call: number }>()
  const target = new Map<number, NodeId>()
  const lastSeen = new Map<string, string | null>()
  let clientsStop = false

  const clientLoop = (client: number): void => {
    if (clientsStop) return
    q.after(rng.nextFloat() * 15, () => {
      if (clientsStop) return
      const opId = opSeq++
      const key = `k${rng.nextInt(nKeys)}`
      const r = rng.nextFloat()
      // mostly the believed leader; sometimes any node (follower reads, forwarding)
      const to = chance(0.2) ? pick(ids) : (target.get(client) ?? pick(ids))
      let req: ClientRequest
      let input: KvInput
      if (r < 0.35) {
        req = { opId, client, kind: "read", key }
        input = { type: "read", key }
      } else {
        const value = `c${client}.${opId}`
        const cmd: Cmd =
          r < 0.7 ? { op: "put", key, value } : { op: "cas", key, expected: chance(0.8) ? (lastSeen.get(key) ?? null) : null, value }
        req = { opId, client, kind: "propose", cmd, key }
        input = cmd.op === "put" ? { type: "put", key, value } : { type: "cas", key, expected: cmd.expected, value }
      }
      invoked++
      const call = q.now
      inflight.set(opId, { client, input, call })
      let done = false
      const settle = (): void => {
        done = true
        replyTo.delete(opId)
        inflight.delete(opId)
        clientLoop(client)
      }
      replyTo.set(opId, (rep) => {
        if (done) return
        if (rep.tag === "failed") {
          failed++
          if (input.type !== "read") definitelyFailed.add(input.value)
          target.set(client, rep.hint ?? pick(ids))
        } else {
          acknowledged++
          history.push({ clientId: client, input, call, return: q.now, output: rep.output })
          if (rep.output.type === "read") {
            readsOk++
            lastSeen.set(key, rep.output.value ?? null)
          } else if (input.type !== "read") {
            if (rep.output.type === "put" || (rep.output.type === "cas" && rep.output.ok)) {
              lastSeen.set(key, input.value)
              acked.push({ value: input.value, index: rep.index! })
            }
          }
        }
        settle()
      })
      // timeout: unknown outcome
      q.after(clientTimeoutMs, () => {
        if (done) return
        history.push({ clientId: client, input, call })
        target.set(client, pick(ids))
        settle()
      })
      q.after(rng.nextFloat() * 2, () => {
        const n = node(to)
        if (n.core === null) return // lost: the client times out
        n.pendingClient.push(req)
        pump(n)
      })
    })
  }
  for (let c = 0; c < nClients; c++) clientLoop(c)

  // ---- run
  const checkAcked = (): void => {
    for (const a of acked) {
      const e = committedAt.get(a.index)
      if (e === undefined || !e.data.includes(JSON.stringify(a.value))) fail(`acknowledged write ${a.value} is not committed at index ${a.index}`)
    }
  }
  const runUntil = (t: number): void => {
    for (;;) {
      const e = q.pop()
      if (e === undefined) return
      if (e.at > t) {
        q.at(e.at, e.run)
        q.now = t
        return
      }
      q.now = e.at
      e.run()
      events++
      if (events % 16 === 0) checkAcked()
    }
  }
  runUntil(durationMs)
  checkAcked()

  // ---- heal and settle
  clientsStop = true
  faulty = false
  blocked.clear()
  for (const n of nodes.values()) {
    n.rate = 1
    if (n.core === null) restart(n)
    if (n.paused) {
      n.paused = false
      pump(n)
    }
  }
  runUntil(q.now + clientTimeoutMs + 50)
  // one more write through the leader commits everything before it
  const leaderNode = (): SimNode | undefined => {
    let best: SimNode | undefined
    for (const n of nodes.values()) if (n.core?.role === "Leader" && (best === undefined || n.core.term > best.core!.term)) best = n
    return best
  }
  for (let i = 0; i < 50 && leaderNode() === undefined; i++) runUntil(q.now + 20)
  const l = leaderNode() ?? fail("no leader after healing")
  if (Either.isLeft(l.core!.propose(encodeCmd({ op: "put", key: "final", value: "x" })))) fail("final proposal rejected")
  pump(l)
  runUntil(q.now + 300)
  checkAcked()
  for (const p of inflight.values()) history.push({ clientId: p.client, input: p.input, call: p.call })

  for (const n of nodes.values()) {
    const values = new Set<string>()
    for (const e of n.storage.allEntries()) {
      if (e.index > n.applied) break
      const c = e.type === "Normal" ? decodeCmd(e.data) : undefined
      if (c !== undefined) values.add(c.value)
    }
    if (!values.has("x")) fail(`node ${n.id} did not apply the final write (applied ${n.applied})`)
    for (const a of acked) if (!values.has(a.value)) fail(`acknowledged write ${a.value} missing on node ${n.id}`)
    for (const v of definitelyFailed) if (values.has(v)) fail(`write ${v} was reported failed but committed`)
  }

  const check = checkLinearizable(history, { maxStepsPerKey: 500_000 })
  if (check.verdict === "illegal") fail(`history is not linearizable:\n${describeResult(check)}`)

  return {
    seed,
    simulatedMs: Math.round(q.now),
    invoked,
    acknowledged,
    failed,
    unknown: history.filter((o) => o.return === undefined).length,
    readsOk,
    crashes,
    partitions,
    leaders: leaderOfTerm.size,
    committed: maxCommitted,
    events,
    check
  }
}
