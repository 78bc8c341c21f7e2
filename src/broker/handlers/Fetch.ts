/**
 * Fetch (key 1), v4-v17 (v4 is the first whose records are record batch v2
 * only; v13+ names topics by id).
 *
 * Fetch sessions (KIP-227, v7+): the {@link FetchSessionCache} decides per
 * request whether it is sessionless (epoch -1, or v4-v6), full (epoch 0: all
 * the request's partitions are answered, then a session is created over them
 * if the cache has room), incremental (the session's partitions are fetched
 * with their cached parameters, and only partitions with records, a moved
 * high watermark or log start offset, an error or a diverging epoch are
 * answered) or a session error (FETCH_SESSION_ID_NOT_FOUND,
 * INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR: no partitions,
 * session id 0). See docs/fetch.md.
 *
 * Long polling: when fewer than `minBytes` are available the request waits
 * up to `maxWaitMs`, woken when any involved partition's high watermark
 * moves (commit), then reads again. A partition error or a diverging epoch
 * answers at once, as Kafka does.
 */
import { Clock, Duration, Effect } from "effect"
import {
  type CachedPartition,
  type FetchContext,
  FetchSessionCache,
  type ForgottenPartition,
  type NewSessionPartition,
  type PartitionParams,
  type PartitionResponseState
} from "../FetchSessionCache.js"
import { ClusterMetadata } from "../../metadata/ClusterMetadata.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { FetchRequest, FetchResponseInput } from "../../protocol/messages.js"
import type { PartitionReplica } from "../../replication/PartitionReplica.js"
import { ReplicaManager } from "../../replication/ReplicaManager.js"
import { readBuffers } from "../../storage/ReadBufferPool.js"
import { defineHandler, EncodedResponse } from "../RequestRouter.js"
import { checkLeaderEpoch, errorCodeOf } from "./common.js"
import {
  encodeFetchResponse,
  type FetchPartitionOut as PartitionOut,
  type FetchResponseOut,
  type FetchTopicOut as TopicOut
} from "./FetchResponseWriter.js"

const NO_RECORDS: ReadonlyArray<Buffer> = []
const SESSIONLESS: FetchContext = { _tag: "Sessionless" }

/** One partition to read, resolved to its replica (or an error) once per request. */
interface Target {
  readonly partition: number
  readonly replica: PartitionReplica | undefined
  readonly errorCode: number
  readonly fetchOffset: bigint
  readonly maxBytes: number
  readonly currentLeaderEpoch: number
  readonly lastFetchedEpoch: number
  /** The fetcher's log start offset (kept in a new session). */
  readonly logStartOffset: bigint
  /** Incremental requests: the session's entry for this partition. */
  readonly cached: CachedPartition | undefined
}

interface TopicTarget {
  readonly topic: string
  readonly topicId: string
  readonly partitions: ReadonlyArray<Target>
}

interface TopicResult {
  readonly topic: TopicTarget
  readonly partitions: Array<PartitionOut>
}

const responseState = (p: PartitionOut): PartitionResponseState => ({
  errorCode: p.errorCode,
  highWatermark: p.highWatermark,
  logStartOffset: p.logStartOffset,
  recordsBytes: p.recordsBytes,
  divergingEpoch: p.divergingEpoch !== undefined,
  preferredReadReplica: p.preferredReadReplica
})

/**
 * The response, encoded here so the record batches are written without
 * copies; the pooled read buffers they are views of go back to the pool once
 * the transport has written them.
 */
const encoded = (version: number, correlationId: number, r: FetchResponseOut, buffers: ReadonlyArray<Buffer>): EncodedResponse =>
  new EncodedResponse(encodeFetchResponse(version, correlationId, r).chunks, buffers.length === 0 ? undefined : () => releaseAll(buffers))

const releaseAll = (buffers: ReadonlyArray<Buffer>): void => {
  for (const b of buffers) readBuffers.release(b)
}

export const make = Effect.gen(function* () {
  const metadata = yield* ClusterMetadata
  const replicas = yield* ReplicaManager
  const sessions = yield* FetchSessionCache

  const errorFor = (name: string | undefined, missingCode: number, partition: number, currentLeaderEpoch: number) => {
    if (name === undefined) return { replica: undefined, errorCode: missingCode }
    const replica = replicas.get(name, partition)
    return {
      replica,
      errorCode: replica === undefined ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : checkLeaderEpoch(replica, currentLeaderEpoch)
    }
  }

  /** The request's own partitions (sessionless and full requests). */
  const resolveRequest = (req: FetchRequest, byId: boolean): Array<TopicTarget> => {
    const state = metadata.current()
    const missingCode = byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    return req.topics.map((t) => {
      const meta = byId ? state.topicsById.get(t.topicId) : state.topics.get(t.topic)
      return {
        topic: meta?.name ?? t.topic,
        topicId: meta?.topicId ?? t.topicId,
        partitions: t.partitions.map((p) => ({
          partition: p.partition,
          ...errorFor(meta?.name, missingCode, p.partition, p.currentLeaderEpoch),
          fetchOffset: p.fetchOffset,
          maxBytes: p.partitionMaxBytes,
          currentLeaderEpoch: p.currentLeaderEpoch,
          lastFetchedEpoch: p.lastFetchedEpoch,
          logStartOffset: p.logStartOffset,
          cached: undefined
        }))
      }
    })
  }

  /** Every partition of a session in its fetch order, grouped into runs of one topic. */
  const resolveSession = (ctx: Extract<FetchContext, { _tag: "Incremental" }>): Array<TopicTarget> => {
    const state = metadata.current()
    const byId = ctx.session.usesTopicIds
    const out: Array<TopicTarget> = []
    let run: Array<Target> | undefined
    let runKey: string | undefined
    for (const cp of ctx.session.partitions.values()) {
      let name: string | undefined
      if (byId) {
        const meta = state.topicsById.get(cp.topicId)
        // A topic id unknown when the session was made may be known now.
        if (meta !== undefined) cp.topic = meta.name
        name = meta?.name
      } else {
        name = state.topics.has(cp.topic) ? cp.topic : undefined
      }
      const key = byId ? cp.topicId : cp.topic
      if (run === undefined || key !== runKey) {
        run = []
        runKey = key
        out.push({ topic: cp.topic, topicId: cp.topicId, partitions: run })
      }
      run.push({
        partition: cp.partition,
        ...errorFor(name, byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, cp.partition, cp.currentLeaderEpoch),
        fetchOffset: cp.fetchOffset,
        maxBytes: cp.maxBytes,
        currentLeaderEpoch: cp.currentLeaderEpoch,
        lastFetchedEpoch: cp.lastFetchedEpoch,
        logStartOffset: cp.fetcherLogStartOffset,
        cached: cp
      })
    }
    return out
  }

  /** The request's partitions as session parameters (incremental requests only). */
  const requestParams = (req: FetchRequest, byId: boolean) => (): Array<PartitionParams> => {
    const state = metadata.current()
    const out: Array<PartitionParams> = []
    for (const t of req.topics) {
      const name = byId ? (state.topicsById.get(t.topicId)?.name ?? "") : t.topic
      for (const p of t.partitions) {
        out.push({
          topic: name,
          topicId: t.topicId,
          partition: p.partition,
          fetchOffset: p.fetchOffset,
          maxBytes: p.partitionMaxBytes,
          currentLeaderEpoch: p.currentLeaderEpoch,
          lastFetchedEpoch: p.lastFetchedEpoch,
          logStartOffset: p.logStartOffset
        })
      }
    }
    return out
  }

  const forgotten = (req: FetchRequest) => (): Array<ForgottenPartition> => {
    const out: Array<ForgottenPartition> = []
    for (const t of req.forgottenTopicsData) {
      for (const partition of t.partitions) out.push({ topic: t.topic, topicId: t.topicId, partition })
    }
    return out
  }

  const emptyPartition = (t: Target, errorCode: number, r: PartitionReplica | undefined): PartitionOut => ({
    partitionIndex: t.partition,
    errorCode,
    highWatermark: r?.highWatermark ?? -1n,
    lastStableOffset: r?.highWatermark ?? -1n,
    logStartOffset: r?.logStartOffset ?? -1n,
    preferredReadReplica: -1,
    records: NO_RECORDS,
    recordsBytes: 0
  })

  /** One pass over every partition; returns the response topics and the bytes gathered. */
  const readAll = (targets: ReadonlyArray<TopicTarget>, responseMaxBytes: number, hardLimit: boolean) =>
    Effect.gen(function* () {
      let bytes = 0
      /** An error or a diverging epoch: answer without waiting. */
      let immediate = false
      const out: Array<TopicResult> = []
      const buffers: Array<Buffer> = []
      for (const topic of targets) {
        const partitions: Array<PartitionOut> = []
        for (const t of topic.partitions) {
          const r = t.replica
          if (t.errorCode !== ErrorCode.NONE || r === undefined) {
            immediate = true
            partitions.push(emptyPartition(t, t.errorCode, r))
            continue
          }
          if (t.lastFetchedEpoch >= 0) {
            const end = r.endOffsetForEpoch(t.lastFetchedEpoch)
            if (end.leaderEpoch < t.lastFetchedEpoch || end.endOffset < t.fetchOffset) {
              immediate = true
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
            immediate = true
            partitions.push(emptyPartition(t, errorCodeOf(read.left), r))
            continue
          }
          const res = read.right
          bytes += res.bytes
          for (const b of res.buffers) buffers.push(b)
          partitions.push({
            partitionIndex: t.partition,
            errorCode: ErrorCode.NONE,
            highWatermark: res.highWatermark,
            lastStableOffset: res.highWatermark,
            logStartOffset: res.logStartOffset,
            preferredReadReplica: -1,
            records: res.records,
            recordsBytes: res.bytes
          })
        }
        out.push({ topic, partitions })
      }
      return { out, bytes, immediate, buffers }
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

  const topicsOut = (out: ReadonlyArray<TopicResult>): Array<TopicOut> =>
    out.map(({ partitions, topic }) => ({ topic: topic.topic, topicId: topic.topicId, partitions }))

  /** Full request: the partitions of a new session, with what they were answered. */
  const sessionPartitions = (out: ReadonlyArray<TopicResult>): Array<NewSessionPartition> => {
    const parts: Array<NewSessionPartition> = []
    for (const { partitions, topic } of out) {
      for (let i = 0; i < partitions.length; i++) {
        const target = topic.partitions[i]!
        parts.push({
          params: {
            // A v13+ topic id this broker does not know stays in the session under its id (name "").
            topic: topic.topic,
            topicId: topic.topicId,
            partition: target.partition,
            fetchOffset: target.fetchOffset,
            maxBytes: target.maxBytes,
            currentLeaderEpoch: target.currentLeaderEpoch,
            lastFetchedEpoch: target.lastFetchedEpoch,
            logStartOffset: target.logStartOffset
          },
          response: responseState(partitions[i]!)
        })
      }
    }
    return parts
  }

  /** Incremental request: keeps the partitions that changed, remembering what is sent. */
  const changedOnly = (ctx: Extract<FetchContext, { _tag: "Incremental" }>, out: ReadonlyArray<TopicResult>): Array<TopicOut> => {
    const topics: Array<TopicOut> = []
    for (const { partitions, topic } of out) {
      const kept: Array<PartitionOut> = []
      for (let i = 0; i < partitions.length; i++) {
        const cp = topic.partitions[i]!.cached!
        const p = partitions[i]!
        const state = responseState(p)
        if (cp.maybeUpdateResponseData(state, true)) {
          kept.push(p)
          // Partitions that returned records go to the back of the fetch order.
          if (state.recordsBytes > 0) ctx.session.rotateToEnd(cp)
        }
      }
      if (kept.length > 0) topics.push({ topic: topic.topic, topicId: topic.topicId, partitions: kept })
    }
    return topics
  }

  return defineHandler<FetchRequest, FetchResponseInput>({
    apiKey: 1,
    name: "Fetch",
    minVersion: 4,
    maxVersion: 17,
    handle: (ctx, req) =>
      Effect.gen(function* () {
        let buffers: ReadonlyArray<Buffer> = []
        const respond = (r: FetchResponseOut) => encoded(ctx.apiVersion, ctx.correlationId, r, buffers)
        const v = ctx.apiVersion
        const byId = v >= 13
        const context: FetchContext =
          v >= 7
            ? sessions.newContext(
                {
                  apiVersion: v,
                  sessionId: req.sessionId,
                  sessionEpoch: req.sessionEpoch,
                  privileged: req.replicaId >= 0 || req.replicaState.replicaId >= 0,
                  fetchData: requestParams(req, byId),
                  toForget: forgotten(req)
                },
                yield* Clock.currentTimeMillis
              )
            : SESSIONLESS
        if (context._tag === "SessionError") {
          return respond({ throttleTimeMs: 0, errorCode: context.errorCode, sessionId: 0, responses: [] })
        }
        const targets = context._tag === "Incremental" ? resolveSession(context) : resolveRequest(req, byId)
        const hardLimit = v < 3
        const responseMaxBytes = req.maxBytes
        let result = yield* readAll(targets, responseMaxBytes, hardLimit)
        if (result.bytes < req.minBytes && req.maxWaitMs > 0 && !result.immediate) {
          const deadline = (yield* Clock.currentTimeMillis) + req.maxWaitMs
          for (;;) {
            const remaining = deadline - (yield* Clock.currentTimeMillis)
            if (remaining <= 0) break
            yield* waitForCommit(targets, remaining)
            // nothing refers to the previous pass's records any more
            releaseAll(result.buffers)
            result = yield* readAll(targets, responseMaxBytes, hardLimit)
            if (result.bytes >= req.minBytes || result.immediate) break
          }
        }
        buffers = result.buffers
        switch (context._tag) {
          case "Sessionless":
            return respond({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses: topicsOut(result.out) })
          case "Full": {
            const sessionId = sessions.maybeCreateSession(
              yield* Clock.currentTimeMillis,
              context.privileged,
              context.usesTopicIds,
              sessionPartitions(result.out)
            )
            return respond({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId, responses: topicsOut(result.out) })
          }
          case "Incremental": {
            const session = context.session
            // Another request on this session (a duplicate) advanced it while this one waited.
            if (session.epoch !== context.expectedEpoch) {
              return respond({ throttleTimeMs: 0, errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH, sessionId: session.id, responses: [] })
            }
            return respond({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: session.id, responses: changedOnly(context, result.out) })
          }
        }
      })
  })
})
