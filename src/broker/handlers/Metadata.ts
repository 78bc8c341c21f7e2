/**
 * Metadata (key 3), v0-v12.
 *
 * - v0: an empty topic list means every topic; v1+: null means every topic,
 *   an empty list none.
 * - v4+: `allowAutoTopicCreation`; older versions always allow it. Topics are
 *   auto-created only when the broker allows it too (auto.create.topics.enable),
 *   with the broker defaults, like Kafka.
 * - v10+: topic ids; v12 may ask by id only (name null).
 * - Leader, leader epoch, replicas and the in-sync replicas come from the
 *   live partition replicas, never from a copy of the replica list.
 */
import { Effect } from "effect"
import { BrokerConfig } from "../../config/BrokerConfig.js"
import { ClusterMetadata, checkTopicName } from "../../metadata/ClusterMetadata.js"
import type { TopicMeta } from "../../metadata/MetadataState.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { MetadataRequest, MetadataResponseInput } from "../../protocol/messages.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import { defineHandler } from "../RequestRouter.js"
import { AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_AUTHORIZED_OPERATIONS, TOPIC_AUTHORIZED_OPERATIONS } from "./common.js"

const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"

type TopicOut = MetadataResponseInput["topics"][number]

export const make = Effect.gen(function* () {
  const config = yield* BrokerConfig
  const metadata = yield* ClusterMetadata
  const replicas = yield* ReplicaManager

  const describeTopic = (t: TopicMeta, includeOps: boolean): TopicOut => ({
    errorCode: ErrorCode.NONE,
    name: t.name,
    topicId: t.topicId,
    isInternal: t.name.startsWith("__"),
    partitions: t.replicas.map((nodes, p) => {
      const r = replicas.get(t.name, p)
      return r === undefined
        ? {
            errorCode: ErrorCode.LEADER_NOT_AVAILABLE,
            partitionIndex: p,
            leaderId: -1,
            leaderEpoch: -1,
            replicaNodes: nodes,
            isrNodes: [],
            offlineReplicas: nodes
          }
        : {
            errorCode: ErrorCode.NONE,
            partitionIndex: p,
            leaderId: r.leaderId,
            leaderEpoch: r.leaderEpoch,
            replicaNodes: nodes,
            isrNodes: [r.leaderId],
            offlineReplicas: []
          }
    }),
    topicAuthorizedOperations: includeOps ? TOPIC_AUTHORIZED_OPERATIONS : AUTHORIZED_OPERATIONS_OMITTED
  })

  const missing = (name: string | null, topicId: string, errorCode: number): TopicOut => ({
    errorCode,
    name,
    topicId,
    isInternal: false,
    partitions: []
  })

  return defineHandler<MetadataRequest, MetadataResponseInput>({
    apiKey: 3,
    name: "Metadata",
    minVersion: 0,
    maxVersion: 12,
    handle: (ctx, req) =>
      Effect.gen(function* () {
        const v = ctx.apiVersion
        const includeOps = v >= 8 && req.includeTopicAuthorizedOperations
        const allowCreate = config.autoCreateTopics && (v < 4 || req.allowAutoTopicCreation)
        const all = req.topics === null || (v === 0 && req.topics.length === 0)
        const topics: Array<TopicOut> = []
        if (all) {
          for (const t of metadata.current().topics.values()) topics.push(describeTopic(t, includeOps))
        } else {
          for (const wanted of req.topics!) {
            const state = metadata.current()
            if (wanted.name === null) {
              const t = state.topicsById.get(wanted.topicId)
              topics.push(t === undefined ? missing(null, wanted.topicId, ErrorCode.UNKNOWN_TOPIC_ID) : describeTopic(t, includeOps))
              continue
            }
            const existing = state.topics.get(wanted.name)
            if (existing !== undefined) {
              topics.push(describeTopic(existing, includeOps))
              continue
            }
            if (checkTopicName(wanted.name) !== undefined) {
              topics.push(missing(wanted.name, ZERO_UUID, ErrorCode.INVALID_TOPIC_EXCEPTION))
              continue
            }
            if (!allowCreate) {
              topics.push(missing(wanted.name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
              continue
            }
            const created = yield* Effect.either(
              metadata.createTopic({
                name: wanted.name,
                numPartitions: -1,
                replicationFactor: -1,
                configs: [],
                validateOnly: false
              })
            )
            if (created._tag === "Right") topics.push(describeTopic(created.right, includeOps))
            else if (created.left._tag === "TopicAlreadyExists") {
              // Created concurrently by another request.
              const t = metadata.current().topics.get(wanted.name)
              topics.push(t === undefined ? missing(wanted.name, ZERO_UUID, ErrorCode.LEADER_NOT_AVAILABLE) : describeTopic(t, includeOps))
            } else topics.push(missing(wanted.name, ZERO_UUID, created.left.errorCode))
          }
        }
        return {
          throttleTimeMs: 0,
          brokers: metadata.brokers.map((nodeId) => ({
            nodeId,
            host: config.advertisedHost,
            port: config.advertisedPort,
            rack: null
          })),
          clusterId: metadata.clusterId,
          controllerId: config.nodeId,
          topics,
          clusterAuthorizedOperations:
            v >= 8 && v <= 10 && req.includeClusterAuthorizedOperations ? CLUSTER_AUTHORIZED_OPERATIONS : AUTHORIZED_OPERATIONS_OMITTED
        }
      })
  })
})
