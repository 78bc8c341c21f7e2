/**
 * Raft over real TCP with real processes and fsync: two benchmarks on three
 * `layers/RaftKvNode.ts` processes (TCP transport, file log store with the
 * storage engine's group-commit fsync, `fsyncPolicy: batch`, live clock) on
 * 127.0.0.1 free ports, data in a temp dir.
 *
 *   npx tsx bench/raft-tcp.ts [--rate 5000] [--rates 1000,2000,5000] [--duration 20] [--warmup 3]
 *                             [--connections 8] [--value-bytes 100] [--elections 40]
 *                             [--election-timeout-ms 1000] [--heartbeat-ms 100] [--max-batch 1000]
 *                             [--timeout SECONDS]
 *
 * 1. Commit latency under an open-loop load. The bench process itself is the
 *    load generator: `--connections` persistent, pipelined client connections
 *    to the leader; request i is due at t0 + i/rate (1 ms scheduling tick; the
 *    requests due in a tick are written round-robin, one write per connection).
 *    Latency = reply time - *scheduled* time, so a generator or server stall
 *    counts against the latency (no coordinated omission); `sendLag` is how
 *    late the generator actually wrote. Each rate runs `--warmup` s (not
 *    recorded) then `--duration` s (recorded: requests scheduled in that
 *    window); then the outstanding replies are drained (10 s max; the rest
 *    count as `noReply`). Rates: `--rates`, default 1000, 2000 and `--rate`
 *    in ascending order, on one cluster. A rate counts as `sustained` when
 *    the cluster keeps up with it: every recorded request was acknowledged
 *    without error, the acknowledgement rate inside the window was >= 97 % of
 *    the offered rate, and latency did not grow over the window (p50 of the
 *    last quarter of the requests <= 2 x p50 of the first quarter + 100 ms:
 *    no growing queue). Latency percentiles are reported separately.
 *    RaftKvNode proposes the puts of one event-loop turn as one Raft entry
 *    (`--max-batch`, passed to the nodes; 1 = one entry per put).
 * 2. Election time after kill -9 of the leader, `--elections` runs on a fresh
 *    cluster: wait until all three nodes agree on leader, term and
 *    commit = applied; sleep 200-400 ms (random kill phase against the
 *    heartbeat); SIGKILL the leader; every 10 ms poll both survivors' status
 *    and send each a put over a fresh connection. `electedMs`: first status
 *    showing a new leader; `servingMs`: first acknowledged put (the figure
 *    asked for: elected and serving). Election rounds = new term - old term
 *    (PreVote is on, so the term moves only on real vote rounds). Then restart
 *    the killed node and wait for convergence again.
 *
 * Prints progress on stderr and one JSON line on stdout. Every child process
 * is SIGKILLed and the temp dir removed on exit, failure, SIGINT/SIGTERM or
 * the global `--timeout` (seconds; default 120 + rates x (warmup + duration
 * + 20) + 40 x elections). If this process itself is SIGKILLed, the nodes
 * exit within 0.5 s (CHRONIK_EXIT_WITH_PARENT) but the temp dir
 * (chronik-raft-tcp-* in the OS temp dir) stays.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { ProcessCluster, request, sleep, type Status } from "../test/raft-tcp/cluster.js"

// ------------------------------------------------------------------ options

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  if (i < 0) return undefined
  const v = argv[i + 1]
  if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`)
  return v
}
const num = (name: string, d: number): number => {
  const s = flag(name)
  if (s === undefined) return d
  const n = Number(s)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: not a non-negative number: ${s}`)
  return n
}

const RATE = num("rate", 5000)
const RATES: Array<number> = (() => {
  const s = flag("rates")
  const list = s !== undefined ? s.split(",").filter((x) => x.trim() !== "").map(Number) : [1000, 2000, RATE]
  if (list.some((r) => !Number.isFinite(r) || r <= 0)) throw new Error(`--rates: bad list ${s}`)
  return [...new Set(list)].sort((a, b) => a - b)
})()
const DURATION_S = num("duration", 20)
const WARMUP_S = num("warmup", 3)
const CONNECTIONS = Math.max(1, Math.round(num("connections", 8)))
const VALUE_BYTES = Math.round(num("value-bytes", 100))
const ELECTIONS = Math.round(num("elections", 40))
const ELECTION_TIMEOUT_MS = num("election-timeout-ms", 1000) // RaftKvNode's default
const HEARTBEAT_MS = num("heartbeat-ms", 100) // RaftKvNode's default
/** Puts per Raft entry in RaftKvNode (its --max-batch, passed through CHRONIK_RAFTKV_MAX_BATCH; 1 = no batching). */
const MAX_BATCH = Math.max(1, Math.round(num("max-batch", 1000)))
process.env.CHRONIK_RAFTKV_MAX_BATCH = String(MAX_BATCH)
// The nodes exit if this process dies without cleaning up (SIGKILL by a runner's timeout).
process.env.CHRONIK_EXIT_WITH_PARENT = "1"
const PROBE_MS = 10
const DRAIN_MS = 10_000
const GLOBAL_TIMEOUT_S =
  flag("timeout") !== undefined
    ? num("timeout", 0)
    : 120 + RATES.length * (WARMUP_S + DURATION_S + 20) + ELECTIONS * 40

const log = (s: string) => process.stderr.write(`[raft-tcp ${new Date().toISOString().slice(11, 19)}] ${s}\n`)
const loadavg = (): Array<number> => {
  try {
    return fs.readFileSync("/proc/loadavg", "utf8").trim().split(/\s+/).slice(0, 3).map(Number)
  } catch {
    return os.loadavg().map((x) => Math.round(x * 100) / 100)
  }
}
const r1 = (x: number) => Math.round(x * 10) / 10
const r2 = (x: number) => Math.round(x * 100) / 100

/** Nearest-rank percentile of a sorted array. */
const pct = (sorted: ArrayLike<number>, p: number): number | null => {
  if (sorted.length === 0) return null
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

const withTimeout = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
    p.then(
      (a) => {
        clearTimeout(t)
        resolve(a)
      },
      (e: unknown) => {
        clearTimeout(t)
        reject(e instanceof Error ? e : new Error(String(e)))
      }
    )
  })

// ------------------------------------------------------------------ cleanup

const clusters = new Set<ProcessCluster>()
const sockets = new Set<net.Socket>()

/** Synchronous: usable from 'exit' and signal handlers. */
const cleanupSync = () => {
  for (const s of sockets) s.destroy()
  sockets.clear()
  for (const c of clusters) {
    for (const n of c.nodes.values()) {
      try {
        n.proc?.kill("SIGKILL")
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(c.tmp, { recursive: true, force: true })
  }
  clusters.clear()
}

const closeCluster = async (c: ProcessCluster) => {
  clusters.delete(c)
  await withTimeout(c.close(), 10_000, "cluster close").catch(() => {
    for (const n of c.nodes.values()) n.proc?.kill("SIGKILL")
    fs.rmSync(c.tmp, { recursive: true, force: true })
  })
}

process.on("exit", cleanupSync)
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    log(`${sig}: killing nodes, removing temp dirs`)
    cleanupSync()
    process.exit(130)
  })
}

// ------------------------------------------------------------------ cluster helpers

const newCluster = async (): Promise<ProcessCluster> => {
  const c = await ProcessCluster.make({ size: 3, electionTimeoutMs: ELECTION_TIMEOUT_MS, heartbeatMs: HEARTBEAT_MS })
  clusters.add(c)
  await withTimeout(
    Promise.all([1, 2, 3].map((id) => c.start(id, 60_000))),
    90_000,
    "start 3 nodes"
  )
  return c
}

const statuses = async (c: ProcessCluster): Promise<Array<Status>> => {
  const ids = [...c.nodes.keys()].filter((id) => c.isUp(id))
  const all = await Promise.all(ids.map((id) => c.status(id)))
  return all.filter((s): s is Status => s !== undefined)
}

/** All three up, agreeing on one leader and term, same commit index, everything applied. */
const awaitStable = async (c: ProcessCluster, withinMs: number): Promise<Status> => {
  const deadline = Date.now() + withinMs
  let ss: Array<Status> = []
  for (;;) {
    ss = await statuses(c)
    const l = ss.find((s) => s.role === "Leader")
    if (
      l !== undefined &&
      ss.length === c.nodes.size &&
      ss.every((s) => s.leader === l.id && s.term === l.term && s.commitIndex === l.commitIndex) &&
      ss.every((s) => s.appliedIndex === s.commitIndex)
    )
      return l
    if (Date.now() > deadline) throw new Error(`cluster not stable within ${withinMs} ms: ${JSON.stringify(ss)}`)
    await sleep(50)
  }
}

/** Machine-wide busy CPU seconds (all cores) from /proc/stat. */
const machineBusySeconds = (): number | undefined => {
  try {
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal ...
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)) / 100
  } catch {
    return undefined
  }
}

/** 1-minute load average sampled every second while a phase runs: min / mean / max. */
const loadSampler = () => {
  const xs: Array<number> = []
  const sample = () => {
    const l = loadavg()[0]
    if (l !== undefined) xs.push(l)
  }
  sample()
  const t = setInterval(sample, 1000)
  t.unref()
  return () => {
    clearInterval(t)
    sample()
    return { min: Math.min(...xs), mean: r2(xs.reduce((a, b) => a + b, 0) / xs.length), max: Math.max(...xs), samples: xs.length }
  }
}

/** CPU seconds (user + system) of a process, from /proc. */
const cpuSeconds = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(f[11]) + Number(f[12])) / 100 // utime, stime at fields 14, 15 (clock ticks, 100/s)
  } catch {
    return undefined
  }
}
const selfCpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** fdatasync latency of the temp dir's disk (context for the commit latency): 200 x (4 KiB write + fdatasync). */
const fsyncProbe = (dir: string): { p50Ms: number | null; p99Ms: number | null; fsType: string } => {
  const file = path.join(dir, "fsync-probe")
  const fd = fs.openSync(file, "w")
  const buf = Buffer.alloc(4096, 7)
  const lat: Array<number> = []
  try {
    for (let i = 0; i < 200; i++) {
      fs.writeSync(fd, buf)
      const t = performance.now()
      fs.fdatasyncSync(fd)
      lat.push(performance.now() - t)
    }
  } finally {
    fs.closeSync(fd)
    fs.rmSync(file, { force: true })
  }
  lat.sort((a, b) => a - b)
  const magic = fs.statfsSync(dir).type
  const fsType = magic === 0xef53 ? "ext4" : magic === 0x01021994 ? "tmpfs" : magic === 0x58465342 ? "xfs" : `0x${magic.toString(16)}`
  return { p50Ms: r2(pct(lat, 50)!), p99Ms: r2(pct(lat, 99)!), fsType }
}

// ------------------------------------------------------------------ 1. open-loop load

interface LoadResult {
  readonly targetRate: number
  readonly durationS: number
  readonly connections: number
  readonly leader: number
  readonly sent: number
  readonly offeredRate: number
  readonly acked: number
  readonly achievedRate: number
  readonly ackRateInWindow: number
  readonly errors: number
  readonly errorsByTag: Record<string, number>
  readonly noReply: number
  readonly latencyMs: { p50: number | null; p90: number | null; p99: number | null; p999: number | null; max: number | null }
  readonly serviceLatencyMs: { p50: number | null; p99: number | null; p999: number | null }
  readonly sendLagMs: { p99: number | null; max: number | null }
  /** p50 of the first and of the last quarter of the recorded requests (in send order): a growing queue shows here. */
  readonly latencyTrendP50Ms: { firstQuarter: number | null; lastQuarter: number | null }
  readonly outstandingAtWindowEnd: number
  readonly maxOutstanding: number
  readonly sustained: boolean
  /** Per process, % of one core; `othersOnMachine`: busy % of all cores (200 = both) not used by the bench's processes. */
  readonly cpuPercent: Record<string, number | undefined>
  /** Raft entries proposed by the leader during the run, puts per entry, engine Ready cycles and persist calls per second. */
  readonly leaderEngine: { entries: number; putsPerEntry: number; cyclesPerS: number; persistCallsPerS: number } | undefined
  readonly loadavg1m: { min: number; mean: number; max: number; samples: number }
  readonly loadavgAfter: Array<number>
}

interface Pending {
  readonly seq: number
  readonly scheduled: number
  readonly sent: number
}

const runLoad = async (c: ProcessCluster, rate: number): Promise<LoadResult> => {
  const leader = await awaitStable(c, 30_000)
  const port = c.node(leader.id).clientPort
  const value = "x".repeat(VALUE_BYTES)

  const warmupMs = WARMUP_S * 1000
  const windowMs = DURATION_S * 1000
  const totalMs = warmupMs + windowMs
  const total = Math.floor((totalMs * rate) / 1000)
  const firstRecorded = Math.ceil((warmupMs * rate) / 1000)
  const capacity = total - firstRecorded + 16
  const lat = new Float64Array(capacity)
  const svc = new Float64Array(capacity)
  const lag = new Float64Array(capacity)
  const bySeq = new Float64Array(capacity).fill(NaN) // latency by send order, for the trend
  let nLat = 0
  let nLag = 0
  let acked = 0
  let ackedInWindow = 0
  let errors = 0
  const errorsByTag: Record<string, number> = {}
  let outstanding = 0
  let maxOutstanding = 0
  let recordedReplies = 0
  let t0 = 0

  // Connections, each a FIFO of pending requests (replies come back in request order).
  const conns = await Promise.all(
    Array.from(
      { length: CONNECTIONS },
      () =>
        new Promise<{ socket: net.Socket; fifo: Array<Pending>; head: number }>((resolve, reject) => {
          const socket = net.connect(port, "127.0.0.1")
          sockets.add(socket)
          socket.setNoDelay(true)
          const conn = { socket, fifo: [] as Array<Pending>, head: 0 }
          let buf = ""
          socket.once("connect", () => resolve(conn))
          socket.on("error", (e) => reject(e))
          socket.on("close", () => sockets.delete(socket))
          socket.on("data", (d: Buffer) => {
            buf += d.toString("utf8")
            let nl: number
            let start = 0
            const now = performance.now()
            while ((nl = buf.indexOf("\n", start)) >= 0) {
              const line = buf.slice(start, nl)
              start = nl + 1
              const p = conn.fifo[conn.head++]
              if (p === undefined) continue
              outstanding--
              const ok = line.startsWith('{"ok":true')
              const recorded = p.seq >= firstRecorded
              if (ok && now - t0 >= warmupMs && now - t0 < totalMs) ackedInWindow++
              if (!recorded) continue
              recordedReplies++
              if (ok) {
                acked++
                lat[nLat] = now - p.scheduled
                bySeq[p.seq - firstRecorded] = now - p.scheduled
                svc[nLat] = now - p.sent
                nLat++
              } else {
                errors++
                let tag = "Unparsable"
                try {
                  tag = String((JSON.parse(line) as { error?: unknown }).error)
                } catch {
                  /* keep Unparsable */
                }
                errorsByTag[tag] = (errorsByTag[tag] ?? 0) + 1
              }
            }
            buf = buf.slice(start)
            if (conn.head > 4096 && conn.head * 2 > conn.fifo.length) {
              conn.fifo = conn.fifo.slice(conn.head)
              conn.head = 0
            }
          })
        })
    )
  )
  type Figs = { proposals?: number; cycles?: number; persistCalls?: number }
  const figsBefore = (await c.status(leader.id)) as (Status & Figs) | undefined
  const cpuBefore = new Map([...c.nodes.values()].map((n) => [n.id, cpuSeconds(n.proc?.pid)]))
  const selfBefore = selfCpu()
  const machineBefore = machineBusySeconds()
  const stopSampler = loadSampler()

  let sent = 0
  let rr = 0
  const perConn: Array<string> = conns.map(() => "")
  const outstandingAtWindowEnd = await new Promise<number>((resolve) => {
    t0 = performance.now()
    const tick = () => {
      const now = performance.now()
      const elapsed = now - t0
      const due = Math.min(total, Math.floor((elapsed * rate) / 1000))
      while (sent < due) {
        const seq = sent++
        const scheduled = t0 + (seq * 1000) / rate
        const ci = rr++ % conns.length
        conns[ci]!.fifo.push({ seq, scheduled, sent: now })
        perConn[ci] += `{"op":"put","key":"k${seq % 1000}","value":"${value}"}\n`
        outstanding++
        if (seq >= firstRecorded) lag[nLag++] = now - scheduled
      }
      if (outstanding > maxOutstanding) maxOutstanding = outstanding
      for (let i = 0; i < conns.length; i++) {
        if (perConn[i] !== "") {
          conns[i]!.socket.write(perConn[i]!)
          perConn[i] = ""
        }
      }
      if (sent >= total) {
        clearInterval(timer)
        resolve(outstanding)
      }
    }
    const timer = setInterval(tick, 1)
  })

  // Drain the outstanding replies.
  const drainDeadline = performance.now() + DRAIN_MS
  while (outstanding > 0 && performance.now() < drainDeadline) await sleep(20)
  const elapsedS = (performance.now() - t0) / 1000
  const cpu: Record<string, number | undefined> = {}
  let ours = 0
  for (const n of c.nodes.values()) {
    const a = cpuBefore.get(n.id)
    const b = cpuSeconds(n.proc?.pid)
    const used = a !== undefined && b !== undefined ? b - a : undefined
    ours += used ?? 0
    cpu[`node${n.id}${n.id === leader.id ? "(leader)" : ""}`] = used === undefined ? undefined : Math.round((used / elapsedS) * 100)
  }
  const selfUsed = selfCpu() - selfBefore
  ours += selfUsed
  cpu["loadgen"] = Math.round((selfUsed / elapsedS) * 100)
  const machineAfter = machineBusySeconds()
  cpu["othersOnMachine"] =
    machineBefore !== undefined && machineAfter !== undefined
      ? Math.max(0, Math.round(((machineAfter - machineBefore - ours) / elapsedS) * 100))
      : undefined
  const loadavg1m = stopSampler()
  const figsAfter = (await c.status(leader.id)) as (Status & Figs) | undefined
  const leaderEngine =
    figsBefore?.proposals !== undefined && figsAfter?.proposals !== undefined
      ? {
          entries: figsAfter.proposals - figsBefore.proposals,
          putsPerEntry: r2(total / Math.max(1, figsAfter.proposals - figsBefore.proposals)),
          cyclesPerS: Math.round((figsAfter.cycles! - figsBefore.cycles!) / elapsedS),
          persistCallsPerS: Math.round((figsAfter.persistCalls! - figsBefore.persistCalls!) / elapsedS)
        }
      : undefined
  for (const cn of conns) {
    cn.socket.destroy()
    sockets.delete(cn.socket)
  }

  const recordedSent = total - firstRecorded
  const noReply = recordedSent - recordedReplies
  const l = lat.subarray(0, nLat).sort()
  const s = svc.subarray(0, nLat).sort()
  const g = lag.subarray(0, nLag).sort()
  const p99 = pct(l, 99)
  const recordedSentN = total - firstRecorded
  const quarter = (from: number, to: number) =>
    Array.from(bySeq.subarray(Math.floor(from * recordedSentN), Math.floor(to * recordedSentN)))
      .filter((x) => !Number.isNaN(x))
      .sort((a, b) => a - b)
  const q1 = pct(quarter(0, 0.25), 50)
  const q4 = pct(quarter(0.75, 1), 50)
  const ackRateInWindow = ackedInWindow / DURATION_S
  const sustained =
    noReply === 0 &&
    errors === 0 &&
    ackRateInWindow >= 0.97 * rate &&
    q1 !== null &&
    q4 !== null &&
    q4 <= 2 * q1 + 100
  return {
    targetRate: rate,
    durationS: DURATION_S,
    connections: CONNECTIONS,
    leader: leader.id,
    sent: recordedSent,
    offeredRate: Math.round(recordedSent / DURATION_S),
    acked,
    achievedRate: Math.round(acked / DURATION_S),
    ackRateInWindow: Math.round(ackRateInWindow),
    errors,
    errorsByTag,
    noReply,
    latencyMs: {
      p50: r2(pct(l, 50) ?? NaN),
      p90: r2(pct(l, 90) ?? NaN),
      p99: r2(p99 ?? NaN),
      p999: r2(pct(l, 99.9) ?? NaN),
      max: r2(pct(l, 100) ?? NaN)
    },
    serviceLatencyMs: { p50: r2(pct(s, 50) ?? NaN), p99: r2(pct(s, 99) ?? NaN), p999: r2(pct(s, 99.9) ?? NaN) },
    sendLagMs: { p99: r2(pct(g, 99) ?? NaN), max: r2(pct(g, 100) ?? NaN) },
    latencyTrendP50Ms: { firstQuarter: q1 === null ? null : r2(q1), lastQuarter: q4 === null ? null : r2(q4) },
    outstandingAtWindowEnd,
    maxOutstanding,
    sustained,
    cpuPercent: cpu,
    leaderEngine,
    loadavg1m,
    loadavgAfter: loadavg()
  }
}

// ------------------------------------------------------------------ 2. elections

interface ElectionRun {
  readonly run: number
  readonly victim: number
  readonly oldTerm: number
  readonly newLeader: number | null
  readonly newTerm: number | null
  readonly rounds: number | null
  readonly electedMs: number | null
  readonly servingMs: number | null
  readonly restartMs: number | null
  readonly convergeMs: number | null
  readonly error?: string
}

const electionRun = async (c: ProcessCluster, run: number): Promise<ElectionRun> => {
  await awaitStable(c, 30_000)
  await sleep(200 + Math.random() * 200)
  const victim = await awaitStable(c, 10_000) // the leader now (normally the same)
  const survivors = [...c.nodes.keys()].filter((id) => id !== victim.id)

  const tKill = performance.now()
  const killed = c.kill(victim.id, "SIGKILL")
  let electedMs: number | null = null
  let servingMs: number | null = null
  let newLeader: number | null = null
  let newTerm: number | null = null
  let servedBy: number | null = null
  let probe = 0
  const inflight = new Set<Promise<void>>()
  const track = (p: Promise<void>) => {
    inflight.add(p)
    void p.finally(() => inflight.delete(p))
  }
  const deadline = tKill + 20 * ELECTION_TIMEOUT_MS
  while (servingMs === null && performance.now() < deadline) {
    for (const id of survivors) {
      const port = c.node(id).clientPort
      if (electedMs === null) {
        track(
          request(port, { op: "status" }, 2000).then(
            (r) => {
              const s = r.result as Status | undefined
              if (r.ok && s !== undefined && s.role === "Leader" && s.term > victim.term && electedMs === null) {
                electedMs = performance.now() - tKill
                newLeader = s.id
                newTerm = s.term
              }
            },
            () => undefined
          )
        )
      }
      const key = `election-${run}-${probe++}`
      track(
        request(port, { op: "put", key, value: "v" }, 5000).then(
          (r) => {
            if (r.ok && servingMs === null) {
              servingMs = performance.now() - tKill
              servedBy = id
            }
          },
          () => undefined
        )
      )
    }
    await sleep(PROBE_MS)
  }
  await Promise.allSettled([...inflight])
  await withTimeout(killed, 5000, `kill node ${victim.id}`)
  const base = {
    run,
    victim: victim.id,
    oldTerm: victim.term,
    electedMs: electedMs === null ? null : r1(electedMs),
    servingMs: servingMs === null ? null : r1(servingMs)
  }
  if (servingMs === null) {
    return { ...base, newLeader, newTerm, rounds: null, restartMs: null, convergeMs: null, error: "no write acknowledged" }
  }
  if (newTerm === null && servedBy !== null) {
    const s = await c.status(servedBy)
    if (s !== undefined) {
      newLeader = s.id
      newTerm = s.term
    }
  }
  const tr = performance.now()
  await withTimeout(c.start(victim.id, 60_000), 65_000, `restart node ${victim.id}`)
  const restartMs = performance.now() - tr
  const tc = performance.now()
  await awaitStable(c, 30_000)
  const convergeMs = performance.now() - tc
  return {
    ...base,
    newLeader,
    newTerm,
    rounds: newTerm === null ? null : newTerm - victim.term,
    restartMs: Math.round(restartMs),
    convergeMs: Math.round(convergeMs)
  }
}

// ------------------------------------------------------------------ main

const main = async () => {
  const startedAt = new Date().toISOString()
  const loadavgStart = loadavg()
  log(
    `rates ${RATES.join(",")}/s x ${DURATION_S} s (+${WARMUP_S} s warm-up), ${CONNECTIONS} connections, ` +
      `${ELECTIONS} elections, election timeout ${ELECTION_TIMEOUT_MS} ms, heartbeat ${HEARTBEAT_MS} ms; loadavg ${loadavgStart.join(" ")}`
  )
  const result: Record<string, unknown> = {
    bench: "raft-tcp",
    ok: false,
    startedAt,
    command: `npx tsx bench/raft-tcp.ts ${argv.join(" ")}`.trim(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? "?",
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`
    },
    setup: {
      nodes: 3,
      transport: "TCP 127.0.0.1",
      logStore: "file (storage engine segmented log), fsyncPolicy batch (group commit: persist returns after fdatasync)",
      electionTimeoutMs: ELECTION_TIMEOUT_MS,
      heartbeatMs: HEARTBEAT_MS,
      electionTicks: Math.max(2, Math.round(ELECTION_TIMEOUT_MS / HEARTBEAT_MS)),
      randomizedElectionTimeoutMs: [ELECTION_TIMEOUT_MS, 2 * ELECTION_TIMEOUT_MS],
      preVote: true,
      valueBytes: VALUE_BYTES,
      nodeMaxBatch: MAX_BATCH
    },
    loadavgStart
  }
  const emit = () => process.stdout.write(JSON.stringify(result) + "\n")
  const globalTimer = setTimeout(() => {
    log(`global timeout ${GLOBAL_TIMEOUT_S} s: aborting`)
    result.error = `global timeout after ${GLOBAL_TIMEOUT_S} s`
    emit()
    cleanupSync()
    process.exit(1)
  }, GLOBAL_TIMEOUT_S * 1000)
  globalTimer.unref()

  try {
    // ---- 1. load
    if (RATES.length > 0 && DURATION_S > 0) {
      const c = await newCluster()
      result.fsync = fsyncProbe(c.tmp)
      log(`fdatasync probe (4 KiB writes, ${c.tmp}): ${JSON.stringify(result.fsync)}`)
      const loads: Array<LoadResult> = []
      result.load = loads
      for (const rate of RATES) {
        log(`load ${rate}/s ...`)
        const r = await withTimeout(runLoad(c, rate), (WARMUP_S + DURATION_S) * 1000 + DRAIN_MS + 60_000, `load ${rate}/s`)
        loads.push(r)
        log(
          `load ${rate}/s: achieved ${r.achievedRate}/s (in window ${r.ackRateInWindow}/s), p50 ${r.latencyMs.p50} ` +
            `p99 ${r.latencyMs.p99} p999 ${r.latencyMs.p999} max ${r.latencyMs.max} ms, errors ${r.errors} ` +
            `${JSON.stringify(r.errorsByTag)}, noReply ${r.noReply}, sustained ${r.sustained}, cpu ${JSON.stringify(r.cpuPercent)}, ` +
            `engine ${JSON.stringify(r.leaderEngine)}, loadavg 1m ${JSON.stringify(r.loadavg1m)}`
        )
        await sleep(2000)
      }
      const sustainedRates = loads.filter((l) => l.sustained).map((l) => l.targetRate)
      result.maxSustainedRate = sustainedRates.length > 0 ? Math.max(...sustainedRates) : null
      result.loadavgAfterLoad = loadavg()
      await closeCluster(c)
    }

    // ---- 2. elections
    if (ELECTIONS > 0) {
      const c = await newCluster()
      const first = await awaitStable(c, 30_000)
      log(`election cluster ready, leader node ${first.id} term ${first.term}`)
      const runs: Array<ElectionRun> = []
      const stopSampler = loadSampler()
      for (let i = 1; i <= ELECTIONS; i++) {
        const r = await withTimeout(electionRun(c, i), 150_000, `election run ${i}`)
        runs.push(r)
        log(
          `election ${i}/${ELECTIONS}: killed node ${r.victim} (term ${r.oldTerm}) -> node ${r.newLeader} term ${r.newTerm}, ` +
            `${r.rounds} round(s), elected ${r.electedMs} ms, serving ${r.servingMs} ms, restart ${r.restartMs} ms, ` +
            `converged ${r.convergeMs} ms${r.error ? ` ERROR ${r.error}` : ""}`
        )
        if (r.error !== undefined) break
      }
      const serving = runs.flatMap((r) => (r.servingMs === null ? [] : [r.servingMs])).sort((a, b) => a - b)
      const elected = runs.flatMap((r) => (r.electedMs === null ? [] : [r.electedMs])).sort((a, b) => a - b)
      result.elections = {
        runs: runs.length,
        failed: runs.filter((r) => r.error !== undefined).length,
        servingMs: { p50: pct(serving, 50), p99: pct(serving, 99), max: pct(serving, 100), min: pct(serving, 0) },
        electedMs: { p50: pct(elected, 50), p99: pct(elected, 99), max: pct(elected, 100), min: pct(elected, 0) },
        multiRoundRuns: runs.filter((r) => r.rounds !== null && r.rounds > 1).length,
        roundsHistogram: runs.reduce<Record<string, number>>((h, r) => {
          const k = String(r.rounds)
          h[k] = (h[k] ?? 0) + 1
          return h
        }, {}),
        probeIntervalMs: PROBE_MS,
        loadavg1m: stopSampler(),
        detail: runs
      }
      result.loadavgAfterElections = loadavg()
      await closeCluster(c)
    }
    result.ok = true
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e)
    log(`FAILED: ${String(result.error)}`)
  } finally {
    result.loadavgEnd = loadavg()
    result.finishedAt = new Date().toISOString()
    clearTimeout(globalTimer)
    for (const c of [...clusters]) await closeCluster(c)
  }
  emit()
  process.exitCode = result.ok ? 0 : 1
}

void main().catch((e: unknown) => {
  log(`crash: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
  cleanupSync()
  process.exit(1)
})
