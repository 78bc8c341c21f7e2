/**
 * One partition's replica: the leader-side data path of a partition.
 *
 * Produce: a record batch arrives as bytes and is validated (magic 2, CRC,
 * size, producer fields) without decoding its records; the idempotent
 * producer table decides append / duplicate / reject; the leader assigns the
 * base offset and leader epoch by rewriting header bytes in place (and the
 * LogAppendTime timestamp, recomputing the CRC, when the topic asks for it),
 * and proposes the batch to the partition's Raft group (`PartitionConsensus`,
 * the engine's synchronous `proposeNow`): the leader writes it to the log at
 * once (the partition log is the group's Raft log, see PartitionRaftLogs.ts).
 * acks=1 replies once the batch is written; acks=all once it is committed,
 * i.e. applied: the group's state machine (`stateMachine`) moves the high
 * watermark past each committed batch. In standalone mode the group has one
 * voter, so a batch commits once it is durable under the fsync policy; the
 * leader epoch is the group's Raft term.
 *
 * Open: the producer table and the leader-epoch history come from the
 * newest producer snapshot plus the batches after it (full log scan only
 * without a usable snapshot); snapshots are written at a clean close and when
 * the log rolls a segment (docs/producer-state.md).
 *
 * Fetch: reads whole batches below the high watermark. Long-polling fetches
 * wait on `waitForHighWatermark`, which is woken by the high watermark moving
 * (commit), not by a polling loop.
 */
import { Effect } from "effect"
import type { EffectiveTopicConfig } from "../metadata/TopicConfig.js"
import { ErrorCode } from "../protocol/errorCodes.js"
import {
  BASE_OFFSET_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  RECORD_BATCH_OVERHEAD,
  readBatchHeader,
  RecordBatchError,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
  validateBatch
} from "../protocol/recordBatch.js"
import type { StateMachine } from "../raft/RaftEngine.js"
import type { Entry } from "../raft/core/types.js"
import type { LogError } from "../storage/errors.js"
import {
  type AppendError,
  FetchOffsetOutOfRange,
  InvalidBatch,
  NotLeaderOrFollower,
  OutOfOrderSequence,
  PartitionStorageError,
  ProducerFenced
} from "./errors.js"
import type { PartitionLog } from "./PartitionLog.js"
import { decodeSnapshot, encodeSnapshot, type EpochEntry, type ProducerSnapshot } from "./ProducerSnapshot.js"
import { ProducerStateTable } from "./ProducerState.js"

export interface AppendResult {
  readonly baseOffset: bigint
  /** The broker's append time for LogAppendTime topics, else -1. */
  readonly logAppendTime: bigint
  readonly logStartOffset: bigint
}

/** What `appendNow` did with a batch. */
export type AppendOutcome =
  | { readonly _tag: "Appended"; readonly result: AppendResult; readonly lastKey: number }
  | { readonly _tag: "Failed"; readonly error: AppendError }

export interface ReadResult {
  readonly records: ReadonlyArray<Buffer>
  /** Pooled buffers the records are views of (see `PartitionLog.readPooled`). */
  readonly buffers: ReadonlyArray<Buffer>
  readonly bytes: number
  readonly highWatermark: bigint
  readonly logStartOffset: bigint
  readonly logEndOffset: bigint
}

export interface EpochEndOffset {
  readonly leaderEpoch: number
  readonly endOffset: bigint
}

export interface ReplicaRecovery {
  /** Offset of the producer snapshot the state was loaded from; undefined after a full scan. */
  readonly snapshotOffset: number | undefined
  /** Batches read from the log to rebuild the state. */
  readonly replayedBatches: number
}

/** What `PartitionConsensus.proposeNow` answers (the engine's `ProposeNowResult`). */
export type ProposeOutcome =
  | { readonly _tag: "Proposed"; readonly term: number }
  | { readonly _tag: "NotLeader"; readonly leader: number | null }
  | { readonly _tag: "Refused"; readonly reason: string }

/** The partition's Raft group as the replica sees it. */
export interface PartitionConsensus {
  /** The group's leader and term now (undefined: no such group). */
  readonly status: () => { readonly leader: number | null; readonly term: number } | undefined
  /** Proposes record batches (offsets assigned), synchronously; the leader writes them to the log at once. */
  readonly proposeNow: (datas: ReadonlyArray<Uint8Array>) => ProposeOutcome
}

export interface PartitionReplicaOptions {
  readonly topic: string
  readonly partition: number
  readonly nodeId: number
  readonly log: PartitionLog
  readonly consensus: PartitionConsensus
  /** The topic's effective config; read on every append so changes apply at once. */
  readonly config: () => EffectiveTopicConfig
  readonly now: () => number
}

const NO_BUFFERS: ReadonlyArray<Buffer> = []
const NO_DATA = new Uint8Array(0)
/** Big-endian int32 at `at` of a byte array (a Buffer or a plain Uint8Array). */
const i32 = (b: Uint8Array, at: number): number => (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!

const storageError = (topic: string, partition: number) => (e: LogError) =>
  new PartitionStorageError({ topic, partition, reason: e.message })

export class PartitionReplica {
  readonly topic: string
  readonly partition: number
  readonly leaderId: number
  private readonly log: PartitionLog
  readonly config: () => EffectiveTopicConfig
  private readonly now: () => number
  private readonly producers: ProducerStateTable
  private readonly epochs: Array<EpochEntry> = []
  /** How `open` rebuilt the producer state. */
  readonly recovery: ReplicaRecovery
  private pendingRollSnapshot: { offset: number; data: Buffer } | undefined
  private readonly consensus: PartitionConsensus
  private hw: number
  private waiters = new Set<() => void>()
  /** acks=all requests waiting for their last offset to commit. */
  private commitWaiters: Array<{ readonly lastKey: number; readonly done: (error?: PartitionStorageError) => void }> = []
  private closed = false

  private constructor(
    options: PartitionReplicaOptions,
    epochs: ReadonlyArray<EpochEntry>,
    producers: ProducerStateTable,
    recovery: ReplicaRecovery
  ) {
    this.producers = producers
    this.recovery = recovery
    this.topic = options.topic
    this.partition = options.partition
    this.leaderId = options.nodeId
    this.log = options.log
    this.config = options.config
    this.now = options.now
    this.consensus = options.consensus
    this.epochs.push(...epochs)
    if (epochs.length === 0) this.epochs.push({ epoch: 0, startOffset: options.log.nextKey() })
    // Everything found on disk at open is durable (recovery) and, with one voter, committed.
    this.hw = options.log.nextKey()
  }

  /** The leader epoch: the group's Raft term (the last epoch in the log before the group runs). */
  get leaderEpoch(): number {
    return this.consensus.status()?.term ?? this.epochs[this.epochs.length - 1]!.epoch
  }

  /** The largest leader epoch in the epoch history. */
  get lastEpoch(): number {
    return this.epochs[this.epochs.length - 1]!.epoch
  }

  /** Whether this node leads the partition's group now. */
  get isLeader(): boolean {
    return this.consensus.status()?.leader === this.leaderId
  }

  /**
   * The group's state machine. The partition's state is its log, written by
   * the leader at propose time; applying a committed batch only moves the
   * high watermark past it. Snapshots carry no data.
   */
  readonly stateMachine: StateMachine = {
    apply: (e: Entry) => {
      // the entry's data is the batch, or only its header (PartitionRaftLogs keeps no payload in memory)
      if (e.type === "Normal" && e.data.length >= RECORD_BATCH_OVERHEAD && !this.closed) {
        const b = e.data
        const base = i32(b, BASE_OFFSET_OFFSET) * 4294967296 + (i32(b, BASE_OFFSET_OFFSET + 4) >>> 0)
        this.advanceHighWatermark(base + i32(b, LAST_OFFSET_DELTA_OFFSET) + 1)
      }
      return undefined
    },
    snapshot: () => NO_DATA,
    restore: () => {}
  }

  /** Succeeds with true once this node leads the group, false after `timeoutMs` (or once closed). */
  awaitLeadership(timeoutMs: number): Effect.Effect<boolean> {
    const self = this
    return Effect.gen(function* () {
      const deadline = Date.now() + timeoutMs
      while (!self.isLeader) {
        if (self.closed || Date.now() >= deadline) return false
        yield* Effect.sleep(2)
      }
      return true
    })
  }

  /**
   * Opens the replica, rebuilding the producer table and the epoch history
   * from the newest usable producer snapshot plus the batches after it, or
   * from a scan of the whole log when there is no usable snapshot (missing,
   * corrupt, outside [log start, log end], or not matching the log).
   */
  static open(options: PartitionReplicaOptions): Effect.Effect<PartitionReplica, PartitionStorageError> {
    return Effect.gen(function* () {
      const { log } = options
      const start = log.startKey()
      const end = log.nextKey()
      const snapshot = loadSnapshot(log, start, end)
      let epochs: Array<EpochEntry> = []
      let producers = new ProducerStateTable()
      let replayed = -1
      let snapshotOffset: number | undefined
      if (snapshot !== undefined) {
        epochs = [...snapshot.epochs]
        for (const [pid, entry] of snapshot.producers) producers.restore(pid, entry)
        replayed = yield* replay(options, snapshot.offset, end, epochs, producers, true)
        if (replayed >= 0) snapshotOffset = snapshot.offset
      }
      if (replayed < 0) {
        // no usable snapshot (or it does not match the log): scan everything
        epochs = []
        producers = new ProducerStateTable()
        replayed = yield* replay(options, start, end, epochs, producers, false)
      }
      // as after DeleteRecords / retention: forget producers wholly below the log start
      producers.truncateBefore(BigInt(start))
      // the history a scan from the log start would find: epochs that ended at or before it are gone
      if (end <= start) epochs.length = 0
      while (epochs.length > 1 && epochs[1]!.startOffset <= start) epochs.shift()
      const replica = new PartitionReplica(options, epochs, producers, {
        snapshotOffset,
        replayedBatches: replayed
      })
      log.onRoll((base) => replica.snapshotOnRoll(base))
      return replica
    })
  }

  get logStartOffset(): bigint {
    return BigInt(this.log.startKey())
  }

  get logEndOffset(): bigint {
    return BigInt(this.log.nextKey())
  }

  get highWatermark(): bigint {
    return BigInt(this.hw)
  }

  /**
   * Validates, deduplicates, assigns offsets and appends one produce batch,
   * synchronously (no fiber): the produce path calls this for every
   * partition of a request in one loop. `Appended.lastKey` is the offset the
   * batch is committed at (a duplicate's original last offset); pass it to
   * `whenCommitted` for acks=all.
   */
  appendNow(records: Buffer | null): AppendOutcome {
    const topic = this.topic
    const partition = this.partition
    const invalid = (errorCode: number, reason: string): AppendOutcome => ({
      _tag: "Failed",
      error: new InvalidBatch({ topic, partition, errorCode, reason })
    })
    if (records === null || records.length === 0) {
      return invalid(ErrorCode.INVALID_RECORD, "Produce requests must have at least one record batch per partition")
    }
    const config = this.config()
    let header: ReturnType<typeof validateBatch>
    try {
      header = validateBatch(records, 0)
    } catch (e) {
      if (e instanceof RecordBatchError) return invalid(e.errorCode, e.message)
      return invalid(ErrorCode.CORRUPT_MESSAGE, String(e))
    }
    if (header.sizeInBytes !== records.length) {
      return invalid(ErrorCode.INVALID_RECORD, "Produce requests are only allowed to contain exactly one record batch per partition")
    }
    if (header.sizeInBytes > config.maxMessageBytes) {
      return invalid(
        ErrorCode.MESSAGE_TOO_LARGE,
        `The record batch size ${header.sizeInBytes} is larger than max.message.bytes ${config.maxMessageBytes}`
      )
    }
    if (header.isControl) return invalid(ErrorCode.INVALID_RECORD, "Clients are not allowed to write control records")
    if (header.isTransactional) {
      return invalid(ErrorCode.INVALID_TXN_STATE, "Transactions are not supported by this broker yet")
    }
    const now = this.now()
    if (!config.logAppendTime && header.timestampType === 0) {
      const max = Number(header.maxTimestamp)
      const first = Number(header.baseTimestamp)
      if (max > now + config.timestampAfterMaxMs || (first >= 0 && first < now - config.timestampBeforeMaxMs)) {
        return invalid(
          ErrorCode.INVALID_TIMESTAMP,
          `Timestamp of the batch (${first}..${max}) is out of range for message.timestamp.before/after.max.ms`
        )
      }
    }
    const fields = {
      producerId: header.producerId,
      producerEpoch: header.producerEpoch,
      baseSequence: header.baseSequence,
      lastOffsetDelta: header.lastOffsetDelta,
      maxTimestamp: header.maxTimestamp
    }
    const status = this.consensus.status()
    if (status === undefined) {
      // the group left the engine: its log failed (or the partition is closing)
      return {
        _tag: "Failed",
        error: new PartitionStorageError({ topic, partition, reason: "the partition's Raft group is stopped (its log failed)" })
      }
    }
    if (status.leader !== this.leaderId) {
      return { _tag: "Failed", error: new NotLeaderOrFollower({ topic, partition, leaderId: status.leader ?? -1 }) }
    }
    const check = this.producers.check(fields)
    switch (check._tag) {
      case "Duplicate":
        return {
          _tag: "Appended",
          result: {
            baseOffset: check.firstOffset,
            logAppendTime: config.logAppendTime ? check.maxTimestamp : -1n,
            logStartOffset: this.logStartOffset
          },
          lastKey: Number(check.lastOffset)
        }
      case "InvalidProducerEpoch":
        return { _tag: "Failed", error: new ProducerFenced({ topic, partition, reason: check.message }) }
      case "OutOfOrderSequence":
        return { _tag: "Failed", error: new OutOfOrderSequence({ topic, partition, reason: check.message }) }
      case "Append":
        break
    }
    const base = this.log.nextKey()
    const term = status.term
    setBaseOffset(records, 0, BigInt(base))
    setPartitionLeaderEpoch(records, 0, term)
    if (config.logAppendTime) setLogAppendTime(records, 0, now)
    const lastKey = base + header.lastOffsetDelta
    // the leader writes the batch to the log now; it commits (high watermark) when the group applies it
    const proposed = this.consensus.proposeNow([records])
    switch (proposed._tag) {
      case "NotLeader":
        return { _tag: "Failed", error: new NotLeaderOrFollower({ topic, partition, leaderId: proposed.leader ?? -1 }) }
      case "Refused":
        return { _tag: "Failed", error: new PartitionStorageError({ topic, partition, reason: proposed.reason }) }
      case "Proposed":
        break
    }
    const last = this.epochs[this.epochs.length - 1]!
    if (last.epoch < term) this.epochs.push({ epoch: term, startOffset: base })
    this.producers.record(fields, BigInt(base))
    return {
      _tag: "Appended",
      result: {
        baseOffset: BigInt(base),
        logAppendTime: config.logAppendTime ? BigInt(now) : -1n,
        logStartOffset: this.logStartOffset
      },
      lastKey
    }
  }

  /**
   * Calls `done` once the offset `lastKey` is committed (below the high
   * watermark), at once if it already is; with the error if the log fails.
   */
  whenCommitted(lastKey: number, done: (error?: PartitionStorageError) => void): void {
    if (lastKey < this.hw) return done()
    let finished = false
    const finish = (error?: PartitionStorageError) => {
      if (finished) return
      finished = true
      done(error)
    }
    this.commitWaiters.push({ lastKey, done: finish })
    // a log failure answers at once (the group's driver cannot commit past it)
    this.log.onDurable(lastKey, (e) => {
      if (e !== undefined) finish(storageError(this.topic, this.partition)(e))
    })
  }

  /**
   * Calls `done` once every batch appended so far is written to the file
   * system: at once unless segment writes are asynchronous
   * (docs/async-segment-writes.md), with the error if a write failed.
   */
  whenWritten(done: (error?: PartitionStorageError) => void): void {
    this.log.onWritten((e) => done(e === undefined ? undefined : storageError(this.topic, this.partition)(e)))
  }

  /**
   * `appendNow`, then for acks=all (-1) wait for the commit, for acks=0/1
   * until the batch is written (`whenWritten`).
   */
  append(records: Buffer | null, acks: number): Effect.Effect<AppendResult, AppendError> {
    return Effect.suspend(() => {
      const outcome = this.appendNow(records)
      if (outcome._tag === "Failed") return Effect.fail(outcome.error)
      const answer = (e: PartitionStorageError | undefined): Effect.Effect<AppendResult, AppendError> =>
        e === undefined ? Effect.succeed(outcome.result) : Effect.fail(e)
      return Effect.async<AppendResult, AppendError>((resume) => {
        if (acks === -1) this.whenCommitted(outcome.lastKey, (e) => resume(answer(e)))
        else this.whenWritten((e) => resume(answer(e)))
      })
    })
  }

  private advanceHighWatermark(next: number): void {
    if (next <= this.hw) return
    this.hw = next
    if (this.commitWaiters.length > 0) {
      const still: typeof this.commitWaiters = []
      const ready: typeof this.commitWaiters = []
      for (const w of this.commitWaiters) (w.lastKey < next ? ready : still).push(w)
      this.commitWaiters = still
      for (const w of ready) w.done()
    }
    const waiters = this.waiters
    this.waiters = new Set()
    for (const w of waiters) w()
  }

  /**
   * Registers `wake` to run once when the high watermark next moves (or the
   * replica closes); returns a function that unregisters it.
   */
  onHighWatermarkChange(wake: () => void): () => void {
    if (this.closed) {
      wake()
      return () => {}
    }
    this.waiters.add(wake)
    return () => this.waiters.delete(wake)
  }

  /**
   * Whole batches from the one containing `offset`, below the high watermark.
   * With `minOneBatch` the first batch is returned even if it exceeds maxBytes (KIP-74).
   */
  read(offset: bigint, maxBytes: number, minOneBatch: boolean): Effect.Effect<ReadResult, FetchOffsetOutOfRange | PartitionStorageError> {
    const start = this.log.startKey()
    const end = this.log.nextKey()
    const hw = this.hw
    const o = Number(offset)
    const base = { highWatermark: BigInt(hw), logStartOffset: BigInt(start), logEndOffset: BigInt(end) }
    if (o < start || o > end) {
      return Effect.fail(
        new FetchOffsetOutOfRange({
          topic: this.topic,
          partition: this.partition,
          offset,
          logStartOffset: BigInt(start),
          logEndOffset: BigInt(end)
        })
      )
    }
    if (o >= hw || maxBytes <= 0 && !minOneBatch) return Effect.succeed({ ...base, records: [], bytes: 0, buffers: NO_BUFFERS })
    return this.log.readPooled(o, Math.max(maxBytes, 1), hw).pipe(
      Effect.mapError(storageError(this.topic, this.partition)),
      Effect.map(({ entries, buffers }) => {
        const records: Array<Buffer> = []
        let bytes = 0
        for (const e of entries) {
          if (bytes + e.payload.length > maxBytes && !(minOneBatch && records.length === 0)) break
          records.push(e.payload)
          bytes += e.payload.length
        }
        return { ...base, records, bytes, buffers }
      })
    )
  }

  /** ListOffsets by timestamp: the first batch whose max timestamp >= ts, below the high watermark. */
  offsetForTimestamp(
    ts: bigint
  ): Effect.Effect<{ offset: bigint; timestamp: bigint; leaderEpoch: number } | undefined, PartitionStorageError> {
    return this.log.offsetForTimestamp(Number(ts)).pipe(
      Effect.mapError(storageError(this.topic, this.partition)),
      Effect.map((e) =>
        e === undefined || e.firstKey >= this.hw
          ? undefined
          : {
              offset: BigInt(Math.max(e.firstKey, this.log.startKey())),
              timestamp: BigInt(e.maxTimestamp),
              leaderEpoch: e.term
            }
      )
    )
  }

  /** ListOffsets MAX_TIMESTAMP: the batch with the largest timestamp below the high watermark (the first on ties). */
  maxTimestamp(): Effect.Effect<{ offset: bigint; timestamp: bigint; leaderEpoch: number } | undefined, PartitionStorageError> {
    return this.log.maxTimestamp(this.hw).pipe(
      Effect.mapError(storageError(this.topic, this.partition)),
      // Kafka reports the offset of the record with the max timestamp; without decoding records
      // the batch's last offset is the closest offset that is certain to be at or after it.
      Effect.map((best) =>
        best === undefined
          ? undefined
          : { offset: BigInt(best.lastKey), timestamp: BigInt(best.maxTimestamp), leaderEpoch: best.term }
      )
    )
  }

  /** A producer's epoch, last sequence and last offset (DescribeProducers, tests). */
  describeProducer(producerId: bigint): { epoch: number; lastSequence: number; lastOffset: bigint } | undefined {
    return this.producers.describe(producerId)
  }

  /** OffsetForLeaderEpoch: the end offset of the largest epoch <= `epoch` (KIP-101/279). */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    const latest = this.epochs[this.epochs.length - 1]!
    // the current leader epoch (a term with no batch yet included) ends at the log end
    if (epoch === latest.epoch || (epoch > latest.epoch && epoch === this.leaderEpoch)) {
      return { leaderEpoch: epoch, endOffset: this.logEndOffset }
    }
    if (epoch > latest.epoch || epoch < this.epochs[0]!.epoch) {
      return epoch > latest.epoch ? { leaderEpoch: -1, endOffset: -1n } : { leaderEpoch: epoch, endOffset: this.logStartOffset }
    }
    for (let i = this.epochs.length - 1; i >= 0; i--) {
      const e = this.epochs[i]!
      if (e.epoch <= epoch) return { leaderEpoch: e.epoch, endOffset: BigInt(this.epochs[i + 1]!.startOffset) }
    }
    return { leaderEpoch: -1, endOffset: -1n }
  }

  /** DeleteRecords: moves the log start offset to `offset` (-1: the high watermark). */
  deleteRecordsBefore(offset: bigint): Effect.Effect<bigint, FetchOffsetOutOfRange | PartitionStorageError> {
    const target = offset === -1n ? this.hw : Number(offset)
    if (target > this.hw || target < 0) {
      return Effect.fail(
        new FetchOffsetOutOfRange({
          topic: this.topic,
          partition: this.partition,
          offset,
          logStartOffset: this.logStartOffset,
          logEndOffset: BigInt(this.hw)
        })
      )
    }
    if (target <= this.log.startKey()) return Effect.succeed(this.logStartOffset)
    return this.log.deleteBefore(target).pipe(
      Effect.mapError(storageError(this.topic, this.partition)),
      Effect.map(() => {
        this.producers.truncateBefore(BigInt(this.log.startKey()))
        return this.logStartOffset
      })
    )
  }

  /** Applies retention.ms / retention.bytes; returns the new log start offset. */
  enforceRetention(): Effect.Effect<bigint, PartitionStorageError> {
    const c = this.config()
    return this.log.enforceRetention({ retentionMs: c.retentionMs, retentionBytes: c.retentionBytes, now: this.now() }).pipe(
      Effect.mapError(storageError(this.topic, this.partition)),
      Effect.map((start) => {
        this.producers.truncateBefore(BigInt(start))
        return BigInt(start)
      })
    )
  }

  /**
   * Writes a producer snapshot at the log end offset (before the log is
   * closed: ReplicaManager does this at a clean close). Keeps the newest two.
   */
  writeSnapshot(): Effect.Effect<void, PartitionStorageError> {
    return Effect.try({
      try: () => {
        const offset = this.log.nextKey()
        this.log.snapshots.write(offset, encodeSnapshot(offset, this.epochs, this.producers.entries()))
      },
      catch: (e) =>
        new PartitionStorageError({
          topic: this.topic,
          partition: this.partition,
          reason: `writing the producer snapshot: ${e instanceof Error ? e.message : String(e)}`
        })
    })
  }

  /**
   * Called from inside `appendNow` when the log rolls: every batch below
   * `base` is recorded in the table and the batch being appended is not yet,
   * so the table is the state at `base`. Encoded now, written off the append
   * path (a failure only costs a longer replay at the next open).
   */
  snapshotOnRoll(base: number): void {
    if (this.closed) return
    const pending = this.pendingRollSnapshot
    this.pendingRollSnapshot = { offset: base, data: encodeSnapshot(base, this.epochs, this.producers.entries()) }
    if (pending !== undefined) return
    setImmediate(() => {
      const p = this.pendingRollSnapshot
      this.pendingRollSnapshot = undefined
      if (p === undefined || this.closed) return
      try {
        this.log.snapshots.write(p.offset, p.data)
      } catch {
        // best effort
      }
    })
  }

  /** Wakes every waiting fetch; later waits return at once. */
  close(): void {
    this.closed = true
    this.pendingRollSnapshot = undefined
    this.log.onRoll(undefined)
    const commitWaiters = this.commitWaiters
    this.commitWaiters = []
    for (const w of commitWaiters) {
      w.done(new PartitionStorageError({ topic: this.topic, partition: this.partition, reason: "the partition was closed" }))
    }
    const waiters = this.waiters
    this.waiters = new Set()
    for (const w of waiters) w()
  }
}

/**
 * The newest snapshot that decodes and lies in [start, end]. Snapshots past
 * the log end (its tail was lost in a crash) and corrupt ones are deleted:
 * a later append past their offset would otherwise make them look usable.
 * Never fails: any problem means "no snapshot".
 */
const loadSnapshot = (log: PartitionLog, start: number, end: number): ProducerSnapshot | undefined => {
  const remove = (offset: number) => {
    try {
      log.snapshots.remove(offset)
    } catch {
      // ignore
    }
  }
  let offsets: ReadonlyArray<number>
  try {
    offsets = log.snapshots.list()
  } catch {
    return undefined
  }
  for (let i = offsets.length - 1; i >= 0; i--) {
    const offset = offsets[i]!
    if (offset > end) {
      remove(offset)
      continue
    }
    if (offset < start) return undefined
    let snapshot: ProducerSnapshot | undefined
    try {
      const buf = log.snapshots.read(offset)
      snapshot = buf === undefined ? undefined : decodeSnapshot(buf)
    } catch {
      continue
    }
    if (snapshot !== undefined && snapshot.offset === offset) return snapshot
    remove(offset)
  }
  return undefined
}

/**
 * Reads the batches from `from` to `end`, extending the epoch history and
 * recording them in the producer table; returns how many. `strict` (replay
 * after a snapshot): the first batch must start exactly at `from`, else -1.
 */
const replay = (
  options: PartitionReplicaOptions,
  from: number,
  end: number,
  epochs: Array<EpochEntry>,
  producers: ProducerStateTable,
  strict: boolean
): Effect.Effect<number, PartitionStorageError> =>
  Effect.gen(function* () {
    const { log } = options
    let key = from
    let n = 0
    while (key < end) {
      const { entries } = yield* Effect.mapError(
        log.readPooled(key, 16 * 1024 * 1024, end),
        storageError(options.topic, options.partition)
      )
      if (entries.length === 0) break
      for (const e of entries) {
        if (strict && n === 0 && e.firstKey !== from) return -1
        if (epochs.length === 0 || epochs[epochs.length - 1]!.epoch < e.term) {
          epochs.push({ epoch: e.term, startOffset: e.firstKey })
        }
        producers.record(readProducerFields(e.payload), BigInt(e.firstKey))
        key = e.lastKey + 1
        n++
      }
    }
    return n
  })

const readProducerFields = (batch: Buffer) => {
  const h = readBatchHeader(batch, 0)
  return {
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    baseSequence: h.baseSequence,
    lastOffsetDelta: h.lastOffsetDelta,
    maxTimestamp: h.maxTimestamp
  }
}
