/**
 * @internal Listener-independent server state: the live connections of one
 * `serve` call and its graceful shutdown.
 */
import { Clock, Duration, Effect, Runtime } from "effect"
import type { Fiber } from "effect"
import type { BoundAddress, RequestHandler } from "../KafkaTransport.js"
import type { TransportConfigShape } from "../TransportConfig.js"
import type { TransportCounters } from "../TransportMetrics.js"
import { Connection } from "./connection.js"
import type { ServerContext, Sink } from "./connection.js"

/** A bound listener feeding a {@link Server}. */
export interface Listener {
  readonly address: BoundAddress
  /** Stops accepting new connections (idempotent). */
  readonly stopAccepting: () => void
  /** Completes once the listener and all its sockets are closed (stops accepting first). */
  readonly awaitClosed: Effect.Effect<void>
}

/** Wall clock for the shutdown bound, so a `TestClock` cannot stall a scope close. */
const liveClock = Clock.make()

export class Server implements ServerContext {
  readonly connections = new Set<Connection>()
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  accepting = true

  constructor(
    readonly config: TransportConfigShape,
    readonly counters: TransportCounters,
    readonly handler: RequestHandler,
    readonly runtime: Runtime.Runtime<never>,
    readonly clock: Clock.Clock,
    private readonly nextConnectionId: () => number
  ) {
    const run = Runtime.runFork(runtime)
    this.runFork = (effect) => run(effect)
  }

  readonly onConnectionClosed = (conn: Connection): void => {
    this.connections.delete(conn)
  }

  /** Registers a new connection, or returns undefined when shutting down (the caller drops the socket). */
  accept(sink: Sink, remoteAddress: string, remotePort: number): Connection | undefined {
    if (!this.accepting) return undefined
    const conn = new Connection(this.nextConnectionId(), this, sink, remoteAddress, remotePort)
    this.connections.add(conn)
    return conn
  }

  /**
   * Stops accepting, lets every connection finish and write what is in
   * flight (reading stops), then closes them; whatever is left after
   * `shutdownTimeoutMs` is destroyed and its handler fibers interrupted.
   */
  readonly shutdown: Effect.Effect<void> = Effect.suspend(() => {
    this.accepting = false
    const conns = Array.from(this.connections)
    for (const c of conns) c.beginShutdown()
    // Finalizers run uninterruptibly: the wait must be interruptible for the timeout to cut it.
    return Effect.forEach(conns, (c) => c.closedAwait, { discard: true }).pipe(
      Effect.interruptible,
      Effect.timeoutOption(Duration.millis(this.config.shutdownTimeoutMs)),
      Effect.withClock(liveClock),
      Effect.flatMap((done) =>
        Effect.sync(() => {
          const left = Array.from(this.connections)
          for (const c of left) c.destroy()
          return done._tag === "None" ? left.length : 0
        })
      ),
      Effect.tap((forced) =>
        forced > 0
          ? Effect.logWarning(`transport shutdown timed out; closed ${forced} connection(s) with requests in flight`)
          : Effect.void
      ),
      Effect.asVoid
    )
  })
}
