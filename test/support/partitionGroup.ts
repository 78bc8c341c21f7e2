/**
 * A partition replica with its one-voter Raft group, for tests that drive a
 * replica directly over a log: the same engine and wiring a standalone node
 * uses (RaftEngine over a transport with no peers, the partition log as the
 * group's log), one engine per opened replica.
 */
import { Layer, ManagedRuntime } from "effect"
import type { EffectiveTopicConfig } from "../../src/metadata/TopicConfig.js"
import * as RaftEngine from "../../src/raft/RaftEngine.js"
import * as RaftLogStore from "../../src/raft/RaftLogStore.js"
import * as RaftTransport from "../../src/raft/RaftTransport.js"
import type { PartitionLog } from "../../src/replication/PartitionLog.js"
import type { PartitionReplica } from "../../src/replication/PartitionReplica.js"
import { makePartitionRaftLogs } from "../../src/replication/PartitionRaftLogs.js"
import { closePartitionGroup, openPartitionGroup } from "../../src/replication/ReplicaManager.js"

export interface TestReplica {
  readonly replica: PartitionReplica
  readonly engine: RaftEngine.RaftEngineShape
  /** Removes the group, closes the replica and stops the engine. */
  readonly close: () => Promise<void>
}

export const openTestReplica = async (options: {
  readonly log: PartitionLog
  readonly config: () => EffectiveTopicConfig
  readonly topic?: string
  readonly partition?: number
  readonly nodeId?: number
  readonly now?: () => number
}): Promise<TestReplica> => {
  const nodeId = options.nodeId ?? 1
  const topic = options.topic ?? "t"
  const partition = options.partition ?? 0
  const runtime = ManagedRuntime.make(
    RaftEngine.layer({ nodeId }).pipe(
      Layer.provide(RaftTransport.layerNone(nodeId)),
      Layer.provide(RaftLogStore.layerMemory())
    )
  )
  const engine = await runtime.runPromise(RaftEngine.RaftEngine)
  const store = makePartitionRaftLogs()
  const replica = await runtime.runPromise(
    openPartitionGroup({ engine, store, topic, partition, nodeId, log: options.log, config: options.config, now: options.now ?? Date.now })
  )
  if (!(await runtime.runPromise(replica.awaitLeadership(5000)))) throw new Error("the one-voter group elected no leader")
  return {
    replica,
    engine,
    close: async () => {
      await runtime.runPromise(closePartitionGroup(engine, store, topic, partition))
      replica.close()
      await runtime.dispose()
    }
  }
}
