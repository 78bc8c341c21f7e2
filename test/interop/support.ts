/**
 * Shared plumbing for the interop suite (`npm run test:interop`).
 *
 * - Which broker the tests talk to: Chronik by default (started with
 *   test/support/broker.ts), or the reference Apache Kafka when
 *   CHRONIK_INTEROP_TARGET=kafka (scripts/kafka-reference/start.sh), which is how
 *   the tests themselves are validated.
 * - Which peers are usable: `.tmp/interop/peers.env` written by
 *   scripts/interop/install-peers.sh; a peer reported as `SKIPPED: <peer>: <reason>`
 *   in `.tmp/interop-install.log` (or left empty in peers.env) is skipped with that
 *   reason.
 * - Running a peer process with a hard timeout, capturing its output.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { freePort, startBroker } from "../support/broker.js"

export const repoRoot = resolve(import.meta.dirname, "../..")

export type TargetName = "chronik" | "kafka"

export const targetName = (): TargetName => {
  const t = (process.env["CHRONIK_INTEROP_TARGET"] ?? "chronik").toLowerCase()
  if (t !== "chronik" && t !== "kafka") throw new Error(`CHRONIK_INTEROP_TARGET must be chronik or kafka, got ${t}`)
  return t
}

export interface Target {
  readonly name: TargetName
  readonly bootstrap: string
  readonly host: string
  readonly port: number
  /** Broker log so far (for failure messages). */
  readonly log: () => string
  readonly stop: () => Promise<void>
}

// ------------------------------------------------------------------ processes

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

export interface RunOptions {
  readonly input?: string | Buffer
  readonly timeoutMs?: number
  readonly env?: Record<string, string>
  readonly cwd?: string
}

/** Runs a command to completion (SIGKILL after timeoutMs); never rejects on a non-zero exit. */
export const run = (cmd: string, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<RunResult> =>
  new Promise((res, rej) => {
    const p = spawn(cmd, args, {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      p.kill("SIGKILL")
    }, options.timeoutMs ?? 60_000)
    p.stdout.on("data", (d: Buffer) => out.push(d))
    p.stderr.on("data", (d: Buffer) => err.push(d))
    p.once("error", (e) => {
      clearTimeout(timer)
      rej(e)
    })
    p.once("close", (code, signal) => {
      clearTimeout(timer)
      res({ code, signal, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), timedOut })
    })
    p.stdin.on("error", () => undefined)
    if (options.input !== undefined) p.stdin.end(options.input)
    else p.stdin.end()
  })

export const describeRun = (r: RunResult): string =>
  `exit=${r.code} signal=${r.signal}${r.timedOut ? " (TIMED OUT)" : ""}\n--- stdout (tail)\n${r.stdout.slice(-3000)}\n--- stderr (tail)\n${r.stderr.slice(-3000)}`

/** Parses the JSON lines of a peer's stdout, ignoring anything that is not a JSON object. */
export const jsonLines = <T = Record<string, unknown>>(stdout: string): Array<T> =>
  stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("{"))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as T]
      } catch {
        return []
      }
    })

// ------------------------------------------------------------------ long-running peer processes

/** A peer process the test talks to: commands on stdin, JSON lines on stdout. */
export interface LiveProcess {
  readonly name: string
  readonly pid: number | undefined
  /** The JSON lines printed so far, each with `_at`: Date.now() when it was read. */
  readonly lines: Array<Record<string, unknown>>
  readonly stderr: () => string
  /** Writes one command line to stdin (ignored once the process is gone). */
  readonly send: (line: string) => void
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly alive: () => boolean
  /** SIGKILL (no-op when already gone). */
  readonly kill: () => void
  /** The last lines and stderr, for failure messages. */
  readonly describe: () => string
}

const liveProcesses = new Set<ChildProcess>()
process.once("exit", () => {
  for (const p of liveProcesses) p.kill("SIGKILL")
})

/** Spawns a long-running peer, SIGKILLed after timeoutMs at the latest (and by killAllLive / process exit). */
export const spawnLive = (
  name: string,
  cmd: string,
  args: ReadonlyArray<string>,
  options: { readonly timeoutMs: number; readonly env?: Record<string, string> }
): LiveProcess => {
  const p = spawn(cmd, args, { cwd: repoRoot, env: { ...process.env, ...options.env }, stdio: ["pipe", "pipe", "pipe"] })
  liveProcesses.add(p)
  const lines: Array<Record<string, unknown>> = []
  let err = ""
  let partial = ""
  let raw = ""
  p.stdout.on("data", (d: Buffer) => {
    const text = partial + d.toString("utf8")
    const parts = text.split("\n")
    partial = parts.pop() ?? ""
    for (const l of parts) {
      const t = l.trim()
      if (!t.startsWith("{")) {
        if (t.length > 0) raw = (raw + t + "\n").slice(-4000)
        continue
      }
      try {
        lines.push({ ...(JSON.parse(t) as Record<string, unknown>), _at: Date.now() })
      } catch {
        raw = (raw + t + "\n").slice(-4000)
      }
    }
  })
  p.stderr.on("data", (d: Buffer) => (err = (err + d.toString("utf8")).slice(-20000)))
  p.stdin.on("error", () => undefined)
  let gone = false
  const timer = setTimeout(() => p.kill("SIGKILL"), options.timeoutMs)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      if (gone) return
      gone = true
      clearTimeout(timer)
      liveProcesses.delete(p)
      res({ code, signal })
    }
    p.once("close", done)
    p.once("error", (e) => {
      err += `\nspawn error: ${String(e)}`
      done(null, null)
    })
  })
  return {
    name,
    pid: p.pid,
    lines,
    stderr: () => err,
    send: (line) => {
      if (!gone && p.stdin.writable) p.stdin.write(line + "\n")
    },
    exited,
    alive: () => !gone,
    kill: () => {
      if (!gone) p.kill("SIGKILL")
    },
    describe: () =>
      `--- ${name} (${gone ? `exited ${p.exitCode ?? p.signalCode}` : "running"}) last lines\n${lines
        .slice(-25)
        .map(({ _at, ...l }) => JSON.stringify(l))
        .join("\n")}\n--- ${name} non-JSON stdout\n${raw.slice(-1500)}\n--- ${name} stderr (tail)\n${err.slice(-2500)}`
  }
}

/** SIGKILLs every live peer process still running (afterAll). */
export const killAllLive = async (): Promise<void> => {
  const ps = [...liveProcesses]
  for (const p of ps) p.kill("SIGKILL")
  await Promise.all(ps.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(undefined) : p.once("close", r)))))
}

/** Polls `cond` every 50 ms until it holds; rejects with `what()` after timeoutMs. */
export const waitUntil = async (cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

// ------------------------------------------------------------------ peers

export type PeerName = "kcat" | "java" | "python" | "kafka"

export interface Peers {
  readonly KCAT: string
  readonly JAVA_KAFKA_CLIENTS_CP: string
  readonly PYTHON_CONFLUENT: string
  readonly KAFKA_REF_LIBS: string
}

// Overridable so the skip logic itself can be exercised without touching the real files.
const peersEnvPath = process.env["CHRONIK_INTEROP_PEERS_ENV"] ?? join(repoRoot, ".tmp/interop/peers.env")
const installLogPath = process.env["CHRONIK_INTEROP_INSTALL_LOG"] ?? join(repoRoot, ".tmp/interop-install.log")

export const readPeers = (): Peers => {
  const vars: Record<string, string> = {}
  if (existsSync(peersEnvPath)) {
    for (const line of readFileSync(peersEnvPath, "utf8").split("\n")) {
      const m = /^([A-Z_]+)='(.*)'$/.exec(line.trim())
      if (m) vars[m[1]!] = m[2]!
    }
  }
  return {
    KCAT: vars["KCAT"] ?? "",
    JAVA_KAFKA_CLIENTS_CP: vars["JAVA_KAFKA_CLIENTS_CP"] ?? "",
    PYTHON_CONFLUENT: vars["PYTHON_CONFLUENT"] ?? "",
    KAFKA_REF_LIBS: vars["KAFKA_REF_LIBS"] ?? ""
  }
}

const peerVar: Record<PeerName, keyof Peers> = {
  kcat: "KCAT",
  java: "JAVA_KAFKA_CLIENTS_CP",
  python: "PYTHON_CONFLUENT",
  kafka: "KAFKA_REF_LIBS"
}

/** Why a peer cannot be used, or undefined when it is installed. */
export const peerSkipReason = (peer: PeerName): string | undefined => {
  if (existsSync(installLogPath)) {
    for (const line of readFileSync(installLogPath, "utf8").split("\n")) {
      const m = /^SKIPPED: ([a-z]+): (.*)$/.exec(line.trim())
      if (m && m[1] === peer) return `SKIPPED: ${peer}: ${m[2]}`
    }
  }
  if (!existsSync(peersEnvPath)) return `SKIPPED: ${peer}: ${peersEnvPath} missing (run scripts/interop/install-peers.sh)`
  if (readPeers()[peerVar[peer]] === "") return `SKIPPED: ${peer}: not installed (empty ${peerVar[peer]} in peers.env)`
  return undefined
}

/** Skip reason for the whole file: the peer, plus the reference Kafka when it is the target. */
export const skipReason = (...peers: ReadonlyArray<PeerName>): string | undefined => {
  const all: Array<PeerName> = targetName() === "kafka" ? [...peers, "kafka"] : [...peers]
  for (const p of all) {
    const r = peerSkipReason(p)
    if (r !== undefined) return r
  }
  return undefined
}

export const logSkip = (file: string, reason: string | undefined): void => {
  if (reason !== undefined) console.warn(`[interop] ${file}: ${reason}`)
}

// ------------------------------------------------------------------ targets

/** Reference brokers still running: killed if the test process exits without afterAll (e.g. interrupted). */
const liveKafkaDirs = new Set<string>()
process.once("exit", () => {
  for (const dir of liveKafkaDirs) {
    try {
      process.kill(Number(readFileSync(join(dir, "kafka.pid"), "utf8").trim()), "SIGKILL")
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true })
  }
})

const startKafka = async (): Promise<Target> => {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), "chronik-interop-kafka-"))
  liveKafkaDirs.add(dataDir)
  const r = await run("bash", [join(repoRoot, "scripts/kafka-reference/start.sh"), String(port), dataDir], {
    timeoutMs: 150_000,
    env: { KAFKA_START_TIMEOUT: "120", KAFKA_HEAP_OPTS: "-Xmx512m -Xms128m" }
  })
  if (r.code !== 0) {
    await run("bash", [join(repoRoot, "scripts/kafka-reference/stop.sh"), dataDir], { timeoutMs: 60_000 })
    rmSync(dataDir, { recursive: true, force: true })
    liveKafkaDirs.delete(dataDir)
    throw new Error(`reference Kafka did not start: ${describeRun(r)}`)
  }
  return {
    name: "kafka",
    bootstrap: `127.0.0.1:${port}`,
    host: "127.0.0.1",
    port,
    log: () => {
      try {
        return readFileSync(join(dataDir, "kafka.log"), "utf8").slice(-5000)
      } catch {
        return ""
      }
    },
    stop: async () => {
      await run("bash", [join(repoRoot, "scripts/kafka-reference/stop.sh"), dataDir], { timeoutMs: 60_000 })
      rmSync(dataDir, { recursive: true, force: true })
      liveKafkaDirs.delete(dataDir)
    }
  }
}

const startChronik = async (env: Record<string, string> = {}): Promise<Target> => {
  const b = await startBroker({ startTimeoutMs: 90_000, env })
  return {
    name: "chronik",
    bootstrap: b.bootstrap,
    host: "127.0.0.1",
    port: b.port,
    log: () => b.output().slice(-5000),
    stop: async () => {
      await Promise.race([b.stop(), new Promise((r) => setTimeout(r, 15_000))])
      await b.cleanup()
    }
  }
}

export interface TargetOptions {
  /** Extra environment of the Chronik broker (e.g. CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS); ignored for Kafka. */
  readonly chronikEnv?: Record<string, string>
}

/** Starts the broker under test (CHRONIK_INTEROP_TARGET, default chronik). */
export const startTarget = (options: TargetOptions = {}): Promise<Target> =>
  targetName() === "kafka" ? startKafka() : startChronik(options.chronikEnv)

// ------------------------------------------------------------------ data

export const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"] as const
export type CodecName = (typeof CODECS)[number]

export const uniqueTopic = (prefix: string): string =>
  `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`

export interface Msg {
  readonly key: string
  readonly value: string
  readonly headers: ReadonlyArray<readonly [string, string]>
}

/**
 * Deterministic messages: keys and values without newlines (kcat splits its input on
 * them), with some non-ASCII text and enough repetition for the codecs to matter.
 */
export const makeMessages = (tag: string, n: number): Array<Msg> =>
  Array.from({ length: n }, (_, i) => ({
    key: `k-${tag}-${i}`,
    value: `v:${tag}:${i}:` + "héllo wörld ✓ ".repeat(1 + (i % 7)) + "x".repeat(i * 13),
    headers: [
      ["h-codec", tag],
      ["h-idx", String(i)]
    ] as const
  }))
