/**
 * Raft micro-benchmarks: `npx tsx bench/raft.ts` (or `run()` from bench/micro-child.ts).
 *
 * 1. Single group, pure core: 3 voters on `MemoryStorage`, messages delivered
 *    in process (no I/O, no serialization). Each round the leader takes a
 *    batch of proposals (one `propose([...])` call), then the Ready cycle
 *    runs on all three nodes until the batch is committed on the leader.
 *    Reported: committed entries per second of wall time, per batch size.
 * 2. 1,000 idle groups on 3 nodes:
 *    a. with `RaftEngine` (3 engines over `MemoryNetwork`, memory disks,
 *       the real Effect runtime and clock, tick 100 ms, heartbeat every tick):
 *       Raft messages, liveness messages and transport frames per heartbeat
 *       interval, and CPU milliseconds (user+system, this process) per second
 *       of ticking — with quiescence (the default: idle groups stop ticking,
 *       node liveness replaces their heartbeats) and without it.
 *    b. the pure-core equivalent (3,000 `RaftCore`s ticked in a loop):
 *       messages per heartbeat tick and CPU per tick.
 * 3. Proposal cost through `RaftEngine` (real Effect runtime and clock, memory
 *    disks with no sync delay, MemoryNetwork, 64-byte payloads, a state machine
 *    that does nothing): acknowledged commits per second of wall time for
 *    - `engineSingle`: a one-voter group, `fibers` fibers each calling
 *      `propose` in a loop (1 fiber = one proposal at a time; 64 fibers =
 *      many concurrent single proposals);
 *    - `engineBatch`: the same with `proposeBatch` of `batch` entries;
 *    - `engineThreeVoters`: 3 engines in one process (one group), 64 fibers
 *      proposing on the leader.
 *
 * `npx tsx bench/raft.ts [--quick] [--only single|engine|idle]` (the default
 * runs everything).
 */
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { pathToFileURL } from "node:url"
import { cpus } from "node:os"
import type { Message, NodeId, Ready } from "../src/raft/core/index.js"
import { MemoryStorage, Mulberry32, RaftCore } from "../src/raft/core/index.js"
import type { StateMachine } from "../src/raft/RaftEngine.js"
import * as RaftEngine from "../src/raft/RaftEngine.js"
import { MemoryNetwork } from "../src/raft/MemoryNetwork.js"
import * as RaftLogStore from "../src/raft/RaftLogStore.js"
import * as RaftTransport from "../src/raft/RaftTransport.js"

// ---------------------------------------------------------------------------
// An in-process cluster of pure cores (one or many groups)

class CoreCluster {
  readonly cores = new Map<string, RaftCore>() // `${group}/${node}`
  readonly storages = new Map<string, MemoryStorage>()
  queue: Array<Message> = []
  messages = 0
  committed = 0

  constructor(
    readonly groups: ReadonlyArray<string>,
    readonly ids: ReadonlyArray<NodeId>,
    options: { readonly electionTick?: number; readonly maxSizePerMsg?: number; readonly maxInflightMsgs?: number } = {}
  ) {
    for (const g of groups) {
      for (const id of ids) {
        const storage = MemoryStorage.make(ids)
        this.storages.set(`${g}/${id}`, storage)
        this.cores.set(
          `${g}/${id}`,
          new RaftCore({
            id,
            group: g,
            storage,
            random: new Mulberry32(id * 7919 + g.length),
            electionTick: options.electionTick ?? 10,
            heartbeatTick: 1,
            maxSizePerMsg: options.maxSizePerMsg ?? 1024 * 1024,
            maxInflightMsgs: options.maxInflightMsgs ?? 256
          })
        )
      }
    }
  }

  core(g: string, id: NodeId): RaftCore {
    return this.cores.get(`${g}/${id}`)!
  }

  /** One Ready cycle of one core: persist, send, apply, advance. */
  process(g: string, id: NodeId): void {
    const c = this.core(g, id)
    while (c.hasReady()) {
      const rd: Ready = c.ready()
      const s = this.storages.get(`${g}/${id}`)!
      if (rd.snapshot !== null) s.applySnapshot(rd.snapshot)
      if (rd.entries.length > 0) s.append(rd.entries)
      if (rd.hardState !== null) s.setHardState(rd.hardState)
      for (const m of rd.messages) this.queue.push(m)
      this.messages += rd.messages.length
      this.committed += rd.committedEntries.length
      c.advance(rd)
    }
  }

  /** Delivers everything in flight (and what it causes) until quiet. */
  flush(): void {
    while (this.queue.length > 0) {
      const batch = this.queue
      this.queue = []
      const touched = new Set<string>()
      for (const m of batch) {
        this.core(m.group, m.to).step(m)
        touched.add(`${m.group}\u0000${m.to}`)
      }
      for (const t of touched) {
        const [g, id] = t.split("\u0000") as [string, string]
        this.process(g, Number(id))
      }
    }
  }

  processAll(): void {
    for (const g of this.groups) for (const id of this.ids) this.process(g, id)
  }

  tickAll(): void {
    for (const c of this.cores.values()) c.tick()
    this.processAll()
    this.flush()
  }
}

const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

// ---------------------------------------------------------------------------
// 1. single group throughput

export interface ThroughputResult {
  readonly batch: number
  readonly commitsPerSec: number
  readonly entries: number
  readonly seconds: number
}

export const singleGroup = (batch: number, seconds: number, payloadBytes = 64): ThroughputResult => {
  const cl = new CoreCluster(["g"], [1, 2, 3])
  cl.core("g", 1).campaign()
  cl.processAll()
  cl.flush()
  const leader = cl.core("g", 1)
  if (leader.role !== "Leader") throw new Error("bench: node 1 did not become leader")
  const payloads = Array.from({ length: batch }, (_, i) => {
    const b = new Uint8Array(payloadBytes)
    b[0] = i & 255
    return b
  })
  const start = leader.committed
  const t0 = performance.now()
  let t = t0
  while (t - t0 < seconds * 1000) {
    for (let k = 0; k < 16; k++) {
      const target = leader.lastIndex + batch
      const r = leader.propose(payloads)
      if (r._tag === "Left") throw new Error(`bench: propose failed: ${r.left._tag}`)
      cl.process("g", 1)
      cl.flush()
      cl.process("g", 1)
      if (leader.committed < target) throw new Error(`bench: batch not committed (${leader.committed} < ${target})`)
    }
    t = performance.now()
  }
  const entries = leader.committed - start
  const secs = (t - t0) / 1000
  return { batch, commitsPerSec: Math.round(entries / secs), entries, seconds: Math.round(secs * 100) / 100 }
}

// ---------------------------------------------------------------------------
// 2b. idle groups, pure core

export interface IdleCoreResult {
  readonly groups: number
  readonly messagesPerTick: number
  readonly cpuMsPerTick: number
}

const idleCores = (groups: number, ticks: number): IdleCoreResult => {
  const names = Array.from({ length: groups }, (_, i) => `g${i}`)
  const cl = new CoreCluster(names, [1, 2, 3])
  for (const g of names) cl.core(g, 1 + (Number(g.slice(1)) % 3)).campaign()
  cl.processAll()
  cl.flush()
  for (let i = 0; i < 3; i++) cl.tickAll()
  const m0 = cl.messages
  const c0 = cpuMs()
  for (let i = 0; i < ticks; i++) cl.tickAll()
  const cpu = cpuMs() - c0
  return { groups, messagesPerTick: Math.round((cl.messages - m0) / ticks), cpuMsPerTick: Math.round((cpu / ticks) * 100) / 100 }
}

// ---------------------------------------------------------------------------
// 2a. idle groups, RaftEngine

export interface IdleEngineResult {
  readonly groups: number
  readonly tickMs: number
  readonly quiescence: boolean
  readonly leadersElected: number
  /** Groups quiesced on all 3 nodes at the end of the measurement (0 without quiescence). */
  readonly quiescedGroups: number
  readonly secondsMeasured: number
  readonly ticksPerSecond: number
  /** Raft core messages (heartbeats, responses, ...) sent by all nodes per heartbeat interval. */
  readonly raftMessagesPerHeartbeat: number
  /** Node-liveness messages sent by all nodes per heartbeat interval. */
  readonly livenessMessagesPerHeartbeat: number
  /** Everything the transport carried (Raft + liveness + quiescence messages) per heartbeat interval. */
  readonly transportMessagesPerHeartbeat: number
  readonly framesPerHeartbeat: number
  readonly cpuMsPerSecond: number
  readonly startupSeconds: number
}

const nullSm: StateMachine = {
  apply: () => undefined,
  snapshot: () => new Uint8Array(0),
  restore: () => undefined
}

const idleEngines = (groups: number, seconds: number, quiescence: boolean, tickMs = 100): Effect.Effect<IdleEngineResult, unknown> =>
  Effect.gen(function* () {
    const t0 = performance.now()
    const network = yield* MemoryNetwork.make({ seed: 1, trace: false })
    const ids = [1, 2, 3]
    const engines: Array<RaftEngine.RaftEngineShape> = []
    const scopes: Array<Scope.CloseableScope> = []
    for (const id of ids) {
      const scope = yield* Scope.make()
      scopes.push(scope)
      const layer = RaftEngine.layer({ nodeId: id, tickMs, electionTicks: 10, heartbeatTicks: 1, seed: id, quiescence }).pipe(
        Layer.provide(Layer.merge(RaftTransport.layerMemory(network, id), RaftLogStore.layerMemory(new RaftLogStore.MemoryDisk())))
      )
      const ctx = yield* Layer.buildWithScope(layer, scope)
      engines.push(ctx.unsafeMap.get(RaftEngine.RaftEngine.key) as RaftEngine.RaftEngineShape)
    }
    for (const e of engines) {
      for (let g = 0; g < groups; g++) yield* e.createGroup(`g${g}`, { voters: ids, stateMachine: nullSm })
    }
    // spread leadership: node (g mod 3) campaigns for group g
    for (let g = 0; g < groups; g++) yield* engines[g % 3]!.campaign(`g${g}`)
    let leaders = 0
    for (let i = 0; i < 100; i++) {
      yield* Effect.sleep(tickMs)
      const figs = yield* Effect.forEach(engines, (e) => e.allFigures)
      leaders = figs.flat().filter((f) => f.role === "Leader").length
      if (leaders >= groups) break
    }
    yield* Effect.sleep(tickMs * 5)
    const sum = () =>
      Effect.map(Effect.forEach(engines, (e) => e.engineFigures), (fs) => ({
        messages: fs.reduce((a, f) => a + f.messagesSent, 0),
        liveness: fs.reduce((a, f) => a + f.livenessSent, 0),
        quiesced: Math.min(...fs.map((f) => f.quiescedGroups)),
        ticks: fs.reduce((a, f) => a + f.ticks, 0),
        frames: network.framesSent,
        transport: network.messagesSent
      }))
    // with quiescence: wait until every group is quiesced on every node
    for (let i = 0; quiescence && i < 100 && (yield* sum()).quiesced < groups; i++) yield* Effect.sleep(tickMs)
    const startupSeconds = (performance.now() - t0) / 1000
    const before = yield* sum()
    const c0 = cpuMs()
    const w0 = performance.now()
    yield* Effect.sleep(seconds * 1000)
    const cpu = cpuMs() - c0
    const wall = (performance.now() - w0) / 1000
    const after = yield* sum()
    for (const s of scopes) yield* Scope.close(s, Exit.void)
    // heartbeat intervals actually ticked (per node; the tick loop drifts under load)
    const intervals = (after.ticks - before.ticks) / ids.length
    return {
      groups,
      tickMs,
      quiescence,
      leadersElected: leaders,
      quiescedGroups: after.quiesced,
      secondsMeasured: Math.round(wall * 100) / 100,
      ticksPerSecond: Math.round((intervals / wall) * 10) / 10,
      raftMessagesPerHeartbeat: Math.round((after.messages - before.messages) / intervals),
      livenessMessagesPerHeartbeat: Math.round(((after.liveness - before.liveness) / intervals) * 10) / 10,
      transportMessagesPerHeartbeat: Math.round(((after.transport - before.transport) / intervals) * 10) / 10,
      framesPerHeartbeat: Math.round(((after.frames - before.frames) / intervals) * 10) / 10,
      cpuMsPerSecond: Math.round(cpu / wall),
      startupSeconds: Math.round(startupSeconds * 100) / 100
    }
  })

// ---------------------------------------------------------------------------
// 3. proposal cost through RaftEngine

export interface EngineThroughputResult {
  readonly voters: number
  readonly fibers: number
  /** 1: `propose`; more: `proposeBatch` of this many entries. */
  readonly batch: number
  readonly commitsPerSec: number
  readonly entries: number
  readonly seconds: number
  /** Ready cycles and persist calls of the leader during the measurement. */
  readonly cycles: number
  readonly persistCalls: number
  /** CPU milliseconds (user+system, this process) per 1,000 commits. */
  readonly cpuMsPer1kCommits: number
}

export const engineThroughput = (options: {
  readonly voters: 1 | 3
  readonly fibers: number
  readonly batch: number
  readonly seconds: number
  readonly payloadBytes?: number
}): Effect.Effect<EngineThroughputResult, unknown> =>
  Effect.gen(function* () {
    const { voters, fibers, batch, seconds } = options
    const network = yield* MemoryNetwork.make({ seed: 1, trace: false })
    const ids = Array.from({ length: voters }, (_, i) => i + 1)
    const engines: Array<RaftEngine.RaftEngineShape> = []
    const scopes: Array<Scope.CloseableScope> = []
    for (const id of ids) {
      const scope = yield* Scope.make()
      scopes.push(scope)
      const layer = RaftEngine.layer({ nodeId: id, tickMs: 100, electionTicks: 10, heartbeatTicks: 1, seed: id }).pipe(
        Layer.provide(Layer.merge(RaftTransport.layerMemory(network, id), RaftLogStore.layerMemory(new RaftLogStore.MemoryDisk())))
      )
      const ctx = yield* Layer.buildWithScope(layer, scope)
      engines.push(ctx.unsafeMap.get(RaftEngine.RaftEngine.key) as RaftEngine.RaftEngineShape)
    }
    for (const e of engines) yield* e.createGroup("g", { voters: ids, stateMachine: nullSm })
    const leader = engines[0]!
    yield* leader.campaign("g")
    for (let i = 0; i < 200 && (yield* leader.figures("g")).role !== "Leader"; i++) yield* Effect.sleep(10)
    if ((yield* leader.figures("g")).role !== "Leader") return yield* Effect.fail(new Error("bench: node 1 did not become leader"))
    const payloads = Array.from({ length: batch }, (_, i) => {
      const b = new Uint8Array(options.payloadBytes ?? 64)
      b[0] = i & 255
      return b
    })
    const one = payloads[0]!
    let entries = 0
    const step: Effect.Effect<void, unknown> =
      batch === 1
        ? Effect.map(leader.propose("g", one), () => {
            entries++
          })
        : Effect.map(leader.proposeBatch("g", payloads), (rs) => {
            entries += rs.length
          })
    // The loops are bounded by wall time, not by a timer: proposers and the driver wake each
    // other through Effect's scheduler (microtasks), so a timer might not fire while they run.
    const loopUntil = (deadline: number) =>
      Effect.whileLoop({ while: () => performance.now() < deadline, body: () => step, step: () => undefined })
    const runFibers = (ms: number) =>
      Effect.gen(function* () {
        const deadline = performance.now() + ms
        const fs = yield* Effect.forEach(Array.from({ length: fibers }), () => Effect.fork(loopUntil(deadline)))
        for (const f of fs) yield* Fiber.join(f)
      })
    yield* runFibers(Math.min(500, seconds * 300)) // JIT warm-up
    const f0 = yield* leader.engineFigures
    const e0 = entries
    const c0 = cpuMs()
    const t0 = performance.now()
    yield* runFibers(seconds * 1000)
    const secs = (performance.now() - t0) / 1000
    const cpu = cpuMs() - c0
    const f1 = yield* leader.engineFigures
    for (const s of scopes) yield* Scope.close(s, Exit.void)
    const n = entries - e0
    return {
      voters,
      fibers,
      batch,
      commitsPerSec: Math.round(n / secs),
      entries: n,
      seconds: Math.round(secs * 100) / 100,
      cycles: f1.cycles - f0.cycles,
      persistCalls: f1.persistCalls - f0.persistCalls,
      cpuMsPer1kCommits: Math.round((cpu / Math.max(1, n)) * 1000 * 100) / 100
    }
  })

// ---------------------------------------------------------------------------

export interface RaftBenchResult {
  readonly machine: string
  readonly singleGroup: ReadonlyArray<ThroughputResult>
  readonly idleEngine: IdleEngineResult | { readonly error: string }
  readonly idleEngineNoQuiescence: IdleEngineResult | { readonly error: string }
  readonly idleCore: IdleCoreResult
  /** One-voter group, `propose` from 1 and from 64 concurrent fibers. */
  readonly engineSingle?: ReadonlyArray<EngineThroughputResult | { readonly error: string }>
  /** One-voter group, `proposeBatch` (batch 16 and 256). */
  readonly engineBatch?: ReadonlyArray<EngineThroughputResult | { readonly error: string }>
  /** Three voters in one process, 64 fibers calling `propose` on the leader. */
  readonly engineThreeVoters?: ReadonlyArray<EngineThroughputResult | { readonly error: string }>
}

const tryEngine = async (
  options: Parameters<typeof engineThroughput>[0]
): Promise<EngineThroughputResult | { readonly error: string }> => {
  try {
    return await Effect.runPromise(engineThroughput(options))
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) }
  }
}

export type RaftBenchPart = "single" | "engine" | "idle"

export const run = async (options?: {
  readonly quick?: boolean
  readonly seconds?: number
  readonly only?: ReadonlyArray<RaftBenchPart>
}): Promise<Partial<RaftBenchResult> & { readonly machine: string }> => {
  const quick = options?.quick ?? false
  const secs = options?.seconds ?? (quick ? 1 : 3)
  const want = (p: RaftBenchPart): boolean => options?.only === undefined || options.only.includes(p)
  const c = cpus()
  const out: { machine: string } & { -readonly [K in Exclude<keyof RaftBenchResult, "machine">]?: RaftBenchResult[K] } = {
    machine: `${c.length} x ${c[0]?.model ?? "?"}, Node ${process.version}`
  }
  if (want("single")) {
    singleGroup(64, quick ? 0.5 : 1) // JIT warm-up
    out.singleGroup = [1, 16, 256, 1024].map((b) => singleGroup(b, secs / 2))
  }
  if (want("idle")) {
    out.idleCore = idleCores(1000, quick ? 20 : 50)
    const idle = async (quiescence: boolean): Promise<IdleEngineResult | { readonly error: string }> => {
      try {
        return await Effect.runPromise(idleEngines(1000, secs * 2, quiescence))
      } catch (e) {
        return { error: e instanceof Error ? e.message : String(e) }
      }
    }
    out.idleEngine = await idle(true)
    out.idleEngineNoQuiescence = await idle(false)
  }
  if (want("engine")) {
    const s = secs / 2
    out.engineSingle = [
      await tryEngine({ voters: 1, fibers: 1, batch: 1, seconds: s }),
      await tryEngine({ voters: 1, fibers: 64, batch: 1, seconds: s })
    ]
    out.engineBatch = [
      await tryEngine({ voters: 1, fibers: 1, batch: 16, seconds: s }),
      await tryEngine({ voters: 1, fibers: 4, batch: 256, seconds: s })
    ]
    out.engineThreeVoters = [await tryEngine({ voters: 3, fibers: 64, batch: 1, seconds: s })]
  }
  return out
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain) {
  const quick = process.argv.includes("--quick")
  const onlyArg = process.argv.find((_, i) => process.argv[i - 1] === "--only")
  const only = onlyArg === undefined ? undefined : (onlyArg.split(",") as Array<RaftBenchPart>)
  run({ quick, ...(only !== undefined ? { only } : {}) }).then((r) => {
    console.log(`raft bench on ${r.machine}`)
    if (r.singleGroup !== undefined) {
      console.log("1. single group, pure core, 3 voters, MemoryStorage, in-process delivery")
      for (const s of r.singleGroup) {
        console.log(`   batch ${String(s.batch).padStart(4)}: ${s.commitsPerSec.toLocaleString("en-US")} commits/s (${s.entries} entries in ${s.seconds} s)`)
      }
    }
    if (r.idleEngine !== undefined && r.idleEngineNoQuiescence !== undefined) {
      console.log("2a. 1,000 idle groups on 3 RaftEngine nodes (MemoryNetwork, memory disks, real clock)")
      for (const [label, res] of [["quiescence on (default)", r.idleEngine], ["quiescence off", r.idleEngineNoQuiescence]] as const) {
        console.log(`   ${label}:`)
        if ("error" in res) console.log(`     failed: ${res.error}`)
        else {
          const e = res
          console.log(`     leaders elected: ${e.leadersElected}/${e.groups}, quiesced on every node: ${e.quiescedGroups} (startup ${e.startupSeconds} s), measured ${e.secondsMeasured} s`)
          console.log(`     per heartbeat interval (${e.tickMs} ms): ${e.raftMessagesPerHeartbeat} Raft + ${e.livenessMessagesPerHeartbeat} liveness messages (${e.transportMessagesPerHeartbeat} on the transport) in ${e.framesPerHeartbeat} frames`)
          console.log(`     CPU: ${e.cpuMsPerSecond} ms per second of ticking (3 nodes in one process; ${e.ticksPerSecond} ticks/s per node)`)
        }
      }
    }
    if (r.idleCore !== undefined) {
      console.log("2b. 1,000 idle groups, pure core equivalent (3,000 RaftCores ticked in a loop)")
      console.log(`   per heartbeat tick: ${r.idleCore.messagesPerTick} messages, ${r.idleCore.cpuMsPerTick} CPU ms`)
    }
    const engineRows: Array<readonly [string, ReadonlyArray<EngineThroughputResult | { readonly error: string }> | undefined]> = [
      ["engineSingle", r.engineSingle],
      ["engineBatch", r.engineBatch],
      ["engineThreeVoters", r.engineThreeVoters]
    ]
    if (engineRows.some(([, rows]) => rows !== undefined)) {
      console.log("3. RaftEngine proposal cost (real runtime and clock, memory disk without sync delay, 64-byte entries)")
      for (const [label, rows] of engineRows) {
        for (const e of rows ?? []) {
          if ("error" in e) {
            console.log(`   ${label}: failed: ${e.error}`)
            continue
          }
          const api = e.batch === 1 ? "propose" : `proposeBatch(${e.batch})`
          console.log(
            `   ${label}: ${e.voters} voter(s), ${String(e.fibers).padStart(2)} fiber(s) x ${api}: ${e.commitsPerSec.toLocaleString("en-US")} commits/s` +
              ` (${e.entries} in ${e.seconds} s, ${e.cycles} cycles, ${e.persistCalls} persists, ${e.cpuMsPer1kCommits} CPU ms per 1k)`
          )
        }
      }
    }
  })
}
