/**
 * Starts a real Chronik broker process for end-to-end tests: a free loopback
 * port, a temporary data directory, and helpers to stop it gracefully,
 * `kill -9` it and restart it on the same data. Runs the TypeScript entry
 * point through tsx, so `npm test` needs no build step; `built: true` runs
 * the `chronik-server` executable from `dist/` instead (what `npm start`
 * runs; the benchmarks use it).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, connect } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

const repoRoot = resolve(import.meta.dirname, "../..")

export const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = createServer()
    s.once("error", rej)
    s.listen(0, "127.0.0.1", () => {
      const address = s.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      s.close(() => res(port))
    })
  })

const canConnect = (port: number): Promise<boolean> =>
  new Promise((res) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy()
      res(true)
    })
    socket.once("error", () => res(false))
  })

export interface BrokerProcess {
  readonly port: number
  readonly bootstrap: string
  readonly dataDir: string
  /** Everything the process wrote to stdout and stderr so far. */
  readonly output: () => string
  /** The running process's id (undefined when it is not running). */
  readonly pid: () => number | undefined
  /** SIGTERM and wait for exit (graceful shutdown). */
  readonly stop: () => Promise<number | null>
  /** SIGKILL and wait for exit. */
  readonly kill9: () => Promise<void>
  /** Start again on the same port and data directory. */
  readonly restart: () => Promise<void>
  /** Stop (if running) and delete the data directory. */
  readonly cleanup: () => Promise<void>
}

export interface BrokerOptions {
  /** Extra CLI flags after `standalone`. */
  readonly args?: ReadonlyArray<string>
  /** Extra environment (CHRONIK_*). */
  readonly env?: Record<string, string>
  readonly startTimeoutMs?: number
  /** Run `dist/layers/launch.cjs` (needs `npm run build`) instead of `layers/main.ts` through tsx. */
  readonly built?: boolean
  /** Write the listener and data-dir flags before `standalone` (`chronik-server [flags] standalone`). */
  readonly flagsFirst?: boolean
}

export const startBroker = async (options: BrokerOptions = {}): Promise<BrokerProcess> => {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), "chronik-test-"))
  let child: ChildProcess | undefined
  let out = ""
  let exited: Promise<number | null> = Promise.resolve(null)

  const listenerFlags = ["--kafka-host", "127.0.0.1", "--kafka-port", String(port), "--data-dir", dataDir]
  const launch = async () => {
    out += `--- start ${new Date().toISOString()}\n`
    const p = spawn(
      process.execPath,
      [
        ...(options.built === true
          ? [join(repoRoot, "dist/layers/launch.cjs")]
          : ["--import", "tsx", join(repoRoot, "layers/main.ts")]),
        ...(options.flagsFirst === true ? [...listenerFlags, "standalone"] : ["standalone", ...listenerFlags]),
        ...(options.args ?? [])
      ],
      { cwd: repoRoot, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] }
    )
    child = p
    p.stdout!.on("data", (d: Buffer) => (out += d.toString()))
    p.stderr!.on("data", (d: Buffer) => (out += d.toString()))
    exited = new Promise((res) => p.once("exit", (code) => res(code)))
    const deadline = Date.now() + (options.startTimeoutMs ?? 90_000)
    while (Date.now() < deadline) {
      if (p.exitCode !== null) throw new Error(`broker exited with ${p.exitCode} during start:\n${out}`)
      if (await canConnect(port)) return
      await new Promise((r) => setTimeout(r, 100))
    }
    p.kill("SIGKILL")
    throw new Error(`broker did not listen on ${port} within the start timeout:\n${out}`)
  }

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null

  await launch()
  return {
    port,
    bootstrap: `127.0.0.1:${port}`,
    dataDir,
    output: () => out,
    pid: () => (running() ? child!.pid : undefined),
    stop: async () => {
      if (!running()) return child?.exitCode ?? null
      child!.kill("SIGTERM")
      return exited
    },
    kill9: async () => {
      if (!running()) return
      child!.kill("SIGKILL")
      await exited
    },
    restart: launch,
    cleanup: async () => {
      if (running()) {
        child!.kill("SIGKILL")
        await exited
      }
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
