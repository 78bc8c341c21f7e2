/**
 * One Raft KV node as an OS process: group "kv" (`KvStateMachine`) on the
 * RaftEngine with the real TCP transport (`RaftTransport.layerTcp`) and the
 * file log store (`RaftLogStoreFile.layerFile` over the storage engine), on
 * the live Clock.
 *
 *   node --import tsx layers/RaftKvNode.ts --id 1 \
 *     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
 *     --data-dir /tmp/n1 --client-port 8001 \
 *     [--election-timeout-ms 1000] [--heartbeat-ms 100] [--host 127.0.0.1] [--max-batch 1000]
 *
 * The Raft listen address is this node's own entry in `--peers`. Every peer
 * in `--peers` is a voter of "kv"; a restart with the same data dir recovers
 * the group from its log.
 *
 * Client protocol on `--client-port` (plain TCP, one JSON object per line,
 * one JSON line back per request, in order):
 *   {"op":"put","key":k,"value":v}   -> {"ok":true,"result":{"index":n,"previous":p}}
 *   {"op":"get","key":k}             -> {"ok":true,"result":v|null}  (ReadIndex: linearizable)
 *   {"op":"status"}                  -> {"ok":true,"result":{id,role,leader,term,commitIndex,appliedIndex,lastIndex,
 *                                        proposals,cycles,persistCalls}}   (proposals: Raft entries proposed here;
 *                                        cycles/persistCalls: the engine's Ready cycles and log-store persist calls)
 * Errors: {"ok":false,"error":"<tag>","message":..., "leaderId"?, "term"?}
 * (e.g. "NotLeader" with the leader hint, "RaftTimeout": outcome unknown).
 *
 * Pipelining: a client may write many requests without waiting; they are
 * handled concurrently and the replies come back in request order (each
 * connection writes the ready prefix of its replies in one write). A get
 * waits until the earlier puts of its connection are answered, so a
 * pipelined get reads the connection's own earlier writes.
 *
 * Batching (`--max-batch`, default env CHRONIK_RAFTKV_MAX_BATCH or 1000; 1 disables it): the puts that
 * arrive during one event-loop turn, from every connection, are proposed as
 * ONE Raft entry (at most `--max-batch` commands / 256 KiB per entry) and
 * applied in arrival order by `BatchingKvStateMachine`; each put still gets
 * its own reply, with the shared entry's index. This amortizes the engine's
 * per-proposal cost (driver event, Deferred, timeout fiber, pending entry)
 * over the batch. A single put is still a plain `encodeKvCommand` entry. A
 * failed proposal fails every put of its batch with the same error (e.g.
 * "NotLeader": not appended; "RaftTimeout": outcome unknown for all).
 *
 * With env CHRONIK_EXIT_WITH_PARENT=1 the process exits when its parent
 * dies (checked every 500 ms; for harnesses such as bench/raft-tcp.ts).
 *
 * Prints one line `READY {"id":..,"clientPort":..,"raftPort":..}` on stdout
 * once the client port listens.
 */
import * as net from "node:net"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import type { Entry, NodeId } from "../src/raft/core/types.js"
import type { KvCommand, KvResult } from "../src/raft/KvStateMachine.js"
import { encodeKvCommand, KvStateMachine } from "../src/raft/KvStateMachine.js"
import * as RaftEngine from "../src/raft/RaftEngine.js"
import { layerFile } from "../src/raft/RaftLogStoreFile.js"
import * as RaftTransport from "../src/raft/RaftTransport.js"
import type { TcpAddress } from "../src/raft/TcpTransport.js"
import { layerFileIO, layerNodeFileIO } from "../src/storage/LogStore.js"
import { defaults, StorageConfig } from "../src/storage/StorageConfig.js"

export const KV_GROUP = "kv"

export interface RaftKvNodeOptions {
  readonly id: NodeId
  readonly peers: ReadonlyMap<NodeId, TcpAddress>
  readonly dataDir: string
  readonly clientHost: string
  readonly clientPort: number
  readonly electionTimeoutMs: number
  readonly heartbeatMs: number
  /** Max puts per Raft entry (1 = no batching). */
  readonly maxBatch: number
}

const usage =
  "usage: RaftKvNode --id N --peers 1=host:port,2=host:port,... --data-dir DIR --client-port P " +
  "[--election-timeout-ms 1000] [--heartbeat-ms 100] [--host 127.0.0.1] [--max-batch 1000]"

/** Default of `--max-batch`: env CHRONIK_RAFTKV_MAX_BATCH (lets a harness that builds the command line pick it), else 1000. */
const envMaxBatch = (): number => {
  const n = Number(process.env.CHRONIK_RAFTKV_MAX_BATCH ?? "1000")
  return Number.isSafeInteger(n) && n >= 1 ? n : 1000
}

export const parseArgs = (argv: ReadonlyArray<string>): RaftKvNodeOptions => {
  const m = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}\n${usage}`)
    const v = argv[i + 1]
    if (v === undefined) throw new Error(`missing value for ${a}\n${usage}`)
    m.set(a.slice(2), v)
    i++
  }
  const req = (k: string): string => {
    const v = m.get(k)
    if (v === undefined) throw new Error(`missing --${k}\n${usage}`)
    return v
  }
  const int = (k: string, d?: number): number => {
    const s = m.get(k)
    if (s === undefined && d !== undefined) return d
    const n = Number(s ?? req(k))
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${k}: not a non-negative integer: ${s}`)
    return n
  }
  const peers = new Map<NodeId, TcpAddress>()
  for (const part of req("peers").split(",")) {
    const match = /^(\d+)=(.+):(\d+)$/.exec(part.trim())
    if (match === null) throw new Error(`--peers: bad entry "${part}" (want id=host:port)`)
    peers.set(Number(match[1]), { host: match[2]!, port: Number(match[3]) })
  }
  const id = int("id")
  if (!peers.has(id)) throw new Error(`--peers has no entry for --id ${id}`)
  return {
    id,
    peers,
    dataDir: req("data-dir"),
    clientHost: m.get("host") ?? "127.0.0.1",
    clientPort: int("client-port"),
    electionTimeoutMs: int("election-timeout-ms", 1000),
    heartbeatMs: int("heartbeat-ms", 100),
    maxBatch: Math.max(1, int("max-batch", envMaxBatch()))
  }
}

/** The node's layers: engine <- TCP transport + file log store (storage engine on node:fs). */
export const nodeLayer = (o: RaftKvNodeOptions) => {
  const storage = Layer.merge(layerNodeFileIO, Layer.succeed(StorageConfig, { ...defaults, dataDir: o.dataDir }))
  const logStore = layerFile.pipe(Layer.provide(layerFileIO.pipe(Layer.provideMerge(storage))))
  const transport = RaftTransport.layerTcp({
    nodeId: o.id,
    listen: o.peers.get(o.id)!,
    peers: (p) => o.peers.get(p),
    knownPeers: [...o.peers.keys()].filter((p) => p > o.id)
  })
  return RaftEngine.layer({
    nodeId: o.id,
    tickMs: o.heartbeatMs,
    electionTicks: Math.max(2, Math.round(o.electionTimeoutMs / o.heartbeatMs)),
    heartbeatTicks: 1
  }).pipe(Layer.provide(Layer.merge(transport, logStore)))
}

type Reply = Record<string, unknown>

const errorReply = (e: unknown): Reply => {
  const err = e as { _tag?: unknown; message?: unknown; leaderId?: unknown; term?: unknown }
  return {
    ok: false,
    error: typeof err?._tag === "string" ? err._tag : "Error",
    message: typeof err?.message === "string" ? err.message : String(e),
    ...(typeof err?.leaderId === "number" ? { leaderId: err.leaderId } : {}),
    ...(typeof err?.term === "number" ? { term: err.term } : {})
  }
}

// ---------------------------------------------------------------------------
// Batched puts: one Raft entry carries many KV commands

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** First byte of a batch entry (a plain `encodeKvCommand` entry is JSON and starts with `{`). */
const BATCH_MARK = 0

/** A batch entry: BATCH_MARK, then the JSON array of the commands. */
export const encodeKvBatch = (cmds: ReadonlyArray<KvCommand>): Uint8Array => {
  const json = encoder.encode(JSON.stringify(cmds))
  const out = new Uint8Array(json.length + 1)
  out[0] = BATCH_MARK
  out.set(json, 1)
  return out
}

const decodeKvBatch = (data: Uint8Array): ReadonlyArray<KvCommand> | undefined => {
  try {
    const v = JSON.parse(decoder.decode(data.subarray(1))) as unknown
    return Array.isArray(v) ? (v as ReadonlyArray<KvCommand>) : undefined
  } catch {
    return undefined
  }
}

/**
 * `KvStateMachine` plus batch entries: a plain entry applies as before (result
 * `KvResult`); a batch entry applies its commands in order with the same
 * put/cas semantics (result `Array<KvResult>`, all with the entry's index).
 * Snapshots are the inner machine's (the map is shared).
 */
export class BatchingKvStateMachine implements RaftEngine.StateMachine<KvResult | ReadonlyArray<KvResult>> {
  readonly inner = new KvStateMachine()

  get(key: string): string | null {
    return this.inner.get(key)
  }

  apply(entry: Entry): KvResult | ReadonlyArray<KvResult> {
    if (entry.data.length === 0 || entry.data[0] !== BATCH_MARK) return this.inner.apply(entry)
    this.inner.appliedIndex = entry.index
    const cmds = decodeKvBatch(entry.data)
    if (cmds === undefined) return []
    const map = this.inner.map
    return cmds.map((c): KvResult => {
      const ok = typeof c === "object" && c !== null && (c.op === "put" || c.op === "cas")
      if (!ok || typeof c.key !== "string" || typeof c.value !== "string") {
        return { ok: false, previous: null, index: entry.index }
      }
      const previous = map.get(c.key) ?? null
      if (c.op === "put" || previous === c.expected) {
        map.set(c.key, c.value)
        return { ok: true, previous, index: entry.index }
      }
      return { ok: false, previous, index: entry.index }
    })
  }

  snapshot(): Uint8Array {
    return this.inner.snapshot()
  }

  restore(data: Uint8Array): void {
    this.inner.restore(data)
  }
}

const MAX_BATCH_BYTES = 256 * 1024

/**
 * Collects the puts of one event-loop turn (flushed from `setImmediate`, so
 * every socket read in the same poll phase contributes) and proposes them as
 * one entry. Under load the turns get longer and the batches bigger.
 */
class PutBatcher {
  private queue: Array<{ readonly cmd: KvCommand; readonly bytes: number; readonly resolve: (r: Reply) => void }> = []
  private scheduled = false

  constructor(
    private readonly engine: RaftEngine.RaftEngineShape,
    private readonly maxBatch: number
  ) {}

  add(cmd: KvCommand): Promise<Reply> {
    return new Promise<Reply>((resolve) => {
      this.queue.push({ cmd, bytes: cmd.key.length + cmd.value.length + 32, resolve })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  private flush(): void {
    this.scheduled = false
    const all = this.queue
    this.queue = []
    let i = 0
    while (i < all.length) {
      let bytes = 0
      let j = i
      while (j < all.length && j - i < this.maxBatch && (j === i || bytes + all[j]!.bytes <= MAX_BATCH_BYTES)) {
        bytes += all[j]!.bytes
        j++
      }
      this.propose(all.slice(i, j))
      i = j
    }
  }

  private propose(batch: ReadonlyArray<{ readonly cmd: KvCommand; readonly resolve: (r: Reply) => void }>): void {
    const data = batch.length === 1 ? encodeKvCommand(batch[0]!.cmd) : encodeKvBatch(batch.map((b) => b.cmd))
    void Effect.runPromise(Effect.either(this.engine.propose(KV_GROUP, data))).then(
      (res) => {
        if (res._tag === "Left") {
          const r = errorReply(res.left)
          for (const b of batch) b.resolve(r)
          return
        }
        const results = res.right as KvResult | ReadonlyArray<KvResult>
        batch.forEach((b, k) => {
          const kv = Array.isArray(results) ? (results as ReadonlyArray<KvResult>)[k] : (results as KvResult)
          b.resolve(
            kv === undefined
              ? { ok: false, error: "BadEntry", message: "no result for this command" }
              : { ok: true, result: { index: kv.index, previous: kv.previous } }
          )
        })
      },
      (e: unknown) => {
        const r = errorReply(e)
        for (const b of batch) b.resolve(r)
      }
    )
  }
}

// ---------------------------------------------------------------------------
// Requests

interface Handler {
  readonly engine: RaftEngine.RaftEngineShape
  readonly sm: BatchingKvStateMachine
  readonly puts: PutBatcher
}

/** Per connection: the last put, so that a later get on the same connection reads it. */
interface ConnState {
  lastPut: Promise<Reply> | undefined
}

const handle = (h: Handler, conn: ConnState, line: string): Reply | Promise<Reply> => {
  const { engine, sm } = h
  let req: { op?: unknown; key?: unknown; value?: unknown }
  try {
    req = JSON.parse(line) as typeof req
  } catch {
    return { ok: false, error: "BadRequest", message: "not JSON" }
  }
  const ok = (result: unknown): Reply => ({ ok: true, result })
  const run = (eff: Effect.Effect<Reply>): Promise<Reply> => Effect.runPromise(eff).catch((e: unknown) => errorReply(e))
  switch (req?.op) {
    case "put":
      if (typeof req.key !== "string" || typeof req.value !== "string") break
      return (conn.lastPut = h.puts.add({ op: "put", key: req.key, value: req.value }))
    case "get": {
      if (typeof req.key !== "string") break
      const key = req.key
      const read = () =>
        run(
          engine.readIndex(KV_GROUP).pipe(
            Effect.map(() => ok(sm.get(key))),
            Effect.catchAll((e) => Effect.succeed(errorReply(e)))
          )
        )
      // Read-your-writes on a pipelined connection: the ReadIndex starts once the earlier puts are answered.
      return conn.lastPut === undefined ? read() : conn.lastPut.then(read)
    }
    case "status":
      return run(
        Effect.zip(engine.figures(KV_GROUP), engine.engineFigures).pipe(
          Effect.map(([f, e]) =>
            ok({
              id: engine.nodeId,
              role: f.role,
              leader: f.leader,
              term: f.term,
              commitIndex: f.commitIndex,
              appliedIndex: f.appliedIndex,
              lastIndex: f.lastIndex,
              proposals: f.proposals,
              cycles: e.cycles,
              persistCalls: e.persistCalls
            })
          ),
          Effect.catchAll((e) => Effect.succeed(errorReply(e)))
        )
      )
  }
  return { ok: false, error: "BadRequest", message: `bad request: ${line.slice(0, 200)}` }
}

/**
 * Serves the line protocol; closed with the scope. Requests of one connection
 * run concurrently (pipelining); replies go back in request order: a slot per
 * request, and whenever the oldest slots are filled they leave in one write.
 */
const serveClients = (o: RaftKvNodeOptions, h: Handler) =>
  Effect.acquireRelease(
    Effect.async<net.Server, Error>((resume) => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer((socket) => {
        sockets.add(socket)
        socket.setNoDelay(true)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => socket.destroy())
        let buf = ""
        const conn: ConnState = { lastPut: undefined }
        const slots: Array<{ text: string | undefined }> = []
        let head = 0
        const flushReplies = () => {
          let out = ""
          while (head < slots.length && slots[head]!.text !== undefined) out += slots[head++]!.text
          if (head > 1024 && head * 2 > slots.length) {
            slots.splice(0, head)
            head = 0
          }
          if (out !== "" && !socket.destroyed) socket.write(out)
        }
        socket.on("data", (chunk: Buffer) => {
          buf += chunk.toString("utf8")
          let nl: number
          let start = 0
          let filled = false
          while ((nl = buf.indexOf("\n", start)) >= 0) {
            const line = buf.slice(start, nl).trim()
            start = nl + 1
            if (line === "") continue
            const slot: { text: string | undefined } = { text: undefined }
            slots.push(slot)
            const reply = handle(h, conn, line)
            if (reply instanceof Promise) {
              void reply.then((r) => {
                slot.text = JSON.stringify(r) + "\n"
                flushReplies()
              })
            } else {
              slot.text = JSON.stringify(reply) + "\n"
              filled = true
            }
          }
          buf = start === 0 ? buf : buf.slice(start)
          if (filled) flushReplies()
        })
      })
      server.on("close", () => sockets.forEach((s) => s.destroy()))
      server.once("error", (e) => resume(Effect.fail(e)))
      server.listen(o.clientPort, o.clientHost, () => {
        ;(server as net.Server & { sockets?: Set<net.Socket> }).sockets = sockets
        resume(Effect.succeed(server))
      })
    }),
    (server) =>
      Effect.sync(() => {
        ;(server as net.Server & { sockets?: Set<net.Socket> }).sockets?.forEach((s) => s.destroy())
        server.close()
      })
  )

export const program = (o: RaftKvNodeOptions) =>
  Effect.gen(function* () {
    const engine = yield* RaftEngine.RaftEngine
    const sm = new BatchingKvStateMachine()
    yield* engine.createGroup(KV_GROUP, { voters: [...o.peers.keys()].sort((a, b) => a - b), stateMachine: sm })
    yield* serveClients(o, { engine, sm, puts: new PutBatcher(engine, o.maxBatch) })
    process.stdout.write(
      `READY ${JSON.stringify({ id: o.id, clientPort: o.clientPort, raftPort: o.peers.get(o.id)!.port })}\n`
    )
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(nodeLayer(o)))

const isMain = process.argv[1] !== undefined && /RaftKvNode\.[cm]?[jt]s$/.test(process.argv[1])
if (isMain) {
  let options: RaftKvNodeOptions
  try {
    options = parseArgs(process.argv.slice(2))
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(2)
  }
  // Harness option: die with the parent (a benchmark SIGKILLed by its runner must not leave nodes behind).
  if (process.env.CHRONIK_EXIT_WITH_PARENT === "1") {
    const parent = process.ppid
    setInterval(() => {
      if (process.ppid !== parent) process.exit(1)
    }, 500).unref()
  }
  NodeRuntime.runMain(program(options))
}
