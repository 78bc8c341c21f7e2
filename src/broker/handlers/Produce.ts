/**
 * Produce (key 0), v3-v11 (v3 is the first with record batch v2; older
 * versions carry message formats this broker does not store).
 *
 * Each partition's batch goes to its replica in one synchronous pass (no
 * Effect or fiber per partition); acks=0/1 answer once the batches are
 * written (at once with synchronous segment writes, when the writes complete
 * with `--wal-async-writes`); acks=all waits in one Effect for the commits of
 * every partition, bounded by timeoutMs. Errors are per partition. acks=0 gets
 * no response; as in Kafka, a failed acks=0 produce closes the connection so
 * the client refreshes its metadata.
 */
import { Duration, Effect } from "effect"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { ProduceRequest, ProduceResponseInput } from "../../protocol/messages.js"
import { ATTRIBUTES_OFFSET, COMPRESSION_CODEC_MASK } from "../../protocol/recordBatch.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import type { PartitionReplica } from "../../replication/PartitionReplica.js"
import { defineHandler, type RequestContext } from "../RequestRouter.js"
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

/** A partition waiting for its acks=all commit. */
interface Waiting {
  readonly out: { -readonly [K in keyof PartitionOut]: PartitionOut[K] }
  readonly replica: PartitionReplica
  readonly lastKey: number
  done: boolean
}

/** A partition (acks=0/1) waiting for its batch to be written. */
interface Writing {
  readonly out: { -readonly [K in keyof PartitionOut]: PartitionOut[K] }
  readonly replica: PartitionReplica
}

export const make = Effect.gen(function* () {
  const replicas = yield* ReplicaManager

  /**
   * One partition, synchronously: its response, plus (acks=all) what to wait
   * for. No Effect and no fiber per partition.
   */
  const appendPartition = (
    ctx: RequestContext,
    acks: number,
    topic: string,
    p: { readonly index: number; readonly records: Buffer | null },
    waiting: Array<Waiting>,
    writing: Array<Writing>
  ): PartitionOut => {
    const replica = replicas.get(topic, p.index)
    if (replica === undefined) return failed(p.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    if (acks === -1 && replica.config().minInsyncReplicas > 1) {
      return failed(
        p.index,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        `The size of the current ISR 1 is insufficient to satisfy the min.isr requirement of ${replica.config().minInsyncReplicas}`
      )
    }
    if (ctx.apiVersion < 7 && usesZstd(p.records)) {
      return failed(p.index, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, "zstd needs Produce v7 or later")
    }
    const outcome = replica.appendNow(p.records)
    if (outcome._tag === "Failed") return failed(p.index, errorCodeOf(outcome.error), messageOf(outcome.error))
    const out = {
      index: p.index,
      errorCode: ErrorCode.NONE,
      baseOffset: outcome.result.baseOffset,
      logAppendTimeMs: outcome.result.logAppendTime,
      logStartOffset: outcome.result.logStartOffset,
      errorMessage: null as string | null
    }
    if (acks === -1) waiting.push({ out, replica, lastKey: outcome.lastKey, done: false })
    else writing.push({ out, replica })
    return out
  }

  /**
   * acks=0/1: waits until every appended batch is written to the file system
   * (undefined if they all are: synchronous segment writes); a partition whose
   * write failed answers its storage error.
   */
  const awaitWritten = (writing: ReadonlyArray<Writing>): Effect.Effect<void> | undefined => {
    let left = writing.length
    let resumeLater: ((done: Effect.Effect<void>) => void) | undefined
    for (const w of writing) {
      w.replica.whenWritten((error) => {
        if (error !== undefined) {
          w.out.errorCode = errorCodeOf(error)
          w.out.errorMessage = messageOf(error)
          w.out.baseOffset = -1n
        }
        if (--left === 0 && resumeLater !== undefined) resumeLater(Effect.void)
      })
    }
    if (left === 0) return undefined
    return Effect.async<void>((resume) => {
      if (left === 0) resume(Effect.void)
      else resumeLater = resume
    })
  }

  /**
   * acks=all: waits until every appended partition is committed, at most
   * `timeoutMs`; a partition not committed by then answers REQUEST_TIMED_OUT,
   * one whose log failed answers its storage error.
   */
  const awaitCommits = (waiting: ReadonlyArray<Waiting>, timeoutMs: number): Effect.Effect<void> => {
    let finished = false
    const all = Effect.async<void>((resume) => {
      let left = waiting.length
      for (const w of waiting) {
        w.replica.whenCommitted(w.lastKey, (error) => {
          if (finished || w.done) return
          w.done = true
          if (error !== undefined) {
            w.out.errorCode = errorCodeOf(error)
            w.out.errorMessage = messageOf(error)
            w.out.baseOffset = -1n
          }
          if (--left === 0) resume(Effect.void)
        })
      }
    })
    return Effect.timeout(all, Duration.millis(Math.max(timeoutMs, 0))).pipe(
      Effect.catchTag("TimeoutException", () => Effect.void),
      Effect.ensuring(
        Effect.sync(() => {
          finished = true
          for (const w of waiting) {
            if (w.done) continue
            w.out.errorCode = ErrorCode.REQUEST_TIMED_OUT
            w.out.errorMessage = "Request timed out"
            w.out.baseOffset = -1n
          }
        })
      )
    )
  }

  return defineHandler<ProduceRequest, ProduceResponseInput>({
    apiKey: 0,
    name: "Produce",
    minVersion: 3,
    maxVersion: 11,
    handle: (ctx, req) => {
      const acks = req.acks
      const validAcks = acks === -1 || acks === 0 || acks === 1
      const transactional = req.transactionalId !== null
      const waiting: Array<Waiting> = []
      const writing: Array<Writing> = []
      const responses = req.topicData.map((topic) => ({
        name: topic.name,
        partitionResponses: topic.partitionData.map((p) => {
          if (!validAcks) return failed(p.index, ErrorCode.INVALID_REQUIRED_ACKS)
          if (transactional) {
            return failed(p.index, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "Transactions are not supported by this broker")
          }
          return appendPartition(ctx, acks, topic.name, p, waiting, writing)
        })
      }))
      const anyError = (): boolean =>
        responses.some((t) => t.partitionResponses.some((p) => p.errorCode !== ErrorCode.NONE))
      const written = writing.length > 0 ? awaitWritten(writing) : undefined
      if (acks === 0) {
        // the request stays in flight until its batches are written: that bounds the bytes being written
        const answer = Effect.suspend(() =>
          anyError()
            ? Effect.as(ctx.connection.close("a produce with acks=0 failed; closing so the client refreshes metadata"), null)
            : Effect.succeed(null)
        )
        return written === undefined ? answer : Effect.zipRight(written, answer)
      }
      const response: ProduceResponseInput = { responses, throttleTimeMs: 0 }
      if (written !== undefined) return Effect.as(written, response)
      if (waiting.length === 0) return Effect.succeed(response)
      return Effect.as(awaitCommits(waiting, req.timeoutMs), response)
    }
  })
})
