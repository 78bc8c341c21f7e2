/**
 * ReplicaManager: the partition replicas this node hosts.
 *
 * It opens one PartitionReplica per partition in the cluster metadata, each
 * with its Raft group in the node's `RaftEngine` (the partition log is the
 * group's Raft log: `PartitionRaftLogs`; a standalone node is every group's
 * only voter), waits until this node leads the new groups,
 * follows metadata changes (topics and partitions created or deleted)
 * through a ClusterMetadata listener, so a topic is writable as soon as
 * CreateTopics returns, and runs retention on a timer. `get` is a plain
 * synchronous lookup for the hot path. Closing a replica (partition closed,
 * layer shutdown) first writes its producer snapshot, while the log is open.
 */
import * as path from "node:path"
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import { BrokerConfig } from "../config/BrokerConfig.js"
import { ClusterMetadata } from "../metadata/ClusterMetadata.js"
import type { MetadataState } from "../metadata/MetadataState.js"
import { RaftEngine } from "../raft/RaftEngine.js"
import { type EffectiveTopicConfig, effectiveConfig } from "../metadata/TopicConfig.js"
import { LogStore, partitionLogId } from "../storage/LogStore.js"
import { toStorageError } from "../storage/errors.js"
import type { SegmentedLog } from "../storage/SegmentedLog.js"
import { PartitionStorageError } from "./errors.js"
import type { PartitionLog } from "./PartitionLog.js"
import { snapshotStore } from "./ProducerSnapshot.js"
import { makePartitionRaftLogs, type PartitionRaftLogs } from "./PartitionRaftLogs.js"
import { type PartitionConsensus, PartitionReplica, type PartitionReplicaOptions } from "./PartitionReplica.js"

export interface ReplicaManagerShape {
  readonly get: (topic: string, partition: number) => PartitionReplica | undefined
  readonly all: () => ReadonlyArray<PartitionReplica>
  /** Runs retention on every partition now (also run on a timer). */
  readonly enforceRetention: Effect.Effect<void>
}

export class ReplicaManager extends Context.Tag("chronik/ReplicaManager")<ReplicaManager, ReplicaManagerShape>() {}

/** Adapts the storage engine's segmented log to what a replica needs. */
export const partitionLogFromSegmentedLog = (log: SegmentedLog): PartitionLog => ({
  startKey: () => log.core.logStartKey,
  nextKey: () => log.core.nextKey,
  raft: {
    lastIndex: () => log.core.lastIndex(),
    lastIndexTerm: () => log.core.lastIndexTerm(),
    termAtIndex: (index) => log.core.termAtIndex(index),
    truncateAfterIndex: (index) => log.core.truncateAfterIndex(index),
    nextKey: () => log.core.nextKey,
    append: (frames) => {
      log.core.append(frames, Date.now())
    },
    onSynced: (done, background) => log.core.onSynced(done, background),
    readState: () => log.core.fileIO.readFile(path.join(log.core.dir, RAFT_STATE_FILE)),
    writeState: (bytes) => log.core.fileIO.writeFileDurable(path.join(log.core.dir, RAFT_STATE_FILE), bytes)
  },
  onDurable: (key, done) => log.core.onDurable(key, done),
  onWritten: (done) => log.core.onWritten(done),
  readPooled: (fromKey, maxBytes, endKey) => log.read(fromKey, maxBytes, endKey - 1),
  offsetForTimestamp: (ts) => log.offsetForTimestamp(ts),
  maxTimestamp: (endKey) =>
    Effect.try({ try: () => log.core.maxTimestampBefore(endKey), catch: (e) => toStorageError(log.id, "maxTimestamp", e) }),
  deleteBefore: (key) => Effect.asVoid(log.deleteBefore(key)),
  enforceRetention: (policy) => Effect.map(log.enforceRetention(policy), (r) => r.logStartKey),
  snapshots: snapshotStore(log.core.fileIO, log.core.dir),
  onRoll: (listener) => log.core.setRollListener(listener)
})

/** The partition group's hard state and membership, next to its segments. */
export const RAFT_STATE_FILE = "raft-state"

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`

/** The Raft group id of a partition. */
export const partitionGroupId = (topic: string, partition: number): string => `kafka/${topic}/${partition}`

/** How long opening a partition waits for this node to lead its group. */
const LEADERSHIP_WAIT_MS = 10_000

/** Stops a partition's group and forgets its log. */
export const closePartitionGroup = (engine: RaftEngine["Type"], store: PartitionRaftLogs, topic: string, partition: number) =>
  Effect.zipRight(
    engine.removeGroup(partitionGroupId(topic, partition)),
    Effect.sync(() => store.unregister(partitionGroupId(topic, partition)))
  )

/** The engine seen from one partition's group. */
export const partitionConsensus = (engine: RaftEngine["Type"], group: string): PartitionConsensus => ({
  status: () => engine.leaderOf(group),
  proposeNow: (datas) => engine.proposeNow(group, datas)
})

/**
 * Options of a partition group: the engine's read cache of committed entries
 * is trimmed every 1,024 applied entries (each keeps only its batch header,
 * see PartitionRaftLogs; the partition log holds the batches, and one voter
 * has no follower to send them to).
 */
export const partitionGroupCache = { snapshotEvery: 1024, snapshotEveryBytes: 0, snapshotKeepEntries: 0 }

/**
 * Opens a replica over `log` and creates its Raft group (this node the only
 * voter of a new group), its log registered with the node's partition store;
 * does not wait for leadership.
 */
export const openPartitionGroup = (
  options: Omit<PartitionReplicaOptions, "consensus"> & {
    readonly engine: RaftEngine["Type"]
    readonly store: PartitionRaftLogs
  }
): Effect.Effect<PartitionReplica, PartitionStorageError> =>
  Effect.gen(function* () {
    const { engine, log, nodeId, partition, topic } = options
    const group = partitionGroupId(topic, partition)
    const replica = yield* PartitionReplica.open({
      topic,
      partition,
      nodeId,
      log,
      consensus: partitionConsensus(engine, group),
      config: options.config,
      now: options.now
    })
    options.store.register(group, log.raft, { minTerm: replica.lastEpoch })
    yield* engine.createGroup(group, {
      voters: [nodeId],
      stateMachine: replica.stateMachine,
      logStore: options.store,
      ...partitionGroupCache
    })
    return replica
  })

/** Writes a replica's producer-state snapshot; a failure only costs a longer replay at the next open. */
const snapshotOf = (replica: PartitionReplica): Effect.Effect<void> =>
  replica.writeSnapshot().pipe(
    Effect.catchAll((e) => Effect.logWarning(`producer snapshot of ${replica.topic}-${replica.partition}: ${e.message}`))
  )

export const make = Effect.gen(function* () {
  const config = yield* BrokerConfig
  const metadata = yield* ClusterMetadata
  const store = yield* LogStore
  const engine = yield* RaftEngine
  const raftLogs = makePartitionRaftLogs()
  const replicas = new Map<string, PartitionReplica>()
  let cached: { version: number; configs: Map<string, EffectiveTopicConfig> } = { version: -1, configs: new Map() }

  const topicConfig = (topic: string) => (): EffectiveTopicConfig => {
    const state = metadata.current()
    if (cached.version !== state.version) cached = { version: state.version, configs: new Map() }
    let c = cached.configs.get(topic)
    if (c === undefined) {
      c = effectiveConfig(state.topics.get(topic)?.configs ?? new Map(), config)
      cached.configs.set(topic, c)
    }
    return c
  }

  const openPartition = (topic: string, partition: number): Effect.Effect<PartitionReplica, PartitionStorageError> =>
    Effect.gen(function* () {
      const eff = topicConfig(topic)()
      const log = yield* store
        .open(partitionLogId(topic, partition), { segmentBytes: eff.segmentBytes, segmentMs: eff.segmentMs })
        .pipe(Effect.mapError((e) => new PartitionStorageError({ topic, partition, reason: e.message })))
      const replica = yield* openPartitionGroup({
        engine,
        store: raftLogs,
        topic,
        partition,
        nodeId: config.nodeId,
        log: partitionLogFromSegmentedLog(log),
        config: topicConfig(topic),
        now: () => Date.now()
      })
      replicas.set(key(topic, partition), replica)
      return replica
    })

  /** Waits (bounded) until this node leads the groups of `opened`, so that they are writable at once. */
  const awaitLeaders = (opened: ReadonlyArray<PartitionReplica>) =>
    Effect.forEach(
      opened,
      (r) =>
        Effect.flatMap(r.awaitLeadership(LEADERSHIP_WAIT_MS), (led) =>
          led ? Effect.void : Effect.logWarning(`partition ${r.topic}-${r.partition}: no leader after ${LEADERSHIP_WAIT_MS} ms`)
        ),
      { concurrency: "unbounded", discard: true }
    )

  const closePartition = (topic: string, partition: number, deleteData: boolean) =>
    Effect.gen(function* () {
      const k = key(topic, partition)
      const replica = replicas.get(k)
      replicas.delete(k)
      if (replica !== undefined) {
        // the group stops first: no Raft write reaches the log after this
        yield* closePartitionGroup(engine, raftLogs, topic, partition)
        // the snapshot is written while the log is still open; a deleted partition needs none
        if (!deleteData) yield* snapshotOf(replica)
        replica.close()
      }
      const id = partitionLogId(topic, partition)
      yield* (deleteData ? store.delete(id) : store.close(id)).pipe(
        Effect.catchAll((e) => Effect.logWarning(`closing partition log ${id}: ${e.message}`))
      )
    })

  /** Brings the hosted replicas in line with a metadata state. */
  const reconcile = (prev: MetadataState, next: MetadataState) =>
    Effect.gen(function* () {
      for (const [name, t] of prev.topics) {
        const now = next.topics.get(name)
        if (now === undefined || now.topicId !== t.topicId) {
          for (let p = 0; p < t.replicas.length; p++) yield* closePartition(name, p, true)
        }
      }
      const opened: Array<PartitionReplica> = []
      for (const [name, t] of next.topics) {
        for (let p = 0; p < t.replicas.length; p++) {
          if (!replicas.has(key(name, p)) && t.replicas[p]!.includes(config.nodeId)) {
            yield* openPartition(name, p).pipe(
              Effect.map((r) => opened.push(r)),
              Effect.catchAll((e) => Effect.logError(`cannot open partition ${name}-${p}: ${e.message}`))
            )
          }
        }
      }
      yield* awaitLeaders(opened)
    })

  const empty: MetadataState = { ...metadata.current(), topics: new Map(), topicsById: new Map() }
  yield* reconcile(empty, metadata.current())
  // Partition logs ("<topic>-<n>") on disk that no topic owns any more (a crash between the
  // metadata record and the delete). Internal logs (metadata, groups) have no "-<n>" suffix.
  const wanted = new Set([...replicas.values()].map((r) => partitionLogId(r.topic, r.partition)))
  const onDisk = yield* Effect.orElseSucceed(store.listOnDisk, () => [] as ReadonlyArray<string>)
  for (const id of onDisk) {
    if (!wanted.has(id) && /-\d+$/.test(id)) {
      yield* Effect.logWarning(`deleting orphaned partition log ${id}`)
      yield* Effect.ignore(store.delete(id))
    }
  }
  yield* metadata.addListener(reconcile)

  const enforceRetention = Effect.suspend(() =>
    Effect.forEach(
      [...replicas.values()],
      (r) => Effect.catchAll(r.enforceRetention(), (e) => Effect.logWarning(`retention of ${r.topic}-${r.partition}: ${e.message}`)),
      { discard: true }
    )
  )

  yield* Effect.forkScoped(
    Effect.repeat(enforceRetention, Schedule.spaced(Duration.millis(config.logRetentionCheckIntervalMs)))
  )
  // runs before LogStore's finalizer closes the logs (this layer is built on top of it)
  yield* Effect.addFinalizer(() =>
    Effect.forEach(
      [...replicas.values()],
      (r) =>
        Effect.zipRight(
          closePartitionGroup(engine, raftLogs, r.topic, r.partition),
          Effect.zipRight(snapshotOf(r), Effect.sync(() => r.close()))
        ),
      { discard: true }
    )
  )

  return ReplicaManager.of({
    get: (topic, partition) => replicas.get(key(topic, partition)),
    all: () => [...replicas.values()],
    enforceRetention
  })
})

export const layer = Layer.scoped(ReplicaManager, make)
