/**
 * Failures of metadata operations. Each carries the Kafka error code a
 * handler returns for it, so handlers map errors without a lookup table.
 */
import { Schema } from "effect"
import { ErrorCode } from "../protocol/errorCodes.js"

export class UnknownTopic extends Schema.TaggedError<UnknownTopic>()("UnknownTopic", { topic: Schema.String }) {
  readonly errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
  override get message() {
    return `This server does not host this topic: ${this.topic}`
  }
}

export class UnknownTopicId extends Schema.TaggedError<UnknownTopicId>()("UnknownTopicId", { topicId: Schema.String }) {
  readonly errorCode = ErrorCode.UNKNOWN_TOPIC_ID
  override get message() {
    return `This server does not host this topic ID: ${this.topicId}`
  }
}

export class TopicAlreadyExists extends Schema.TaggedError<TopicAlreadyExists>()("TopicAlreadyExists", {
  topic: Schema.String
}) {
  readonly errorCode = ErrorCode.TOPIC_ALREADY_EXISTS
  override get message() {
    return `Topic '${this.topic}' already exists.`
  }
}

export class InvalidTopic extends Schema.TaggedError<InvalidTopic>()("InvalidTopic", {
  topic: Schema.String,
  reason: Schema.String
}) {
  readonly errorCode = ErrorCode.INVALID_TOPIC_EXCEPTION
  override get message() {
    return this.reason
  }
}

export class InvalidPartitions extends Schema.TaggedError<InvalidPartitions>()("InvalidPartitions", {
  reason: Schema.String
}) {
  readonly errorCode = ErrorCode.INVALID_PARTITIONS
  override get message() {
    return this.reason
  }
}

export class InvalidReplicationFactor extends Schema.TaggedError<InvalidReplicationFactor>()(
  "InvalidReplicationFactor",
  { reason: Schema.String }
) {
  readonly errorCode = ErrorCode.INVALID_REPLICATION_FACTOR
  override get message() {
    return this.reason
  }
}

export class InvalidReplicaAssignment extends Schema.TaggedError<InvalidReplicaAssignment>()(
  "InvalidReplicaAssignment",
  { reason: Schema.String }
) {
  readonly errorCode = ErrorCode.INVALID_REPLICA_ASSIGNMENT
  override get message() {
    return this.reason
  }
}

export class InvalidTopicConfig extends Schema.TaggedError<InvalidTopicConfig>()("InvalidTopicConfig", {
  reason: Schema.String
}) {
  readonly errorCode = ErrorCode.INVALID_CONFIG
  override get message() {
    return this.reason
  }
}

export class MetadataLogError extends Schema.TaggedError<MetadataLogError>()("MetadataLogError", {
  reason: Schema.String
}) {
  readonly errorCode = ErrorCode.KAFKA_STORAGE_ERROR
  override get message() {
    return `metadata log: ${this.reason}`
  }
}

export type TopicError =
  | UnknownTopic
  | TopicAlreadyExists
  | InvalidTopic
  | InvalidPartitions
  | InvalidReplicationFactor
  | InvalidReplicaAssignment
  | InvalidTopicConfig
  | MetadataLogError
