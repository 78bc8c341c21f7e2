/**
 * Transport throughput check (not a unit test).
 *
 *   npx tsx bench/transport.ts [--seconds 3] [--size 64] [--depth 64] [--conns 4]
 *
 * A load generator in a child process keeps `depth` small request frames in
 * flight on each of `conns` loopback connections and counts echoed frames.
 * Reported: req/s (wall clock; noisy on a shared machine) and the server
 * process's CPU time per request (user+sys, much less sensitive to load).
 * Servers compared, each in this process:
 * - raw-pipe:   node:net `socket.pipe(socket)` (byte echo, no framing): the ceiling;
 * - raw-framed: node:net + FrameDecoder, one coalesced write per chunk (no Effect);
 * - chronik-exit:  KafkaTransport.layerNode, echo handler returning `Effect.succeed(frame)` (no fiber);
 * - chronik-fiber: the same with `Effect.sync(() => frame)` (one fiber per request: the general case).
 */
import * as Net from "node:net"
import { spawn } from "node:child_process"
import { Context, Effect, Layer } from "effect"
import { FrameDecoder } from "../src/transport/FrameDecoder.js"
import { KafkaTransport, layerNode } from "../src/transport/KafkaTransport.js"
import type { RequestHandler } from "../src/transport/KafkaTransport.js"
import * as TransportConfig from "../src/transport/TransportConfig.js"

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const seconds = arg("seconds", 3)
const size = arg("size", 64)
const depth = arg("depth", 64)
const conns = arg("conns", 4)

const clientSource = `
const net = require("node:net")
const { port, size, depth, conns, seconds } = JSON.parse(process.argv[1])
const frame = Buffer.alloc(4 + size, 7)
frame.writeInt32BE(size, 0)
const batch = (n) => { const b = Buffer.allocUnsafe(n * frame.length); for (let i = 0; i < n; i++) frame.copy(b, i * frame.length); return b }
let done = 0, warm = true, closed = 0
const sockets = []
for (let c = 0; c < conns; c++) {
  const s = net.connect({ host: "127.0.0.1", port }, () => { s.setNoDelay(true); s.write(batch(depth)) })
  let carry = 0
  s.on("data", (chunk) => {
    carry += chunk.length
    const n = Math.floor(carry / frame.length)
    carry -= n * frame.length
    if (!warm) done += n
    if (n > 0) s.write(batch(n))
  })
  s.on("error", () => {})
  s.on("close", () => { if (++closed === conns) { process.stdout.write(JSON.stringify({ done, ms }) + "\\n"); process.exit(0) } })
  sockets.push(s)
}
let ms = 0
setTimeout(() => {
  warm = false
  const t0 = performance.now()
  setTimeout(() => { ms = performance.now() - t0; const d = done; for (const s of sockets) s.destroy(); done = d }, seconds * 1000)
}, 500)
`

/** Runs the load generator in a child process; measures this process's CPU time over the run. */
const runClient = (port: number) =>
  new Promise<{ done: number; ms: number; cpuUs: number }>((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", clientSource, JSON.stringify({ port, size, depth, conns, seconds })], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    let cpu0 = process.cpuUsage()
    // Skip the client's warm-up period in the CPU figure.
    const t = setTimeout(() => {
      cpu0 = process.cpuUsage()
    }, 500)
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.once("error", reject)
    child.once("exit", () => {
      clearTimeout(t)
      const cpu = process.cpuUsage(cpu0)
      try {
        const r = JSON.parse(out.trim()) as { done: number; ms: number }
        resolve({ ...r, cpuUs: cpu.user + cpu.system })
      } catch (e) {
        reject(e)
      }
    })
  })

const report = (name: string, r: { done: number; ms: number; cpuUs: number }) => {
  const rps = r.done / (r.ms / 1000)
  const mbps = (rps * (4 + size)) / 1e6
  const cpuPerReq = r.cpuUs / r.done
  console.log(
    `${name.padEnd(13)} ${Math.round(rps).toLocaleString("en").padStart(10)} req/s  ${mbps.toFixed(1).padStart(7)} MB/s each way  ` +
      `server CPU ${cpuPerReq.toFixed(2).padStart(6)} us/req`
  )
  return cpuPerReq
}

const withNetServer = async (name: string, onConn: (s: Net.Socket) => void) => {
  const server = Net.createServer({ noDelay: true }, (s) => {
    s.on("error", () => {})
    onConn(s)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const r = await runClient((server.address() as Net.AddressInfo).port)
  server.close()
  return report(name, r)
}

const rawPipe = () => withNetServer("raw-pipe", (s) => s.pipe(s))

const rawFramed = () =>
  withNetServer("raw-framed", (s) => {
    s.setNoDelay(true)
    const d = new FrameDecoder(1 << 20)
    s.on("data", (chunk: Buffer) => {
      d.push(chunk)
      const frames: Array<Buffer> = []
      let total = 0
      let f: Buffer | undefined
      while ((f = d.next()) !== undefined) {
        frames.push(f)
        total += 4 + f.length
      }
      if (frames.length === 0) return
      const out = Buffer.allocUnsafe(total)
      let pos = 0
      for (const fr of frames) {
        out.writeInt32BE(fr.length, pos)
        fr.copy(out, pos + 4)
        pos += 4 + fr.length
      }
      if (!s.write(out)) {
        s.pause()
        s.once("drain", () => s.resume())
      }
    })
  })

const chronik = (name: string, handler: RequestHandler) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const ctx = yield* Layer.build(
          layerNode.pipe(Layer.provide(TransportConfig.layer({ port: 0, maxInFlightPerConnection: Math.max(100, depth) })))
        )
        const transport = Context.get(ctx, KafkaTransport)
        const { port } = yield* transport.serve(handler)
        const r = yield* Effect.promise(() => runClient(port))
        const m = transport.metrics.snapshot()
        const cpu = report(name, r)
        console.log(`            (${m.requests.toLocaleString("en")} requests, ${m.readPauses} read pauses, ${m.writeBackpressure} write backpressure events)`)
        return cpu
      })
    )
  )

const main = async () => {
  console.log(
    `node ${process.version}; ${conns} connections x ${depth} pipelined ${size}-byte frames; ${seconds}s per run after 0.5s warm-up`
  )
  const only = process.argv.includes("--only-chronik")
  const pipe = only ? NaN : await rawPipe()
  const framed = only ? NaN : await rawFramed()
  // A handler returning an Exit (`Effect.succeed`) completes without a fiber;
  // any other effect (`Effect.sync` here) runs in one fiber per request.
  const exit = await chronik("chronik-exit", (_conn, frame) => Effect.succeed(frame))
  const fiber = await chronik("chronik-fiber", (_conn, frame) => Effect.sync(() => frame))
  console.log(
    `server CPU per request relative to raw-framed: exit path ${(exit / framed).toFixed(2)}x, fiber path ${(fiber / framed).toFixed(2)}x ` +
      `(raw-pipe ${(pipe / framed).toFixed(2)}x)`
  )
}

void main()
