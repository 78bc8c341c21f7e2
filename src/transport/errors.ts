/**
 * Failures of the Kafka transport that cross the service boundary.
 */
import { Schema } from "effect"

/** The listener could not bind (address in use, permission, bad host). */
export class TransportBindError extends Schema.TaggedError<TransportBindError>()("TransportBindError", {
  host: Schema.String,
  port: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot listen on ${this.host}:${this.port}: ${this.reason}`
  }
}

/** `serve` was called while a handler is already being served. */
export class TransportAlreadyServing extends Schema.TaggedError<TransportAlreadyServing>()(
  "TransportAlreadyServing",
  {}
) {
  override get message(): string {
    return "the transport is already serving a handler"
  }
}

/** The transport is not serving (no bound address, memory connect refused). */
export class TransportNotServing extends Schema.TaggedError<TransportNotServing>()("TransportNotServing", {}) {
  override get message(): string {
    return "the transport is not serving"
  }
}

/** A memory-transport client connection was closed (by either side). */
export class TransportConnectionClosed extends Schema.TaggedError<TransportConnectionClosed>()(
  "TransportConnectionClosed",
  { connectionId: Schema.Number }
) {
  override get message(): string {
    return `connection ${this.connectionId} is closed`
  }
}
