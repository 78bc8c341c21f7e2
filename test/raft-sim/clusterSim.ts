/**
 * One seeded run of a 5-node `makeRaftTestCluster` with concurrent clients,
 * network faults, partitions, crashes (losing unsynced writes), pauses and
 * clock skew. Used by simulation.test.ts; see there.
 *
 * Clients run as fibers in the cluster's virtual world, so several operations
 * are in flight at once and their call/return times are world times. Every
 * operation goes into a history that is checked for linearizability at the end.
 */
import { Cause, Effect, Exit, Option } from "effect"
import type { RaftTestCluster } from "../../layers/TestCluster.js"
import { KV_GROUP, makeRaftTestCluster } from "../../layers/TestCluster.js"
import { Mulberry32 } from "../../src/raft/core/random.js"
import type { Entry, NodeId } from "../../src/raft/core/types.js"
import type { KvCommand, KvResult } from "../../src/raft/KvStateMachine.js"
import { decodeKvCommand, encodeKvCommand, KvStateMachine } from "../../src/raft/KvStateMachine.js"
import type { CheckResult, KvInput, KvOutput, Operation } from "../support/linearizability.js"
import { checkLinearizable, describeResult } from "../support/linearizability.js"

export interface SimOptions {
  readonly nodes?: number
  /** Client-driving steps; each advances virtual time by 1..maxStepMs. */
  readonly steps?: number
  readonly maxStepMs?: number
  readonly clients?: number
  readonly keys?: number
}

export interface SimStats {
  readonly seed: number
  readonly simulatedMs: number
  readonly invoked: number
  readonly ok: number
  readonly failed: number
  readonly unknown: number
  readonly reads: number
  readonly crashes: number
  readonly partitions: number
  readonly committed: number
  readonly check: CheckResult
}

export class SimFailure extends Error {
  constructor(
    readonly seed: number,
    detail: string
  ) {
    super(`raft-sim seed ${seed}: ${detail}\n(rerun with RAFT_SIM_SEED=${seed})`)
  }
}

/** Errors after which the command certainly did not (and never will) take effect. */
const DEFINITE_FAILURES = new Set([
  "NotLeader",
  "ProposalDropped",
  "LeadershipTransferInProgress",
  "ConfigChangeInProgress",
  "GroupNotFound",
  "NodeDown"
])

interface Pending {
  readonly id: number
  readonly client: number
  readonly node: NodeId
  readonly input: KvInput
  readonly call: number
  /** The command's unique value (writes). */
  readonly value: string | null
}

interface Acked {
  readonly value: string
  readonly index: number
}

const keyOf = (c: KvCommand): string => c.key

export const runClusterSeed = (seed: number, options: SimOptions = {}): Effect.Effect<SimStats, SimFailure> =>
  Effect.scoped(
    Effect.gen(function* () {
      const n = options.nodes ?? 5
      const steps = options.steps ?? 40
      const maxStepMs = options.maxStepMs ?? 12
      const clients = options.clients ?? 3
      const keys = options.keys ?? 2
      const rng = new Mulberry32(seed ^ 0x5eed)
      const c: RaftTestCluster = yield* makeRaftTestCluster(n, {
        seed,
        electionTimeoutMs: 60,
        heartbeatMs: 10,
        fsyncDelayMs: 1 + rng.nextInt(3),
        faults: { drop: 0.1, duplicate: 0.1, minDelayMs: 1, maxDelayMs: 4 },
        trace: false
      })
      const world = c.world
      const ids = c.ids
      const fail = (detail: string): SimFailure => new SimFailure(seed, `t=${world.now}ms ${detail}`)
      const pick = <T>(xs: ReadonlyArray<T>): T => xs[rng.nextInt(xs.length)]!
      const chance = (p: number): boolean => rng.nextFloat() < p

      // ---- observation: committed entries, commit monotonicity, acknowledged writes
      const committed = new Map<number, { term: number; data: string }>()
      let maxCommitted = 0
      const lastCommit = new Map<NodeId, number>()
      const seenTerms = new Map<number, NodeId>()
      const acked: Array<Acked> = []
      const debugLog: Array<string> = []
      const dbg = (s: string): void => {
        if (process.env["RAFT_SIM_DEBUG"] !== undefined) debugLog.push(`t=${world.now.toFixed(1)} ${s}`)
      }
      const definitelyFailed = new Set<string>()

      const dataKey = (e: Entry): string => `${e.type}:${Buffer.from(e.data).toString("latin1")}`

      const observe = (): void => {
        for (const id of ids) {
          const eng = Effect.runSync(Effect.option(c.engine(id)))
          if (Option.isNone(eng)) continue
          const f = Effect.runSync(Effect.option(eng.value.figures(KV_GROUP)))
          if (Option.isNone(f)) continue
          const fig = f.value
          if (fig.role === "Leader") {
            const prev = seenTerms.get(fig.term)
            if (prev !== undefined && prev !== id) throw fail(`two leaders in term ${fig.term}: ${prev} and ${id}`)
            seenTerms.set(fig.term, id)
          }
          const last = lastCommit.get(id) ?? 0
          if (fig.commitIndex < last) throw fail(`node ${id} commit index went back ${last} -> ${fig.commitIndex}`)
          if (fig.commitIndex > last) {
            const ents = Effect.runSync(Effect.orDie(eng.value.logEntries(KV_GROUP, Math.max(last + 1, fig.firstIndex), fig.commitIndex + 1)))
            for (const e of ents) {
              const d = dataKey(e)
              const prev = committed.get(e.index)
              if (prev === undefined) committed.set(e.index, { term: e.term, data: d })
              else if (prev.term !== e.term || prev.data !== d) {
                throw fail(`committed logs diverge at index ${e.index}: node ${id} has term ${e.term}, term ${prev.term} was committed before`)
              }
              if (e.index > maxCommitted) maxCommitted = e.index
            }
            lastCommit.set(id, fig.commitIndex)
          }
        }
        // every acknowledged write is in the committed log at its index
        for (const a of acked) {
          const e = committed.get(a.index)
          if (e === undefined) throw fail(`acknowledged write ${a.value} at index ${a.index} is not committed anywhere`)
          if (!e.data.includes(JSON.stringify(a.value))) throw fail(`acknowledged write ${a.value} at index ${a.index} was replaced`)
        }
      }
      const restartReset = (id: NodeId): void => {
        // a restarted node recovers its commit index from disk (it may be lower)
        lastCommit.delete(id)
      }

      // ---- clients
      const history: Array<Operation> = []
      const busy = new Set<number>()
      const target = new Map<number, NodeId>()
      let nextId = 0
      let seq = 0
      let invoked = 0
      let okCount = 0
      let failed = 0
      let reads = 0
      const inflight = new Map<number, Pending>()

      const finish = (p: Pending, output: KvOutput | "unknown" | "failed"): void => {
        inflight.delete(p.id)
        busy.delete(p.client)
        if (output === "failed") {
          failed++
          if (p.value !== null) definitelyFailed.add(p.value)
          return
        }
        if (output === "unknown") {
          history.push({ clientId: p.client, input: p.input, call: p.call })
          return
        }
        okCount++
        history.push({ clientId: p.client, input: p.input, call: p.call, return: world.now, output })
      }

      const onError = (p: Pending, client: number, cause: Cause.Cause<unknown>): void => {
        const err = Cause.failureOption(cause)
        if (Option.isSome(err)) {
          const e = err.value as { _tag?: string; leaderId?: NodeId | null }
          if (e._tag === "NotLeader" && e.leaderId != null) target.set(client, e.leaderId)
          else target.set(client, pick(ids))
          finish(p, e._tag !== undefined && DEFINITE_FAILURES.has(e._tag) ? "failed" : "unknown")
        } else {
          // interrupted (node crashed under the request) or a defect
          target.set(client, pick(ids))
          finish(p, "unknown")
        }
      }

      /** Value of `key` after replaying `node`'s log up to its applied index. */
      const readLocal = (node: NodeId, key: string): string | null | undefined => {
        const eng = Effect.runSync(Effect.option(c.engine(node)))
        if (Option.isNone(eng)) return undefined
        const fig = Effect.runSync(Effect.option(eng.value.figures(KV_GROUP)))
        if (Option.isNone(fig) || fig.value.firstIndex > 1) return undefined
        const ents = Effect.runSync(Effect.orDie(eng.value.logEntries(KV_GROUP, 1, fig.value.appliedIndex + 1)))
        const sm = new KvStateMachine()
        for (const e of ents) if (e.type === "Normal" && e.data.length > 0) sm.apply(e)
        return sm.get(key)
      }

      const startOp = (client: number): void => {
        const node = target.get(client) ?? pick(ids)
        const eng = Effect.runSync(Effect.option(c.engine(node)))
        if (Option.isNone(eng)) {
          target.set(client, pick(ids))
          return
        }
        const engine = eng.value
        const key = `k${rng.nextInt(keys)}`
        const r = rng.nextFloat()
        const id = nextId++
        invoked++
        busy.add(client)
        if (r < 0.35) {
          reads++
          const p: Pending = { id, client, node, input: { type: "read", key }, call: world.now, value: null }
          inflight.set(id, p)
          world.fork(
            Effect.onExit(engine.readIndex(KV_GROUP), (exit) =>
              Effect.sync(() => {
                if (Exit.isFailure(exit)) return onError(p, client, exit.cause)
                const v = readLocal(node, key)
                finish(p, v === undefined ? "unknown" : { type: "read", value: v })
              })
            )
          )
          return
        }
        const value = `c${client}.${seq++}`
        let cmd: KvCommand
        if (r < 0.7) cmd = { op: "put", key, value }
        else {
          // expect the value we last saw committed for this key (or a random earlier one)
          let expected: string | null = null
          for (let i = maxCommitted; i >= 1 && expected === null; i--) {
            const e = committed.get(i)
            const cmdAt = e === undefined || !e.data.startsWith("Normal:") ? undefined : decodeKvCommand(Buffer.from(e.data.slice(7), "latin1"))
            if (cmdAt !== undefined && keyOf(cmdAt) === key && chance(0.7)) expected = cmdAt.value
          }
          cmd = { op: "cas", key, expected, value }
        }
        const input: KvInput = cmd.op === "put" ? { type: "put", key, value } : { type: "cas", key, expected: cmd.expected, value }
        const p: Pending = { id, client, node, input, call: world.now, value }
        inflight.set(id, p)
        world.fork(
          Effect.onExit(engine.propose(KV_GROUP, encodeKvCommand(cmd)), (exit) =>
            Effect.sync(() => {
              if (Exit.isFailure(exit)) return onError(p, client, exit.cause)
              const res = exit.value as KvResult
              if (res.ok) acked.push({ value, index: res.index })
              dbg(`ack ${value} at ${res.index} via ${node}`)
              finish(p, cmd.op === "put" ? { type: "put" } : { type: "cas", ok: res.ok })
            })
          )
        )
      }

      // ---- the run
      const down = new Set<NodeId>()
      const paused = new Set<NodeId>()
      let crashes = 0
      let partitions = 0
      const advance = (ms: number) =>
        Effect.mapError(c.advance(ms), (v) => fail(`harness invariant: ${v.violation}`))

      // first leader (under the link faults), so that clients have someone to talk to
      yield* Effect.mapError(c.awaitLeader(2_000), () => fail("no initial leader"))
      observe()
      for (let s = 0; s < steps; s++) {
        const r = rng.nextFloat()
        if (r < 0.04 && down.size + paused.size < 2) {
          const victim = pick(ids.filter((id) => !down.has(id) && !paused.has(id)))
          yield* c.crash(victim, chance(0.8) ? { loseUnsynced: true } : { tornTail: true })
          down.add(victim)
          dbg(`crash ${victim}`)
          crashes++
        } else if (r < 0.08 && down.size > 0) {
          const id = pick([...down])
          yield* c.restart(id)
          restartReset(id)
          down.delete(id)
          dbg(`restart ${id}`)
        } else if (r < 0.11) {
          const a = ids.filter(() => chance(0.5))
          yield* c.partition([a, ids.filter((id) => !a.includes(id))])
          partitions++
        } else if (r < 0.14) {
          yield* c.cut(pick(ids), pick(ids), { oneWay: chance(0.5) })
        } else if (r < 0.19) {
          yield* c.heal
        } else if (r < 0.22) {
          yield* c.skew(pick(ids), rng.nextInt(40) - 10, 0.7 + rng.nextFloat() * 0.6)
        } else if (r < 0.24 && down.size + paused.size < 2) {
          const id = pick(ids.filter((x) => !down.has(x) && !paused.has(x)))
          yield* c.pause(id)
          paused.add(id)
          dbg(`pause ${id}`)
        } else if (r < 0.28 && paused.size > 0) {
          const id = pick([...paused])
          yield* c.resume(id)
          paused.delete(id)
          dbg(`resume ${id}`)
        }
        for (let cl = 0; cl < clients; cl++) if (!busy.has(cl) && chance(0.5)) startOp(cl)
        yield* advance(1 + rng.nextInt(maxStepMs))
        observe()
      }

      // ---- settle: heal, restart, resume; let every client operation finish
      yield* c.heal
      yield* c.setLinkFaults({ drop: 0, duplicate: 0, minDelayMs: 1, maxDelayMs: 2 })
      for (const id of paused) yield* c.resume(id)
      for (const id of down) {
        yield* c.restart(id)
        restartReset(id)
      }
      for (const id of ids) yield* c.skew(id, 0, 1)
      for (let i = 0; i < 40 && inflight.size > 0; i++) {
        yield* advance(10)
        observe()
      }
      const leader = yield* Effect.mapError(c.awaitLeader(5_000), () => fail("no leader after healing"))
      // a write through the final leader commits (and, with the advance, spreads) everything before it
      yield* Effect.mapError(c.propose(leader.id, { op: "put", key: "final", value: "x" }), (e) => fail(`final write failed: ${e._tag}`))
      yield* advance(100)
      observe()
      const simulatedMs = world.now
      // pending operations that never came back have an unknown outcome
      for (const p of [...inflight.values()]) finish(p, "unknown")

      // every node holds every acknowledged write; no definite failure took effect
      for (const id of ids) {
        const log = yield* Effect.mapError(c.committedLog(id), () => fail(`node ${id} down at the end`))
        const values = new Set<string>()
        for (const e of log) {
          if (e.type !== "Normal") continue
          const cmd = decodeKvCommand(e.data)
          if (cmd !== undefined) values.add(cmd.value)
        }
        for (const a of acked) {
          if (!values.has(a.value)) {
            const figs = yield* Effect.orDie(c.figures(id))
            if (process.env["RAFT_SIM_DEBUG"] !== undefined) {
              const lf = yield* Effect.orDie(c.figures(leader.id))
              console.error("leader progress", [...lf.progress.entries()], "events", debugLog.join("\n"))
              yield* c.advance(2000)
              const f2 = yield* Effect.orDie(c.figures(id))
              const lf2 = yield* Effect.orDie(c.figures(leader.id))
              console.error("after 2s more: node", id, "commit", f2.commitIndex, "last", f2.lastIndex, "leader progress", [...lf2.progress.entries()])
            }
            throw fail(`acknowledged write ${a.value} (index ${a.index}) missing on node ${id} (commit ${figs.commitIndex}, last ${figs.lastIndex}, term ${figs.term}, role ${figs.role}, leader ${figs.leader}; cluster leader ${leader.id} term ${leader.term}, max committed ${maxCommitted})`)
          }
        }
        for (const v of definitelyFailed) if (values.has(v)) throw fail(`a write reported as failed (${v}) was committed`)
      }
      yield* Effect.mapError(c.checkInvariants, (v) => fail(`harness invariant: ${v.violation}`))

      const check = checkLinearizable(history, { maxStepsPerKey: 200_000 })
      if (check.verdict === "illegal") throw fail(`history is not linearizable:\n${describeResult(check)}`)
      return {
        seed,
        simulatedMs,
        invoked,
        ok: okCount,
        failed,
        unknown: history.filter((o) => o.return === undefined).length,
        reads,
        crashes,
        partitions,
        committed: maxCommitted,
        check
      }
    })
  ).pipe(
    Effect.catchAllDefect((d) =>
      d instanceof SimFailure ? Effect.fail(d) : Effect.fail(new SimFailure(seed, `defect: ${d instanceof Error ? (d.stack ?? d.message) : String(d)}`))
    )
  )
