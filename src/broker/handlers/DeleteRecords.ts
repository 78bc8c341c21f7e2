/**
 * DeleteRecords (key 21), v0-v2.
 *
 * Moves each partition's log start offset up to the given offset (-1: the
 * high watermark), as Kafka's ReplicaManager.deleteRecords does:
 * - the result's lowWatermark is the log start offset afterwards (an offset
 *   at or below the current start changes nothing and reports the start);
 * - an offset above the high watermark, or below -1, is OFFSET_OUT_OF_RANGE;
 * - an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION;
 * - on error lowWatermark is -1.
 * Records below the new start are gone at once: a Fetch below it gets
 * OFFSET_OUT_OF_RANGE. The deletion is done when the response is sent, so
 * timeoutMs has nothing to wait for. Partitions run concurrently.
 */
import { Effect } from "effect"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { DeleteRecordsRequest, DeleteRecordsResponseInput } from "../../protocol/messages.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import { defineHandler } from "../RequestRouter.js"
import { errorCodeOf } from "./common.js"

type PartitionOut = DeleteRecordsResponseInput["topics"][number]["partitions"][number]

export const make = Effect.gen(function* () {
  const replicas = yield* ReplicaManager

  return defineHandler<DeleteRecordsRequest, DeleteRecordsResponseInput>({
    apiKey: 21,
    name: "DeleteRecords",
    minVersion: 0,
    maxVersion: 2,
    handle: (_ctx, req) =>
      Effect.gen(function* () {
        const topics = yield* Effect.forEach(req.topics, (t) =>
          Effect.map(
            Effect.forEach(
              t.partitions,
              (p): Effect.Effect<PartitionOut> => {
                const replica = replicas.get(t.name, p.partitionIndex)
                if (replica === undefined) {
                  return Effect.succeed({
                    partitionIndex: p.partitionIndex,
                    lowWatermark: -1n,
                    errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                  })
                }
                return Effect.match(replica.deleteRecordsBefore(p.offset), {
                  onFailure: (e) => ({ partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: errorCodeOf(e) }),
                  onSuccess: (lowWatermark) => ({ partitionIndex: p.partitionIndex, lowWatermark, errorCode: ErrorCode.NONE })
                })
              },
              { concurrency: "unbounded" }
            ),
            (partitions) => ({ name: t.name, partitions })
          )
        )
        return { throttleTimeMs: 0, topics }
      })
  })
})
