/**
 * A standalone broker: one node, every partition led by this node.
 *
 * Composition only: each subsystem's layer is built from the BrokerConfig.
 * Every partition is a Raft group in the node's RaftEngine with this node as
 * its only voter (the cluster's code path; only the membership differs): the
 * engine runs over a transport with no peers, and each partition group keeps
 * its Raft log in the partition's own log (PartitionRaftLogs), so the engine's
 * default log store (memory) holds no group.
 */
import { Effect, Layer } from "effect"
import { BrokerConfig, type BrokerConfigShape } from "../src/config/BrokerConfig.js"
import * as FetchSessionCache from "../src/broker/FetchSessionCache.js"
import { makeBrokerHandlers } from "../src/broker/handlers/index.js"
import * as RequestRouter from "../src/broker/RequestRouter.js"
import * as GroupCoordinator from "../src/group/GroupCoordinator.js"
import * as GroupStore from "../src/group/GroupStore.js"
import * as ClusterMetadata from "../src/metadata/ClusterMetadata.js"
import * as MetadataLog from "../src/metadata/MetadataLog.js"
import * as RaftEngine from "../src/raft/RaftEngine.js"
import * as RaftLogStore from "../src/raft/RaftLogStore.js"
import * as RaftTransport from "../src/raft/RaftTransport.js"
import * as ReplicaManager from "../src/replication/ReplicaManager.js"
import type { FileIO } from "../src/storage/FileIO.js"
import * as LogStore from "../src/storage/LogStore.js"
import * as StorageConfig from "../src/storage/StorageConfig.js"
import * as KafkaTransport from "../src/transport/KafkaTransport.js"
import * as TransportConfig from "../src/transport/TransportConfig.js"

const storageConfig = Layer.effect(
  StorageConfig.StorageConfig,
  Effect.map(BrokerConfig, (c) => ({
    dataDir: c.dataDir,
    fsyncPolicy: c.walFsync,
    journalFileBytes: c.walJournalFileBytes,
    backgroundSyncDelayMs: c.walBackgroundSyncMs,
    asyncWrites: c.walAsyncWrites,
    segmentBytes: c.logSegmentBytes,
    segmentMs: c.logSegmentMs,
    indexIntervalBytes: 4096,
    memoryTierBytes: c.memoryTierBytes
  }))
)

const transportConfig = Layer.effect(
  TransportConfig.TransportConfig,
  Effect.map(BrokerConfig, (c) => ({
    ...TransportConfig.defaults,
    host: c.kafkaHost,
    port: c.kafkaPort,
    maxRequestBytes: c.socketRequestMaxBytes,
    idleTimeoutMs: c.connectionsMaxIdleMs
  }))
)

/** The request router over every broker handler. */
const router = RequestRouter.layer(makeBrokerHandlers)

const serve = KafkaTransport.layerServe(Effect.map(RequestRouter.RequestRouter, (r) => r.routeToWire))

/**
 * Storage, metadata and replicas, without the network listener (in-process
 * tests use this). `fileIO` replaces the node:fs implementation, e.g. with
 * one that injects disk faults.
 */
export const core = (config: BrokerConfigShape, options: { readonly fileIO?: FileIO } = {}) => {
  const configLayer = Layer.succeed(BrokerConfig, config)
  const storage = (
    options.fileIO === undefined
      ? LogStore.layer
      : LogStore.layerFileIO.pipe(Layer.provide(Layer.succeed(LogStore.StorageFileIO, options.fileIO)))
  ).pipe(Layer.provide(storageConfig))
  const metadata = ClusterMetadata.layer.pipe(Layer.provide(MetadataLog.layerLogStore))
  const raft = RaftEngine.layer({ nodeId: config.nodeId }).pipe(
    Layer.provide(RaftTransport.layerNone(config.nodeId)),
    Layer.provide(RaftLogStore.layerMemory())
  )
  const replicas = ReplicaManager.layer.pipe(Layer.provideMerge(raft))
  const groups = GroupCoordinator.layer().pipe(
    Layer.provide(GroupStore.layerLogStore),
    Layer.provide(GroupCoordinator.layerConfigFromEnv())
  )
  const fetchSessions = FetchSessionCache.layerFromEnv()
  return Layer.mergeAll(router).pipe(
    Layer.provideMerge(groups),
    Layer.provideMerge(fetchSessions),
    Layer.provideMerge(replicas),
    Layer.provideMerge(metadata),
    Layer.provideMerge(storage),
    Layer.provideMerge(configLayer)
  )
}

/** A whole standalone node listening on its Kafka port. */
export const layer = (config: BrokerConfigShape) =>
  serve.pipe(
    Layer.provideMerge(core(config)),
    Layer.provideMerge(KafkaTransport.layerNode.pipe(Layer.provide(transportConfig), Layer.provide(Layer.succeed(BrokerConfig, config))))
  )
