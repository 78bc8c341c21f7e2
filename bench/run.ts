/**
 * Benchmark runner: `npm run bench` (= `tsx bench/run.ts`).
 *
 *   npm run bench                              # micro + Apache Kafka + Chronik side by side
 *   npm run bench -- --quick                   # short runs (about 4 s each)
 *   npm run bench -- --only micro|kafka|chronik|side-by-side|raft-tcp
 *   npm run bench -- --client kafkajs          # load client (default @platformatic/kafka)
 *   npm run bench -- --duration 12             # seconds per load run
 *   npm run bench -- --repeat 3                # each produce row 3 times, the median run in the table
 *   npm run bench -- --render-only             # regenerate docs/PERFORMANCE.md from the last results
 *
 * 1. micro: every bench/<name>.ts among codec-records, codec-protocol, raft, transport, storage,
 *    fsync-patterns that exports `run()`, each in its own process (bench/micro-child.ts) with a
 *    timeout and libuv's pool at 16 threads, as the chronik-server launcher sets it.
 * 2. per broker (reference Apache Kafka from scripts/kafka-reference, then Chronik built
 *    into dist/ and started as `npm start` runs it, via test/support/broker.ts), both with
 *    8 partitions for auto-created topics:
 *    - bench/loadgen/producer.ts, 1 KiB values, acks=1 and acks=all, 1 and 8 partitions;
 *    - the same acks=1/1 partition load with the other Node client (kafkajs);
 *    - bench/loadgen/consumer.ts: a Fetch loop without a group over the 8-partition
 *      topic, then a consumer group (@platformatic/kafka) over the 1-partition topic;
 *    - Kafka's own org.apache.kafka.tools.ProducerPerformance (acks=1, acks=all) and
 *      ConsumerPerformance, from .tmp/kafka-ref/libs;
 *    - Chronik only, then: the acks=all runs again with Chronik restarted with
 *      `--wal-fsync never`, Kafka's default durability (the Kafka rows of these
 *      "no fsync" scenarios are its default acks=all runs).
 *    Chronik runs with CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS=0, as the reference
 *    Kafka runs with group.initial.rebalance.delay.ms=0.
 *    Each run writes to a topic of its own, deleted once no later step reads it (a
 *    consume step runs right after the produce row it reads; see `dropTopics`).
 *    Every step has a timeout; a failing step is recorded with its error and the run
 *    goes on.
 * 3. results are merged into bench/results.json (committed, so that `--only chronik`
 *    keeps the last Kafka figures and `--only side-by-side` the micro-benchmarks, on any
 *    checkout) and docs/PERFORMANCE.md is regenerated from them.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Admin } from "@platformatic/kafka"
import { freePort, startBroker } from "../test/support/broker.js"

const repoRoot = resolve(import.meta.dirname, "..")
const argv = process.argv.slice(2)
/** This invocation, recorded with each section it measures. */
const command = `npm run bench${argv.length > 0 ? " -- " + argv.join(" ") : ""}`
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  if (i < 0) return undefined
  const v = argv[i + 1]
  return v === undefined || v.startsWith("--") ? "true" : v
}
const quick = flag("quick") !== undefined
const only = flag("only")
const client = flag("client") ?? "platformatic"
const D = Number(flag("duration") ?? (quick ? 4 : 12))
/** --repeat N: each produce row runs N times on the same broker; the table shows the median run (see `repeated`). */
const REPEAT = Math.max(1, Math.floor(Number(flag("repeat") ?? 1)) || 1)
if (only !== undefined && !["micro", "kafka", "chronik", "side-by-side", "raft-tcp"].includes(only)) {
  console.error(`--only must be micro, kafka, chronik, side-by-side or raft-tcp (got ${only})`)
  process.exit(2)
}
// --render-only: rewrite docs/PERFORMANCE.md from bench/results.json, measuring nothing.
const renderOnly = flag("render-only") !== undefined
const doMicro = !renderOnly && (only === undefined || only === "micro")
/** Raft over TCP (3 RaftKvNode processes): commit latency at fixed rates and election time; see docs/PERFORMANCE.md. */
const doRaftTcp = !renderOnly && (only === undefined || only === "raft-tcp")
const doKafka = !renderOnly && (only === undefined || only === "kafka" || only === "side-by-side")
const doChronik = !renderOnly && (only === undefined || only === "chronik" || only === "side-by-side")

const log = (s: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`)

// ------------------------------------------------------------------ processes

interface Proc {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
  readonly seconds: number
}

/** Load generators and tools running now: killed on SIGINT/SIGTERM. */
const children = new Set<ChildProcess>()
let interrupted = false

const exec = (cmd: string, args: ReadonlyArray<string>, timeoutMs: number, env: Record<string, string> = {}): Promise<Proc> =>
  new Promise((res) => {
    const t0 = Date.now()
    if (interrupted && !args.some((a) => a.endsWith("kafka-reference/stop.sh"))) {
      res({ code: -1, stdout: "", stderr: "interrupted", timedOut: false, seconds: 0 })
      return
    }
    const p = spawn(cmd, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    children.add(p)
    p.once("exit", () => children.delete(p))
    let stdout = ""
    let stderr = ""
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      p.kill("SIGKILL")
    }, timeoutMs)
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    p.once("error", (e) => {
      clearTimeout(timer)
      res({ code: -1, stdout, stderr: stderr + String(e), timedOut, seconds: (Date.now() - t0) / 1000 })
    })
    p.once("close", (code) => {
      clearTimeout(timer)
      res({ code, stdout, stderr, timedOut, seconds: (Date.now() - t0) / 1000 })
    })
  })

const lastJson = (p: Proc): Record<string, unknown> | undefined => {
  const lines = p.stdout.trim().split("\n").reverse()
  for (const l of lines) {
    if (!l.startsWith("{")) continue
    try {
      return JSON.parse(l) as Record<string, unknown>
    } catch {
      /* not JSON */
    }
  }
  return undefined
}

const tail = (s: string, n = 400) => s.trim().slice(-n).replace(/\s+/g, " ")

const tsx = (script: string, args: ReadonlyArray<string>, timeoutMs: number, env: Record<string, string> = {}) =>
  exec(process.execPath, ["--import", "tsx", join(repoRoot, script), ...args], timeoutMs, env)

// ------------------------------------------------------------------ results

type Result = Record<string, unknown> & { ok: boolean; error?: string }

interface BrokerResults {
  readonly broker: "kafka" | "chronik"
  readonly date: string
  /** The `npm run bench` command line that measured these figures. */
  readonly command?: string
  readonly durationSeconds: number
  readonly client: string
  readonly loadavgBefore: ReadonlyArray<number>
  readonly loadavgAfter?: ReadonlyArray<number>
  readonly startError?: string
  readonly steps: Record<string, Result>
}

interface AllResults {
  machine?: Record<string, string>
  micro?: { date: string; command?: string; modules: Record<string, Result> }
  raftTcp?: { date: string; command?: string; result: Result }
  kafka?: BrokerResults
  chronik?: BrokerResults
}

const resultsPath = join(repoRoot, "bench/results.json")
const loadResults = (): AllResults => {
  try {
    return JSON.parse(readFileSync(resultsPath, "utf8")) as AllResults
  } catch {
    return {}
  }
}

// ------------------------------------------------------------------ micro

const runMicro = async (): Promise<NonNullable<AllResults["micro"]>> => {
  const modules: Record<string, Result> = {}
  for (const name of ["codec-records", "codec-protocol", "raft", "transport", "storage", "fsync-patterns"]) {
    const file = join(repoRoot, "bench", `${name}.ts`)
    if (!existsSync(file)) {
      modules[name] = { ok: false, skipped: true, error: `bench/${name}.ts not present` }
      continue
    }
    log(`micro: ${name}`)
    // the thread pool the chronik-server launcher gives the broker (layers/launch.cts)
    const env = process.env["UV_THREADPOOL_SIZE"] === undefined ? { UV_THREADPOOL_SIZE: "16" } : {}
    const p = await tsx("bench/micro-child.ts", [`${name}.ts`, ...(quick ? ["--quick"] : [])], quick ? 90_000 : 240_000, env)
    const j = lastJson(p)
    modules[name] = j === undefined ? { ok: false, error: p.timedOut ? "timed out" : `exit ${p.code}: ${tail(p.stderr)}` } : (j as Result)
    log(`micro: ${name}: ${modules[name]!.ok ? "ok" : modules[name]!.error}`)
  }
  return { date: new Date().toISOString(), command, modules }
}

// ------------------------------------------------------------------ raft over TCP

const runRaftTcp = async (): Promise<NonNullable<AllResults["raftTcp"]>> => {
  log("raft-tcp: 3 RaftKvNode processes, commit latency at 1k/2k/5k proposals/s, then leader kills")
  const args = ["--rate", "5000", "--duration", quick ? "5" : "20", "--elections", quick ? "10" : "40"]
  // the bench has its own overall timeout (604 s quick, 1,849 s full); this one is a backstop
  const p = await tsx("bench/raft-tcp.ts", args, quick ? 660_000 : 1_900_000)
  const j = lastJson(p)
  const result = j === undefined ? { ok: false, error: p.timedOut ? "timed out" : `exit ${p.code}: ${tail(p.stderr)}` } : (j as Result)
  log(`raft-tcp: ${result.ok === false ? result.error : "ok"} (figures in bench/results.json, key raftTcp)`)
  return { date: new Date().toISOString(), command, result }
}

// ------------------------------------------------------------------ brokers

interface Running {
  readonly bootstrap: string
  readonly stop: () => Promise<void>
  /** The broker process's id, for its CPU time. */
  readonly pid: () => number | undefined
}

/** CPU seconds (user + system, every thread) a process has used so far, from /proc; undefined where unavailable. */
const cpuSecondsOf = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    // fields after the ")" that ends the command name: state is field 3, utime 14, stime 15
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS
  } catch {
    return undefined
  }
}
/** USER_HZ: 100 on Linux for every architecture this runs on. */
const CLOCK_TICKS = 100

/**
 * Adds the broker's CPU use during `run` to its result: seconds, and
 * milliseconds per MB of values produced. It depends less than throughput on
 * how fast the client went, but on a virtual machine it includes the kernel's
 * cost of new page-cache pages (docs/PERFORMANCE.md, session 9).
 */
const withBrokerCpu = async (b: Running, run: () => Promise<Result>): Promise<Result> => {
  const pid = b.pid()
  const before = cpuSecondsOf(pid)
  const r = await run()
  const after = cpuSecondsOf(pid)
  if (before === undefined || after === undefined || !r.ok) return r
  const cpu = after - before
  const mb = (Number(r["messages"] ?? 0) * 1024) / 1e6
  return { ...r, brokerCpuSeconds: Number(cpu.toFixed(2)), ...(mb > 0 ? { brokerCpuMsPerMB: Number(((cpu * 1000) / mb).toFixed(2)) } : {}) }
}

/** The brokers being measured, stopped on SIGINT/SIGTERM (the reference Kafka JVM ignores the terminal's SIGINT). */
const running = new Set<Running>()
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    interrupted = true
    log(`${sig}: stopping the load processes and the broker, then exiting`)
    for (const c of children) if (!String(c.spawnargs.join(" ")).includes("kafka-reference/stop.sh")) c.kill("SIGKILL")
    const bs = [...running]
    running.clear()
    void Promise.all(bs.map((b) => b.stop().catch(() => undefined))).finally(() => process.exit(130))
  })
}

const startKafka = async (): Promise<Running> => {
  const libs = join(repoRoot, ".tmp/kafka-ref/libs")
  if (!existsSync(libs)) {
    const inst = await exec("bash", [join(repoRoot, "scripts/kafka-reference/install.sh")], 600_000)
    if (inst.code !== 0 || /^SKIPPED: /m.test(inst.stdout)) throw new Error(`reference Kafka not installed: ${tail(inst.stdout + inst.stderr)}`)
  }
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), "chronik-bench-kafka-"))
  const stop = async () => {
    await exec("bash", [join(repoRoot, "scripts/kafka-reference/stop.sh"), dataDir], 60_000)
    rmSync(dataDir, { recursive: true, force: true })
  }
  const p = await exec("bash", [join(repoRoot, "scripts/kafka-reference/start.sh"), String(port), dataDir], 180_000, {
    KAFKA_START_TIMEOUT: "150",
    // a deleted topic's files go at once, as Chronik's do (Kafka's default waits 60 s): see dropTopics
    KAFKA_EXTRA_PROPS: "num.partitions=8\nlog.segment.delete.delay.ms=0"
  })
  if (p.code !== 0) {
    await stop()
    throw new Error(`start.sh failed: ${tail(p.stderr, 1500)}`)
  }
  // start.sh writes the JVM's pid; without it the rows just go without a CPU figure
  const kafkaPid = existsSync(join(dataDir, "kafka.pid")) ? Number(readFileSync(join(dataDir, "kafka.pid"), "utf8").trim()) : NaN
  return { bootstrap: `127.0.0.1:${port}`, stop, pid: () => (Number.isInteger(kafkaPid) && kafkaPid > 0 ? kafkaPid : undefined) }
}

/**
 * Chronik with the reference Kafka's group settings (start.sh sets
 * group.initial.rebalance.delay.ms=0; Chronik's default is Kafka's 3000 ms).
 * `walFsync`: Chronik's fsync policy (default `batch`: acks=all waits for a
 * group-commit fdatasync; `never` is what Kafka does by default).
 */
const startChronik = async (walFsync?: "never"): Promise<Running> => {
  const b = await startBroker({
    built: true,
    args: ["--num-partitions", "8", ...(walFsync === undefined ? [] : ["--wal-fsync", walFsync])],
    env: { CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS: "0" },
    startTimeoutMs: 90_000
  })
  return {
    bootstrap: b.bootstrap,
    pid: b.pid,
    stop: async () => {
      await Promise.race([b.stop(), new Promise((r) => setTimeout(r, 20_000))])
      await b.cleanup()
    }
  }
}

const javaTool = async (cls: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<Proc> =>
  exec("java", ["-Xmx512m", "-cp", `${join(repoRoot, ".tmp/kafka-ref/libs")}/*`, cls, ...args], timeoutMs)

/** ProducerPerformance's summary line. */
const parseProducerPerf = (p: Proc): Result => {
  const m =
    /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th/.exec(
      p.stdout
    )
  if (!m) {
    const why = (p.stdout + "\n" + p.stderr).split("\n").find((l) => /Exception|does not support|ERROR/.test(l))
    return { ok: false, error: p.timedOut ? `timed out after ${Math.round(p.seconds)}s; last output: ${tail(p.stdout)}` : `exit ${p.code}: ${why?.trim() ?? tail(p.stdout + " " + p.stderr)}` }
  }
  return {
    ok: p.code === 0,
    messages: Number(m[1]),
    msgsPerSec: Math.round(Number(m[2])),
    mibps: Number(m[3]),
    mbps: Number((Number(m[2]) * 1024 / 1e6).toFixed(2)),
    latencyMs: { avg: Number(m[4]), max: Number(m[5]), p50: Number(m[6]), p95: Number(m[7]), p99: Number(m[8]), p999: Number(m[9]) },
    seconds: p.seconds
  }
}

/** ConsumerPerformance's CSV line: start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s. */
const parseConsumerPerf = (p: Proc, expected: number): Result => {
  const line = p.stdout
    .trim()
    .split("\n")
    .reverse()
    .find((l) => /^\d{4}-\d\d-\d\d/.test(l.trim()))
  if (line === undefined) {
    const why = (p.stdout + "\n" + p.stderr).split("\n").find((l) => /Exception|does not support|ERROR/.test(l))
    return { ok: false, error: p.timedOut ? `timed out after ${Math.round(p.seconds)}s` : `exit ${p.code}: ${why?.trim() ?? tail(p.stdout + " " + p.stderr)}` }
  }
  const f = line.split(",").map((s) => s.trim())
  const n = Number(f[4])
  return {
    ok: p.code === 0 && n >= expected,
    ...(n >= expected ? {} : { error: `consumed ${n}/${expected}; ${tail(p.stderr, 300)}` }),
    messages: n,
    mib: Number(f[2]),
    msgsPerSec: Math.round(Number(f[5])),
    mibps: Number(f[3]),
    mbps: Number((Number(f[5]) * 1024 / 1e6).toFixed(2)),
    rebalanceMs: Number(f[6]),
    fetchMsgsPerSec: Math.round(Number(f[9])),
    seconds: p.seconds
  }
}

/**
 * Equal durability: the acks=all rows again with Chronik started with
 * `--wal-fsync never` (acknowledged once in the page cache, like Kafka's
 * default `flush.messages`); for Kafka the same rows are its default runs.
 */
const EQUAL_DURABILITY_ROWS: ReadonlyArray<readonly [row: string, kafkaDefaultRow: string]> = [
  ["produce acks=all p=1, no fsync", "produce acks=all p=1"],
  ["produce acks=all p=8, no fsync", "produce acks=all p=8"],
  ["ProducerPerformance acks=all, no fsync", "ProducerPerformance acks=all"]
]

const loadStep = async (script: string, args: ReadonlyArray<string>, budgetS: number): Promise<Result> => {
  const p = await tsx(script, [...args, "--timeout", String(budgetS)], (budgetS + 20) * 1000)
  return (lastJson(p) as Result | undefined) ?? { ok: false, error: p.timedOut ? `killed after ${budgetS + 20}s` : `exit ${p.code}: ${tail(p.stderr)}` }
}

const producerRun = (bootstrap: string, topic: string, acks: string, partitions: number, c = client, seconds = D) =>
  loadStep(
    "bench/loadgen/producer.ts",
    ["--bootstrap", bootstrap, "--topic", topic, "--client", c, "--size", "1024", "--duration", String(seconds), "--partitions", String(partitions), "--acks", acks],
    D + 60
  )

const producerPerf = async (bootstrap: string, topic: string, acks: string, records: number): Promise<Result> => {
  const p = await javaTool(
    "org.apache.kafka.tools.ProducerPerformance",
    ["--topic", topic, "--num-records", String(records), "--record-size", "1024", "--throughput", "-1", "--producer-props", `bootstrap.servers=${bootstrap}`, `acks=${acks}`, "linger.ms=5", "batch.size=65536"],
    (D * 4 + 60) * 1000
  )
  return { ...parseProducerPerf(p), records }
}

/** One broker under measurement: its results so far. */
interface Session {
  readonly broker: "kafka" | "chronik"
  readonly b: Running
  readonly steps: Record<string, Result>
  /** ProducerPerformance records: sized from this broker's own producer rate. */
  records: number
  /** Topics a produce row kept for the consume row after it: row name -> topic and messages written. */
  readonly kept: Record<string, { readonly topic: string; readonly messages: number }>
}

/**
 * Deletes topics no later step reads, then waits a moment for the files to
 * go. On this virtual machine, page-cache pages the guest has not used lately
 * cost about ten times more kernel CPU to fill than pages just freed (3 GB
 * written with dd: 0.7 s of system time for the first 3 GB, 7.4-8.4 s for
 * each 3 GB after it, 0.6-0.9 s when each 3 GB file is deleted before the
 * next), so a broker that kept every row's data paid that toll from its
 * third or fourth row on, whichever broker it was (docs/PERFORMANCE.md,
 * session 11). A failure is logged, not fatal.
 */
const dropTopics = async (s: Session, topics: ReadonlyArray<string>): Promise<void> => {
  const admin = new Admin({ clientId: "chronik-bench-admin", bootstrapBrokers: [s.b.bootstrap], retries: 2, retryDelay: 200, timeout: 30_000 })
  try {
    await admin.deleteTopics({ topics: [...topics] })
  } catch (e) {
    log(`${s.broker}: deleting ${topics.join(", ")} failed: ${String(e instanceof Error ? e.message : e).slice(0, 200)}`)
  } finally {
    await admin.close().catch(() => undefined)
  }
  await new Promise((r) => setTimeout(r, 2000))
}

const record = (s: { readonly broker: string; readonly steps: Record<string, Result> }, name: string, r: Result) => {
  s.steps[name] = r
  const fig = r.ok ? `${r["msgsPerSec"]} msg/s ${r["mbps"] ?? ""} MB/s` : `FAILED: ${String(r.error).slice(0, 300)}`
  log(`${s.broker}: ${name}: ${fig}`)
}

const startMeasured = async (broker: "kafka" | "chronik", walFsync?: "never"): Promise<Running | string> => {
  log(`${broker}: starting${walFsync === undefined ? "" : ` (--wal-fsync ${walFsync})`}`)
  try {
    const b = broker === "kafka" ? await startKafka() : await startChronik(walFsync)
    running.add(b)
    log(`${broker}: up at ${b.bootstrap}`)
    return b
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    log(`${broker}: did not start: ${msg.slice(0, 300)}`)
    return msg.slice(0, 2000)
  }
}

const stopBroker = async (broker: string, b: Running) => {
  log(`${broker}: stopping`)
  running.delete(b)
  await b.stop()
}

const warmUp = async (s: Session) => {
  // Warm-up (JIT of the JVM broker and of Node), not reported in the table.
  const warm = await producerRun(s.b.bootstrap, "bench-warmup", "1", 8, client, Math.min(D, 8))
  log(`${s.broker}: warm-up: ${warm.ok ? `${warm["msgsPerSec"]} msg/s` : `FAILED: ${String(warm.error).slice(0, 200)}`}`)
  await dropTopics(s, ["bench-warmup"])
}

// Time to read what was produced: 3x the producer run, and at least n / 25k msg/s (a consumer
// group reads 50-60k msg/s here; a fast producer can write more in D seconds than a fixed
// 3 x D window lets it read).
const readWindow = (n: number) => Math.max(D * 3, Math.ceil(n / 25_000))

/** Runs `read` over what the produce row `from` kept (its last run's topic), then deletes that topic. */
const readKept = async (s: Session, from: string, read: (topic: string, messages: number) => Promise<Result>): Promise<Result> => {
  const src = s.kept[from]
  if (src === undefined || src.messages === 0) return { ok: false, error: `${from} produced nothing to read` }
  try {
    return await read(src.topic, src.messages)
  } finally {
    delete s.kept[from]
    await dropTopics(s, [src.topic])
  }
}

const consumeStep = (s: Session, from: string, mode: "fetch" | "group", partitions: number): Promise<Result> =>
  readKept(s, from, (topic, n) =>
    loadStep(
      "bench/loadgen/consumer.ts",
      ["--bootstrap", s.b.bootstrap, "--topic", topic, "--mode", mode, "--partitions", String(partitions), "--count", String(n), "--duration", String(readWindow(n))],
      readWindow(n) + 40
    )
  )

/**
 * Runs a produce step `REPEAT` times and answers the median run by msg/s
 * (the lower one of the middle two for an even count), with every run's
 * figures in its notes and `runs`. Any failed run fails the row.
 */
const repeated = async (run: (i: number) => Promise<Result>): Promise<Result> => {
  if (REPEAT === 1) return run(0)
  const rs: Array<Result> = []
  for (let i = 0; i < REPEAT && !interrupted; i++) rs.push(await run(i))
  const failed = rs.find((r) => !r.ok)
  if (failed !== undefined || rs.length === 0) return failed ?? { ok: false, error: "interrupted" }
  const rate = (r: Result) => Number(r["msgsPerSec"] ?? 0)
  const mid = [...rs].sort((a, b) => rate(a) - rate(b))[Math.floor((rs.length - 1) / 2)]!
  const notes = [...(Array.isArray(mid["notes"]) ? (mid["notes"] as Array<string>) : []), `median of ${rs.length} runs: ${rs.map((r) => rate(r).toLocaleString("en-US")).join(", ")} msg/s`]
  return { ...mid, notes, runs: rs.map((r) => ({ msgsPerSec: r["msgsPerSec"], latencyMs: r["latencyMs"], brokerCpuMsPerMB: r["brokerCpuMsPerMB"] })) }
}

type Step = readonly [name: string, run: (s: Session) => Promise<Result>]

/** The load client of the comparison row (`produce acks=1 p=1 (<client>)`). */
const otherClient = client === "kafkajs" ? "platformatic" : "kafkajs"

/**
 * The rows of one producer load, `REPEAT` runs each to a topic of its own
 * (`<base>-<run>`), deleted after the run (see `dropTopics`) except the last
 * run's when a consume row reads it next (`keep`).
 */
const producedRow =
  (row: string, base: string, keep: boolean, run: (s: Session, topic: string) => Promise<Result>) =>
  (s: Session): Promise<Result> =>
    repeated(async (i) => {
      const topic = `${base}-${i + 1}`
      const r = await withBrokerCpu(s.b, () => run(s, topic))
      if (keep && (i === REPEAT - 1 || interrupted) && r.ok) s.kept[row] = { topic, messages: Number(r["messages"] ?? 0) }
      else await dropTopics(s, [topic])
      return r
    })

const produceStep = (acks: string, partitions: number, keep = false, c = client, base = `bench-a${acks}-p${partitions}`): Step => {
  const row = `produce acks=${acks} p=${partitions}${c === client ? "" : ` (${c})`}`
  return [row, producedRow(row, base, keep, (s, topic) => producerRun(s.b.bootstrap, topic, acks, partitions, c))]
}

const producerPerfStep = (acks: string, keep = false): Step => {
  const row = `ProducerPerformance acks=${acks}`
  return [
    row,
    (s) => {
      // Kafka's own tool: records sized so a run takes about D seconds at the rate our producer
      // reached on this broker (bounded both ways), killed after a timeout.
      const rate = Number(s.steps["produce acks=1 p=8"]?.["msgsPerSec"] ?? s.steps["produce acks=1 p=1"]?.["msgsPerSec"] ?? 0)
      s.records = Math.max(20_000, Math.min(quick ? 300_000 : 2_000_000, Math.round(rate * D)))
      const records = s.records
      return producedRow(row, `perf-a${acks}`, keep, (s, topic) => producerPerf(s.b.bootstrap, topic, acks, records))(s)
    }
  ]
}

/**
 * The steps in the order they run on each broker: a consume row right after
 * the produce row whose last run it reads, so that a broker holds at most one
 * run's data besides the one being written. The table lists them in `ROWS` order.
 */
const STEPS: ReadonlyArray<Step> = [
  produceStep("1", 1, true),
  ["consume group p=1", (s) => consumeStep(s, "produce acks=1 p=1", "group", 1)],
  produceStep("1", 8, true),
  ["consume fetch p=8", (s) => consumeStep(s, "produce acks=1 p=8", "fetch", 8)],
  produceStep("all", 1),
  produceStep("all", 8),
  produceStep("1", 1, false, otherClient, `bench-${otherClient}`),
  producerPerfStep("1", true),
  [
    "ConsumerPerformance",
    (s) =>
      readKept(s, "ProducerPerformance acks=1", async (topic, n) => {
        const p = await javaTool(
          "org.apache.kafka.tools.ConsumerPerformance",
          ["--bootstrap-server", s.b.bootstrap, "--topic", topic, "--num-records", String(n), "--timeout", "20000", "--group", `perf-${Date.now()}`],
          (D * 4 + 60) * 1000
        )
        return parseConsumerPerf(p, n)
      })
  ],
  producerPerfStep("all")
]

/** The table's row order. */
const ROWS: ReadonlyArray<string> = [
  "produce acks=1 p=1",
  "produce acks=1 p=8",
  "produce acks=all p=1",
  "produce acks=all p=8",
  `produce acks=1 p=1 (${otherClient})`,
  "consume fetch p=8",
  "consume group p=1",
  "ProducerPerformance acks=1",
  "ProducerPerformance acks=all",
  "ConsumerPerformance",
  ...EQUAL_DURABILITY_ROWS.map(([row]) => row)
]

/**
 * Runs the steps on each broker in turn (Kafka, then Chronik): a broker is
 * started on a fresh data dir, warmed up, measured and stopped (its data dir
 * removed, which also drops its page cache) before the next one starts.
 * Then Chronik's equal-durability rows, restarted with `--wal-fsync never`.
 * (Keeping both brokers up and alternating them step by step was tried: both
 * brokers' data then fills the page cache of this 23 GB machine and page
 * reclaim slowed every step of both, by a third.)
 */
const benchBrokers = async (brokers: ReadonlyArray<"kafka" | "chronik">): Promise<Partial<Record<"kafka" | "chronik", BrokerResults>>> => {
  const out: Partial<Record<"kafka" | "chronik", BrokerResults>> = {}
  const sessions: Array<Session> = []
  for (const broker of brokers) {
    if (interrupted) break
    const started = { broker, date: new Date().toISOString(), command, durationSeconds: D, client, loadavgBefore: loadavg().map((x) => Number(x.toFixed(2))) }
    const b = await startMeasured(broker)
    if (typeof b === "string") {
      out[broker] = { ...started, startError: b, steps: {} }
      continue
    }
    const s: Session = { broker, b, steps: {}, records: 20_000, kept: {} }
    sessions.push(s)
    try {
      await warmUp(s)
      for (const [name, run] of STEPS) {
        if (interrupted) break
        record(s, name, await run(s))
      }
    } finally {
      await stopBroker(broker, b)
    }
    out[broker] = { ...started, loadavgAfter: loadavg().map((x) => Number(x.toFixed(2))), steps: s.steps }
  }

  const kafka = sessions.find((s) => s.broker === "kafka")
  if (kafka !== undefined) {
    // Kafka's default already acknowledges from the page cache: its equal-durability rows are the default runs.
    for (const [row, from] of EQUAL_DURABILITY_ROWS) {
      const r = kafka.steps[from]
      if (r !== undefined) kafka.steps[row] = { ...r, sameRunAs: from }
    }
  }
  const chronik = sessions.find((s) => s.broker === "chronik")
  if (chronik !== undefined && !interrupted) {
    const nb = await startMeasured("chronik", "never")
    if (typeof nb === "string") {
      for (const [row] of EQUAL_DURABILITY_ROWS) record(chronik, row, { ok: false, error: `did not start with --wal-fsync never: ${nb.slice(0, 300)}` })
    } else {
      const ns: Session = { broker: "chronik", b: nb, steps: {}, records: chronik.records, kept: {} }
      try {
        await warmUp(ns)
        for (const partitions of [1, 8]) {
          const row = `produce acks=all p=${partitions}, no fsync`
          record(chronik, row, await producedRow(row, `bench-nofsync-p${partitions}`, false, (s, topic) => producerRun(s.b.bootstrap, topic, "all", partitions))(ns))
        }
        const row = "ProducerPerformance acks=all, no fsync"
        record(chronik, row, await producedRow(row, "perf-nofsync", false, (s, topic) => producerPerf(s.b.bootstrap, topic, "all", chronik.records))(ns))
      } finally {
        await stopBroker("chronik", nb)
      }
    }
    out.chronik = { ...out.chronik!, loadavgAfter: loadavg().map((x) => Number(x.toFixed(2))), steps: chronik.steps }
  }
  return out
}

// ------------------------------------------------------------------ markdown

const sh = async (cmd: string): Promise<string> => {
  const p = await exec("bash", ["-c", cmd], 20_000)
  return (p.stdout + p.stderr).trim()
}

const machineInfo = async (): Promise<Record<string, string>> => ({
  nproc: await sh("nproc"),
  cpu: (await sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")) || (cpus()[0]?.model ?? "?"),
  memory: (await sh("free -h | sed -n 2p | awk '{print $2\" total, \"$7\" available\"}'")) || "?",
  node: process.version,
  java: (await sh("java -version 2>&1 | head -1")) || "?",
  kafka: (await sh("ls .tmp/kafka-ref/libs 2>/dev/null | sed -n 's/^kafka_2.13-\\(.*\\)\\.jar$/\\1/p'")) || "?",
  os: await sh("uname -sr")
})

const fmt = (x: unknown, d = 1): string => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "–")
const int = (x: unknown): string => (typeof x === "number" && Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–")

const stepCell = (r: Result | undefined): { thr: string; lat: string } => {
  if (r === undefined) return { thr: "not run", lat: "" }
  if (!r.ok && Number(r["messages"] ?? 0) > 0 && Number(r["msgsPerSec"] ?? 0) > 0)
    return {
      thr: `${int(r["msgsPerSec"])} msg/s, ${fmt(r["mbps"])} MB/s (incomplete: ${String(r.error ?? "?").replace(/\|/g, "/").slice(0, 100)})`,
      lat: ""
    }
  if (!r.ok) return { thr: `**FAILED**: ${String(r.error ?? "?").replace(/\|/g, "/").replace(/\s+/g, " ").slice(0, 160)}`, lat: "" }
  const l = r["latencyMs"] as Record<string, number> | undefined
  const same = typeof r["sameRunAs"] === "string" ? ` (= the default run)` : ""
  return {
    thr: `${int(r["msgsPerSec"])} msg/s, ${fmt(r["mbps"])} MB/s${same}`,
    lat: l === undefined ? "" : `${fmt(l["p50"])} / ${fmt(l["p99"])} / ${fmt(l["p999"])}`
  }
}

const ratio = (a: Result | undefined, b: Result | undefined): string => {
  if (!a?.ok || !b?.ok) return "–"
  const x = Number(a["msgsPerSec"])
  const y = Number(b["msgsPerSec"])
  return y > 0 ? `${(x / y).toFixed(2)}×` : "–"
}

/** Kafka's equal-durability rows are its default acks=all runs (also for results stored before these rows existed). */
const withEqualDurabilityRows = (r: BrokerResults | undefined): BrokerResults | undefined => {
  if (r === undefined) return r
  const steps = { ...r.steps }
  for (const [row, from] of EQUAL_DURABILITY_ROWS) {
    const d = steps[from]
    if (steps[row] === undefined && d !== undefined) steps[row] = { ...d, sameRunAs: from }
  }
  return { ...r, steps }
}

/** A row's broker CPU per MB: the median over its runs (or its one run's figure). */
const cpuMsPerMB = (r: Result | undefined): number | undefined => {
  if (r === undefined || !r.ok) return undefined
  const runs = Array.isArray(r["runs"]) ? (r["runs"] as Array<Record<string, unknown>>) : [r]
  const xs = runs.map((x) => x["brokerCpuMsPerMB"]).filter((x): x is number => typeof x === "number").sort((a, b) => a - b)
  return xs.length === 0 ? undefined : xs[Math.floor((xs.length - 1) / 2)]
}

/** A repeated row's "median of N runs" note first, so that it is not cut off by the others. */
const medianFirst = (notes: ReadonlyArray<string>): Array<string> => [
  ...notes.filter((x) => x.startsWith("median of")),
  ...notes.filter((x) => !x.startsWith("median of"))
]

const markdown = (all: AllResults): string => {
  const m = all.machine ?? {}
  const out: Array<string> = []
  out.push("# Performance", "")
  out.push(
    "Generated by `bench/run.ts` (`npm run bench`); only figures measured by that runner are in the tables. " +
      "Re-run to refresh; each section carries the date it was measured.",
    ""
  )
  out.push("## Machine", "")
  out.push(`- CPU: ${m["cpu"] ?? "?"} (nproc = ${m["nproc"] ?? "?"})`)
  out.push(`- Memory: ${m["memory"] ?? "?"}`)
  out.push(`- OS: ${m["os"] ?? "?"}; Node ${m["node"] ?? "?"}; ${m["java"] ?? "?"}; reference Apache Kafka ${m["kafka"] ?? "?"} (KRaft, single node, -Xmx1g)`)
  out.push(
    "- **Load**: the 1-minute load average before/after the runs is listed (the load generator, its client and the brokers themselves count in it). " +
      "Client, broker and load generator all share the same 2 cores, so figures are noisy; compare the two brokers within one run, and across runs (see \"Earlier runs\" below).",
    ""
  )

  const k = withEqualDurabilityRows(all.kafka)
  const c = all.chronik
  if (k !== undefined || c !== undefined) {
    out.push("## Apache Kafka vs Chronik, side by side", "")
    for (const [name, r] of [["Apache Kafka", k], ["Chronik", c]] as const) {
      if (r === undefined) out.push(`- ${name}: not run`)
      else
        out.push(
          `- ${name}: measured ${r.date} by \`${r.command ?? "npm run bench"}\`, ${r.durationSeconds} s per producer run, load client ${r.client === "kafkajs" ? "kafkajs 2.2.4" : "@platformatic/kafka 1.35"}, load average ${r.loadavgBefore.join(" ")} → ${r.loadavgAfter?.join(" ") ?? "?"}` +
            (r.startError ? ` — **did not start**: ${r.startError.slice(0, 300)}` : "")
        )
    }
    out.push("")
    out.push(
      "The brokers run one after the other (Kafka, then Chronik), each on a fresh data dir that is removed when it stops. " +
        "With `--repeat N` (see the command above) each produce and ProducerPerformance row runs N times on the same broker and the table shows the median run by msg/s; " +
        "every run's figure is in the notes below. " +
        "Each run writes to a topic of its own, deleted as soon as no later row reads it (a consume row runs right after the produce row whose last run it reads; " +
        "Kafka runs with `log.segment.delete.delay.ms=0` so its files go at once too): on this virtual machine, filling page-cache pages the guest has not used lately costs " +
        "about ten times the kernel CPU of reusing pages just freed, so a broker that kept every row's data paid that toll in its later rows (see session 11 below). " +
        "Each broker first gets a discarded warm-up run (acks=1, 8 partitions, up to 8 s). " +
        "Producer: `bench/loadgen/producer.ts`, 1 KiB values, no key, 8 concurrent send() calls of 256 messages each, spread round-robin over the partitions; " +
        "latency = send() to acknowledgement of the batch, ms (p50 / p99 / p99.9). MB = 10^6 bytes of values. " +
        "Consumer: `bench/loadgen/consumer.ts`; `fetch` = Fetch loop from offset 0 without a group, `group` = @platformatic/kafka consumer group from earliest. " +
        "ProducerPerformance/ConsumerPerformance: Kafka's own tools (org.apache.kafka.tools, `--record-size 1024 --throughput -1`, producer `linger.ms=5 batch.size=65536`), MB/s converted to 10^6 bytes.",
      "",
      "Both brokers run consumer groups with an initial rebalance delay of 0 (Kafka: `group.initial.rebalance.delay.ms=0` in `scripts/kafka-reference/start.sh`; " +
        "Chronik: `CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS=0`). Durability: by default Kafka acknowledges acks=all from the page cache (no fsync per write, " +
        "`flush.messages` unlimited) while Chronik's default `--wal-fsync batch` acknowledges after a group-commit fdatasync. " +
        "The `no fsync` rows are at equal durability: Chronik restarted with `--wal-fsync never` (after its own warm-up), against Kafka's default acks=all runs (the same figures as Kafka's default rows).",
      ""
    )
    out.push("| scenario | Kafka throughput | Kafka latency p50/p99/p99.9 ms | Chronik throughput | Chronik latency p50/p99/p99.9 ms | Chronik / Kafka (msg/s) |")
    out.push("|---|---|---|---|---|---|")
    const rank = (n: string) => (ROWS.includes(n) ? ROWS.indexOf(n) : ROWS.length)
    const names = [...new Set([...Object.keys(k?.steps ?? {}), ...Object.keys(c?.steps ?? {})])].sort((a, b) => rank(a) - rank(b))
    for (const n of names) {
      const a = stepCell(k?.steps[n])
      const b = stepCell(c?.steps[n])
      out.push(`| ${n} | ${a.thr} | ${a.lat} | ${b.thr} | ${b.lat} | ${ratio(c?.steps[n], k?.steps[n])} |`)
    }
    out.push("")
    for (const [name, r] of [["Apache Kafka", k], ["Chronik", c]] as const) {
      const other = r?.client === "kafkajs" ? "platformatic" : "kafkajs"
      const main = r?.steps["produce acks=1 p=1"]
      const alt = r?.steps[`produce acks=1 p=1 (${other})`]
      if (main?.ok && alt?.ok) {
        const [pl, kj] = other === "kafkajs" ? [main, alt] : [alt, main]
        out.push(
          `Load client on ${name}, acks=1, 1 partition, same settings: @platformatic/kafka ${int(pl["msgsPerSec"])} msg/s vs kafkajs ${int(kj["msgsPerSec"])} msg/s ` +
            `(${(Number(pl["msgsPerSec"]) / Number(kj["msgsPerSec"])).toFixed(2)}×).`
        )
      }
    }
    out.push("")
    const cpuRows = names.filter((n) => cpuMsPerMB(k?.steps[n]) !== undefined || cpuMsPerMB(c?.steps[n]) !== undefined)
    if (cpuRows.length > 0) {
      out.push(
        "Broker CPU per MB produced: the broker process's user + system CPU time (every thread, from /proc) during a producer run, in ms per MB of values; " +
          "with `--repeat N`, the median over the runs. The client, the broker and the kernel share two cores, so what a broker uses is taken from its client. " +
          "On a virtual machine this includes the kernel's cost of new page-cache pages, which need not be the same for both brokers: on the guest " +
          "measured in the session 9 section below, writing into memory the guest has not used lately costs about 2.6 ms of system CPU per MB.",
        "",
        "| scenario | Kafka CPU ms/MB | Chronik CPU ms/MB | Chronik / Kafka |",
        "|---|---|---|---|"
      )
      for (const n of cpuRows) {
        const a = cpuMsPerMB(k?.steps[n])
        const b = cpuMsPerMB(c?.steps[n])
        out.push(`| ${n} | ${fmt(a, 2)} | ${fmt(b, 2)} | ${a !== undefined && b !== undefined && a > 0 ? `${(b / a).toFixed(2)}×` : "–"} |`)
      }
      out.push("")
    }
    const failures = [...Object.entries(c?.steps ?? {})].filter(([, r]) => !r.ok)
    if (failures.length > 0) {
      out.push("### What failed (or did not finish) against Chronik", "")
      for (const [n, r] of failures)
        out.push(`- ${n}: ${Number(r["messages"] ?? 0) > 0 ? "incomplete (throughput above is for what was read): " : ""}${String(r.error).replace(/\s+/g, " ").slice(0, 400)}`)
      out.push("")
    }
    out.push(
      "Both brokers create topics with 8 partitions when auto-creating. The load generator first asks for CreateTopics with the scenario's partition count; " +
        "where a broker refuses it (see the notes below) the topic is auto-created with 8 partitions and the `p=1` scenarios write to partition 0 only, " +
        "which is the same load on the broker as a 1-partition topic.",
      ""
    )
    const notes = [
      ...Object.entries(k?.steps ?? {}).map(([n, r]) => [`Kafka, ${n}`, r] as const),
      ...Object.entries(c?.steps ?? {}).map(([n, r]) => [`Chronik, ${n}`, r] as const)
    ].flatMap(([n, r]) =>
      Array.isArray(r["notes"]) && (r["notes"] as Array<string>).length > 0 ? [`- ${n}: ${medianFirst(r["notes"] as Array<string>).join("; ").slice(0, 300)}`] : []
    )
    if (notes.length > 0) out.push("Notes from the load generators:", "", ...new Set(notes), "")
  }

  if (all.micro !== undefined) {
    out.push(
      "## Micro-benchmarks",
      "",
      `Measured ${all.micro.date} by \`${all.micro.command ?? "npm run bench"}\`, each module's \`run()\` in its own process (bench/micro-child.ts).`,
      ""
    )
    for (const [name, r] of Object.entries(all.micro.modules)) {
      if (!r.ok) {
        out.push(`- \`bench/${name}.ts\`: ${r["skipped"] ? "skipped" : "FAILED"}: ${r.error}`)
        continue
      }
      out.push(`### bench/${name}.ts`, "", "| metric | value |", "|---|---|")
      const flat = (prefix: string, v: unknown): void => {
        if (v !== null && typeof v === "object" && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) flat(prefix ? `${prefix}.${k2}` : k2, v2)
        else out.push(`| ${prefix} | ${typeof v === "number" ? v.toLocaleString("en-US") : JSON.stringify(v)} |`)
      }
      flat("", r["result"])
      out.push("")
    }
    out.push("")
  }
  return out.join("\n") + "\n"
}

// ------------------------------------------------------------------ main

const MANUAL = "<!-- MANUAL: everything below is hand-written and kept by bench/run.ts -->"

const main = async () => {
  const all = loadResults()
  if (flag("render-only") === undefined) all.machine = await machineInfo()
  if (doMicro) all.micro = await runMicro()
  if (doRaftTcp) all.raftTcp = await runRaftTcp()
  const brokers = [...(doKafka ? ["kafka" as const] : []), ...(doChronik ? ["chronik" as const] : [])]
  if (doChronik) {
    // Chronik runs as `npm start` runs it: the chronik-server executable built into dist/.
    const build = await exec("npm", ["run", "build"], 300_000)
    if (build.code !== 0) throw new Error(`npm run build failed: ${tail(build.stdout + build.stderr, 1500)}`)
  }
  if (brokers.length > 0) {
    const r = await benchBrokers(brokers)
    if (r.kafka !== undefined) all.kafka = r.kafka
    if (r.chronik !== undefined) all.chronik = r.chronik
  }
  if (interrupted) return // partial figures from an interrupted run are not written
  writeFileSync(resultsPath, JSON.stringify(all, null, 2))
  // Everything from the MANUAL marker on is hand-written and kept across regenerations.
  const docPath = join(repoRoot, "docs/PERFORMANCE.md")
  const previous = existsSync(docPath) ? readFileSync(docPath, "utf8") : ""
  const at = previous.indexOf(MANUAL)
  writeFileSync(docPath, markdown(all) + "\n" + (at >= 0 ? previous.slice(at) : `${MANUAL}\n`))
  log(`wrote docs/PERFORMANCE.md and ${resultsPath}`)
}

main().then(
  () => process.exit(0),
  async (e: unknown) => {
    console.error(e)
    await Promise.all([...running].map((b) => b.stop().catch(() => undefined)))
    process.exit(1)
  }
)
