/**
 * Errors raised by the synchronous wire codecs.
 *
 * Codecs are plain functions over `Buffer` (hot path), so they *throw* these
 * errors; the Effect boundary (router, transport) catches them with
 * `Effect.try` and turns them into typed failures. `Data.TaggedError`
 * instances are real `Error`s, so throwing them is cheap and they keep their
 * tag for `Effect.catchTag`.
 */
import { Data } from "effect"

/** A frame or field could not be decoded. Says where, so a capture can be debugged. */
export class KafkaDecodeError extends Data.TaggedError("KafkaDecodeError")<{
  /** Message name or codec area, e.g. "ProduceRequest", "RecordBatch", "varint". */
  readonly api: string
  /** Message version, or -1 when not applicable. */
  readonly version: number
  /** Dotted field path, e.g. "topicData[0].partitionData[1].records". */
  readonly field: string
  /** Byte offset in the buffer being decoded at which the problem was found. */
  readonly offset: number
  readonly reason: string
}> {
  override get message(): string {
    const v = this.version >= 0 ? ` v${this.version}` : ""
    return `cannot decode ${this.api}${v} field ${this.field} at offset ${this.offset}: ${this.reason}`
  }
}

/** A value could not be encoded (out of range, missing non-nullable field, ...). */
export class KafkaEncodeError extends Data.TaggedError("KafkaEncodeError")<{
  readonly api: string
  readonly version: number
  readonly field: string
  readonly reason: string
}> {
  override get message(): string {
    const v = this.version >= 0 ? ` v${this.version}` : ""
    return `cannot encode ${this.api}${v} field ${this.field}: ${this.reason}`
  }
}
