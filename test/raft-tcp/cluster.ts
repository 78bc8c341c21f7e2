/**
 * Helpers for the multi-process Raft KV tests: spawn `layers/RaftKvNode.ts`
 * processes on 127.0.0.1 (free ports), talk the line JSON client protocol.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const entry = path.join(root, "layers/RaftKvNode.ts")

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Free loopback ports (bound with port 0 simultaneously, then released). */
export const freePorts = async (n: number): Promise<Array<number>> => {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer()
          s.once("error", reject)
          s.listen(0, "127.0.0.1", () => resolve(s))
        })
    )
  )
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  return ports
}

export interface Status {
  readonly id: number
  readonly role: string
  readonly leader: number | null
  readonly term: number
  readonly commitIndex: number
  readonly appliedIndex: number
  readonly lastIndex: number
}

export interface Reply {
  readonly ok: boolean
  readonly result?: unknown
  readonly error?: string
  readonly message?: string
  readonly leaderId?: number
  readonly term?: number
}

/** One request per connection: simple and robust against killed peers. */
export const request = (port: number, req: object, timeoutMs = 5000): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    let buf = ""
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`request ${JSON.stringify(req)} to :${port} timed out`))
    }, timeoutMs)
    socket.setNoDelay(true)
    socket.on("connect", () => socket.write(JSON.stringify(req) + "\n"))
    socket.on("data", (d: Buffer) => {
      buf += d.toString("utf8")
      const nl = buf.indexOf("\n")
      if (nl >= 0) {
        clearTimeout(timer)
        socket.destroy()
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as Reply)
        } catch (e) {
          reject(e)
        }
      }
    })
    socket.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })

export interface NodeProc {
  readonly id: number
  readonly raftPort: number
  readonly clientPort: number
  readonly dataDir: string
  proc: ChildProcess | null
  output: string
}

export interface ClusterOptions {
  readonly size: number
  readonly electionTimeoutMs: number
  readonly heartbeatMs: number
}

export class ProcessCluster {
  readonly nodes = new Map<number, NodeProc>()
  readonly tmp: string
  private constructor(
    readonly options: ClusterOptions,
    tmp: string
  ) {
    this.tmp = tmp
  }

  static async make(options: ClusterOptions): Promise<ProcessCluster> {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "chronik-raft-tcp-"))
    const c = new ProcessCluster(options, tmp)
    // Last resort if the test runner exits without running afterAll: no orphaned node processes.
    process.once("exit", () => {
      for (const n of c.nodes.values()) n.proc?.kill("SIGKILL")
    })
    const ports = await freePorts(options.size * 2)
    for (let i = 1; i <= options.size; i++) {
      c.nodes.set(i, {
        id: i,
        raftPort: ports[(i - 1) * 2]!,
        clientPort: ports[(i - 1) * 2 + 1]!,
        dataDir: path.join(tmp, `n${i}`),
        proc: null,
        output: ""
      })
    }
    return c
  }

  node(id: number): NodeProc {
    const n = this.nodes.get(id)
    if (n === undefined) throw new Error(`no node ${id}`)
    return n
  }

  /** Starts node `id` and resolves once its client port listens (READY line). */
  start(id: number, timeoutMs = 30_000): Promise<void> {
    const n = this.node(id)
    const peers = [...this.nodes.values()].map((p) => `${p.id}=127.0.0.1:${p.raftPort}`).join(",")
    const args = [
      "--import",
      "tsx",
      entry,
      "--id",
      String(id),
      "--peers",
      peers,
      "--data-dir",
      n.dataDir,
      "--client-port",
      String(n.clientPort),
      "--election-timeout-ms",
      String(this.options.electionTimeoutMs),
      "--heartbeat-ms",
      String(this.options.heartbeatMs)
    ]
    const proc = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    n.proc = proc
    n.output = ""
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${id} not ready after ${timeoutMs} ms:\n${n.output}`)), timeoutMs)
      const onData = (d: Buffer) => {
        n.output = (n.output + d.toString("utf8")).slice(-20_000)
        if (n.output.includes("READY ")) {
          clearTimeout(timer)
          resolve()
        }
      }
      proc.stdout!.on("data", onData)
      proc.stderr!.on("data", onData)
      proc.once("exit", (code, signal) => {
        if (n.proc === proc) n.proc = null
        clearTimeout(timer)
        reject(new Error(`node ${id} exited (${code ?? signal}) before ready:\n${n.output}`))
      })
    })
  }

  /** SIGKILL; resolves when the process is gone. */
  kill(id: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const n = this.node(id)
    const proc = n.proc
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      proc.once("exit", () => resolve())
      proc.kill(signal)
    })
  }

  isUp(id: number): boolean {
    const p = this.node(id).proc
    return p !== null && p.exitCode === null && p.signalCode === null
  }

  async status(id: number): Promise<Status | undefined> {
    try {
      const r = await request(this.node(id).clientPort, { op: "status" }, 1000)
      return r.ok ? (r.result as Status) : undefined
    } catch {
      return undefined
    }
  }

  /** Kills every process and removes the data directories. */
  async close(): Promise<void> {
    await Promise.all([...this.nodes.keys()].map((id) => this.kill(id)))
    fs.rmSync(this.tmp, { recursive: true, force: true })
  }
}
