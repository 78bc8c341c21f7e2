/**
 * The Kafka data-plane transport: accepts connections, frames requests
 * (4-byte size prefix), hands each request frame to a {@link RequestHandler}
 * and writes its responses back in request order.
 *
 * The transport never parses beyond the size prefix; the handler (the
 * request router) decides everything protocol-level.
 *
 * Layers:
 * - {@link layerNode}: node:net, with read pausing on write backpressure and
 *   on the per-connection in-flight bound, coalesced writes, idle timeout and
 *   graceful shutdown. (`@effect/platform-node`'s `NodeSocketServer` is not
 *   used: it never pauses reading and awaits each write.)
 * - {@link layerMemory}: the same engine over in-process buffers, plus
 *   {@link MemoryKafkaTransport} to open client connections from tests.
 *
 * See docs/transport.md.
 */
import { Clock, Context, Duration, Effect, Layer, Runtime, Tracer } from "effect"
import type { Scope } from "effect"
import {
  TransportAlreadyServing,
  TransportBindError,
  TransportConnectionClosed,
  TransportNotServing
} from "./errors.js"
import { MemoryHub } from "./internal/memory.js"
import * as NodeListener from "./internal/node.js"
import { Server } from "./internal/server.js"
import type { Listener } from "./internal/server.js"
import { TransportConfig } from "./TransportConfig.js"
import type { TransportConfigShape } from "./TransportConfig.js"
import { TransportCounters } from "./TransportMetrics.js"
import type { TransportMetrics } from "./TransportMetrics.js"

export { TransportAlreadyServing, TransportBindError, TransportConnectionClosed, TransportNotServing }

// ---------------------------------------------------------------------------
// Handler contract
// ---------------------------------------------------------------------------

/** What a handler knows about, and can do to, the connection a request came on. */
export interface ConnectionContext {
  /** Unique per transport instance, increasing. */
  readonly id: number
  readonly remoteAddress: string
  readonly remotePort: number
  /**
   * Closes the connection now (logged as a warning with the reason), e.g. for
   * a request that cannot be parsed. Responses not yet written are dropped and
   * the handlers still running for this connection are interrupted.
   */
  readonly close: (reason: string) => Effect.Effect<void>
  /** Completes when the connection is closed, for any reason (per-connection state cleanup). */
  readonly closed: Effect.Effect<void>
  readonly isOpen: () => boolean
}

/**
 * Response chunks whose buffers their owner takes back once the transport no
 * longer needs them: `release` runs once, after the bytes were copied or
 * handed to the kernel. A response dropped unwritten (its connection closed)
 * is never released; its buffers are left to the garbage collector.
 */
export class ReleasingResponse {
  constructor(
    readonly chunks: ReadonlyArray<Buffer>,
    readonly release: () => void
  ) {}
}

/**
 * A response frame without its size prefix: one buffer, or chunks written in
 * order without being copied together (Fetch sends record batches this way),
 * possibly with a release callback (Fetch's pooled read buffers).
 */
export type ResponseFrame = Buffer | ReadonlyArray<Buffer> | ReleasingResponse

/** The chunks of a response frame. */
export const responseChunks = (r: ResponseFrame): ReadonlyArray<Buffer> =>
  Buffer.isBuffer(r) ? [r] : r instanceof ReleasingResponse ? r.chunks : (r as ReadonlyArray<Buffer>)

/** The byte length of a response frame. */
export const responseFrameSize = (r: ResponseFrame): number => {
  if (Buffer.isBuffer(r)) return r.length
  let n = 0
  for (const b of responseChunks(r)) n += b.length
  return n
}

/**
 * Handles one request frame.
 *
 * - `frame`: the request bytes after the size prefix. Usually a view into the
 *   socket's read buffer: copy what must outlive the request (a retained
 *   view keeps the whole read chunk alive).
 * - Result: the response bytes without the size prefix (the transport writes
 *   it), as one buffer or a list of chunks, or `null` for "no response"
 *   (Produce with acks=0). Chunks are written as they are: they must not be
 *   changed afterwards.
 *
 * Requests of one connection run concurrently (up to
 * `maxInFlightPerConnection`); their responses are written in request order.
 * The handler must handle its own errors: a defect (or an interruption it did
 * not get from the transport) is logged and closes that connection only.
 * Handlers of a connection that closes are interrupted.
 */
export type RequestHandler = (conn: ConnectionContext, frame: Buffer) => Effect.Effect<ResponseFrame | null>

export interface BoundAddress {
  readonly host: string
  readonly port: number
}

/** A live connection's state, for admin endpoints and tests. */
export interface ConnectionInfo {
  readonly id: number
  readonly remoteAddress: string
  readonly remotePort: number
  /** Requests being handled or awaiting their in-order write. */
  readonly inFlight: number
  /** Reading is paused (in-flight bound, write backpressure, or closing). */
  readonly readPaused: boolean
  /** The last write hit the sink's high-water mark and no 'drain' came yet. */
  readonly writeBlocked: boolean
  /** Received bytes not yet dispatched (partial frame, or frames held back by the in-flight bound). */
  readonly bufferedRequestBytes: number
  /** Response bytes queued in the socket (memory: unread by the client). */
  readonly queuedResponseBytes: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly requests: number
  /** Closing after the in-flight requests (shutdown or peer half-close). */
  readonly closing: boolean
}

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

export interface KafkaTransportService {
  /**
   * Binds and serves `handler` until the scope closes. Closing the scope is a
   * graceful shutdown: stop accepting, stop reading, let in-flight requests
   * finish and their responses flush (bounded by `shutdownTimeoutMs`), close.
   * One handler at a time per transport.
   */
  readonly serve: (
    handler: RequestHandler
  ) => Effect.Effect<BoundAddress, TransportBindError | TransportAlreadyServing, Scope.Scope>
  /** The bound address while serving (port 0 in config resolves to the real port here). */
  readonly address: Effect.Effect<BoundAddress, TransportNotServing>
  /** Open connections. */
  readonly connections: Effect.Effect<number>
  /** Per-connection state. */
  readonly connectionInfo: Effect.Effect<ReadonlyArray<ConnectionInfo>>
  /** Counters for the metrics service (synchronous snapshot). */
  readonly metrics: TransportMetrics
}

export class KafkaTransport extends Context.Tag("chronik/KafkaTransport")<KafkaTransport, KafkaTransportService>() {}

type Listen = (server: Server) => Effect.Effect<Listener, TransportBindError>

const listenerCloseBound = Duration.seconds(5)
/** Wall clock for shutdown bounds, so a `TestClock` cannot stall a scope close. */
const liveClock = Clock.make()

const makeWith = (config: TransportConfigShape, listen: Listen): Effect.Effect<KafkaTransportService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const counters = new TransportCounters()
    let connectionIds = 0
    const nextConnectionId = () => ++connectionIds
    interface Active {
      readonly server: Server
      address: BoundAddress | undefined
      listener: Listener | undefined
    }
    let active: Active | undefined

    const stop = (server: Server, listener: Listener) =>
      Effect.gen(function*() {
        listener.stopAccepting()
        yield* server.shutdown
        yield* listener.awaitClosed.pipe(Effect.interruptible, Effect.timeoutOption(listenerCloseBound), Effect.withClock(liveClock))
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            if (active?.server === server) active = undefined
          })
        )
      )

    const serve = (handler: RequestHandler) =>
      Effect.gen(function*() {
        if (active !== undefined) return yield* new TransportAlreadyServing()
        const runtime = yield* Effect.runtime<never>()
        // Requests are not children of whatever span `serve` was called in.
        const handlerRuntime = Runtime.make({
          context: Context.omit(Tracer.ParentSpan)(runtime.context) as Context.Context<never>,
          fiberRefs: runtime.fiberRefs,
          runtimeFlags: runtime.runtimeFlags
        })
        const clock = yield* Effect.clock
        const server = new Server(config, counters, handler, handlerRuntime, clock, nextConnectionId)
        const entry: Active = { server, address: undefined, listener: undefined }
        active = entry
        const listener = yield* Effect.acquireRelease(
          listen(server).pipe(
            Effect.tapError(() =>
              Effect.sync(() => {
                if (active === entry) active = undefined
              })
            )
          ),
          (listener) => stop(server, listener)
        )
        entry.address = listener.address
        entry.listener = listener
        return listener.address
      })

    const service: KafkaTransportService = {
      serve,
      address: Effect.suspend(() =>
        active?.address !== undefined ? Effect.succeed(active.address) : Effect.fail(new TransportNotServing())
      ),
      connections: Effect.sync(() => (active === undefined ? 0 : active.server.connections.size)),
      connectionInfo: Effect.sync(() =>
        active === undefined ? [] : Array.from(active.server.connections, (c) => c.info())
      ),
      metrics: counters
    }
    // A serve scope that outlives the layer still ends with it (stop is idempotent).
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() =>
        active?.listener === undefined ? Effect.void : stop(active.server, active.listener)
      )
    )
    return service
  })

// ---------------------------------------------------------------------------
// node:net
// ---------------------------------------------------------------------------

/** A transport over node:net, configured by {@link TransportConfig}. */
export const makeNode: Effect.Effect<KafkaTransportService, never, Scope.Scope | TransportConfig> = Effect.flatMap(
  TransportConfig,
  (config) => makeWith(config, NodeListener.listen)
)

export const layerNode: Layer.Layer<KafkaTransport, never, TransportConfig> = Layer.scoped(KafkaTransport, makeNode)

// ---------------------------------------------------------------------------
// memory
// ---------------------------------------------------------------------------

/** A client connection to a memory transport. */
export interface MemoryConnection {
  /** The server-side connection id (as seen by the handler). */
  readonly id: number
  /** Sends one request frame (the size prefix is added). */
  readonly send: (frame: Uint8Array) => Effect.Effect<void, TransportConnectionClosed>
  /** Sends raw bytes (size prefixes included): for framing tests. */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, TransportConnectionClosed>
  /** The next response frame (without size prefix); fails once closed and drained. */
  readonly receive: Effect.Effect<Buffer, TransportConnectionClosed>
  /** Half-close: the server answers what it received, then closes. */
  readonly endInput: Effect.Effect<void>
  /** Closes the connection (the server sees a disconnect). */
  readonly close: Effect.Effect<void>
  /** Completes when the connection is closed by either side. */
  readonly closed: Effect.Effect<void>
  readonly stats: Effect.Effect<{
    /** Bytes written by the client and not yet read by the (paused) server. */
    readonly unsentBytes: number
    /** Response bytes not yet received by the client. */
    readonly unreadBytes: number
    readonly unreadResponses: number
    readonly closed: boolean
  }>
}

export interface MemoryKafkaTransportService {
  /** Opens a client connection to the serving memory transport; closed with the scope. */
  readonly connect: Effect.Effect<MemoryConnection, TransportNotServing, Scope.Scope>
}

/** Client side of {@link layerMemory}. */
export class MemoryKafkaTransport extends Context.Tag("chronik/MemoryKafkaTransport")<
  MemoryKafkaTransport,
  MemoryKafkaTransportService
>() {}

export interface MemoryOptions {
  /** Unread response bytes per client before the server sees write backpressure. Default 64 KiB. */
  readonly highWaterMark?: number
}

/** A memory transport plus its client side, configured by {@link TransportConfig} (host/port are only reported). */
export const makeMemory = (
  options: MemoryOptions = {}
): Effect.Effect<
  { readonly transport: KafkaTransportService; readonly client: MemoryKafkaTransportService },
  never,
  Scope.Scope | TransportConfig
> =>
  Effect.gen(function*() {
    const config = yield* TransportConfig
    const hub = new MemoryHub()
    const address: BoundAddress = { host: config.host, port: config.port === 0 ? 9092 : config.port }
    const transport = yield* makeWith(config, (server) => hub.listen(server, address))
    const highWaterMark = options.highWaterMark ?? 64 * 1024
    const client: MemoryKafkaTransportService = {
      connect: Effect.acquireRelease(hub.connect(highWaterMark), (c) => c.close)
    }
    return { transport, client }
  })

export const layerMemory = (
  options: MemoryOptions = {}
): Layer.Layer<KafkaTransport | MemoryKafkaTransport, never, TransportConfig> =>
  Layer.scopedContext(
    Effect.map(makeMemory(options), ({ client, transport }) =>
      Context.make(KafkaTransport, transport).pipe(Context.add(MemoryKafkaTransport, client))
    )
  )

// ---------------------------------------------------------------------------
// wiring
// ---------------------------------------------------------------------------

/**
 * Serves the handler built by `makeHandler` for the lifetime of the layer,
 * logging the bound address.
 */
export const layerServe = <E, R>(
  makeHandler: Effect.Effect<RequestHandler, E, R>
): Layer.Layer<never, E | TransportBindError | TransportAlreadyServing, KafkaTransport | R> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const transport = yield* KafkaTransport
      const handler = yield* makeHandler
      const address = yield* transport.serve(handler)
      yield* Effect.logInfo(`Kafka listener on ${address.host}:${address.port}`)
    })
  )
