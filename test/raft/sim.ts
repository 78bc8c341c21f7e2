/** Seeded whole-cluster simulation used by simulation.test.ts (see there). */
import { Either } from "effect"
import { seededRandom } from "../../src/raft/core/index.js"
import type { Mulberry32, NodeId } from "../../src/raft/core/index.js"
import { dec, enc, Network } from "./network.js"

interface Committed {
  readonly term: number
  readonly data: string
}

export class Sim {
  readonly net: Network
  readonly rng: Mulberry32
  readonly ids: Array<NodeId>
  private readonly committed = new Map<number, Committed>()
  private maxCommittedIndex = 0
  private readonly leaderOfTerm = new Map<number, NodeId>()
  private readonly lastCommit = new Map<NodeId, number>()
  private readonly checkedUpTo = new Map<NodeId, number>()
  private readonly appliedSeen = new Map<NodeId, number>()
  private readonly leaderTail = new Map<NodeId, { term: number; index: number; logTerm: number }>()
  private readonly proposed = new Set<string>()
  private readonly acked = new Set<string>()
  private seq = 0
  /** ReadIndex context -> highest index acknowledged (applied anywhere) when the read was issued. */
  private readonly reads = new Map<string, number>()
  private readonly readsSeen = new Map<NodeId, number>()
  private maxApplied = 0
  readonly stats = { readsServed: 0, snapshotsInstalled: 0 }
  stepNo = 0

  constructor(readonly seed: number) {
    this.rng = seededRandom(seed)
    const r = this.rng
    // 3 or 5 voters, plus node 6 that may join
    const voters = r.nextInt(3) === 0 ? [1, 2, 3] : [1, 2, 3, 4, 5]
    this.ids = [...voters, 6]
    this.net = new Network({
      voters,
      spare: [6],
      seed,
      core: {
        electionTick: 10,
        heartbeatTick: 1 + r.nextInt(2),
        preVote: r.nextInt(2) === 0,
        checkQuorum: r.nextInt(2) === 0,
        maxSizePerMsg: r.nextInt(2) === 0 ? 64 : 1024 * 1024,
        maxInflightMsgs: 1 + r.nextInt(8),
        maxSnapshotChunkBytes: 32 + r.nextInt(64),
        forwardProposals: r.nextInt(2) === 0
      }
    })
  }

  private pick<T>(xs: ReadonlyArray<T>): T {
    return xs[this.rng.nextInt(xs.length)]!
  }

  private chance(p: number): boolean {
    return this.rng.nextFloat() < p
  }

  fail(msg: string): never {
    throw new Error(`raft simulation seed ${this.seed} step ${this.stepNo}: ${msg}`)
  }

  step(): void {
    this.stepNo++
    const net = this.net
    const r = this.rng.nextFloat()
    if (r < 0.4) {
      if (net.queue.length === 0) return
      const i = this.rng.nextInt(net.queue.length)
      const m = net.queue[i]!
      // 5%: duplicate (deliver, keep a copy in flight). A duplicated MsgProp is a
      // client retry and legitimately appends twice, so proposals are not duplicated.
      if (m.type === "MsgProp" || !this.chance(0.05)) net.queue.splice(i, 1)
      net.deliver(m)
    } else if (r < 0.47) {
      if (net.queue.length > 0) net.queue.splice(this.rng.nextInt(net.queue.length), 1)
    } else if (r < 0.75) {
      net.tick(this.pick(this.ids))
    } else if (r < 0.85) {
      const id = this.pick(this.ids)
      const n = 1 + this.rng.nextInt(3)
      const payloads: Array<string> = []
      for (let k = 0; k < n; k++) payloads.push(`s${this.seed}-${++this.seq}`)
      const res = net.core(id).propose(payloads.map(enc))
      if (Either.isRight(res)) for (const p of payloads) this.proposed.add(p)
      net.processReady(id)
    } else if (r < 0.885) {
      // partition / heal
      net.heal()
      if (this.chance(0.6)) {
        const side = this.ids.filter(() => this.chance(0.5))
        net.partition(side)
      }
    } else if (r < 0.9) {
      // crash: volatile state lost; sometimes the last step's unpersisted state too
      const id = this.pick(this.ids)
      if (this.chance(0.5) && net.queue.length > 0) {
        const i = net.queue.findIndex((m) => m.to === id)
        if (i >= 0) {
          const [m] = net.queue.splice(i, 1)
          net.core(id).step(m!)
        }
      }
      this.stats.snapshotsInstalled += net.node(id).snapshotsInstalled
      net.node(id).snapshotsInstalled = 0
      net.restart(id)
      net.processReady(id)
      this.appliedSeen.set(id, 0)
    } else if (r < 0.93) {
      const id = this.pick(this.ids)
      net.compact(id, this.rng.nextInt(4))
    } else if (r < 0.945) {
      const l = net.leader()
      if (l !== undefined) {
        net.core(l).transferLeader(this.pick(this.ids))
        net.processReady(l)
      }
    } else if (r < 0.96) {
      const id = this.pick(this.ids)
      const ctx = `read-${this.stepNo}`
      this.reads.set(ctx, this.maxApplied)
      net.core(id).readIndex(ctx)
      net.processReady(id)
    } else if (r < 0.97) {
      this.confChange()
    } else {
      // a tick for everyone
      for (const id of this.ids) net.tick(id)
    }
    this.check()
  }

  private confChange(): void {
    const l = this.net.leader()
    if (l === undefined) return
    const core = this.net.core(l)
    const cs = core.confState()
    let res
    if (!cs.voters.includes(6) && !cs.learners.includes(6)) res = core.proposeConfChange({ type: "AddLearner", nodeId: 6 })
    else if (cs.learners.includes(6)) res = core.proposeConfChange({ type: "PromoteLearner", nodeId: 6 })
    else if (cs.voters.length > 3) res = core.proposeConfChange({ type: "RemoveNode", nodeId: this.pick(cs.voters) })
    else return
    void res
    this.net.processReady(l)
  }

  check(): void {
    const net = this.net
    for (const id of this.ids) {
      const h = net.node(id)
      const c = h.core
      // one leader per term
      if (c.role === "Leader") {
        const other = this.leaderOfTerm.get(c.term)
        if (other !== undefined && other !== id) this.fail(`two leaders in term ${c.term}: ${other} and ${id}`)
        if (other === undefined) {
          this.leaderOfTerm.set(c.term, id)
          // leader completeness: every committed entry is in the new leader's log
          if (c.lastIndex < this.maxCommittedIndex) {
            this.fail(`leader ${id} (term ${c.term}) lastIndex ${c.lastIndex} < committed ${this.maxCommittedIndex}`)
          }
          for (const [i, e] of this.committed) {
            const t = c.log.term(i)
            if (t !== undefined && t !== e.term) this.fail(`leader ${id} term ${c.term} lacks committed entry ${i}`)
          }
        }
        // leader append-only
        const tail = this.leaderTail.get(id)
        if (tail !== undefined && tail.term === c.term) {
          if (c.lastIndex < tail.index || (c.log.term(tail.index) ?? tail.logTerm) !== tail.logTerm) {
            this.fail(`leader ${id} rewrote its log in term ${c.term}`)
          }
        }
        this.leaderTail.set(id, { term: c.term, index: c.lastIndex, logTerm: c.log.lastTerm() })
      } else {
        this.leaderTail.delete(id)
      }
      // commit never regresses
      const prev = this.lastCommit.get(id) ?? 0
      if (c.committed < prev) this.fail(`node ${id} commit went back from ${prev} to ${c.committed}`)
      this.lastCommit.set(id, c.committed)
      // committed prefixes agree
      const from = Math.max((this.checkedUpTo.get(id) ?? 0) + 1, c.log.firstIndex())
      if (from <= c.committed) {
        const ents = c.log.slice(from, c.committed + 1, Number.MAX_SAFE_INTEGER) ?? []
        for (const e of ents) this.record(id, e.index, e.term, e.type === "Normal" ? dec(e.data) : e.type)
      }
      this.checkedUpTo.set(id, Math.max(this.checkedUpTo.get(id) ?? 0, c.committed))
      // applied entries agree too (and count as acknowledged)
      const seen = this.appliedSeen.get(id) ?? 0
      for (let k = seen; k < h.appliedEntries.length; k++) {
        const e = h.appliedEntries[k]!
        const data = e.type === "Normal" ? dec(e.data) : e.type
        this.record(id, e.index, e.term, data)
        if (e.type === "Normal") this.acked.add(data)
      }
      this.appliedSeen.set(id, h.appliedEntries.length)
      if (c.applied > this.maxApplied) this.maxApplied = c.applied
      // linearizable reads: a read index covers every write acknowledged before the request
      const rs = this.readsSeen.get(id) ?? 0
      for (let k = rs; k < h.readStates.length; k++) {
        const st = h.readStates[k]!
        const need = this.reads.get(st.context)
        if (need === undefined) this.fail(`node ${id} got unknown read state ${st.context}`)
        if (st.index < need) this.fail(`read ${st.context} at index ${st.index} misses acknowledged index ${need}`)
        this.stats.readsServed++
      }
      this.readsSeen.set(id, h.readStates.length)
    }
  }

  private record(id: NodeId, index: number, term: number, data: string): void {
    const known = this.committed.get(index)
    if (known === undefined) {
      this.committed.set(index, { term, data })
      if (index > this.maxCommittedIndex) this.maxCommittedIndex = index
    } else if (known.term !== term || known.data !== data) {
      this.fail(`node ${id} committed ${index}@${term} "${data}" but ${index}@${known.term} "${known.data}" was committed before`)
    }
  }

  /** Heal everything and run until the members agree on one state containing every acknowledged entry. */
  converge(): void {
    const net = this.net
    net.heal()
    const marker = `final-${this.seed}`
    let proposedAt = -1_000
    for (let round = 0; round < 3000; round++) {
      net.tickAll(1)
      this.check()
      const l = net.leader()
      if (l === undefined) continue
      const core = net.core(l)
      // (Re)propose the marker until it is applied: a proposal to a deposed leader is lost.
      if (!net.node(l).state.includes(marker) && round - proposedAt > 30) {
        if (Either.isRight(core.propose(enc(marker)))) proposedAt = round
        net.flush()
        this.check()
        continue
      }
      const members = [...core.confState().voters, ...core.confState().learners]
      const states = members.map((id) => net.node(id).state)
      const done = states.every((s) => s.includes(marker!) && s.length === states[0]!.length)
      if (!done) continue
      const final = states[0]!
      for (const s of states) if (JSON.stringify(s) !== JSON.stringify(final)) this.fail("members diverge after healing")
      const counts = new Map<string, number>()
      for (const x of final) counts.set(x, (counts.get(x) ?? 0) + 1)
      for (const [x, n] of counts) if (n > 1 && x !== marker) this.fail(`entry ${x} applied ${n} times`)
      for (const a of this.acked) if (!counts.has(a)) this.fail(`acknowledged entry ${a} lost`)
      for (const x of final) if (!x.startsWith("final-") && !this.proposed.has(x)) this.fail(`entry ${x} was never proposed`)
      return
    }
    this.fail(`no convergence after healing: ${this.dump()}`)
  }

  dump(): string {
    return JSON.stringify(
      this.ids.map((id) => {
        const c = this.net.core(id)
        return { id, role: c.role, term: c.term, lead: c.leader, commit: c.committed, applied: c.applied, last: c.lastIndex, first: c.log.firstIndex(), conf: c.confState(), state: this.net.node(id).state }
      })
    )
  }
}

export const runSeed = (seed: number, steps: number): Sim => {
  const sim = new Sim(seed)
  try {
    for (let i = 0; i < steps; i++) sim.step()
    sim.converge()
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    throw new Error(msg.includes(`seed ${seed}`) ? msg : `raft simulation seed ${seed} step ${sim.stepNo}: ${msg}`)
  }
  return sim
}

