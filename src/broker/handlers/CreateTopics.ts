/**
 * CreateTopics (key 19), v0-v7.
 *
 * Follows Kafka's KRaft controller (ControllerApis.createTopics and
 * ReplicationControlManager.createTopics):
 * - A name given more than once gets one INVALID_REQUEST result
 *   "Duplicate topic name." and none of its entries is created.
 * - __cluster_metadata is INVALID_REQUEST "Creation of internal topic
 *   __cluster_metadata is prohibited.", as in Kafka.
 * - Checks, in Kafka's order: the name (INVALID_TOPIC_EXCEPTION), existence
 *   (TOPIC_ALREADY_EXISTS), a '.'/'_' collision with an existing name
 *   (INVALID_TOPIC_EXCEPTION), the configs (a null value, an unknown name or a
 *   bad value is INVALID_CONFIG; cleanup.policy=compact is refused because
 *   compaction is not implemented), then the partitioning: a manual
 *   assignment needs numPartitions and replicationFactor -1 (else
 *   INVALID_REQUEST), its replica lists are checked with Kafka's messages
 *   (INVALID_REPLICA_ASSIGNMENT); otherwise -1 means the broker default
 *   (num.partitions, replication factor 1) and 0 or < -1 is
 *   INVALID_PARTITIONS / INVALID_REPLICATION_FACTOR. Like Kafka's broker,
 *   -1 is accepted at every version (clients only send it at v4+).
 * - validateOnly (v1+): the same checks and the same result, nothing created.
 * - v5+: a successful result carries numPartitions, replicationFactor and
 *   every topic config (value, readOnly, configSource, isSensitive), sorted
 *   by name like Kafka; v7 the topic id. Errors carry -1/-1 and no configs.
 * - timeoutMs: creation is synchronous (the metadata log append is durable
 *   before the call returns), so there is nothing to wait for.
 */
import { Effect } from "effect"
import { BrokerConfig } from "../../config/BrokerConfig.js"
import { ClusterMetadata, checkTopicName } from "../../metadata/ClusterMetadata.js"
import { METADATA_LOG_ID } from "../../metadata/MetadataLog.js"
import type { TopicMeta } from "../../metadata/MetadataState.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { CreateTopicsRequest, CreateTopicsResponseInput } from "../../protocol/messages.js"
import { defineHandler } from "../RequestRouter.js"
import { errorCodeOf, messageOf } from "./common.js"
import { describeTopicConfigs } from "./DescribeConfigs.js"

type TopicOut = CreateTopicsResponseInput["topics"][number]
type Topic = CreateTopicsRequest["topics"][number]

const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"

const failed = (name: string, errorCode: number, errorMessage: string | null): TopicOut => ({
  name,
  topicId: ZERO_UUID,
  errorCode,
  errorMessage,
  numPartitions: -1,
  replicationFactor: -1,
  configs: []
})

/** Kafka's checks of one manual replica list (INVALID_REPLICA_ASSIGNMENT): the first problem's message. */
export const checkManualAssignment = (
  brokerIds: ReadonlyArray<number>,
  brokers: ReadonlyArray<number>,
  replicationFactor: number | undefined
): string | undefined => {
  if (brokerIds.length === 0) return "The manual partition assignment includes an empty replica list."
  const sorted = [...brokerIds].sort((a, b) => a - b)
  for (let i = 0; i < sorted.length; i++) {
    const b = sorted[i]!
    if (!brokers.includes(b)) return `The manual partition assignment includes broker ${b}, but no such broker is registered.`
    if (i > 0 && sorted[i - 1] === b) return `The manual partition assignment includes the broker ${b} more than once.`
  }
  if (replicationFactor !== undefined && brokerIds.length !== replicationFactor) {
    return `The manual partition assignment includes a partition with ${brokerIds.length} replica(s), but this is not consistent with previous partitions, which have ${replicationFactor} replica(s).`
  }
  return undefined
}

export const make = Effect.gen(function* () {
  const broker = yield* BrokerConfig
  const metadata = yield* ClusterMetadata

  /** The request-shape checks Kafka makes before placing replicas; undefined when fine. */
  const precheck = (t: Topic): { code: number; message: string } | undefined => {
    if (t.name === METADATA_LOG_ID) {
      return { code: ErrorCode.INVALID_REQUEST, message: `Creation of internal topic ${METADATA_LOG_ID} is prohibited.` }
    }
    const nameProblem = checkTopicName(t.name)
    if (nameProblem !== undefined) return { code: ErrorCode.INVALID_TOPIC_EXCEPTION, message: nameProblem }
    const topics = metadata.current().topics
    if (topics.has(t.name)) {
      return { code: ErrorCode.TOPIC_ALREADY_EXISTS, message: `Topic '${t.name}' already exists.` }
    }
    // Kafka refuses names that differ from an existing one only in '.' versus '_' (metric names collide).
    if (/[._]/.test(t.name)) {
      const unified = t.name.replaceAll(".", "_")
      for (const other of topics.keys()) {
        if (other.replaceAll(".", "_") === unified) {
          return { code: ErrorCode.INVALID_TOPIC_EXCEPTION, message: `Topic '${t.name}' collides with existing topic: ${other}` }
        }
      }
    }
    const nullConfigs = t.configs.filter((c) => c.value === null).map((c) => c.name)
    if (nullConfigs.length > 0) {
      return { code: ErrorCode.INVALID_CONFIG, message: `Null value not supported for topic configs: ${nullConfigs.join(",")}` }
    }
    if (t.assignments.length > 0) {
      if (t.replicationFactor !== -1) {
        return {
          code: ErrorCode.INVALID_REQUEST,
          message: "A manual partition assignment was specified, but replication factor was not set to -1."
        }
      }
      if (t.numPartitions !== -1) {
        return {
          code: ErrorCode.INVALID_REQUEST,
          message: "A manual partition assignment was specified, but numPartitions was not set to -1."
        }
      }
      const seen = new Set<number>()
      let rf: number | undefined
      for (const a of t.assignments) {
        if (seen.has(a.partitionIndex)) {
          return {
            code: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            message: `Found multiple manual partition assignments for partition ${a.partitionIndex}`
          }
        }
        seen.add(a.partitionIndex)
        const problem = checkManualAssignment(a.brokerIds, metadata.brokers, rf)
        if (problem !== undefined) return { code: ErrorCode.INVALID_REPLICA_ASSIGNMENT, message: problem }
        rf = a.brokerIds.length
      }
      for (let i = 0; i < seen.size; i++) {
        if (!seen.has(i)) {
          return { code: ErrorCode.INVALID_REPLICA_ASSIGNMENT, message: "partitions should be a consecutive 0-based integer sequence" }
        }
      }
      return undefined
    }
    if (t.replicationFactor < -1 || t.replicationFactor === 0) {
      return {
        code: ErrorCode.INVALID_REPLICATION_FACTOR,
        message: "Replication factor must be larger than 0, or -1 to use the default value."
      }
    }
    if (t.numPartitions < -1 || t.numPartitions === 0) {
      return { code: ErrorCode.INVALID_PARTITIONS, message: "Number of partitions was set to an invalid non-positive value." }
    }
    return undefined
  }

  const succeeded = (t: TopicMeta): TopicOut => ({
    name: t.name,
    topicId: t.topicId,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    numPartitions: t.replicas.length,
    replicationFactor: t.replicas[0]?.length ?? -1,
    configs: [...describeTopicConfigs(t.configs, broker)]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((c) => ({
        name: c.name,
        value: c.isSensitive ? null : c.value,
        readOnly: c.readOnly,
        configSource: c.source,
        isSensitive: c.isSensitive
      }))
  })

  const createOne = (t: Topic, validateOnly: boolean): Effect.Effect<TopicOut> => {
    const problem = precheck(t)
    if (problem !== undefined) return Effect.succeed(failed(t.name, problem.code, problem.message))
    return metadata
      .createTopic({
        name: t.name,
        numPartitions: t.numPartitions,
        replicationFactor: t.replicationFactor,
        assignments: t.assignments.map((a) => ({ partition: a.partitionIndex, brokerIds: a.brokerIds })),
        configs: t.configs,
        validateOnly
      })
      .pipe(
        Effect.match({
          onFailure: (e) => failed(t.name, errorCodeOf(e), messageOf(e)),
          onSuccess: succeeded
        })
      )
  }

  return defineHandler<CreateTopicsRequest, CreateTopicsResponseInput>({
    apiKey: 19,
    name: "CreateTopics",
    minVersion: 0,
    maxVersion: 7,
    handle: (ctx, req) =>
      Effect.gen(function* () {
        const validateOnly = ctx.apiVersion >= 1 && req.validateOnly
        const counts = new Map<string, number>()
        for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1)
        const topics: Array<TopicOut> = []
        const reportedDuplicates = new Set<string>()
        for (const t of req.topics) {
          if (counts.get(t.name)! > 1) {
            if (!reportedDuplicates.has(t.name)) {
              reportedDuplicates.add(t.name)
              topics.push(failed(t.name, ErrorCode.INVALID_REQUEST, "Duplicate topic name."))
            }
            continue
          }
          topics.push(yield* createOne(t, validateOnly))
        }
        return { throttleTimeMs: 0, topics }
      })
  })
})
