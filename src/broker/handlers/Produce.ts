/**
 * Produce (key 0), v3-v11 (v3 is the first with record batch v2; older
 * versions carry message formats this broker does not store).
 *
 * Each partition's batch goes to its replica, all partitions concurrently in
 * one Effect per request. Errors are per partition. acks=0 gets no response;
 * as in Kafka, a failed acks=0 produce closes the connection so the client
 * refreshes its metadata. acks=all waits for commit, bounded by timeoutMs.
 */
import { Duration, Effect } from "effect"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { ProduceRequest, ProduceResponseInput } from "../../protocol/messages.js"
import { ATTRIBUTES_OFFSET, COMPRESSION_CODEC_MASK } from "../../protocol/recordBatch.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import { defineHandler } from "../RequestRouter.js"
import { errorCodeOf, messageOf } from "./common.js"

type PartitionOut = ProduceResponseInput["responses"][number]["partitionResponses"][number]

const failed = (index: number, errorCode: number, errorMessage: string | null = null): PartitionOut => ({
  index,
  errorCode,
  baseOffset: -1n,
  logAppendTimeMs: -1n,
  logStartOffset: -1n,
  errorMessage
})

/** zstd batches are only allowed from Produce v7 on (KIP-110). */
const usesZstd = (records: Buffer | null): boolean =>
  records !== null &&
  records.length > ATTRIBUTES_OFFSET + 1 &&
  (records[ATTRIBUTES_OFFSET + 1]! & COMPRESSION_CODEC_MASK) === 4

export const make = Effect.gen(function* () {
  const replicas = yield* ReplicaManager

  return defineHandler<ProduceRequest, ProduceResponseInput>({
    apiKey: 0,
    name: "Produce",
    minVersion: 3,
    maxVersion: 11,
    handle: (ctx, req) =>
      Effect.gen(function* () {
        const acks = req.acks
        const validAcks = acks === -1 || acks === 0 || acks === 1
        const transactional = req.transactionalId !== null
        let anyError = false
        const responses = yield* Effect.forEach(
          req.topicData,
          (topic) =>
            Effect.map(
              Effect.forEach(
                topic.partitionData,
                (p): Effect.Effect<PartitionOut> => {
                  if (!validAcks) return Effect.succeed(failed(p.index, ErrorCode.INVALID_REQUIRED_ACKS))
                  if (transactional) {
                    return Effect.succeed(
                      failed(p.index, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "Transactions are not supported by this broker")
                    )
                  }
                  const replica = replicas.get(topic.name, p.index)
                  if (replica === undefined) return Effect.succeed(failed(p.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
                  if (acks === -1 && replica.config().minInsyncReplicas > 1) {
                    return Effect.succeed(
                      failed(
                        p.index,
                        ErrorCode.NOT_ENOUGH_REPLICAS,
                        `The size of the current ISR 1 is insufficient to satisfy the min.isr requirement of ${replica.config().minInsyncReplicas}`
                      )
                    )
                  }
                  if (ctx.apiVersion < 7 && usesZstd(p.records)) {
                    return Effect.succeed(
                      failed(p.index, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, "zstd needs Produce v7 or later")
                    )
                  }
                  const append = replica.append(p.records, acks)
                  const bounded =
                    acks === -1
                      ? Effect.timeoutFail(append, {
                          duration: Duration.millis(Math.max(req.timeoutMs, 0)),
                          onTimeout: () => ({ errorCode: ErrorCode.REQUEST_TIMED_OUT, message: "Request timed out" })
                        })
                      : append
                  return Effect.match(bounded, {
                    onFailure: (e) => failed(p.index, errorCodeOf(e), messageOf(e)),
                    onSuccess: (r) => ({
                      index: p.index,
                      errorCode: ErrorCode.NONE,
                      baseOffset: r.baseOffset,
                      logAppendTimeMs: r.logAppendTime,
                      logStartOffset: r.logStartOffset,
                      errorMessage: null
                    })
                  })
                },
                { concurrency: "unbounded" }
              ),
              (partitionResponses) => {
                if (partitionResponses.some((r) => r.errorCode !== ErrorCode.NONE)) anyError = true
                return { name: topic.name, partitionResponses }
              }
            ),
          { concurrency: "unbounded" }
        )
        if (acks === 0) {
          if (anyError) yield* ctx.connection.close("a produce with acks=0 failed; closing so the client refreshes metadata")
          return null
        }
        return { responses, throttleTimeMs: 0 }
      })
  })
})
