/**
 * GroupStore: the durable log of the group coordinator, the same idea as
 * Kafka's `__consumer_offsets` topic.
 *
 * Two kinds of record, both keyed by group:
 * - an offset commit, keyed by (group, topic, partition), whose value is the
 *   committed offset (or a tombstone when the offset is deleted or expires);
 * - a group metadata record, keyed by group, holding the last stable
 *   generation: protocol type and name, generation, leader, and every member
 *   with its subscription and assignment (or a tombstone when the group is
 *   deleted).
 *
 * `append` is durable when it succeeds (a durable layer replies once the
 * records are committed). `replay` hands every record back in log order on
 * start; the latest record of a key wins and a tombstone removes the key, so a
 * compacted log replays to the same state. The coordinator rebuilds offsets
 * and group metadata from it.
 *
 * `encodeGroupRecord`/`decodeGroupRecord` give each record the key and value
 * bytes of Kafka's own `__consumer_offsets` schemas (OffsetCommitKey v1,
 * OffsetCommitValue v1/v3, GroupMetadataKey v2, GroupMetadataValue v3), so a
 * durable layer on top of the partition log can store them as ordinary
 * records with a key (and compact by key), and Kafka tooling can read them.
 */
import { Config, type ConfigError, Context, Effect, Layer, Schema } from "effect"
import { envProvider } from "../config/BrokerConfig.js"
import { ErrorCode } from "../protocol/errorCodes.js"
import { LogStore } from "../storage/LogStore.js"
import * as RecordLog from "../storage/RecordLog.js"

export interface OffsetValue {
  readonly offset: bigint
  /** -1 when unknown. */
  readonly leaderEpoch: number
  readonly metadata: string
  /** Clock millis of the commit. */
  readonly commitTimestamp: number
  /** Explicit expiry (OffsetCommit v2-v4 retention time), or null for the broker's retention policy. */
  readonly expireTimestamp: number | null
}

export interface OffsetCommitRecord {
  readonly _tag: "OffsetCommit"
  readonly groupId: string
  readonly topic: string
  readonly partition: number
  /** null: tombstone (offset deleted or expired). */
  readonly value: OffsetValue | null
}

export interface MemberValue {
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly clientId: string
  readonly clientHost: string
  readonly rebalanceTimeoutMs: number
  readonly sessionTimeoutMs: number
  /** The member's metadata for the selected protocol. */
  readonly subscription: Buffer
  readonly assignment: Buffer
}

export interface GroupMetadataValue {
  readonly protocolType: string
  readonly generation: number
  readonly protocol: string | null
  readonly leader: string | null
  /** Clock millis of the group's last state change. */
  readonly currentStateTimestamp: number
  readonly members: ReadonlyArray<MemberValue>
}

export interface GroupMetadataRecord {
  readonly _tag: "GroupMetadata"
  readonly groupId: string
  /** null: tombstone (group deleted). */
  readonly value: GroupMetadataValue | null
}

export type GroupRecord = OffsetCommitRecord | GroupMetadataRecord

/** A store failure; `errorCode` is what the coordinator returns for the operation that needed the write. */
export class GroupStoreError extends Schema.TaggedError<GroupStoreError>()("GroupStoreError", {
  reason: Schema.String,
  errorCode: Schema.Number
}) {}

export interface GroupStoreShape {
  /**
   * Appends the records, in order and atomically, and returns the log position
   * of the first one (positions increase by one per record). Succeeds only once
   * the records are durable.
   */
  readonly append: (records: ReadonlyArray<GroupRecord>) => Effect.Effect<bigint, GroupStoreError>
  /** Calls `f` with every stored record and its position, in log order. */
  readonly replay: (f: (record: GroupRecord, position: bigint) => void) => Effect.Effect<void, GroupStoreError>
}

export class GroupStore extends Context.Tag("chronik/GroupStore")<GroupStore, GroupStoreShape>() {}

/** An in-memory store (tests, and nodes without durable groups). Build one and share it to simulate a restart. */
export const makeMemory = (): GroupStoreShape & { readonly records: () => ReadonlyArray<GroupRecord> } => {
  const log: Array<GroupRecord> = []
  return {
    append: (records) =>
      Effect.sync(() => {
        const first = BigInt(log.length)
        for (const r of records) log.push(r)
        return first
      }),
    replay: (f) =>
      Effect.sync(() => {
        for (let i = 0; i < log.length; i++) f(log[i]!, BigInt(i))
      }),
    records: () => log.slice()
  }
}

export const layerMemory: Layer.Layer<GroupStore> = Layer.sync(GroupStore, makeMemory)

export const storeUnavailable = (reason: string): GroupStoreError =>
  new GroupStoreError({ reason, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE })

// ---------------------------------------------------------------------------
// Kafka __consumer_offsets record format
// ---------------------------------------------------------------------------

/** Key and value bytes of a record (value null: tombstone). */
export interface EncodedGroupRecord {
  readonly key: Buffer
  readonly value: Buffer | null
}

class Out {
  private chunks: Array<Buffer> = []
  int16(v: number): this {
    const b = Buffer.allocUnsafe(2)
    b.writeInt16BE(v)
    this.chunks.push(b)
    return this
  }
  int32(v: number): this {
    const b = Buffer.allocUnsafe(4)
    b.writeInt32BE(v)
    this.chunks.push(b)
    return this
  }
  int64(v: bigint): this {
    const b = Buffer.allocUnsafe(8)
    b.writeBigInt64BE(v)
    this.chunks.push(b)
    return this
  }
  string(v: string | null): this {
    if (v === null) return this.int16(-1)
    const s = Buffer.from(v, "utf8")
    if (s.length > 0x7fff) throw new RangeError("string longer than 32767 bytes")
    this.int16(s.length)
    this.chunks.push(s)
    return this
  }
  bytes(v: Buffer): this {
    this.int32(v.length)
    this.chunks.push(v)
    return this
  }
  done(): Buffer {
    return Buffer.concat(this.chunks)
  }
}

class In {
  pos = 0
  constructor(private readonly b: Buffer) {}
  private need(n: number): void {
    if (this.pos + n > this.b.length) throw new RangeError(`group record truncated at ${this.pos}`)
  }
  int16(): number {
    this.need(2)
    const v = this.b.readInt16BE(this.pos)
    this.pos += 2
    return v
  }
  int32(): number {
    this.need(4)
    const v = this.b.readInt32BE(this.pos)
    this.pos += 4
    return v
  }
  int64(): bigint {
    this.need(8)
    const v = this.b.readBigInt64BE(this.pos)
    this.pos += 8
    return v
  }
  nullableString(): string | null {
    const n = this.int16()
    if (n < 0) return null
    this.need(n)
    const s = this.b.toString("utf8", this.pos, this.pos + n)
    this.pos += n
    return s
  }
  string(): string {
    const s = this.nullableString()
    if (s === null) throw new RangeError("null string")
    return s
  }
  bytes(): Buffer {
    const n = this.int32()
    if (n < 0) return Buffer.alloc(0)
    this.need(n)
    const v = Buffer.from(this.b.subarray(this.pos, this.pos + n))
    this.pos += n
    return v
  }
}

/** Encodes a record as Kafka's __consumer_offsets key/value. */
export const encodeGroupRecord = (r: GroupRecord): EncodedGroupRecord => {
  if (r._tag === "OffsetCommit") {
    const key = new Out().int16(1).string(r.groupId).string(r.topic).int32(r.partition).done()
    if (r.value === null) return { key, value: null }
    const v = r.value
    const value =
      v.expireTimestamp !== null
        ? // OffsetCommitValue v1: offset, metadata, commit timestamp, expire timestamp.
          new Out()
            .int16(1)
            .int64(v.offset)
            .string(v.metadata)
            .int64(BigInt(v.commitTimestamp))
            .int64(BigInt(v.expireTimestamp))
            .done()
        : // OffsetCommitValue v3: offset, leader epoch, metadata, commit timestamp.
          new Out().int16(3).int64(v.offset).int32(v.leaderEpoch).string(v.metadata).int64(BigInt(v.commitTimestamp)).done()
    return { key, value }
  }
  const key = new Out().int16(2).string(r.groupId).done()
  if (r.value === null) return { key, value: null }
  const g = r.value
  const o = new Out()
    .int16(3)
    .string(g.protocolType)
    .int32(g.generation)
    .string(g.protocol)
    .string(g.leader)
    .int64(BigInt(g.currentStateTimestamp))
    .int32(g.members.length)
  for (const m of g.members) {
    o.string(m.memberId)
      .string(m.groupInstanceId)
      .string(m.clientId)
      .string(m.clientHost)
      .int32(m.rebalanceTimeoutMs)
      .int32(m.sessionTimeoutMs)
      .bytes(m.subscription)
      .bytes(m.assignment)
  }
  return { key, value: o.done() }
}

/**
 * Decodes a __consumer_offsets key/value (value null: tombstone). Reads
 * OffsetCommitKey v0/v1, OffsetCommitValue v0-v3, GroupMetadataKey v2 and
 * GroupMetadataValue v0-v3. Throws RangeError on anything else.
 */
export const decodeGroupRecord = (key: Buffer, value: Buffer | null): GroupRecord => {
  const k = new In(key)
  const kv = k.int16()
  if (kv === 0 || kv === 1) {
    const groupId = k.string()
    const topic = k.string()
    const partition = k.int32()
    if (value === null) return { _tag: "OffsetCommit", groupId, topic, partition, value: null }
    const i = new In(value)
    const vv = i.int16()
    if (vv < 0 || vv > 3) throw new RangeError(`unknown OffsetCommitValue version ${vv}`)
    const offset = i.int64()
    const leaderEpoch = vv >= 3 ? i.int32() : -1
    const metadata = i.string()
    const commitTimestamp = Number(i.int64())
    const expireTimestamp = vv === 1 ? Number(i.int64()) : null
    return {
      _tag: "OffsetCommit",
      groupId,
      topic,
      partition,
      value: { offset, leaderEpoch, metadata, commitTimestamp, expireTimestamp }
    }
  }
  if (kv === 2) {
    const groupId = k.string()
    if (value === null) return { _tag: "GroupMetadata", groupId, value: null }
    const i = new In(value)
    const vv = i.int16()
    if (vv < 0 || vv > 3) throw new RangeError(`unknown GroupMetadataValue version ${vv}`)
    const protocolType = i.string()
    const generation = i.int32()
    const protocol = i.nullableString()
    const leader = i.nullableString()
    const currentStateTimestamp = vv >= 2 ? Number(i.int64()) : -1
    const n = i.int32()
    const members: Array<MemberValue> = []
    for (let j = 0; j < n; j++) {
      const memberId = i.string()
      const groupInstanceId = vv >= 3 ? i.nullableString() : null
      const clientId = i.string()
      const clientHost = i.string()
      const rebalanceTimeoutMs = vv >= 1 ? i.int32() : -1
      const sessionTimeoutMs = i.int32()
      const subscription = i.bytes()
      const assignment = i.bytes()
      members.push({
        memberId,
        groupInstanceId,
        clientId,
        clientHost,
        rebalanceTimeoutMs: rebalanceTimeoutMs < 0 ? sessionTimeoutMs : rebalanceTimeoutMs,
        sessionTimeoutMs,
        subscription,
        assignment
      })
    }
    return {
      _tag: "GroupMetadata",
      groupId,
      value: { protocolType, generation, protocol, leader, currentStateTimestamp, members }
    }
  }
  throw new RangeError(`unknown group record key version ${kv}`)
}

// ---------------------------------------------------------------------------
// Durable store on the node's LogStore
// ---------------------------------------------------------------------------

/** Log id of the group store in the LogStore (not a topic partition: it has no "-<n>" suffix). */
export const GROUP_LOG_ID = "__group_metadata"

/** One entry: [key length u32][key][value length i32, -1 for a tombstone][value]. */
const encodeEntry = (r: GroupRecord): Buffer => {
  const { key, value } = encodeGroupRecord(r)
  const out = Buffer.allocUnsafe(8 + key.length + (value?.length ?? 0))
  out.writeUInt32BE(key.length, 0)
  key.copy(out, 4)
  out.writeInt32BE(value === null ? -1 : value.length, 4 + key.length)
  if (value !== null) value.copy(out, 8 + key.length)
  return out
}

const decodeEntry = (b: Buffer): GroupRecord => {
  const keyLength = b.readUInt32BE(0)
  const key = b.subarray(4, 4 + keyLength)
  const valueLength = b.readInt32BE(4 + keyLength)
  const value = valueLength < 0 ? null : b.subarray(8 + keyLength, 8 + keyLength + valueLength)
  return decodeGroupRecord(key, value)
}

/** Key of an entry for compaction: the encoded record key (group, topic, partition or group). */
const entryKey = (b: Buffer): string => b.toString("latin1", 4, 4 + b.readUInt32BE(0))

const entryIsTombstone = (b: Buffer): boolean => b.readInt32BE(4 + b.readUInt32BE(0)) < 0

// ---------------------------------------------------------------------------
// Config

export interface GroupStoreConfigShape {
  /**
   * Compact the group log once at least this many of its records are
   * superseded (a later commit of the same partition, a later metadata record
   * of the same group, tombstones and what they delete).
   */
  readonly compactMinSupersededRecords: number
  /** ...and at least this fraction of the log is superseded (Kafka's min.cleanable.dirty.ratio). */
  readonly compactMinSupersededRatio: number
}

export const defaultConfig: GroupStoreConfigShape = {
  compactMinSupersededRecords: 10_000,
  compactMinSupersededRatio: 0.5
}

export class GroupStoreConfig extends Context.Tag("chronik/GroupStoreConfig")<GroupStoreConfig, GroupStoreConfigShape>() {}

export const layerConfig = (overrides: Partial<GroupStoreConfigShape> = {}): Layer.Layer<GroupStoreConfig> =>
  Layer.succeed(GroupStoreConfig, { ...defaultConfig, ...overrides })

/** `Config` description, nested under `groupStore` (env: CHRONIK_GROUP_STORE_COMPACT_MIN_SUPERSEDED_RECORDS...). */
export const config: Config.Config<GroupStoreConfigShape> = Config.nested(
  Config.all({
    compactMinSupersededRecords: Config.integer("compactMinSupersededRecords").pipe(
      Config.withDefault(defaultConfig.compactMinSupersededRecords),
      Config.withDescription("Superseded records in the group log before it is compacted"),
      Config.validate({ message: "must be >= 1", validation: (n) => n >= 1 })
    ),
    compactMinSupersededRatio: Config.number("compactMinSupersededRatio").pipe(
      Config.withDefault(defaultConfig.compactMinSupersededRatio),
      Config.withDescription("Fraction (0..1) of the group log that must be superseded before it is compacted"),
      Config.validate({ message: "must be in [0, 1]", validation: (n) => n >= 0 && n <= 1 })
    )
  }),
  "groupStore"
)

/** The config from `CHRONIK_GROUP_STORE_*` environment variables, defaults for the rest. */
export const layerConfigFromEnv = (
  env: Record<string, string | undefined> = process.env
): Layer.Layer<GroupStoreConfig, ConfigError.ConfigError> =>
  Layer.effect(GroupStoreConfig, Effect.withConfigProvider(config, envProvider(env)))

// ---------------------------------------------------------------------------
// Durable store

/** The durable store, with its compaction handles (tests, tools). */
export interface LogGroupStore extends GroupStoreShape {
  /** Compacts the group log now, whatever the thresholds. */
  readonly compact: Effect.Effect<RecordLog.CompactionResult, GroupStoreError>
  readonly stats: Effect.Effect<RecordLog.RecordLogStats>
}

/**
 * The group store kept in the node's LogStore, in Kafka's __consumer_offsets
 * record format: appends are durable (group-commit fsync) and complete in
 * call order; replay reads the log from its start. The log is compacted by
 * record key (see `RecordLog`): once `compactMinSupersededRecords` records
 * and `compactMinSupersededRatio` of the log are superseded, the latest
 * record of every live key is rewritten at the end and everything before it
 * deleted, crash-safely, so replay on start stays proportional to the live
 * state, not to the number of commits.
 */
export const makeLogStore: Effect.Effect<LogGroupStore, GroupStoreError, LogStore | GroupStoreConfig> = Effect.gen(
  function*() {
    const cfg = yield* GroupStoreConfig
    const unavailable = (e: { readonly message: string }) => storeUnavailable(`group log: ${e.message}`)
    const store = yield* LogStore
    const log = yield* Effect.mapError(
      RecordLog.open(store, GROUP_LOG_ID, {
        compaction: {
          keyOf: entryKey,
          isTombstone: entryIsTombstone,
          minSupersededRecords: cfg.compactMinSupersededRecords,
          minSupersededRatio: cfg.compactMinSupersededRatio
        }
      }),
      unavailable
    )
    return {
      append: (records) => Effect.mapError(Effect.map(log.append(records.map(encodeEntry)), BigInt), unavailable),
      replay: (f) => Effect.mapError(log.replay((payload, position) => f(decodeEntry(payload), BigInt(position))), unavailable),
      compact: Effect.mapError(log.compact, unavailable),
      stats: log.stats
    }
  }
)

/** The durable store with its config from `GroupStoreConfig`. */
export const layerLogStoreWithConfig: Layer.Layer<GroupStore, GroupStoreError, LogStore | GroupStoreConfig> = Layer
  .effect(GroupStore, makeLogStore)

/** The durable store with its config from the `CHRONIK_GROUP_STORE_*` environment (defaults for the rest). */
export const layerLogStore: Layer.Layer<GroupStore, GroupStoreError, LogStore> = layerLogStoreWithConfig.pipe(
  Layer.provide(
    Layer.catchAll(layerConfigFromEnv(), (e) =>
      Layer.fail(
        new GroupStoreError({ reason: `invalid group store config: ${String(e)}`, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE })
      ))
  )
)
