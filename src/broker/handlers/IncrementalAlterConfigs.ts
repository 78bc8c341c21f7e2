/**
 * IncrementalAlterConfigs (key 44), v0-v1.
 *
 * Follows Kafka (ConfigAdminManager.preprocess, then the controller's
 * ConfigurationControlManager), per resource:
 * - Duplicate resources, duplicate keys and null values (except for DELETE)
 *   are INVALID_REQUEST with Kafka's messages, as in AlterConfigs; an
 *   operation other than SET(0)/DELETE(1)/APPEND(2)/SUBTRACT(3) is
 *   INVALID_REQUEST "Unknown operations type N".
 * - TOPIC: the operations apply to the current overrides only (other
 *   overrides stay). APPEND/SUBTRACT work on list configs only (else
 *   INVALID_CONFIG "Can't APPEND to key k because its type is not LIST."),
 *   starting from the override or the default: APPEND adds the values not
 *   yet present, SUBTRACT removes them (computed inside the metadata writer
 *   lock via ClusterMetadata.alterTopicConfigsWith, so concurrent changes
 *   are not lost). DELETE of a key that is not set (or
 *   not a topic config) changes nothing. The result is validated like
 *   AlterConfigs (INVALID_CONFIG); unknown topic UNKNOWN_TOPIC_OR_PARTITION.
 * - BROKER: no config is dynamically updatable here, so SET/APPEND/SUBTRACT
 *   are refused with INVALID_REQUEST "Cannot update these configs
 *   dynamically: ..." (Kafka's answer for read-only broker configs); DELETEs
 *   alone succeed as no-ops (there is no dynamic value to delete).
 * - validateOnly: every check, nothing changed.
 */
import { Effect } from "effect"
import { BrokerConfig } from "../../config/BrokerConfig.js"
import { ClusterMetadata, type ConfigOp } from "../../metadata/ClusterMetadata.js"
import { topicConfigDefs } from "../../metadata/TopicConfig.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponseInput } from "../../protocol/messages.js"
import { defineHandler } from "../RequestRouter.js"
import {
  checkBrokerName,
  checkConfigEntries,
  alterEachResource,
  type ResourceError,
  resolveTopic,
  resourceOk,
  staticBrokerConfigs,
  topicChangeResult,
  unsupportedResourceType
} from "./AlterConfigs.js"
import { ResourceType } from "./DescribeConfigs.js"

export const OpType = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const
const opNames = ["SET", "DELETE", "APPEND", "SUBTRACT"]

export const make = Effect.gen(function* () {
  const broker = yield* BrokerConfig
  const metadata = yield* ClusterMetadata

  type Resource = IncrementalAlterConfigsRequest["resources"][number]

  const one = (r: Resource, validateOnly: boolean): Effect.Effect<ResourceError> => {
    const shapeProblem = checkConfigEntries(r.configs, (i) => r.configs[i]!.configOperation === OpType.DELETE)
    if (shapeProblem !== undefined) return Effect.succeed(shapeProblem)
    const badOp = r.configs.find((c) => c.configOperation < 0 || c.configOperation > 3)
    if (r.resourceType !== ResourceType.TOPIC && r.resourceType !== ResourceType.BROKER) {
      return Effect.succeed(unsupportedResourceType(r.resourceType))
    }
    const unknownOp: ResourceError | undefined =
      badOp === undefined
        ? undefined
        : { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Unknown operations type ${badOp.configOperation}` }
    if (r.resourceType === ResourceType.BROKER) {
      const nameProblem = checkBrokerName(r.resourceName, broker.nodeId) ?? unknownOp
      if (nameProblem !== undefined) return Effect.succeed(nameProblem)
      const changes = r.configs.filter((c) => c.configOperation !== OpType.DELETE).map((c) => c.name)
      return Effect.succeed(changes.length === 0 ? resourceOk : staticBrokerConfigs(changes))
    }
    if (unknownOp !== undefined) return Effect.succeed(unknownOp)
    const topic = resolveTopic(r.resourceName, metadata.current().topics)
    if ("errorCode" in topic) return Effect.succeed(topic)
    // APPEND/SUBTRACT only apply to list configs; checked before anything changes.
    for (const c of r.configs) {
      if (c.configOperation !== OpType.APPEND && c.configOperation !== OpType.SUBTRACT) continue
      if (topicConfigDefs.get(c.name)?.type !== "list") {
        return Effect.succeed({
          errorCode: ErrorCode.INVALID_CONFIG,
          errorMessage: `Can't ${opNames[c.configOperation]} to key ${c.name} because its type is not LIST.`
        })
      }
    }
    /** The ops against the overrides current inside the metadata writer lock (no lost update). */
    const opsFor = (overrides: ReadonlyMap<string, string>): Array<ConfigOp> => {
      const ops: Array<ConfigOp> = []
      for (const c of r.configs) {
        const def = topicConfigDefs.get(c.name)
        if (c.configOperation === OpType.SET) ops.push({ op: "set", name: c.name, value: c.value! })
        // Kafka validates the resulting config set: deleting what is not a topic config is a no-op.
        else if (c.configOperation === OpType.DELETE) {
          if (def !== undefined) ops.push({ op: "delete", name: c.name })
        } else {
          const current = overrides.get(c.name) ?? def!.defaultValue(broker)
          const parts = current === "" ? [] : current.split(",")
          for (const v of c.value!.split(",")) {
            if (c.configOperation === OpType.APPEND) {
              if (!parts.includes(v)) parts.push(v)
            } else {
              const i = parts.indexOf(v)
              if (i >= 0) parts.splice(i, 1)
            }
          }
          ops.push({ op: "set", name: c.name, value: parts.join(",") })
        }
      }
      return ops
    }
    return topicChangeResult(topic.name, metadata.alterTopicConfigsWith(topic.name, opsFor, validateOnly))
  }

  return defineHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponseInput>({
    apiKey: 44,
    name: "IncrementalAlterConfigs",
    minVersion: 0,
    maxVersion: 1,
    handle: (_ctx, req) =>
      Effect.map(alterEachResource(req.resources, (r) => one(r, req.validateOnly)), (responses) => ({
        throttleTimeMs: 0,
        responses
      }))
  })
})
