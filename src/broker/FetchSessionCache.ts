/**
 * FetchSessionCache: incremental fetch sessions (KIP-227).
 *
 * A client that fetches many partitions opens a session with a FULL fetch
 * (session id 0, epoch 0). The broker remembers the partitions and their
 * fetch parameters and answers with a session id. Later requests are
 * incremental: they carry the session id and the next epoch, name only the
 * partitions whose parameters changed (new or updated) and the ones to drop
 * (`forgottenTopicsData`), and the response names only the partitions with
 * something to say: records, a moved high watermark or log start offset, an
 * error, a diverging epoch. See docs/fetch.md.
 *
 * The rules follow Kafka's FetchManager / FetchSessionCache:
 *
 * - epoch 0 (INITIAL) or -1 (FINAL) is a full request; a session id named in
 *   it is closed first. Epoch -1 never creates a session (sessionless); epoch
 *   0 creates one when a slot is free or another session can be evicted.
 * - An incremental request naming an unknown session gets
 *   FETCH_SESSION_ID_NOT_FOUND; a wrong epoch INVALID_FETCH_SESSION_EPOCH; a
 *   session made with topic ids (Fetch v13+) used by an older version (or the
 *   other way round) FETCH_SESSION_TOPIC_ID_ERROR. Errors answer with session
 *   id 0 and no partitions.
 * - An incremental request that leaves the session empty closes it and is
 *   answered as a sessionless one.
 * - Eviction: when all `cacheSlots` are taken, a new session may replace the
 *   least recently used one if that was idle for more than `evictionMs`; else
 *   the least valuable session created more than `evictionMs` ago
 *   (unprivileged before privileged, then fewer partitions), if it is worth
 *   no more than the new one. Follower sessions are privileged.
 *
 * Everything here is plain synchronous code over small maps (one Effect per
 * request is the handler's); the cache is a single-threaded JS object shared
 * by every connection, as Kafka's is shared by every network thread.
 */
import { Config, Context, Effect, Layer, Random } from "effect"
import type { ConfigError } from "effect"
import { envProvider } from "../config/BrokerConfig.js"
import { ErrorCode } from "../protocol/errorCodes.js"
import { Mulberry32 } from "../raft/core/random.js"

export const INVALID_SESSION_ID = 0
export const INITIAL_EPOCH = 0
export const FINAL_EPOCH = -1

/** Kafka's `FetchMetadata.nextEpoch`: wraps from Int32 max back to 1. */
export const nextEpoch = (epoch: number): number =>
  epoch < 0 ? FINAL_EPOCH : epoch === 2_147_483_647 ? 1 : epoch + 1

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

export interface FetchSessionConfigShape {
  /** max.incremental.fetch.session.cache.slots: sessions kept at most. 0 turns sessions off. */
  readonly cacheSlots: number
  /** How long a session must be unused (or have existed) before another may evict it. */
  readonly evictionMs: number
}

export const defaultConfig: FetchSessionConfigShape = { cacheSlots: 1000, evictionMs: 120_000 }

export class FetchSessionConfig extends Context.Tag("chronik/FetchSessionConfig")<
  FetchSessionConfig,
  FetchSessionConfigShape
>() {}

export const layerConfig = (overrides: Partial<FetchSessionConfigShape> = {}): Layer.Layer<FetchSessionConfig> =>
  Layer.succeed(FetchSessionConfig, { ...defaultConfig, ...overrides })

/** The config keys, nested under `fetchSession` (CHRONIK_FETCH_SESSION_* in the environment). */
export const configFromEnv: Config.Config<FetchSessionConfigShape> = Config.nested(
  Config.all({
    cacheSlots: Config.integer("cacheSlots").pipe(
      Config.withDefault(defaultConfig.cacheSlots),
      Config.validate({ message: "must be >= 0", validation: (n) => n >= 0 }),
      Config.withDescription("max.incremental.fetch.session.cache.slots")
    ),
    evictionMs: Config.integer("evictionMs").pipe(
      Config.withDefault(defaultConfig.evictionMs),
      Config.validate({ message: "must be >= 0", validation: (n) => n >= 0 }),
      Config.withDescription("Idle time (and age) after which a fetch session may be evicted for a new one")
    )
  }),
  "fetchSession"
)

/** The config from CHRONIK_FETCH_SESSION_CACHE_SLOTS and CHRONIK_FETCH_SESSION_EVICTION_MS, defaults for the rest. */
export const layerConfigFromEnv = (
  env: Record<string, string | undefined> = process.env
): Layer.Layer<FetchSessionConfig, ConfigError.ConfigError> =>
  Layer.effect(FetchSessionConfig, Effect.withConfigProvider(configFromEnv, envProvider(env)))

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

/** A partition's fetch parameters as a request carries them. */
export interface PartitionParams {
  /** Topic name; "" when a v13+ request names a topic id this broker does not know. */
  readonly topic: string
  readonly topicId: string
  readonly partition: number
  readonly fetchOffset: bigint
  readonly maxBytes: number
  readonly currentLeaderEpoch: number
  readonly lastFetchedEpoch: number
  /** The fetcher's own log start offset (followers; -1 for consumers). */
  readonly logStartOffset: bigint
}

/** A partition named in `forgottenTopicsData`. */
export interface ForgottenPartition {
  readonly topic: string
  readonly topicId: string
  readonly partition: number
}

/** What the session compares a partition's response with. */
export interface PartitionResponseState {
  readonly errorCode: number
  readonly highWatermark: bigint
  readonly logStartOffset: bigint
  readonly recordsBytes: number
  readonly divergingEpoch: boolean
  readonly preferredReadReplica: number
}

const partitionKey = (usesTopicIds: boolean, p: { readonly topic: string; readonly topicId: string; readonly partition: number }) =>
  usesTopicIds ? `${p.topicId}:${p.partition}` : `${p.topic}:${p.partition}`

/** A partition kept in a session: the last request parameters and the last response state sent. */
export class CachedPartition {
  highWatermark = -1n
  localLogStartOffset = -1n
  topic: string
  fetchOffset: bigint
  maxBytes: number
  currentLeaderEpoch: number
  lastFetchedEpoch: number
  fetcherLogStartOffset: bigint

  constructor(readonly key: string, readonly topicId: string, readonly partition: number, p: PartitionParams) {
    this.topic = p.topic
    this.fetchOffset = p.fetchOffset
    this.maxBytes = p.maxBytes
    this.currentLeaderEpoch = p.currentLeaderEpoch
    this.lastFetchedEpoch = p.lastFetchedEpoch
    this.fetcherLogStartOffset = p.logStartOffset
  }

  updateRequestParams(p: PartitionParams): void {
    this.fetchOffset = p.fetchOffset
    this.maxBytes = p.maxBytes
    this.currentLeaderEpoch = p.currentLeaderEpoch
    this.lastFetchedEpoch = p.lastFetchedEpoch
    this.fetcherLogStartOffset = p.logStartOffset
  }

  /**
   * Whether this partition belongs in an incremental response, remembering
   * what was sent when `update` is set. Records, a changed high watermark or
   * log start offset, a preferred read replica, an error or a diverging epoch
   * must be sent; an error also resets the remembered high watermark so the
   * partition is sent again once the error clears.
   */
  maybeUpdateResponseData(r: PartitionResponseState, update: boolean): boolean {
    let mustRespond = r.recordsBytes > 0
    if (this.highWatermark !== r.highWatermark) {
      mustRespond = true
      if (update) this.highWatermark = r.highWatermark
    }
    if (this.localLogStartOffset !== r.logStartOffset) {
      mustRespond = true
      if (update) this.localLogStartOffset = r.logStartOffset
    }
    if (r.preferredReadReplica >= 0) mustRespond = true
    if (r.errorCode !== ErrorCode.NONE) {
      if (update) this.highWatermark = -1n
      mustRespond = true
    }
    if (r.divergingEpoch) mustRespond = true
    return mustRespond
  }
}

export class FetchSession {
  lastUsedMs: number
  epoch: number
  /** The partition count when last touched by the cache (-1: not in the cache). */
  cachedSize = -1
  /** Iteration order is the fetch order; partitions that returned records move to the end. */
  readonly partitions = new Map<string, CachedPartition>()

  constructor(
    readonly id: number,
    readonly privileged: boolean,
    readonly usesTopicIds: boolean,
    readonly creationMs: number,
    epoch: number
  ) {
    this.lastUsedMs = creationMs
    this.epoch = epoch
  }

  get size(): number {
    return this.partitions.size
  }

  keyOf(p: { readonly topic: string; readonly topicId: string; readonly partition: number }): string {
    return partitionKey(this.usesTopicIds, p)
  }

  /** Adds or updates the request's partitions, then drops the forgotten ones. */
  update(
    fetchData: ReadonlyArray<PartitionParams>,
    toForget: ReadonlyArray<ForgottenPartition>
  ): { readonly added: number; readonly updated: number; readonly removed: number } {
    let added = 0
    let updated = 0
    let removed = 0
    for (const p of fetchData) {
      const key = this.keyOf(p)
      const cached = this.partitions.get(key)
      if (cached === undefined) {
        this.partitions.set(key, new CachedPartition(key, p.topicId, p.partition, p))
        added++
      } else {
        cached.updateRequestParams(p)
        updated++
      }
    }
    for (const f of toForget) if (this.partitions.delete(this.keyOf(f))) removed++
    return { added, updated, removed }
  }

  /** Moves a partition to the end of the fetch order (it just returned records). */
  rotateToEnd(p: CachedPartition): void {
    if (this.partitions.delete(p.key)) this.partitions.set(p.key, p)
  }
}

// ---------------------------------------------------------------------------
// Fetch contexts
// ---------------------------------------------------------------------------

/** How one Fetch request is served, decided before it reads. */
export type FetchContext =
  /** A session error: answer with the error, session id 0 and no partitions. */
  | { readonly _tag: "SessionError"; readonly errorCode: number }
  /** Epoch -1, a version without sessions, or a session that became empty: answer every partition, session id 0. */
  | { readonly _tag: "Sessionless" }
  /** Epoch 0: answer every partition, then try to create a session from them. */
  | { readonly _tag: "Full"; readonly privileged: boolean; readonly usesTopicIds: boolean }
  /** A live session: fetch all its partitions, answer the changed ones. */
  | { readonly _tag: "Incremental"; readonly session: FetchSession; readonly expectedEpoch: number }

const SESSIONLESS: FetchContext = { _tag: "Sessionless" }

export interface NewContextInput {
  readonly apiVersion: number
  readonly sessionId: number
  readonly sessionEpoch: number
  readonly privileged: boolean
  /** The request's partitions and forgotten partitions; read only for incremental requests. */
  readonly fetchData: () => ReadonlyArray<PartitionParams>
  readonly toForget: () => ReadonlyArray<ForgottenPartition>
}

/** A partition of a new session with the response state it was answered with. */
export interface NewSessionPartition {
  readonly params: PartitionParams
  readonly response: PartitionResponseState
}

export interface FetchSessionCacheShape {
  /** Decides how a Fetch request (v7+) is served; may close, touch and advance a session. */
  readonly newContext: (input: NewContextInput, now: number) => FetchContext
  /**
   * After a full fetch: creates a session over its partitions when a slot is
   * free or one can be evicted. Returns the session id, or 0.
   */
  readonly maybeCreateSession: (
    now: number,
    privileged: boolean,
    usesTopicIds: boolean,
    partitions: ReadonlyArray<NewSessionPartition>
  ) => number
  readonly get: (sessionId: number) => FetchSession | undefined
  readonly remove: (sessionId: number) => FetchSession | undefined
  /** Sessions in the cache. */
  readonly size: () => number
  /** Partitions over all sessions (as of each session's last use). */
  readonly totalPartitions: () => number
  /** Sessions evicted to make room for new ones, since start. */
  readonly evictions: () => number
}

export class FetchSessionCache extends Context.Tag("chronik/FetchSessionCache")<
  FetchSessionCache,
  FetchSessionCacheShape
>() {}

/**
 * The cache over plain maps. Session ids are random positive Int32s (a client
 * holding an id from before a restart then almost surely gets
 * FETCH_SESSION_ID_NOT_FOUND, not someone else's session), drawn from a PRNG
 * seeded by Effect's `Random`, so tests can fix them.
 */
export const makeUnsafe = (config: FetchSessionConfigShape, seed: number): FetchSessionCacheShape => {
  const maxEntries = config.cacheSlots
  const evictionMs = config.evictionMs
  const random = new Mulberry32(seed)
  const sessions = new Map<number, FetchSession>()
  let numPartitions = 0
  let evictionCount = 0

  const newSessionId = (): number => {
    for (;;) {
      const id = 1 + random.nextInt(2_147_483_646)
      if (!sessions.has(id)) return id
    }
  }

  const remove = (session: FetchSession): FetchSession | undefined => {
    if (sessions.get(session.id) !== session) return undefined
    sessions.delete(session.id)
    numPartitions -= Math.max(session.cachedSize, 0)
    session.cachedSize = -1
    return session
  }

  const touch = (session: FetchSession, now: number): void => {
    session.lastUsedMs = now
    if (session.cachedSize >= 0) numPartitions -= session.cachedSize
    session.cachedSize = session.size
    numPartitions += session.cachedSize
  }

  /** Kafka's EvictableKey order: unprivileged before privileged, then fewer partitions, then lower id. */
  const compareKeys = (aPriv: boolean, aSize: number, aId: number, b: FetchSession): number =>
    aPriv !== b.privileged ? (aPriv ? 1 : -1) : aSize !== b.cachedSize ? aSize - b.cachedSize : aId - b.id

  /**
   * Frees a slot for a new session of `size` partitions, if one may go: the
   * least recently used session when it is stale, else the least valuable
   * session old enough to be evictable by this requester, when the new one is
   * worth at least as much.
   */
  const tryEvict = (privileged: boolean, size: number, now: number): boolean => {
    let lru: FetchSession | undefined
    for (const s of sessions.values()) {
      if (lru === undefined || s.lastUsedMs < lru.lastUsedMs || (s.lastUsedMs === lru.lastUsedMs && s.id < lru.id)) lru = s
    }
    if (lru === undefined) return false
    if (now - lru.lastUsedMs > evictionMs) {
      remove(lru)
      evictionCount++
      return true
    }
    // Evictable sets as of each session's last touch, like Kafka's trees.
    let victim: FetchSession | undefined
    for (const s of sessions.values()) {
      const old = s.lastUsedMs - s.creationMs > evictionMs
      const eligible = privileged ? !s.privileged || old : old
      if (!eligible) continue
      if (victim === undefined || compareKeys(s.privileged, s.cachedSize, s.id, victim) < 0) victim = s
    }
    if (victim === undefined) return false
    // The new entry's key has id 0: it must be strictly more valuable to win a tie on size.
    if (compareKeys(privileged, size, 0, victim) < 0) return false
    remove(victim)
    evictionCount++
    return true
  }

  const newContext = (input: NewContextInput, now: number): FetchContext => {
    const { sessionEpoch, sessionId } = input
    if (sessionEpoch === INITIAL_EPOCH || sessionEpoch === FINAL_EPOCH) {
      // Any session named by a full request is closed.
      if (sessionId !== INVALID_SESSION_ID) {
        const s = sessions.get(sessionId)
        if (s !== undefined) remove(s)
      }
      if (sessionEpoch === FINAL_EPOCH) return SESSIONLESS
      return { _tag: "Full", privileged: input.privileged, usesTopicIds: input.apiVersion >= 13 }
    }
    const session = sessions.get(sessionId)
    if (session === undefined) return { _tag: "SessionError", errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND }
    if (session.epoch !== sessionEpoch) return { _tag: "SessionError", errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH }
    if (session.usesTopicIds !== input.apiVersion >= 13) {
      return { _tag: "SessionError", errorCode: ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR }
    }
    session.update(input.fetchData(), input.toForget())
    if (session.size === 0) {
      remove(session)
      return SESSIONLESS
    }
    touch(session, now)
    session.epoch = nextEpoch(session.epoch)
    return { _tag: "Incremental", session, expectedEpoch: session.epoch }
  }

  const maybeCreateSession = (
    now: number,
    privileged: boolean,
    usesTopicIds: boolean,
    partitions: ReadonlyArray<NewSessionPartition>
  ): number => {
    if (maxEntries <= 0) return INVALID_SESSION_ID
    if (sessions.size >= maxEntries && !tryEvict(privileged, partitions.length, now)) return INVALID_SESSION_ID
    const session = new FetchSession(newSessionId(), privileged, usesTopicIds, now, nextEpoch(INITIAL_EPOCH))
    for (const { params, response } of partitions) {
      const key = session.keyOf(params)
      const cached = new CachedPartition(key, params.topicId, params.partition, params)
      cached.highWatermark = response.highWatermark
      cached.localLogStartOffset = response.logStartOffset
      session.partitions.set(key, cached)
    }
    sessions.set(session.id, session)
    touch(session, now)
    return session.id
  }

  return {
    newContext,
    maybeCreateSession,
    get: (id) => sessions.get(id),
    remove: (id) => {
      const s = sessions.get(id)
      return s === undefined ? undefined : remove(s)
    },
    size: () => sessions.size,
    totalPartitions: () => numPartitions,
    evictions: () => evictionCount
  }
}

/** The cache, sized by {@link FetchSessionConfig}. */
export const make: Effect.Effect<FetchSessionCacheShape, never, FetchSessionConfig> = Effect.gen(function* () {
  const config = yield* FetchSessionConfig
  const seed = yield* Random.nextIntBetween(0, 2 ** 31)
  return makeUnsafe(config, seed)
})

export const layer: Layer.Layer<FetchSessionCache, never, FetchSessionConfig> = Layer.effect(FetchSessionCache, make)

/** The cache configured from the environment (CHRONIK_FETCH_SESSION_*). */
export const layerFromEnv = (
  env: Record<string, string | undefined> = process.env
): Layer.Layer<FetchSessionCache, ConfigError.ConfigError> => layer.pipe(Layer.provide(layerConfigFromEnv(env)))

/** A cache that keeps no sessions: every fetch is answered sessionless (session id 0). */
export const layerDisabled: Layer.Layer<FetchSessionCache> = layer.pipe(Layer.provide(layerConfig({ cacheSlots: 0 })))
