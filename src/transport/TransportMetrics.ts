/**
 * Counters kept by the transport. Plain mutable numbers updated on the hot
 * path (per chunk / per flush, never via Effect); the metrics service reads a
 * {@link TransportMetricsSnapshot} from its Prometheus `collect` callback.
 * No prom-client dependency here.
 */

export interface TransportMetricsSnapshot {
  /** Connections accepted since start. */
  readonly connectionsOpened: number
  /** Connections closed since start, for any reason. */
  readonly connectionsClosed: number
  /** Currently open connections. */
  readonly connectionsActive: number
  /** Bytes received (size prefixes included). */
  readonly bytesIn: number
  /** Bytes written (size prefixes included). */
  readonly bytesOut: number
  /** Request frames handed to the handler. */
  readonly requests: number
  /** Response frames written (null responses excluded). */
  readonly responses: number
  /** Requests being handled or awaiting their in-order write, all connections. */
  readonly requestsInFlight: number
  /** Connections closed because of a bad size prefix. */
  readonly framingErrors: number
  /** Connections closed because the handler died. */
  readonly handlerDefects: number
  /** Connections closed by the idle timeout. */
  readonly idleTimeouts: number
  /** Times reading was paused (in-flight bound or write backpressure). */
  readonly readPauses: number
  /** Times a write hit the socket's high-water mark. */
  readonly writeBackpressure: number
}

export interface TransportMetrics {
  /** A consistent copy of the counters; cheap, synchronous (usable from a Prometheus collect callback). */
  readonly snapshot: () => TransportMetricsSnapshot
}

/** @internal mutable counters shared by the transport's connections. */
export class TransportCounters implements TransportMetrics {
  connectionsOpened = 0
  connectionsClosed = 0
  bytesIn = 0
  bytesOut = 0
  requests = 0
  responses = 0
  requestsInFlight = 0
  framingErrors = 0
  handlerDefects = 0
  idleTimeouts = 0
  readPauses = 0
  writeBackpressure = 0

  readonly snapshot = (): TransportMetricsSnapshot => ({
    connectionsOpened: this.connectionsOpened,
    connectionsClosed: this.connectionsClosed,
    connectionsActive: this.connectionsOpened - this.connectionsClosed,
    bytesIn: this.bytesIn,
    bytesOut: this.bytesOut,
    requests: this.requests,
    responses: this.responses,
    requestsInFlight: this.requestsInFlight,
    framingErrors: this.framingErrors,
    handlerDefects: this.handlerDefects,
    idleTimeouts: this.idleTimeouts,
    readPauses: this.readPauses,
    writeBackpressure: this.writeBackpressure
  })
}
