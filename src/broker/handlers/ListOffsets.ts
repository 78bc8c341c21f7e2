/**
 * ListOffsets (key 2), v1-v10 (v0's "old style offsets" answer is not served).
 *
 * Special timestamps: -1 latest (the high watermark; equal to the last
 * stable offset, as there are no transactions), -2 earliest, -3 the batch
 * with the largest timestamp (v7+), -4 earliest local (v8+; everything is
 * local), -5 latest tiered (v9+; nothing is tiered: offset -1). A timestamp
 * >= 0 finds the first batch with a max timestamp at or after it.
 */
import { Effect } from "effect"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { ListOffsetsRequest, ListOffsetsResponseInput } from "../../protocol/messages.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import { defineHandler } from "../RequestRouter.js"
import { checkLeaderEpoch, errorCodeOf } from "./common.js"

type PartitionOut = ListOffsetsResponseInput["topics"][number]["partitions"][number]

export const LATEST = -1n
export const EARLIEST = -2n
export const MAX_TIMESTAMP = -3n
export const EARLIEST_LOCAL = -4n
export const LATEST_TIERED = -5n

export const make = Effect.gen(function* () {
  const replicas = yield* ReplicaManager

  return defineHandler<ListOffsetsRequest, ListOffsetsResponseInput>({
    apiKey: 2,
    name: "ListOffsets",
    minVersion: 1,
    maxVersion: 10,
    handle: (ctx, req) =>
      Effect.forEach(req.topics, (topic) =>
        Effect.map(
          Effect.forEach(topic.partitions, (p): Effect.Effect<PartitionOut> => {
            const fail = (errorCode: number): PartitionOut => ({
              partitionIndex: p.partitionIndex,
              errorCode,
              timestamp: -1n,
              offset: -1n,
              leaderEpoch: -1
            })
            const r = replicas.get(topic.name, p.partitionIndex)
            if (r === undefined) return Effect.succeed(fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
            const epochError = checkLeaderEpoch(r, p.currentLeaderEpoch)
            if (epochError !== ErrorCode.NONE) return Effect.succeed(fail(epochError))
            const ok = (offset: bigint, timestamp: bigint, leaderEpoch = r.leaderEpoch): PartitionOut => ({
              partitionIndex: p.partitionIndex,
              errorCode: ErrorCode.NONE,
              timestamp,
              offset,
              // The leader epoch is only in v4+ responses (and not ignorable before).
              leaderEpoch: offset < 0n || ctx.apiVersion < 4 ? -1 : leaderEpoch
            })
            const ts = p.timestamp
            const v = ctx.apiVersion
            if (ts === LATEST) return Effect.succeed(ok(r.highWatermark, -1n))
            if (ts === EARLIEST || (ts === EARLIEST_LOCAL && v >= 8)) return Effect.succeed(ok(r.logStartOffset, -1n))
            if (ts === LATEST_TIERED && v >= 9) return Effect.succeed(ok(-1n, -1n))
            if (ts === MAX_TIMESTAMP && v >= 7) {
              return Effect.match(r.maxTimestamp(), {
                onFailure: (e) => fail(errorCodeOf(e)),
                onSuccess: (found) => (found === undefined ? ok(-1n, -1n) : ok(found.offset, found.timestamp, found.leaderEpoch))
              })
            }
            if (ts < 0n) return Effect.succeed(fail(ErrorCode.INVALID_REQUEST))
            return Effect.match(r.offsetForTimestamp(ts), {
              onFailure: (e) => fail(errorCodeOf(e)),
              onSuccess: (found) => (found === undefined ? ok(-1n, -1n) : ok(found.offset, found.timestamp, found.leaderEpoch))
            })
          }),
          (partitions) => ({ name: topic.name, partitions })
        )
      ).pipe(Effect.map((topics) => ({ throttleTimeMs: 0, topics })))
  })
})
