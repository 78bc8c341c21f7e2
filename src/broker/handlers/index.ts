/**
 * Every API handler this broker serves. The router advertises exactly this
 * list in ApiVersions, so an API is advertised if and only if it is here.
 */
import { Effect } from "effect"
import { BrokerConfig } from "../../config/BrokerConfig.js"
import { makeGroupHandlers } from "../../group/handlers.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import type { ApiHandler, ApiRange } from "../RequestRouter.js"
import * as ApiVersions from "./ApiVersions.js"
import * as AlterConfigs from "./AlterConfigs.js"
import * as CreatePartitions from "./CreatePartitions.js"
import * as CreateTopics from "./CreateTopics.js"
import * as DeleteRecords from "./DeleteRecords.js"
import * as DeleteTopics from "./DeleteTopics.js"
import * as DescribeCluster from "./DescribeCluster.js"
import * as DescribeConfigs from "./DescribeConfigs.js"
import * as IncrementalAlterConfigs from "./IncrementalAlterConfigs.js"
import * as Fetch from "./Fetch.js"
import * as InitProducerId from "./InitProducerId.js"
import * as ListOffsets from "./ListOffsets.js"
import * as Metadata from "./Metadata.js"
import * as OffsetForLeaderEpoch from "./OffsetForLeaderEpoch.js"
import * as Produce from "./Produce.js"

/** The data-plane, admin and group handlers; `apis` is the router's advertised list (read lazily). */
export const makeBrokerHandlers = (apis: () => ReadonlyArray<ApiRange>) =>
  Effect.gen(function* () {
    const config = yield* BrokerConfig
    const replicas = yield* ReplicaManager
    const groups = yield* makeGroupHandlers({
      node: { nodeId: config.nodeId, host: config.advertisedHost, port: config.advertisedPort },
      partitionExists: (topic, partition) => replicas.get(topic, partition) !== undefined
    })
    const handlers: Array<ApiHandler> = [
      ApiVersions.make(apis),
      yield* Metadata.make,
      yield* Produce.make,
      yield* Fetch.make,
      yield* ListOffsets.make,
      yield* OffsetForLeaderEpoch.make,
      yield* InitProducerId.make,
      yield* AlterConfigs.make,
      yield* CreatePartitions.make,
      yield* CreateTopics.make,
      yield* DeleteRecords.make,
      yield* DeleteTopics.make,
      yield* DescribeCluster.make,
      yield* DescribeConfigs.make,
      yield* IncrementalAlterConfigs.make,
      ...groups
    ]
    return handlers
  })
