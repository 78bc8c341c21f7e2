/**
 * Fetch (key 1), v4-v17 (v4 is the first whose records are record batch v2
 * only; v13+ names topics by id).
 *
 * Fetch sessions (KIP-227): this broker keeps none and answers every fetch
 * as a full, sessionless one: session id 0 in the response tells the client
 * that no session was created, and it keeps sending full requests. A request
 * naming a session id we never issued gets FETCH_SESSION_ID_NOT_FOUND, and a
 * positive epoch without a session INVALID_FETCH_SESSION_EPOCH, exactly as
 * Kafka's session cache answers them.
 *
 * Long polling: when fewer than `minBytes` are available the request waits
 * up to `maxWaitMs`, woken when any involved partition's high watermark
 * moves (commit), then reads again.
 */
import { Clock, Duration, Effect } from "effect"
import { ClusterMetadata } from "../../metadata/ClusterMetadata.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { FetchRequest, FetchResponseInput } from "../../protocol/messages.js"
import type { PartitionReplica } from "../../replication/PartitionReplica.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import { defineHandler } from "../RequestRouter.js"
import { checkLeaderEpoch, errorCodeOf } from "./common.js"

type TopicOut = FetchResponseInput["responses"][number]
type PartitionOut = TopicOut["partitions"][number]

const EMPTY = Buffer.alloc(0)
const FINAL_EPOCH = -1
const INITIAL_EPOCH = 0

/** One partition of the request, resolved to its replica (or an error) once. */
interface Target {
  readonly partition: number
  readonly replica: PartitionReplica | undefined
  readonly errorCode: number
  readonly fetchOffset: bigint
  readonly maxBytes: number
  readonly currentLeaderEpoch: number
  readonly lastFetchedEpoch: number
}

interface TopicTarget {
  readonly topic: string
  readonly topicId: string
  readonly partitions: ReadonlyArray<Target>
}

export const make = Effect.gen(function* () {
  const metadata = yield* ClusterMetadata
  const replicas = yield* ReplicaManager

  const resolve = (req: FetchRequest, byId: boolean): Array<TopicTarget> => {
    const state = metadata.current()
    return req.topics.map((t) => {
      const meta = byId ? state.topicsById.get(t.topicId) : state.topics.get(t.topic)
      const missingCode = byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
      return {
        topic: meta?.name ?? t.topic,
        topicId: meta?.topicId ?? t.topicId,
        partitions: t.partitions.map((p) => {
          const replica = meta === undefined ? undefined : replicas.get(meta.name, p.partition)
          const errorCode =
            meta === undefined
              ? missingCode
              : replica === undefined
                ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                : checkLeaderEpoch(replica, p.currentLeaderEpoch)
          return {
            partition: p.partition,
            replica,
            errorCode,
            fetchOffset: p.fetchOffset,
            maxBytes: p.partitionMaxBytes,
            currentLeaderEpoch: p.currentLeaderEpoch,
            lastFetchedEpoch: p.lastFetchedEpoch
          }
        })
      }
    })
  }

  const emptyPartition = (t: Target, errorCode: number, r: PartitionReplica | undefined): PartitionOut => ({
    partitionIndex: t.partition,
    errorCode,
    highWatermark: r?.highWatermark ?? -1n,
    lastStableOffset: r?.highWatermark ?? -1n,
    logStartOffset: r?.logStartOffset ?? -1n,
    abortedTransactions: null,
    preferredReadReplica: -1,
    records: EMPTY
  })

  /** One pass over every partition; returns the response topics and the bytes gathered. */
  const readAll = (targets: ReadonlyArray<TopicTarget>, responseMaxBytes: number, hardLimit: boolean) =>
    Effect.gen(function* () {
      let bytes = 0
      let errors = false
      const out: Array<{ topic: TopicTarget; partitions: Array<PartitionOut> }> = []
      for (const topic of targets) {
        const partitions: Array<PartitionOut> = []
        for (const t of topic.partitions) {
          const r = t.replica
          if (t.errorCode !== ErrorCode.NONE || r === undefined) {
            errors = true
            partitions.push(emptyPartition(t, t.errorCode, r))
            continue
          }
          if (t.lastFetchedEpoch >= 0) {
            const end = r.endOffsetForEpoch(t.lastFetchedEpoch)
            if (end.leaderEpoch < t.lastFetchedEpoch || end.endOffset < t.fetchOffset) {
              partitions.push({
                ...emptyPartition(t, ErrorCode.NONE, r),
                divergingEpoch: { epoch: end.leaderEpoch, endOffset: end.endOffset }
              })
              continue
            }
          }
          const budget = Math.min(t.maxBytes, responseMaxBytes - bytes)
          const minOneBatch = !hardLimit && bytes === 0
          const read = yield* Effect.either(r.read(t.fetchOffset, Math.max(budget, 0), minOneBatch))
          if (read._tag === "Left") {
            errors = true
            partitions.push(emptyPartition(t, errorCodeOf(read.left), r))
            continue
          }
          const res = read.right
          bytes += res.bytes
          partitions.push({
            partitionIndex: t.partition,
            errorCode: ErrorCode.NONE,
            highWatermark: res.highWatermark,
            lastStableOffset: res.highWatermark,
            logStartOffset: res.logStartOffset,
            abortedTransactions: null,
            preferredReadReplica: -1,
            records: res.records.length === 0 ? EMPTY : res.records.length === 1 ? res.records[0]! : Buffer.concat(res.records, res.bytes)
          })
        }
        out.push({ topic, partitions })
      }
      return { out, bytes, errors }
    })

  /** Waits until a high watermark moves past what was read, or the timeout passes. */
  const waitForCommit = (targets: ReadonlyArray<TopicTarget>, maxWaitMs: number) => {
    const rs: Array<{ r: PartitionReplica; hw: bigint }> = []
    for (const t of targets) for (const p of t.partitions) if (p.replica !== undefined) rs.push({ r: p.replica, hw: p.replica.highWatermark })
    if (rs.length === 0) return Effect.sleep(Duration.millis(maxWaitMs))
    const unregister: Array<() => void> = []
    const wait = Effect.async<void>((resume) => {
      let done = false
      const wake = () => {
        if (!done) {
          done = true
          resume(Effect.void)
        }
      }
      for (const { r } of rs) unregister.push(r.onHighWatermarkChange(wake))
      // A commit between the read and the registration must not be missed.
      if (rs.some(({ r, hw }) => r.highWatermark !== hw)) wake()
    })
    return wait.pipe(
      Effect.timeout(Duration.millis(maxWaitMs)),
      Effect.ignore,
      Effect.ensuring(Effect.sync(() => unregister.forEach((u) => u())))
    )
  }

  return defineHandler<FetchRequest, FetchResponseInput>({
    apiKey: 1,
    name: "Fetch",
    minVersion: 4,
    maxVersion: 17,
    handle: (ctx, req) =>
      Effect.gen(function* () {
        const v = ctx.apiVersion
        if (v >= 7) {
          const sessionError =
            req.sessionId !== 0
              ? ErrorCode.FETCH_SESSION_ID_NOT_FOUND
              : req.sessionEpoch !== FINAL_EPOCH && req.sessionEpoch !== INITIAL_EPOCH
                ? ErrorCode.INVALID_FETCH_SESSION_EPOCH
                : ErrorCode.NONE
          if (sessionError !== ErrorCode.NONE) {
            return { throttleTimeMs: 0, errorCode: sessionError, sessionId: 0, responses: [] }
          }
        }
        const byId = v >= 13
        const targets = resolve(req, byId)
        const hardLimit = v < 3
        const responseMaxBytes = req.maxBytes
        let result = yield* readAll(targets, responseMaxBytes, hardLimit)
        if (result.bytes < req.minBytes && req.maxWaitMs > 0 && !result.errors) {
          const deadline = (yield* Clock.currentTimeMillis) + req.maxWaitMs
          for (;;) {
            const remaining = deadline - (yield* Clock.currentTimeMillis)
            if (remaining <= 0) break
            yield* waitForCommit(targets, remaining)
            result = yield* readAll(targets, responseMaxBytes, hardLimit)
            if (result.bytes >= req.minBytes || result.errors) break
          }
        }
        return {
          throttleTimeMs: 0,
          errorCode: ErrorCode.NONE,
          sessionId: 0,
          responses: result.out.map(({ topic, partitions }) => ({
            topic: topic.topic,
            topicId: topic.topicId,
            partitions
          }))
        }
      })
  })
})
