/**
 * One Raft KV node as an OS process: group "kv" (`KvStateMachine`) on the
 * RaftEngine with the real TCP transport (`RaftTransport.layerTcp`) and the
 * file log store (`RaftLogStoreFile.layerFile` over the storage engine), on
 * the live Clock.
 *
 *   node --import tsx layers/RaftKvNode.ts --id 1 \
 *     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
 *     --data-dir /tmp/n1 --client-port 8001 \
 *     [--election-timeout-ms 1000] [--heartbeat-ms 100] [--host 127.0.0.1]
 *
 * The Raft listen address is this node's own entry in `--peers`. Every peer
 * in `--peers` is a voter of "kv"; a restart with the same data dir recovers
 * the group from its log.
 *
 * Client protocol on `--client-port` (plain TCP, one JSON object per line,
 * one JSON line back per request, in order):
 *   {"op":"put","key":k,"value":v}   -> {"ok":true,"result":{"index":n,"previous":p}}
 *   {"op":"get","key":k}             -> {"ok":true,"result":v|null}  (ReadIndex: linearizable)
 *   {"op":"status"}                  -> {"ok":true,"result":{id,role,leader,term,commitIndex,appliedIndex,lastIndex}}
 * Errors: {"ok":false,"error":"<tag>","message":..., "leaderId"?, "term"?}
 * (e.g. "NotLeader" with the leader hint, "RaftTimeout": outcome unknown).
 *
 * Prints one line `READY {"id":..,"clientPort":..,"raftPort":..}` on stdout
 * once the client port listens.
 */
import * as net from "node:net"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import type { NodeId } from "../src/raft/core/types.js"
import type { KvResult } from "../src/raft/KvStateMachine.js"
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
}

const usage =
  "usage: RaftKvNode --id N --peers 1=host:port,2=host:port,... --data-dir DIR --client-port P " +
  "[--election-timeout-ms 1000] [--heartbeat-ms 100] [--host 127.0.0.1]"

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
    heartbeatMs: int("heartbeat-ms", 100)
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

const handle = (engine: RaftEngine.RaftEngineShape, sm: KvStateMachine, line: string): Effect.Effect<Reply> => {
  let req: { op?: unknown; key?: unknown; value?: unknown }
  try {
    req = JSON.parse(line) as typeof req
  } catch {
    return Effect.succeed({ ok: false, error: "BadRequest", message: "not JSON" })
  }
  const ok = (result: unknown): Reply => ({ ok: true, result })
  switch (req?.op) {
    case "put":
      if (typeof req.key !== "string" || typeof req.value !== "string") break
      return engine.propose(KV_GROUP, encodeKvCommand({ op: "put", key: req.key, value: req.value })).pipe(
        Effect.map((r) => {
          const kv = r as KvResult
          return ok({ index: kv.index, previous: kv.previous })
        }),
        Effect.catchAll((e) => Effect.succeed(errorReply(e)))
      )
    case "get": {
      if (typeof req.key !== "string") break
      const key = req.key
      return engine.readIndex(KV_GROUP).pipe(
        Effect.map(() => ok(sm.get(key))),
        Effect.catchAll((e) => Effect.succeed(errorReply(e)))
      )
    }
    case "status":
      return engine.figures(KV_GROUP).pipe(
        Effect.map((f) =>
          ok({
            id: engine.nodeId,
            role: f.role,
            leader: f.leader,
            term: f.term,
            commitIndex: f.commitIndex,
            appliedIndex: f.appliedIndex,
            lastIndex: f.lastIndex
          })
        ),
        Effect.catchAll((e) => Effect.succeed(errorReply(e)))
      )
  }
  return Effect.succeed({ ok: false, error: "BadRequest", message: `bad request: ${line.slice(0, 200)}` })
}

/** Serves the line protocol; closed with the scope. */
const serveClients = (o: RaftKvNodeOptions, engine: RaftEngine.RaftEngineShape, sm: KvStateMachine) =>
  Effect.acquireRelease(
    Effect.async<net.Server, Error>((resume) => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer((socket) => {
        sockets.add(socket)
        socket.setNoDelay(true)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => socket.destroy())
        let buf = ""
        // Replies go back in request order: each request chains on the previous one.
        let chain: Promise<void> = Promise.resolve()
        socket.on("data", (chunk: Buffer) => {
          buf += chunk.toString("utf8")
          let nl: number
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim()
            buf = buf.slice(nl + 1)
            if (line === "") continue
            const reply = Effect.runPromise(handle(engine, sm, line))
            chain = chain
              .then(() => reply)
              .then((r) => {
                if (!socket.destroyed) socket.write(JSON.stringify(r) + "\n")
              })
          }
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
    const sm = new KvStateMachine()
    yield* engine.createGroup(KV_GROUP, { voters: [...o.peers.keys()].sort((a, b) => a - b), stateMachine: sm })
    yield* serveClients(o, engine, sm)
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
  NodeRuntime.runMain(program(options))
}
