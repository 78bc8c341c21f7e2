/**
 * AlterConfigs (key 33), v0-v2: the legacy, non-incremental API.
 *
 * Follows Kafka (ConfigAdminManager.preprocess on the broker, then the
 * controller's legacyAlterConfigs), per resource:
 * - A resource given more than once: INVALID_REQUEST "Each resource must
 *   appear at most once." for every occurrence; a config key given twice:
 *   "Error due to duplicate config keys"; a null value: "Null value not
 *   supported for : k1, k2" (both INVALID_REQUEST).
 * - TOPIC: the given configs REPLACE the topic's whole override set (a key
 *   not listed goes back to its default). "" is INVALID_REQUEST "Default topic
 *   resources are not allowed.", an illegal name INVALID_TOPIC_EXCEPTION, an
 *   unknown topic UNKNOWN_TOPIC_OR_PARTITION "The topic 't' does not exist.",
 *   an unknown key or bad value INVALID_CONFIG.
 * - BROKER: this broker has no dynamically updatable configs. The name must
 *   be "" or our node id (else INVALID_REQUEST, Kafka's messages); an empty
 *   config list is a successful no-op; any config is refused with
 *   INVALID_REQUEST "Cannot update these configs dynamically: ..." (Kafka's
 *   answer for a read-only broker config).
 * - Other resource types: INVALID_REQUEST.
 * - validateOnly: every check, nothing changed.
 */
import { Effect } from "effect"
import { BrokerConfig } from "../../config/BrokerConfig.js"
import { ClusterMetadata, checkTopicName } from "../../metadata/ClusterMetadata.js"
import type { TopicMeta } from "../../metadata/MetadataState.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { AlterConfigsRequest, AlterConfigsResponseInput } from "../../protocol/messages.js"
import { defineHandler } from "../RequestRouter.js"
import { errorCodeOf, messageOf } from "./common.js"
import { ResourceType, parseBrokerId, resourceTypeName } from "./DescribeConfigs.js"

export interface ResourceError {
  readonly errorCode: number
  readonly errorMessage: string | null
}

export const resourceOk: ResourceError = { errorCode: ErrorCode.NONE, errorMessage: null }

const invalidRequest = (errorMessage: string): ResourceError => ({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage })

/** Indexes of resources whose (type, name) occurs more than once. */
export const duplicateResources = (resources: ReadonlyArray<{ resourceType: number; resourceName: string }>): Set<number> => {
  const byKey = new Map<string, Array<number>>()
  resources.forEach((r, i) => {
    const k = `${r.resourceType}\u0000${r.resourceName}`
    byKey.set(k, [...(byKey.get(k) ?? []), i])
  })
  const out = new Set<number>()
  for (const idx of byKey.values()) if (idx.length > 1) idx.forEach((i) => out.add(i))
  return out
}

export const DUPLICATE_RESOURCE = invalidRequest("Each resource must appear at most once.")

/** The request-shape checks shared by both alter APIs; undefined when fine. */
export const checkConfigEntries = (
  configs: ReadonlyArray<{ name: string; value: string | null }>,
  isNullAllowed: (index: number) => boolean
): ResourceError | undefined => {
  const names = configs.map((c) => c.name)
  if (new Set(names).size !== names.length) return invalidRequest("Error due to duplicate config keys")
  const nulls = configs.filter((c, i) => c.value === null && !isNullAllowed(i)).map((c) => c.name)
  if (nulls.length > 0) return invalidRequest(`Null value not supported for : ${nulls.join(", ")}`)
  return undefined
}

/** Resolves a TOPIC resource to its topic, or the error Kafka gives. */
export const resolveTopic = (name: string, topics: ReadonlyMap<string, TopicMeta>): TopicMeta | ResourceError => {
  if (name === "") return invalidRequest("Default topic resources are not allowed.")
  const t = topics.get(name)
  if (t !== undefined) return t
  const problem = checkTopicName(name)
  if (problem !== undefined) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, errorMessage: problem }
  return unknownTopic(name)
}

export const unknownTopic = (name: string): ResourceError => ({
  errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  errorMessage: `The topic '${name}' does not exist.`
})

/** A BROKER resource name must be "" (cluster default) or our node id. */
export const checkBrokerName = (name: string, nodeId: number): ResourceError | undefined => {
  if (name === "") return undefined
  const id = parseBrokerId(name)
  if (id === undefined) return invalidRequest(`Node id must be an integer, but it is: ${name}`)
  if (id !== nodeId) return invalidRequest(`Unexpected broker id, expected ${nodeId}, but received ${name}`)
  return undefined
}

/** Refusal of broker config changes: nothing is dynamically updatable here. */
export const staticBrokerConfigs = (names: ReadonlyArray<string>): ResourceError =>
  invalidRequest(
    `Cannot update these configs dynamically: ${names.join(", ")} (this broker's configuration is fixed at startup; restart it with new settings)`
  )

/** The result of a topic config change: OK, UNKNOWN_TOPIC_OR_PARTITION, or the failure's own code. */
export const topicChangeResult = <E extends { readonly _tag: string }>(
  topic: string,
  change: Effect.Effect<unknown, E>
): Effect.Effect<ResourceError> =>
  Effect.match(change, {
    onFailure: (e): ResourceError =>
      e._tag === "UnknownTopic" ? unknownTopic(topic) : { errorCode: errorCodeOf(e), errorMessage: messageOf(e) },
    onSuccess: () => resourceOk
  })

/** Answers every resource of an (Incremental)AlterConfigs request: duplicates are refused, the rest go to `one`. */
export const alterEachResource = <R extends { readonly resourceType: number; readonly resourceName: string }>(
  resources: ReadonlyArray<R>,
  one: (r: R) => Effect.Effect<ResourceError>
) => {
  const dups = duplicateResources(resources)
  return Effect.forEach(resources, (r, i) =>
    Effect.map(dups.has(i) ? Effect.succeed(DUPLICATE_RESOURCE) : one(r), (e) => ({
      ...e,
      resourceType: r.resourceType,
      resourceName: r.resourceName
    }))
  )
}

export const unsupportedResourceType = (resourceType: number): ResourceError => {
  const name = resourceTypeName(resourceType)
  return invalidRequest(
    name === "UNKNOWN"
      ? `Unknown resource type ${resourceType}`
      : `Resource type ${name} is not supported by this broker (only TOPIC and BROKER)`
  )
}

export const make = Effect.gen(function* () {
  const broker = yield* BrokerConfig
  const metadata = yield* ClusterMetadata

  type Resource = AlterConfigsRequest["resources"][number]

  const one = (r: Resource, validateOnly: boolean): Effect.Effect<ResourceError> => {
    const shapeProblem = checkConfigEntries(r.configs, () => false)
    if (shapeProblem !== undefined) return Effect.succeed(shapeProblem)
    switch (r.resourceType) {
      case ResourceType.BROKER: {
        const nameProblem = checkBrokerName(r.resourceName, broker.nodeId)
        if (nameProblem !== undefined) return Effect.succeed(nameProblem)
        return Effect.succeed(r.configs.length === 0 ? resourceOk : staticBrokerConfigs(r.configs.map((c) => c.name)))
      }
      case ResourceType.TOPIC: {
        const topic = resolveTopic(r.resourceName, metadata.current().topics)
        if ("errorCode" in topic) return Effect.succeed(topic)
        return topicChangeResult(
          topic.name,
          metadata.alterTopicConfigs(
            topic.name,
            r.configs.map((c) => ({ op: "set" as const, name: c.name, value: c.value! })),
            true,
            validateOnly
          )
        )
      }
      default:
        return Effect.succeed(unsupportedResourceType(r.resourceType))
    }
  }

  return defineHandler<AlterConfigsRequest, AlterConfigsResponseInput>({
    apiKey: 33,
    name: "AlterConfigs",
    minVersion: 0,
    maxVersion: 2,
    handle: (_ctx, req) =>
      Effect.map(alterEachResource(req.resources, (r) => one(r, req.validateOnly)), (responses) => ({
        throttleTimeMs: 0,
        responses
      }))
  })
})
