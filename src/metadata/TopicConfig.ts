/**
 * Topic-level configuration: the Kafka config names Chronik accepts, their
 * types, defaults (taken from the broker config where Kafka does) and
 * validation. DescribeConfigs, CreateTopics, AlterConfigs and
 * IncrementalAlterConfigs all go through this table, so a name is either
 * known and validated here or rejected with INVALID_CONFIG.
 */
import type { BrokerConfigShape } from "../config/BrokerConfig.js"

export type ConfigType = "long" | "int" | "string" | "boolean" | "double" | "list"

export interface TopicConfigDef {
  readonly name: string
  readonly type: ConfigType
  /** Default value as Kafka renders it in DescribeConfigs. */
  readonly defaultValue: (broker: BrokerConfigShape) => string
  /** The broker setting the default comes from, if any (for DescribeConfigs synonyms). */
  readonly brokerSynonym?: string
  /** Returns an error message, or undefined when the value is acceptable. */
  readonly validate: (value: string) => string | undefined
  readonly documentation: string
}

const isIntegerText = (v: string) => /^-?\d+$/.test(v.trim())

const longAtLeast = (min: number) => (v: string) =>
  isIntegerText(v) && Number(v) >= min ? undefined : `must be an integer >= ${min}`

const intIn = (min: number, max: number) => (v: string) =>
  isIntegerText(v) && Number(v) >= min && Number(v) <= max ? undefined : `must be an integer in [${min}, ${max}]`

const oneOf = (...values: Array<string>) => (v: string) =>
  values.includes(v.trim()) ? undefined : `must be one of ${values.join(", ")}`

const bool = oneOf("true", "false")

const doubleIn = (min: number, max: number) => (v: string) => {
  const n = Number(v)
  return v.trim() !== "" && Number.isFinite(n) && n >= min && n <= max ? undefined : `must be a number in [${min}, ${max}]`
}

const constant = (value: string) => () => value

const defs: ReadonlyArray<TopicConfigDef> = [
  {
    name: "cleanup.policy",
    type: "list",
    defaultValue: constant("delete"),
    brokerSynonym: "log.cleanup.policy",
    // Compaction is not implemented yet: accepting "compact" would silently keep every record.
    validate: (v) =>
      v.trim() === "delete"
        ? undefined
        : v.split(",").map((s) => s.trim()).includes("compact")
          ? "cleanup.policy=compact is not supported yet by this broker (only delete)"
          : "must be delete",
    documentation: "Retention policy for old log segments"
  },
  {
    name: "compression.type",
    type: "string",
    defaultValue: constant("producer"),
    brokerSynonym: "compression.type",
    // Recompressing on the broker is not implemented: batches are stored as the producer sent them.
    validate: (v) =>
      v.trim() === "producer" ? undefined : "only producer is supported: this broker stores batches as the producer compressed them",
    documentation: "Final compression type for the topic; only 'producer' (keep the producer's codec) is supported"
  },
  {
    name: "max.message.bytes",
    type: "int",
    defaultValue: (b) => String(b.messageMaxBytes),
    brokerSynonym: "message.max.bytes",
    validate: intIn(0, 2 ** 31 - 1),
    documentation: "Largest record batch size allowed"
  },
  {
    name: "message.timestamp.type",
    type: "string",
    defaultValue: constant("CreateTime"),
    brokerSynonym: "log.message.timestamp.type",
    validate: oneOf("CreateTime", "LogAppendTime"),
    documentation: "Whether the timestamp in the message is the producer's or the broker's append time"
  },
  {
    name: "min.insync.replicas",
    type: "int",
    defaultValue: constant("1"),
    brokerSynonym: "min.insync.replicas",
    validate: intIn(1, 2 ** 31 - 1),
    documentation: "Minimum in-sync replicas for a produce with acks=all to succeed"
  },
  {
    name: "retention.bytes",
    type: "long",
    defaultValue: (b) => String(b.logRetentionBytes),
    brokerSynonym: "log.retention.bytes",
    validate: longAtLeast(-1),
    documentation: "Maximum size of a partition before old segments are deleted (-1: unlimited)"
  },
  {
    name: "retention.ms",
    type: "long",
    defaultValue: (b) => String(b.logRetentionMs),
    brokerSynonym: "log.retention.ms",
    validate: longAtLeast(-1),
    documentation: "Maximum age of a segment before it is deleted (-1: forever)"
  },
  {
    name: "segment.bytes",
    type: "int",
    defaultValue: (b) => String(b.logSegmentBytes),
    brokerSynonym: "log.segment.bytes",
    validate: intIn(14, 2 ** 31 - 1),
    documentation: "Segment file size"
  },
  {
    name: "segment.ms",
    type: "long",
    defaultValue: (b) => String(b.logSegmentMs),
    brokerSynonym: "log.roll.ms",
    validate: longAtLeast(1),
    documentation: "Time after which a segment is rolled even if not full"
  },
  {
    name: "segment.index.bytes",
    type: "int",
    defaultValue: constant("10485760"),
    brokerSynonym: "log.index.size.max.bytes",
    validate: intIn(4, 2 ** 31 - 1),
    documentation: "Size of the offset index"
  },
  {
    name: "segment.jitter.ms",
    type: "long",
    defaultValue: constant("0"),
    brokerSynonym: "log.roll.jitter.ms",
    validate: longAtLeast(0),
    documentation: "Maximum random jitter subtracted from segment.ms"
  },
  {
    name: "index.interval.bytes",
    type: "int",
    defaultValue: constant("4096"),
    brokerSynonym: "log.index.interval.bytes",
    validate: intIn(0, 2 ** 31 - 1),
    documentation: "Bytes between offset index entries"
  },
  {
    name: "flush.messages",
    type: "long",
    defaultValue: constant("9223372036854775807"),
    brokerSynonym: "log.flush.interval.messages",
    validate: longAtLeast(1),
    documentation: "Informational: durability is governed by the broker's WAL fsync policy"
  },
  {
    name: "flush.ms",
    type: "long",
    defaultValue: constant("9223372036854775807"),
    brokerSynonym: "log.flush.interval.ms",
    validate: longAtLeast(0),
    documentation: "Informational: durability is governed by the broker's WAL fsync policy"
  },
  {
    name: "file.delete.delay.ms",
    type: "long",
    defaultValue: constant("60000"),
    brokerSynonym: "log.segment.delete.delay.ms",
    validate: longAtLeast(0),
    documentation: "Delay before a deleted segment's file is removed"
  },
  {
    name: "delete.retention.ms",
    type: "long",
    defaultValue: constant("86400000"),
    brokerSynonym: "log.cleaner.delete.retention.ms",
    validate: longAtLeast(0),
    documentation: "Tombstone retention for compacted topics"
  },
  {
    name: "min.compaction.lag.ms",
    type: "long",
    defaultValue: constant("0"),
    brokerSynonym: "log.cleaner.min.compaction.lag.ms",
    validate: longAtLeast(0),
    documentation: "Minimum time a message stays uncompacted"
  },
  {
    name: "max.compaction.lag.ms",
    type: "long",
    defaultValue: constant("9223372036854775807"),
    brokerSynonym: "log.cleaner.max.compaction.lag.ms",
    validate: longAtLeast(1),
    documentation: "Maximum time a message stays ineligible for compaction"
  },
  {
    name: "min.cleanable.dirty.ratio",
    type: "double",
    defaultValue: constant("0.5"),
    brokerSynonym: "log.cleaner.min.cleanable.ratio",
    validate: doubleIn(0, 1),
    documentation: "Dirty ratio that makes a log eligible for cleaning"
  },
  {
    name: "message.timestamp.before.max.ms",
    type: "long",
    defaultValue: constant("9223372036854775807"),
    brokerSynonym: "log.message.timestamp.before.max.ms",
    validate: longAtLeast(0),
    documentation: "How far a CreateTime timestamp may lie in the past"
  },
  {
    name: "message.timestamp.after.max.ms",
    type: "long",
    defaultValue: constant("3600000"),
    brokerSynonym: "log.message.timestamp.after.max.ms",
    validate: longAtLeast(0),
    documentation: "How far a CreateTime timestamp may lie in the future"
  },
  {
    name: "preallocate",
    type: "boolean",
    defaultValue: constant("false"),
    brokerSynonym: "log.preallocate",
    validate: bool,
    documentation: "Informational: segments are not preallocated"
  },
  {
    name: "unclean.leader.election.enable",
    type: "boolean",
    defaultValue: constant("false"),
    brokerSynonym: "unclean.leader.election.enable",
    validate: (v) => (v.trim() === "false" ? undefined : "Raft never elects an out-of-date leader; only false is allowed"),
    documentation: "Always false: leaders are elected by Raft"
  }
]

export const topicConfigDefs: ReadonlyMap<string, TopicConfigDef> = new Map(defs.map((d) => [d.name, d]))

/** Validates one name/value pair; returns an error message for INVALID_CONFIG, or undefined. */
export const validateTopicConfig = (name: string, value: string | null): string | undefined => {
  const def = topicConfigDefs.get(name)
  if (def === undefined) return `Unknown topic config name: ${name}`
  if (value === null) return undefined
  const problem = def.validate(value)
  return problem === undefined ? undefined : `Invalid value ${value} for configuration ${name}: ${problem}`
}

/** The effective settings of a topic that the data path reads, resolved once per change. */
export interface EffectiveTopicConfig {
  readonly retentionMs: number
  readonly retentionBytes: number
  readonly segmentBytes: number
  readonly segmentMs: number
  readonly maxMessageBytes: number
  readonly logAppendTime: boolean
  readonly minInsyncReplicas: number
  readonly timestampBeforeMaxMs: number
  readonly timestampAfterMaxMs: number
}

const num = (v: string): number => {
  const n = Number(v)
  return n > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : n
}

export const effectiveConfig = (
  overrides: ReadonlyMap<string, string>,
  broker: BrokerConfigShape
): EffectiveTopicConfig => {
  const get = (name: string): string => overrides.get(name) ?? topicConfigDefs.get(name)!.defaultValue(broker)
  return {
    retentionMs: num(get("retention.ms")),
    retentionBytes: num(get("retention.bytes")),
    segmentBytes: num(get("segment.bytes")),
    segmentMs: num(get("segment.ms")),
    maxMessageBytes: num(get("max.message.bytes")),
    logAppendTime: get("message.timestamp.type") === "LogAppendTime",
    minInsyncReplicas: num(get("min.insync.replicas")),
    timestampBeforeMaxMs: num(get("message.timestamp.before.max.ms")),
    timestampAfterMaxMs: num(get("message.timestamp.after.max.ms"))
  }
}
