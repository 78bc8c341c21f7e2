/**
 * RaftTransport: moves core `Message`s between the nodes of a cluster.
 *
 * - `send(messages)` is fire-and-forget: Raft tolerates loss, duplication and
 *   reordering, so the transport never blocks the engine. Messages are grouped
 *   by destination; all messages of one `send` call to one node travel as one
 *   frame (this is what coalesces the heartbeats of many groups into one
 *   message per node pair per tick).
 * - `inbound` yields batches of messages addressed to this node.
 *
 * Layers:
 * - `layerMemory(network, nodeId)`: an in-process network shared by N nodes
 *   (`MemoryNetwork`), with seeded fault injection on the Effect Clock.
 * - `layerTcp(options)`: node:net, one connection per node pair multiplexing
 *   every group, length-prefixed binary frames (see messageCodec.ts).
 * - `layerNone(nodeId)`: a node without peers (a standalone broker, whose
 *   groups have this node as their only member): nothing arrives, and a
 *   message to another node is dropped and counted.
 */
import { Context, Effect, Layer } from "effect"
import * as Queue from "effect/Queue"
import type { Message, NodeId } from "./core/types.js"
import type { MemoryNetwork } from "./MemoryNetwork.js"
import { makeMemoryTransport } from "./MemoryNetwork.js"
import type { TcpTransportOptions, TransportBindError } from "./TcpTransport.js"
import { makeTcpTransport } from "./TcpTransport.js"

/** Messages from one peer that arrived together (one frame). */
export interface InboundBatch {
  readonly from: NodeId
  readonly messages: ReadonlyArray<Message>
  /** W3C traceparent of the frame, when the sender had a span. */
  readonly traceparent: string | undefined
}

/** Counters of a transport (monotonic unless noted). */
export interface TransportStats {
  /** Frames handed to the wire (one per destination per `send`). */
  readonly framesSent: number
  readonly messagesSent: number
  readonly bytesSent: number
  readonly framesReceived: number
  readonly messagesReceived: number
  readonly bytesReceived: number
  /** Messages dropped by this transport (queue overflow, peer unknown/unreachable, faults). */
  readonly dropped: number
  /** Successful (re)connections (TCP). */
  readonly connects: number
  /** Currently connected peers (gauge, TCP). */
  readonly connectedPeers: number
}

export interface SendOptions {
  /** W3C traceparent to attach to the frame(s). */
  readonly traceparent?: string
}

export interface RaftTransportShape {
  readonly nodeId: NodeId
  /** Fire-and-forget: never fails, never waits for the network. */
  readonly send: (messages: ReadonlyArray<Message>, options?: SendOptions) => Effect.Effect<void>
  /** Inbound batches for this node. */
  readonly inbound: Queue.Dequeue<InboundBatch>
  readonly stats: Effect.Effect<TransportStats>
}

export class RaftTransport extends Context.Tag("chronik/RaftTransport")<RaftTransport, RaftTransportShape>() {}

export const emptyStats: TransportStats = {
  framesSent: 0,
  messagesSent: 0,
  bytesSent: 0,
  framesReceived: 0,
  messagesReceived: 0,
  bytesReceived: 0,
  dropped: 0,
  connects: 0,
  connectedPeers: 0
}

/** Mutable counters behind `TransportStats`. */
export class StatsCounter {
  framesSent = 0
  messagesSent = 0
  bytesSent = 0
  framesReceived = 0
  messagesReceived = 0
  bytesReceived = 0
  dropped = 0
  connects = 0
  connectedPeers = 0
  snapshot(): TransportStats {
    return {
      framesSent: this.framesSent,
      messagesSent: this.messagesSent,
      bytesSent: this.bytesSent,
      framesReceived: this.framesReceived,
      messagesReceived: this.messagesReceived,
      bytesReceived: this.bytesReceived,
      dropped: this.dropped,
      connects: this.connects,
      connectedPeers: this.connectedPeers
    }
  }
}

/** Groups messages by destination, keeping their order. */
export const groupByDestination = (messages: ReadonlyArray<Message>): Map<NodeId, Array<Message>> => {
  const out = new Map<NodeId, Array<Message>>()
  for (const m of messages) {
    const list = out.get(m.to)
    if (list === undefined) out.set(m.to, [m])
    else list.push(m)
  }
  return out
}

/** `00-<trace>-<span>-01` for the current span, if any. */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.map(Effect.currentSpan, (span) =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
).pipe(Effect.orElseSucceed(() => undefined))

/** This node's endpoint on a shared in-memory network. */
export const layerMemory = (network: MemoryNetwork, nodeId: NodeId): Layer.Layer<RaftTransport> =>
  Layer.scoped(RaftTransport, makeMemoryTransport(network, nodeId))

/** node:net transport; see `TcpTransportOptions`. */
export const layerTcp = (options: TcpTransportOptions): Layer.Layer<RaftTransport, TransportBindError> =>
  Layer.scoped(RaftTransport, makeTcpTransport(options))

/** A node with no peers: see the module comment. */
export const layerNone = (nodeId: NodeId): Layer.Layer<RaftTransport> =>
  Layer.effect(
    RaftTransport,
    Effect.map(Queue.unbounded<InboundBatch>(), (inbound) => {
      let dropped = 0
      return {
        nodeId,
        send: (messages) =>
          Effect.sync(() => {
            dropped += messages.length
          }),
        inbound,
        stats: Effect.sync(() => ({ ...emptyStats, dropped }))
      }
    })
  )
