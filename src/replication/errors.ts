/**
 * Per-partition failures of the data path. Each carries the Kafka error code
 * the handler puts in that partition's response.
 */
import { Schema } from "effect"
import { ErrorCode } from "../protocol/errorCodes.js"

const partitionFields = { topic: Schema.String, partition: Schema.Number }

export class NotLeaderOrFollower extends Schema.TaggedError<NotLeaderOrFollower>()("NotLeaderOrFollower", {
  ...partitionFields,
  leaderId: Schema.Number
}) {
  readonly errorCode = ErrorCode.NOT_LEADER_OR_FOLLOWER
}

export class InvalidBatch extends Schema.TaggedError<InvalidBatch>()("InvalidBatch", {
  ...partitionFields,
  errorCode: Schema.Number,
  reason: Schema.String
}) {
  override get message() {
    return `${this.topic}-${this.partition}: ${this.reason}`
  }
}

export class ProducerFenced extends Schema.TaggedError<ProducerFenced>()("ProducerFenced", {
  ...partitionFields,
  reason: Schema.String
}) {
  readonly errorCode = ErrorCode.INVALID_PRODUCER_EPOCH
}

export class OutOfOrderSequence extends Schema.TaggedError<OutOfOrderSequence>()("OutOfOrderSequence", {
  ...partitionFields,
  reason: Schema.String
}) {
  readonly errorCode = ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
}

export class PartitionStorageError extends Schema.TaggedError<PartitionStorageError>()("PartitionStorageError", {
  ...partitionFields,
  reason: Schema.String
}) {
  readonly errorCode = ErrorCode.KAFKA_STORAGE_ERROR
}

export class FetchOffsetOutOfRange extends Schema.TaggedError<FetchOffsetOutOfRange>()("FetchOffsetOutOfRange", {
  ...partitionFields,
  offset: Schema.BigIntFromSelf,
  logStartOffset: Schema.BigIntFromSelf,
  logEndOffset: Schema.BigIntFromSelf
}) {
  readonly errorCode = ErrorCode.OFFSET_OUT_OF_RANGE
}

export type AppendError = NotLeaderOrFollower | InvalidBatch | ProducerFenced | OutOfOrderSequence | PartitionStorageError
