/**
 * Incremental fetch sessions (KIP-227): the session cache on its own (epochs,
 * errors, eviction) and the Fetch handler over it (full, incremental,
 * forgotten partitions, closing, topic ids).
 */
import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  FetchSessionCache,
  type FetchSessionCacheShape,
  FetchSessionConfig,
  layerConfigFromEnv,
  layerFromEnv,
  INVALID_SESSION_ID,
  layer as fetchSessionLayer,
  layerConfig,
  makeUnsafe,
  nextEpoch,
  type NewContextInput,
  type NewSessionPartition,
  type PartitionParams
} from "../../src/broker/FetchSessionCache.js"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import { encodeBatch } from "../../src/protocol/recordBatch.js"
import { encodeResponse, type FetchResponse } from "../../src/protocol/messages.js"
import { encodeFetchResponse, type FetchResponseOut } from "../../src/broker/handlers/FetchResponseWriter.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"

const params = (topic: string, partition: number, fetchOffset = 0n, topicId = "id-" + topic): PartitionParams => ({
  topic,
  topicId,
  partition,
  fetchOffset,
  maxBytes: 1 << 20,
  currentLeaderEpoch: -1,
  lastFetchedEpoch: -1,
  logStartOffset: -1n
})

const ok = (hw: bigint, records = 0) => ({
  errorCode: 0,
  highWatermark: hw,
  logStartOffset: 0n,
  recordsBytes: records,
  divergingEpoch: false,
  preferredReadReplica: -1
})

const partitions = (n: number, topic = "t"): Array<NewSessionPartition> =>
  Array.from({ length: n }, (_, i) => ({ params: params(topic, i), response: ok(0n) }))

const ctx = (over: Partial<NewContextInput> & { sessionId: number; sessionEpoch: number }): NewContextInput => ({
  apiVersion: 12,
  privileged: false,
  fetchData: () => [],
  toForget: () => [],
  ...over
})

describe("FetchSessionCache", () => {
  const cache = (slots = 10, evictionMs = 1000): FetchSessionCacheShape => makeUnsafe({ cacheSlots: slots, evictionMs }, 42)

  it("epoch 0 is full, epoch -1 sessionless, wrong epoch and unknown id are errors", () => {
    const c = cache()
    expect(c.newContext(ctx({ sessionId: 0, sessionEpoch: 0 }), 0)._tag).toBe("Full")
    expect(c.newContext(ctx({ sessionId: 0, sessionEpoch: -1 }), 0)._tag).toBe("Sessionless")
    const id = c.maybeCreateSession(0, false, false, partitions(2))
    expect(id).toBeGreaterThan(0)
    expect(c.get(id)!.epoch).toBe(1)
    expect(c.newContext(ctx({ sessionId: id + 1, sessionEpoch: 1 }), 1)).toEqual({
      _tag: "SessionError",
      errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    })
    expect(c.newContext(ctx({ sessionId: 0, sessionEpoch: 3 }), 1)).toEqual({
      _tag: "SessionError",
      errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    })
    expect(c.newContext(ctx({ sessionId: id, sessionEpoch: 2 }), 1)).toEqual({
      _tag: "SessionError",
      errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH
    })
    // A session made without topic ids cannot be used by a v13+ request.
    expect(c.newContext(ctx({ apiVersion: 13, sessionId: id, sessionEpoch: 1 }), 1)).toEqual({
      _tag: "SessionError",
      errorCode: ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
    })
    const inc = c.newContext(ctx({ sessionId: id, sessionEpoch: 1 }), 1)
    expect(inc._tag).toBe("Incremental")
    expect(c.get(id)!.epoch).toBe(2)
    // The same epoch again (a duplicate) is now stale.
    expect(c.newContext(ctx({ sessionId: id, sessionEpoch: 1 }), 1)._tag).toBe("SessionError")
    expect(c.newContext(ctx({ sessionId: id, sessionEpoch: 2 }), 1)._tag).toBe("Incremental")
  })

  it("wraps the epoch from Int32 max to 1", () => {
    expect(nextEpoch(0)).toBe(1)
    expect(nextEpoch(2_147_483_647)).toBe(1)
    expect(nextEpoch(-1)).toBe(-1)
  })

  it("adds and updates partitions, removes forgotten ones, and closes a session left empty", () => {
    const c = cache()
    const id = c.maybeCreateSession(0, false, false, partitions(2))
    const inc = c.newContext(
      ctx({
        sessionId: id,
        sessionEpoch: 1,
        fetchData: () => [params("t", 1, 50n), params("u", 0, 7n)],
        toForget: () => [{ topic: "t", topicId: "", partition: 0 }]
      }),
      5
    )
    expect(inc._tag).toBe("Incremental")
    const s = c.get(id)!
    expect([...s.partitions.values()].map((p) => [p.topic, p.partition, p.fetchOffset])).toEqual([
      ["t", 1, 50n],
      ["u", 0, 7n]
    ])
    expect(c.totalPartitions()).toBe(2)
    const closed = c.newContext(
      ctx({
        sessionId: id,
        sessionEpoch: 2,
        toForget: () => [
          { topic: "t", topicId: "", partition: 1 },
          { topic: "u", topicId: "", partition: 0 }
        ]
      }),
      6
    )
    expect(closed._tag).toBe("Sessionless")
    expect(c.get(id)).toBeUndefined()
    expect(c.size()).toBe(0)
  })

  it("closes the named session on a full request (epoch 0 or -1)", () => {
    const c = cache()
    const a = c.maybeCreateSession(0, false, false, partitions(1))
    const b = c.maybeCreateSession(0, false, false, partitions(1))
    expect(c.newContext(ctx({ sessionId: a, sessionEpoch: -1 }), 1)._tag).toBe("Sessionless")
    expect(c.get(a)).toBeUndefined()
    expect(c.newContext(ctx({ sessionId: b, sessionEpoch: 0 }), 1)._tag).toBe("Full")
    expect(c.get(b)).toBeUndefined()
  })

  it("keys topic-id sessions by id and name sessions by name", () => {
    const c = cache()
    const id = c.maybeCreateSession(0, false, true, [{ params: params("", 0, 0n, "X"), response: ok(0n) }])
    expect(c.newContext(ctx({ apiVersion: 12, sessionId: id, sessionEpoch: 1 }), 1)).toEqual({
      _tag: "SessionError",
      errorCode: ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
    })
    c.newContext(ctx({ apiVersion: 13, sessionId: id, sessionEpoch: 1, fetchData: () => [params("known", 0, 9n, "X")] }), 1)
    const s = c.get(id)!
    expect(s.size).toBe(1)
    expect(s.partitions.get("X:0")!.fetchOffset).toBe(9n)
  })

  it("answers only changed partitions: records, high watermark, log start, errors (and resends after an error)", () => {
    const c = cache()
    const id = c.maybeCreateSession(0, false, false, partitions(1))
    const cp = c.get(id)!.partitions.get("t:0")!
    expect(cp.maybeUpdateResponseData(ok(0n), true)).toBe(false)
    expect(cp.maybeUpdateResponseData(ok(0n, 100), true)).toBe(true)
    expect(cp.maybeUpdateResponseData(ok(5n), true)).toBe(true)
    expect(cp.maybeUpdateResponseData(ok(5n), true)).toBe(false)
    expect(cp.maybeUpdateResponseData({ ...ok(5n), logStartOffset: 2n }, true)).toBe(true)
    expect(cp.maybeUpdateResponseData({ ...ok(5n), logStartOffset: 2n }, true)).toBe(false)
    expect(cp.maybeUpdateResponseData({ ...ok(5n), logStartOffset: 2n, errorCode: 6 }, true)).toBe(true)
    // The error cleared: sent again although nothing else moved.
    expect(cp.maybeUpdateResponseData({ ...ok(5n), logStartOffset: 2n }, true)).toBe(true)
    expect(cp.maybeUpdateResponseData({ ...ok(5n), logStartOffset: 2n, divergingEpoch: true }, true)).toBe(true)
    // Without `update` nothing is remembered.
    expect(cp.maybeUpdateResponseData(ok(9n), false)).toBe(true)
    expect(cp.maybeUpdateResponseData(ok(9n), false)).toBe(true)
  })

  it("is bounded: a full cache creates no session unless one can be evicted", () => {
    const c = cache(2, 1000)
    const a = c.maybeCreateSession(0, false, false, partitions(3))
    const b = c.maybeCreateSession(10, false, false, partitions(5))
    // Both fresh: no session for the third client.
    expect(c.maybeCreateSession(20, false, false, partitions(100))).toBe(INVALID_SESSION_ID)
    expect(c.size()).toBe(2)
    // a stale (unused for more than evictionMs): the least recently used goes.
    const d = c.maybeCreateSession(1001 + 1, false, false, partitions(1))
    expect(d).toBeGreaterThan(0)
    expect(c.get(a)).toBeUndefined()
    expect(c.get(b)).toBeDefined()
    expect(c.evictions()).toBe(1)
  })

  it("evicts the old session with the fewest partitions for a bigger one, never a bigger one", () => {
    const c = cache(2, 1000)
    const small = c.maybeCreateSession(0, false, false, partitions(2))
    const big = c.maybeCreateSession(0, false, false, partitions(8))
    // Both used recently (not stale) but created more than evictionMs ago.
    c.newContext(ctx({ sessionId: small, sessionEpoch: 1 }), 1500)
    c.newContext(ctx({ sessionId: big, sessionEpoch: 1 }), 1600)
    // Smaller than both, and a tie on size loses: nothing evicted.
    expect(c.maybeCreateSession(1700, false, false, partitions(1))).toBe(INVALID_SESSION_ID)
    expect(c.maybeCreateSession(1700, false, false, partitions(2))).toBe(INVALID_SESSION_ID)
    const n = c.maybeCreateSession(1700, false, false, partitions(3))
    expect(n).toBeGreaterThan(0)
    expect(c.get(small)).toBeUndefined()
    expect(c.get(big)).toBeDefined()
  })

  it("lets a follower (privileged) session evict a fresh consumer session, not the other way round", () => {
    const c = cache(1, 1000)
    const consumer = c.maybeCreateSession(0, false, false, partitions(50))
    const follower = c.maybeCreateSession(10, true, false, partitions(1))
    expect(follower).toBeGreaterThan(0)
    expect(c.get(consumer)).toBeUndefined()
    expect(c.maybeCreateSession(20, false, false, partitions(100))).toBe(INVALID_SESSION_ID)
    expect(c.get(follower)).toBeDefined()
  })

  it("keeps no sessions with 0 slots", () => {
    const c = cache(0)
    expect(c.maybeCreateSession(0, false, false, partitions(1))).toBe(INVALID_SESSION_ID)
  })

  it("reads CHRONIK_FETCH_SESSION_CACHE_SLOTS and CHRONIK_FETCH_SESSION_EVICTION_MS, and rejects negative values", async () => {
    const read = (env: Record<string, string>) =>
      Effect.runPromise(Effect.either(Effect.provide(FetchSessionConfig, layerConfigFromEnv(env))))
    const ok1 = await read({ CHRONIK_FETCH_SESSION_CACHE_SLOTS: "0", CHRONIK_FETCH_SESSION_EVICTION_MS: "5000" })
    expect(ok1._tag === "Right" && ok1.right).toEqual({ cacheSlots: 0, evictionMs: 5000 })
    const dflt = await read({})
    expect(dflt._tag === "Right" && dflt.right).toEqual({ cacheSlots: 1000, evictionMs: 120_000 })
    expect((await read({ CHRONIK_FETCH_SESSION_CACHE_SLOTS: "-1" }))._tag).toBe("Left")
    // With 0 slots the cache built from the environment keeps no session.
    const id = await Effect.runPromise(
      Effect.map(FetchSessionCache, (c) => c.maybeCreateSession(0, false, false, partitions(1))).pipe(
        Effect.provide(layerFromEnv({ CHRONIK_FETCH_SESSION_CACHE_SLOTS: "0" }))
      )
    )
    expect(id).toBe(INVALID_SESSION_ID)
  })

  it("builds from its config layer", async () => {
    const size = await Effect.runPromise(
      Effect.map(FetchSessionCache, (c) => c.maybeCreateSession(0, false, false, partitions(1))).pipe(
        Effect.provide(fetchSessionLayer.pipe(Layer.provide(layerConfig({ cacheSlots: 1 }))))
      )
    )
    expect(size).toBeGreaterThan(0)
  })
})

// ---------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------

const batch = (values: Array<string>) =>
  encodeBatch({
    baseOffset: 0n,
    compression: 0,
    producerId: -1n,
    producerEpoch: -1,
    baseSequence: -1,
    baseTimestamp: BigInt(Date.now()),
    records: values.map((v, i) => ({ offsetDelta: i, key: null, value: Buffer.from(v), headers: [] }))
  })

type Resp = FetchResponse

const summary = (r: Resp | null) =>
  r!.responses.flatMap((t) =>
    t.partitions.map((p) => ({
      topic: t.topic || t.topicId,
      partition: p.partitionIndex,
      errorCode: p.errorCode,
      hw: p.highWatermark,
      bytes: p.records?.length ?? 0
    }))
  )

describe("Fetch with sessions (in process)", () => {
  let broker: InProcessBroker
  let topicId = ""
  const topic = "fs1"

  const produce = (partition: number, values: Array<string>) =>
    broker.request(0, 9, {
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: partition, records: batch(values) }] }]
    })

  const fetch = (
    version: number,
    sessionId: number,
    sessionEpoch: number,
    parts: Array<{ partition: number; fetchOffset: bigint }>,
    forgotten: Array<number> = [],
    id = topicId
  ) =>
    broker.request(1, version, {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      sessionId,
      sessionEpoch,
      topics:
        parts.length === 0
          ? []
          : [{ topic, topicId: id, partitions: parts.map((p) => ({ ...p, partitionMaxBytes: 1 << 20 })) }],
      forgottenTopicsData: forgotten.length === 0 ? [] : [{ topic, topicId: id, partitions: forgotten }]
    })

  beforeAll(async () => {
    broker = await startInProcessBroker()
    const r = await broker.request(19, 7, {
      topics: [{ name: topic, numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 5000
    })
    expect(r!.topics[0]!.errorCode).toBe(0)
    const md = await broker.request(3, 12, { topics: [{ name: topic }] })
    topicId = md!.topics[0]!.topicId
    await produce(0, ["a", "b"])
    await produce(1, ["c"])
  })
  afterAll(async () => {
    await broker.close()
  })

  const all = [
    { partition: 0, fetchOffset: 0n },
    { partition: 1, fetchOffset: 0n },
    { partition: 2, fetchOffset: 0n }
  ]

  it("answers v4-v6 and epoch -1 without a session", async () => {
    const r6 = await fetch(6, 0, -1, all)
    expect(r6!.sessionId).toBe(0)
    expect(summary(r6).length).toBe(3)
    const r11 = await fetch(11, 0, -1, all)
    expect(r11!.sessionId).toBe(0)
    expect(r11!.errorCode).toBe(0)
    expect(summary(r11).map((p) => p.bytes > 0)).toEqual([true, true, false])
  })

  it("opens a session with a full fetch and then answers only partitions that changed", async () => {
    const full = await fetch(12, 0, 0, all)
    expect(full!.errorCode).toBe(0)
    const id = full!.sessionId
    expect(id).toBeGreaterThan(0)
    expect(summary(full).map((p) => [p.partition, p.hw])).toEqual([
      [0, 2n],
      [1, 1n],
      [2, 0n]
    ])
    // Epoch 1 with the new fetch offsets of the partitions that returned data.
    const inc1 = await fetch(12, id, 1, [
      { partition: 0, fetchOffset: 2n },
      { partition: 1, fetchOffset: 1n }
    ])
    expect(inc1!.errorCode).toBe(0)
    expect(inc1!.sessionId).toBe(id)
    expect(summary(inc1)).toEqual([])
    // New data on partition 2 only: the empty incremental request gets just that partition.
    await produce(2, ["d", "e", "f"])
    const inc2 = await fetch(12, id, 2, [])
    expect(summary(inc2).map((p) => [p.partition, p.hw, p.bytes > 0])).toEqual([[2, 3n, true]])
    // The client advances partition 2 past the records: nothing changed, nothing answered.
    const inc3 = await fetch(12, id, 3, [{ partition: 2, fetchOffset: 3n }])
    expect(summary(inc3)).toEqual([])
    // A stale epoch, an unknown session.
    expect((await fetch(12, id, 3, []))!.errorCode).toBe(ErrorCode.INVALID_FETCH_SESSION_EPOCH)
    const nf = await fetch(12, id ^ 0x5a5a5a, 1, [])
    expect(nf!.errorCode).toBe(ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
    expect(nf!.sessionId).toBe(0)
    expect(nf!.responses).toEqual([])
    // The session survived the errors: epoch 4 is still next.
    expect((await fetch(12, id, 4, []))!.errorCode).toBe(0)
    // Forgetting partitions 1 and 2: new data there is no longer answered.
    await produce(1, ["g"])
    const inc5 = await fetch(12, id, 5, [], [1, 2])
    expect(summary(inc5)).toEqual([])
    await produce(0, ["h"])
    const inc6 = await fetch(12, id, 6, [])
    expect(summary(inc6).map((p) => [p.partition, p.hw])).toEqual([[0, 3n]])
    // Closing with epoch -1: the session is gone.
    const close = await fetch(12, id, -1, [{ partition: 0, fetchOffset: 3n }])
    expect(close!.sessionId).toBe(0)
    expect(summary(close).length).toBe(1)
    expect((await fetch(12, id, 7, []))!.errorCode).toBe(ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
  })

  it("reports a partition with an error in every incremental response, and again once it clears", async () => {
    const full = await fetch(12, 0, 0, [{ partition: 0, fetchOffset: 0n }])
    const id = full!.sessionId
    // Offset far beyond the log end: OFFSET_OUT_OF_RANGE each time.
    const bad1 = await fetch(12, id, 1, [{ partition: 0, fetchOffset: 1000n }])
    expect(summary(bad1).map((p) => p.errorCode)).toEqual([ErrorCode.OFFSET_OUT_OF_RANGE])
    const bad2 = await fetch(12, id, 2, [])
    expect(summary(bad2).map((p) => p.errorCode)).toEqual([ErrorCode.OFFSET_OUT_OF_RANGE])
    const good = await fetch(12, id, 3, [{ partition: 0, fetchOffset: 0n }])
    expect(summary(good).map((p) => [p.errorCode, p.bytes > 0])).toEqual([[0, true]])
  })

  it("rotates partitions that returned data to the back of the session's fetch order", async () => {
    const full = await fetch(12, 0, 0, all)
    const id = full!.sessionId
    const inc = await fetch(12, id, 1, [])
    // Same offsets again: partitions 0, 1, 2 all return records; order rotates in the session.
    expect(summary(inc).map((p) => p.partition)).toEqual([0, 1, 2])
    const cache = await broker.request(1, 12, { maxWaitMs: 0, minBytes: 0, sessionId: id, sessionEpoch: 2, topics: [] })
    expect(summary(cache).map((p) => p.partition)).toEqual([0, 1, 2])
    // With a 1-byte response budget only the first partition in the session order returns a batch (KIP-74).
    const limited = await broker.request(1, 12, { maxWaitMs: 0, minBytes: 0, maxBytes: 1, sessionId: id, sessionEpoch: 3, topics: [] })
    const first = summary(limited).filter((p) => p.bytes > 0).map((p) => p.partition)
    const next = await broker.request(1, 12, { maxWaitMs: 0, minBytes: 0, maxBytes: 1, sessionId: id, sessionEpoch: 4, topics: [] })
    const second = summary(next).filter((p) => p.bytes > 0).map((p) => p.partition)
    expect(first.length).toBe(1)
    expect(second.length).toBe(1)
    expect(second[0]).not.toBe(first[0])
  })

  it("ties v13+ sessions to topic ids: unknown ids get UNKNOWN_TOPIC_ID, older versions FETCH_SESSION_TOPIC_ID_ERROR", async () => {
    const unknownId = "AAAAAAAAAAAAAAAAAAAAAQ"
    const full = await broker.request(1, 13, {
      maxWaitMs: 0,
      minBytes: 0,
      sessionId: 0,
      sessionEpoch: 0,
      topics: [
        { topicId, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] },
        { topicId: unknownId, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }
      ]
    })
    const id = full!.sessionId
    expect(id).toBeGreaterThan(0)
    expect(summary(full).map((p) => [p.topic, p.errorCode])).toEqual([
      [topicId, 0],
      [unknownId, ErrorCode.UNKNOWN_TOPIC_ID]
    ])
    expect(full!.responses[0]!.topicId).toBe(topicId)
    const inc = await fetch(13, id, 1, [{ partition: 0, fetchOffset: 3n }])
    expect(summary(inc).map((p) => [p.topic, p.errorCode])).toEqual([[unknownId, ErrorCode.UNKNOWN_TOPIC_ID]])
    expect((await fetch(12, id, 2, []))!.errorCode).toBe(ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR)
    // Forget the unknown topic by id: the session answers nothing more.
    const forget = await broker.request(1, 13, {
      maxWaitMs: 0,
      minBytes: 0,
      sessionId: id,
      sessionEpoch: 2,
      topics: [],
      forgottenTopicsData: [{ topicId: unknownId, partitions: [0] }]
    })
    expect(summary(forget)).toEqual([])
  })

  it("long-polls an incremental fetch until a session partition gets data", async () => {
    const full = await fetch(12, 0, 0, [{ partition: 2, fetchOffset: 3n }])
    const id = full!.sessionId
    const started = Date.now()
    const pending = broker.request(1, 12, { maxWaitMs: 5000, minBytes: 1, sessionId: id, sessionEpoch: 1, topics: [] })
    await new Promise((r) => setTimeout(r, 100))
    await produce(2, ["late"])
    const r = await pending
    expect(Date.now() - started).toBeLessThan(4000)
    expect(summary(r).map((p) => [p.partition, p.bytes > 0])).toEqual([[2, true]])
  })
})

// ---------------------------------------------------------------------------
// The chunked response writer
// ---------------------------------------------------------------------------

describe("encodeFetchResponse", () => {
  const b1 = batch(["one", "two"])
  const b2 = batch(["three"])
  const response = (withDiverging: boolean, v: number): FetchResponseOut => ({
    throttleTimeMs: 7,
    errorCode: 0,
    sessionId: v >= 7 ? 1234 : 0,
    responses: [
      {
        topic: "tøpic-ü",
        topicId: "AAAAAAAAAAAAAAAAAAAAAQ",
        partitions: [
          { partitionIndex: 0, errorCode: 0, highWatermark: 10n, lastStableOffset: 10n, logStartOffset: 0n, records: [b1, b2], recordsBytes: b1.length + b2.length, preferredReadReplica: -1 },
          { partitionIndex: 1, errorCode: 1, highWatermark: -1n, lastStableOffset: -1n, logStartOffset: -1n, records: [], recordsBytes: 0, preferredReadReplica: -1 },
          {
            partitionIndex: 2,
            errorCode: 0,
            highWatermark: 5n,
            lastStableOffset: 5n,
            logStartOffset: 2n,
            records: [],
            recordsBytes: 0,
            preferredReadReplica: -1,
            ...(withDiverging ? { divergingEpoch: { epoch: 3, endOffset: 4n } } : {})
          }
        ]
      },
      {
        topic: "b",
        topicId: "AAAAAAAAAAAAAAAAAAAAAg",
        partitions: [{ partitionIndex: 9, errorCode: 0, highWatermark: 1n, lastStableOffset: 1n, logStartOffset: 0n, records: [b2], recordsBytes: b2.length, preferredReadReplica: -1 }]
      }
    ]
  })

  const generated = (v: number, r: FetchResponseOut, correlationId = 99) =>
    encodeResponse(1, v, correlationId, {
      throttleTimeMs: r.throttleTimeMs,
      errorCode: r.errorCode,
      sessionId: r.sessionId,
      responses: r.responses.map((t) => ({
        topic: t.topic,
        topicId: t.topicId,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: p.errorCode,
          highWatermark: p.highWatermark,
          lastStableOffset: p.lastStableOffset,
          logStartOffset: p.logStartOffset,
          abortedTransactions: null,
          preferredReadReplica: p.preferredReadReplica,
          records: Buffer.concat([...p.records]),
          ...(p.divergingEpoch === undefined ? {} : { divergingEpoch: p.divergingEpoch })
        }))
      }))
    })

  it("writes exactly the generated codec's bytes at every version 4-17, records as uncopied chunks", () => {
    for (let v = 4; v <= 17; v++) {
      for (const diverging of v >= 12 ? [false, true] : [false]) {
        const r = response(diverging, v)
        const { chunks, size } = encodeFetchResponse(v, 99, r)
        const joined = Buffer.concat(chunks)
        expect(joined.length).toBe(size)
        expect(joined.equals(generated(v, r)), `v${v} diverging=${diverging}`).toBe(true)
        // The batches are the very buffers given, not copies.
        expect(chunks.includes(b1)).toBe(true)
        expect(chunks.filter((c) => c === b2).length).toBe(2)
      }
    }
    expect(() => encodeFetchResponse(6, 1, { ...response(false, 7), sessionId: 5 })).toThrow(/sessionId/)
    const empty: FetchResponseOut = { throttleTimeMs: 0, errorCode: 70, sessionId: 0, responses: [] }
    for (const v of [4, 7, 12, 13, 17]) {
      const e = v >= 7 ? empty : { ...empty, errorCode: 0 }
      expect(Buffer.concat(encodeFetchResponse(v, 1, e).chunks).equals(generated(v, e, 1))).toBe(true)
    }
  })
})
