/**
 * node:net Raft transport.
 *
 * - ONE connection per node pair, multiplexing every group: the node with the
 *   lower id dials the higher one (eagerly, and again after every disconnect
 *   with exponential backoff); the higher id accepts. Both directions use the
 *   same socket. The first frame on a connection is a Hello (node id,
 *   cluster id); a newer connection from the same peer replaces the old one
 *   (the peer restarted).
 * - Frames are length-prefixed binary (messageCodec.ts) with an optional W3C
 *   traceparent per frame.
 * - Each peer has a bounded outbound queue of encoded frames. When full, the
 *   oldest frame is dropped (Raft retransmits) and counted. Queued frames are
 *   flushed once per event-loop turn with cork/uncork (coalesced writes);
 *   `write() === false` stops flushing until 'drain'.
 * - Inbound frames are decoded with plain functions and offered to a bounded
 *   queue; overflow drops (counted).
 */
import * as net from "node:net"
import { Data, Effect, Either, Queue } from "effect"
import type * as Scope from "effect/Scope"
import type { Message, NodeId } from "./core/types.js"
import { decodeFrameBody, encodeHelloFrame, FrameSplitter, RaftCodecError, Writer, writeMessagesFrame } from "./messageCodec.js"
import type { InboundBatch, RaftTransportShape, SendOptions } from "./RaftTransport.js"
import { currentTraceparent, groupByDestination, StatsCounter } from "./RaftTransport.js"

export interface TcpAddress {
  readonly host: string
  readonly port: number
}

export interface TcpTransportOptions {
  readonly nodeId: NodeId
  /** Where to listen; port 0 picks a free port (see `TcpTransportShape.address`). */
  readonly listen: TcpAddress
  /** Address of a peer, looked up at every (re)connect. */
  readonly peers: (id: NodeId) => TcpAddress | undefined
  /** Peers this node dials eagerly (those with a higher id); others are dialed on first send. */
  readonly knownPeers?: ReadonlyArray<NodeId>
  /** Rejects connections from another cluster. Default "chronik". */
  readonly clusterId?: string
  /** Max frames queued per peer before dropping the oldest. Default 4096. */
  readonly maxQueuedFrames?: number
  /** Inbound queue capacity (batches). Default 8192. */
  readonly inboundCapacity?: number
  readonly reconnectBaseMs?: number
  readonly reconnectMaxMs?: number
  readonly maxFrameBytes?: number
  /** Attach the current span's traceparent to frames. Default true. */
  readonly tracing?: boolean
}

export class TransportBindError extends Data.TaggedError("TransportBindError")<{
  readonly address: TcpAddress
  readonly cause: unknown
}> {}

export interface TcpTransportShape extends RaftTransportShape {
  /** The bound listen address. */
  readonly address: TcpAddress
}

interface Peer {
  readonly id: NodeId
  socket: net.Socket | null
  /** Frames waiting for the socket, with their message counts. */
  queue: Array<Buffer>
  counts: Array<number>
  writable: boolean
  flushScheduled: boolean
  dialing: boolean
  backoffMs: number
  timer: NodeJS.Timeout | null
}

export const makeTcpTransport = (
  options: TcpTransportOptions
): Effect.Effect<TcpTransportShape, TransportBindError, Scope.Scope> =>
  Effect.gen(function* () {
    const self = options.nodeId
    const clusterId = options.clusterId ?? "chronik"
    const maxQueued = options.maxQueuedFrames ?? 4096
    const baseMs = options.reconnectBaseMs ?? 50
    const maxMs = options.reconnectMaxMs ?? 2000
    const tracing = options.tracing ?? true
    const stats = new StatsCounter()
    const inbound = yield* Queue.bounded<InboundBatch>(options.inboundCapacity ?? 8192)
    const peers = new Map<NodeId, Peer>()
    const sockets = new Set<net.Socket>()
    let closed = false

    const peer = (id: NodeId): Peer => {
      let p = peers.get(id)
      if (p === undefined) {
        p = { id, socket: null, queue: [], counts: [], writable: false, flushScheduled: false, dialing: false, backoffMs: baseMs, timer: null }
        peers.set(id, p)
        if (self < id) dial(p)
      }
      return p
    }

    const flush = (p: Peer): void => {
      p.flushScheduled = false
      const s = p.socket
      if (s === null || !p.writable || p.queue.length === 0) return
      const frames = p.queue
      const counts = p.counts
      p.queue = []
      p.counts = []
      s.cork()
      let i = 0
      for (; i < frames.length; i++) {
        const f = frames[i]!
        stats.bytesSent += f.length
        if (!s.write(f)) {
          i++
          p.writable = false
          break
        }
      }
      s.uncork()
      if (i < frames.length) {
        p.queue = frames.slice(i).concat(p.queue)
        p.counts = counts.slice(i).concat(p.counts)
      }
    }

    const scheduleFlush = (p: Peer): void => {
      if (p.flushScheduled || p.socket === null || !p.writable) return
      p.flushScheduled = true
      setImmediate(() => flush(p))
    }

    const attach = (p: Peer, s: net.Socket): void => {
      if (p.socket !== null && p.socket !== s) p.socket.destroy()
      p.socket = s
      p.writable = true
      p.backoffMs = baseMs
      stats.connects++
      stats.connectedPeers = [...peers.values()].filter((x) => x.socket !== null).length
      s.on("drain", () => {
        if (p.socket !== s) return
        p.writable = true
        scheduleFlush(p)
      })
      scheduleFlush(p)
    }

    const detach = (p: Peer, s: net.Socket): void => {
      if (p.socket !== s) return
      p.socket = null
      p.writable = false
      stats.connectedPeers = [...peers.values()].filter((x) => x.socket !== null).length
      if (self < p.id) scheduleRedial(p)
    }

    const scheduleRedial = (p: Peer): void => {
      if (closed || p.timer !== null || p.dialing) return
      const delay = p.backoffMs
      p.backoffMs = Math.min(maxMs, p.backoffMs * 2)
      p.timer = setTimeout(() => {
        p.timer = null
        dial(p)
      }, delay)
    }

    /** Reads frames from `s`; `onHello` is called for the first frame when the peer is not yet known. */
    const reader = (s: net.Socket, known: Peer | null): void => {
      const splitter = new FrameSplitter(options.maxFrameBytes)
      let p = known
      s.on("data", (chunk: Buffer) => {
        stats.bytesReceived += chunk.length
        splitter.push(chunk)
        for (;;) {
          const body = splitter.next()
          if (body === undefined) return
          if (body instanceof RaftCodecError) {
            s.destroy()
            return
          }
          const decoded = decodeFrameBody(body)
          if (Either.isLeft(decoded)) {
            s.destroy()
            return
          }
          const frame = decoded.right
          if (frame.kind === "Hello") {
            if (frame.clusterId !== clusterId || frame.nodeId === self) {
              s.destroy()
              return
            }
            if (p === null) {
              p = peer(frame.nodeId)
              attach(p, s)
            }
            continue
          }
          if (p === null || frame.to !== self) {
            s.destroy()
            return
          }
          stats.framesReceived++
          stats.messagesReceived += frame.messages.length
          if (!Queue.unsafeOffer(inbound, { from: frame.from, messages: frame.messages, traceparent: frame.traceparent })) {
            stats.dropped += frame.messages.length
          }
        }
      })
    }

    const dial = (p: Peer): void => {
      if (closed || p.dialing || p.socket !== null) return
      const addr = options.peers(p.id)
      if (addr === undefined) {
        scheduleRedial(p)
        return
      }
      p.dialing = true
      const s = net.connect({ host: addr.host, port: addr.port })
      sockets.add(s)
      s.setNoDelay(true)
      let connected = false
      s.once("connect", () => {
        connected = true
        p.dialing = false
        s.write(encodeHelloFrame(self, clusterId))
        attach(p, s)
      })
      reader(s, p)
      s.on("error", () => {})
      s.once("close", () => {
        sockets.delete(s)
        if (!connected) {
          p.dialing = false
          scheduleRedial(p)
        } else detach(p, s)
      })
    }

    const server = net.createServer((s) => {
      if (closed) {
        s.destroy()
        return
      }
      sockets.add(s)
      s.setNoDelay(true)
      s.on("error", () => {})
      reader(s, null)
      s.once("close", () => {
        sockets.delete(s)
        for (const p of peers.values()) detach(p, s)
      })
    })

    const address = yield* Effect.async<TcpAddress, TransportBindError>((resume) => {
      const onError = (cause: unknown) => resume(Effect.fail(new TransportBindError({ address: options.listen, cause })))
      server.once("error", onError)
      server.listen(options.listen.port, options.listen.host, () => {
        server.off("error", onError)
        const a = server.address() as net.AddressInfo
        resume(Effect.succeed({ host: options.listen.host, port: a.port }))
      })
    })

    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        closed = true
        for (const p of peers.values()) if (p.timer !== null) clearTimeout(p.timer)
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      }).pipe(Effect.andThen(Queue.shutdown(inbound)))
    )

    for (const id of options.knownPeers ?? []) if (id !== self) peer(id)

    const enqueue = (to: NodeId, list: ReadonlyArray<Message>, traceparent: string | undefined): void => {
      stats.framesSent++
      stats.messagesSent += list.length
      if (to === self) {
        Queue.unsafeOffer(inbound, { from: self, messages: list, traceparent })
        return
      }
      const w = new Writer(64 + list.length * 24)
      writeMessagesFrame(w, self, to, list, traceparent)
      const p = peer(to)
      p.queue.push(w.finish())
      p.counts.push(list.length)
      while (p.queue.length > maxQueued) {
        p.queue.shift()
        stats.dropped += p.counts.shift() ?? 0
      }
      scheduleFlush(p)
    }

    const send = (messages: ReadonlyArray<Message>, sendOptions?: SendOptions): Effect.Effect<void> =>
      messages.length === 0
        ? Effect.void
        : Effect.flatMap(
            sendOptions?.traceparent !== undefined || !tracing
              ? Effect.succeed(sendOptions?.traceparent)
              : currentTraceparent,
            (tp) =>
              Effect.sync(() => {
                if (closed) return
                for (const [to, list] of groupByDestination(messages)) enqueue(to, list, tp)
              })
          )

    return {
      nodeId: self,
      address,
      send,
      inbound,
      stats: Effect.sync(() => stats.snapshot())
    }
  })
