/**
 * CreatePartitions (key 37), v0-v3.
 *
 * Follows Kafka's KRaft controller (ReplicationControlManager.createPartitions):
 * - A topic named more than once: one INVALID_REQUEST "Duplicate topic name."
 *   and no change to it.
 * - Unknown topic: UNKNOWN_TOPIC_OR_PARTITION (no message, as Kafka).
 * - `count` must exceed the current partition count: INVALID_PARTITIONS
 *   "Topic already has N partition(s)." or "The topic T currently has N
 *   partition(s); M would not be an increase."
 * - `assignments` (optional) must list one replica set per new partition
 *   ("Attempted to add N additional partition(s), but only M assignment(s)
 *   were specified.") and each set must pass Kafka's manual-assignment checks
 *   with the topic's replication factor: INVALID_REPLICA_ASSIGNMENT.
 * - validateOnly: the same checks, nothing created.
 * - The new partitions' logs exist when the response is sent (the
 *   ReplicaManager opens them in the metadata listener), so timeoutMs has
 *   nothing to wait for.
 */
import { Effect } from "effect"
import { ClusterMetadata } from "../../metadata/ClusterMetadata.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { CreatePartitionsRequest, CreatePartitionsResponseInput } from "../../protocol/messages.js"
import { defineHandler } from "../RequestRouter.js"
import { errorCodeOf, messageOf } from "./common.js"
import { checkManualAssignment } from "./CreateTopics.js"

type ResultOut = CreatePartitionsResponseInput["results"][number]
type Topic = CreatePartitionsRequest["topics"][number]

export const make = Effect.gen(function* () {
  const metadata = yield* ClusterMetadata

  const one = (t: Topic, validateOnly: boolean): Effect.Effect<ResultOut> => {
    const fail = (errorCode: number, errorMessage: string | null) => Effect.succeed({ name: t.name, errorCode, errorMessage })
    const topic = metadata.current().topics.get(t.name)
    if (topic === undefined) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null)
    const current = topic.replicas.length
    if (t.count === current) return fail(ErrorCode.INVALID_PARTITIONS, `Topic already has ${current} partition(s).`)
    if (t.count < current) {
      return fail(
        ErrorCode.INVALID_PARTITIONS,
        `The topic ${t.name} currently has ${current} partition(s); ${t.count} would not be an increase.`
      )
    }
    const additional = t.count - current
    if (t.assignments !== null) {
      if (t.assignments.length !== additional) {
        return fail(
          ErrorCode.INVALID_REPLICA_ASSIGNMENT,
          `Attempted to add ${additional} additional partition(s), but only ${t.assignments.length} assignment(s) were specified.`
        )
      }
      const rf = topic.replicas[0]?.length
      for (const a of t.assignments) {
        const problem = checkManualAssignment(a.brokerIds, metadata.brokers, rf)
        if (problem !== undefined) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, problem)
      }
    }
    return metadata
      .createPartitions(
        t.name,
        t.count,
        t.assignments === null ? null : t.assignments.map((a) => a.brokerIds),
        validateOnly
      )
      .pipe(
        Effect.match({
          onFailure: (e) => ({
            name: t.name,
            errorCode: errorCodeOf(e),
            errorMessage: e._tag === "UnknownTopic" ? null : messageOf(e)
          }),
          onSuccess: () => ({ name: t.name, errorCode: ErrorCode.NONE, errorMessage: null })
        })
      )
  }

  return defineHandler<CreatePartitionsRequest, CreatePartitionsResponseInput>({
    apiKey: 37,
    name: "CreatePartitions",
    minVersion: 0,
    maxVersion: 3,
    handle: (_ctx, req) =>
      Effect.gen(function* () {
        const counts = new Map<string, number>()
        for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1)
        const results: Array<ResultOut> = []
        const reported = new Set<string>()
        for (const t of req.topics) {
          if (counts.get(t.name)! > 1) {
            if (!reported.has(t.name)) {
              reported.add(t.name)
              results.push({ name: t.name, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: "Duplicate topic name." })
            }
            continue
          }
          results.push(yield* one(t, req.validateOnly))
        }
        return { throttleTimeMs: 0, results }
      })
  })
})
