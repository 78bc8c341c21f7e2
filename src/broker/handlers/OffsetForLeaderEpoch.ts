/**
 * OffsetForLeaderEpoch (key 23), v0-v4: the end offset of the largest leader
 * epoch at or below the one asked for, so a client can detect log truncation
 * after a leader change (KIP-101, KIP-320).
 */
import { Effect } from "effect"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponseInput } from "../../protocol/messages.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import { defineHandler } from "../RequestRouter.js"
import { checkLeaderEpoch } from "./common.js"

export const make = Effect.gen(function* () {
  const replicas = yield* ReplicaManager

  return defineHandler<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponseInput>({
    apiKey: 23,
    name: "OffsetForLeaderEpoch",
    minVersion: 0,
    maxVersion: 4,
    handle: (_ctx, req) =>
      Effect.sync(() => ({
        throttleTimeMs: 0,
        topics: req.topics.map((t) => ({
          topic: t.topic,
          partitions: t.partitions.map((p) => {
            const r = replicas.get(t.topic, p.partition)
            if (r === undefined) {
              return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partition: p.partition, leaderEpoch: -1, endOffset: -1n }
            }
            const epochError = checkLeaderEpoch(r, p.currentLeaderEpoch)
            if (epochError !== ErrorCode.NONE) {
              return { errorCode: epochError, partition: p.partition, leaderEpoch: -1, endOffset: -1n }
            }
            const end = r.endOffsetForEpoch(p.leaderEpoch)
            return { errorCode: ErrorCode.NONE, partition: p.partition, leaderEpoch: end.leaderEpoch, endOffset: end.endOffset }
          })
        }))
      }))
  })
})
