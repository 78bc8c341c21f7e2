/**
 * A durable, ordered list of small records in one LogStore log: each record
 * is one entry keyed by its position. Internal state (the metadata log, the
 * group store) uses it; appends are serialised, atomic per call and durable
 * on return, and `replay` reads every record from the log start.
 *
 * With a `Compaction` policy the log is compacted by key, so it stays bounded
 * however many times the same keys are rewritten (the group store: one key per
 * committed offset). The log keeps the latest record of every live key in
 * memory, and once enough of the log is superseded (records whose key was
 * written again later, and tombstones) it rewrites itself:
 *
 *   1. roll, so the rewrite starts a fresh segment;
 *   2. append the latest record of every live key, in the order of their last
 *      writes, and wait until they are durable;
 *   3. move the log start to the first rewritten record (`deleteBefore`: the
 *      checkpoint is written durably before any segment is deleted).
 *
 * All three run under the append lock, so no append interleaves and the
 * rewritten records are exactly the latest ones. Replay is "latest record of a
 * key wins, a tombstone removes it", so a kill -9 at any point replays to the
 * same state: before step 3 the old records are all still there and the
 * rewritten ones (all, some, or a torn prefix that recovery truncates) repeat
 * the latest values; after step 3 only the rewritten records are read, and an
 * interrupted segment deletion is finished by recovery. Tombstones are dropped
 * by the rewrite: nothing older than them survives it.
 */
import { Effect } from "effect"
import type { LogError } from "./errors.js"
import type { LogStoreService } from "./LogStore.js"
import type { SegmentedLog } from "./SegmentedLog.js"

/** Keyed compaction of a record log. */
export interface Compaction {
  /** The key of a record: a later record with the same key supersedes it. */
  readonly keyOf: (payload: Buffer) => string
  /** Whether a record deletes its key (a tombstone; never rewritten). */
  readonly isTombstone: (payload: Buffer) => boolean
  /** Compact only once at least this many records are superseded. */
  readonly minSupersededRecords: number
  /** ...and at least this fraction (0..1) of the log's records is superseded. */
  readonly minSupersededRatio: number
  /** Records per write of the rewrite (default 4096); the fiber yields between writes. */
  readonly rewriteChunkRecords?: number
}

export interface CompactionResult {
  /** Records in the log before and after. */
  readonly recordsBefore: number
  readonly recordsAfter: number
  /** Log bytes (all segments) before and after. */
  readonly bytesBefore: number
  readonly bytesAfter: number
  /** The new log start: the position of the first rewritten record. */
  readonly logStart: number
}

export interface RecordLogStats {
  /** Records between the log start and the end. */
  readonly records: number
  /** Keys with a live (non-tombstone) latest record; 0 without compaction. */
  readonly liveRecords: number
  readonly sizeBytes: number
  readonly segments: number
  readonly logStart: number
  readonly nextPosition: number
  /** Compactions run since open. */
  readonly compactions: number
}

export interface RecordLog {
  /**
   * Appends the payloads durably, in order; returns the position of the first.
   * With a compaction policy the log may compact right after (under the same
   * lock); a failed compaction is logged and does not fail the append, whose
   * records were already durable.
   */
  readonly append: (payloads: ReadonlyArray<Buffer>) => Effect.Effect<number, LogError>
  /** Calls `f` with every payload and its position, in order. */
  readonly replay: (f: (payload: Buffer, position: number) => void) => Effect.Effect<void, LogError>
  /** Compacts now, whatever the thresholds (a no-op result without a compaction policy). */
  readonly compact: Effect.Effect<CompactionResult, LogError>
  readonly stats: Effect.Effect<RecordLogStats>
}

export interface OpenOptions {
  readonly compaction?: Compaction
}

const READ_CHUNK = 4 * 1024 * 1024
/** Records per write of a compaction's rewrite. */
const REWRITE_CHUNK = 4096

const scan = (log: SegmentedLog, f: (payload: Buffer, position: number) => void): Effect.Effect<void, LogError> =>
  Effect.gen(function*() {
    let key = log.core.logStartKey
    const end = log.core.nextKey
    while (key < end) {
      const r = yield* log.read(key, READ_CHUNK)
      if (r.entries.length === 0) break
      for (const e of r.entries) if (e.firstKey >= key) f(e.payload, e.firstKey)
      key = r.nextFetchKey
    }
  })

export const open = (store: LogStoreService, id: string, options: OpenOptions = {}): Effect.Effect<RecordLog, LogError> =>
  Effect.gen(function*() {
    const log = yield* store.open(id)
    const lock = yield* Effect.makeSemaphore(1)
    const policy = options.compaction
    /** key -> latest live record; Map order is the order of the last writes. */
    const live = new Map<string, Buffer>()
    let compactions = 0
    /** After a failed compaction, the next attempt waits for this position (no retry on every append). */
    let retryAt = 0

    const track = (payload: Buffer): void => {
      if (policy === undefined) return
      const key = policy.keyOf(payload)
      live.delete(key)
      // A copy: read results are views of a shared read buffer or the memory tier.
      if (!policy.isTombstone(payload)) live.set(key, Buffer.from(payload))
    }
    if (policy !== undefined) yield* scan(log, track)

    const records = () => log.core.nextKey - log.core.logStartKey

    const entriesAt = (first: number, payloads: ReadonlyArray<Buffer>, now: number) =>
      payloads.map((payload, i) => ({ firstKey: first + i, lastKey: first + i, term: 0, maxTimestamp: now, type: 0, payload }))

    /** Steps 1-3 of the header comment; the caller holds the lock. */
    const compactLocked: Effect.Effect<CompactionResult, LogError> = Effect.gen(function*() {
      const before = log.core.stats()
      const recordsBefore = records()
      yield* log.roll()
      const logStart = log.core.nextKey
      const rewrite = [...live.values()]
      if (rewrite.length > 0) {
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        // In chunks, yielding between them, so a large live state does not hold the event loop;
        // one fsync for all of it.
        let next = logStart
        const size = Math.max(1, policy?.rewriteChunkRecords ?? REWRITE_CHUNK)
        for (let i = 0; i < rewrite.length; i += size) {
          const chunk = rewrite.slice(i, i + size)
          yield* log.append(entriesAt(next, chunk, now))
          next += chunk.length
          yield* Effect.yieldNow()
        }
        yield* log.awaitDurable(next - 1)
      }
      yield* log.deleteBefore(logStart)
      compactions++
      const after = log.core.stats()
      return {
        recordsBefore,
        recordsAfter: records(),
        bytesBefore: before.sizeBytes,
        bytesAfter: after.sizeBytes,
        logStart: log.core.logStartKey
      }
    }).pipe(Effect.withSpan("RecordLog.compact", { attributes: { log: id }, captureStackTrace: false }))

    const shouldCompact = (): boolean => {
      if (policy === undefined || log.core.nextKey < retryAt) return false
      const total = records()
      const superseded = total - live.size
      return superseded >= policy.minSupersededRecords && superseded >= policy.minSupersededRatio * total
    }

    const maybeCompact: Effect.Effect<void> = Effect.suspend(() =>
      shouldCompact()
        ? compactLocked.pipe(
          Effect.tap((r) =>
            Effect.logDebug("record log compacted").pipe(
              Effect.annotateLogs({ log: id, recordsBefore: r.recordsBefore, recordsAfter: r.recordsAfter })
            )
          ),
          Effect.catchAll((e) =>
            Effect.zipRight(
              Effect.sync(() => (retryAt = log.core.nextKey + Math.max(1, policy!.minSupersededRecords))),
              Effect.logWarning("record log compaction failed").pipe(Effect.annotateLogs({ log: id, error: e.message }))
            )
          ),
          Effect.asVoid
        )
        : Effect.void
    )

    return {
      append: (payloads) =>
        lock.withPermits(1)(
          Effect.suspend(() => {
            const first = log.core.nextKey
            if (payloads.length === 0) return Effect.succeed(first)
            return Effect.flatMap(Effect.clockWith((c) => c.currentTimeMillis), (now) =>
              log.appendDurable(entriesAt(first, payloads, now)).pipe(
                Effect.tap(() => {
                  for (const p of payloads) track(p)
                  return maybeCompact
                }),
                Effect.as(first)
              ))
          })
        ),
      replay: (f) => scan(log, f),
      compact: lock.withPermits(1)(
        policy === undefined
          ? Effect.sync(() => {
            const s = log.core.stats()
            return {
              recordsBefore: records(),
              recordsAfter: records(),
              bytesBefore: s.sizeBytes,
              bytesAfter: s.sizeBytes,
              logStart: log.core.logStartKey
            }
          })
          : compactLocked
      ),
      stats: Effect.sync(() => {
        const s = log.core.stats()
        return {
          records: records(),
          liveRecords: live.size,
          sizeBytes: s.sizeBytes,
          segments: s.segments,
          logStart: s.logStartKey,
          nextPosition: s.nextKey,
          compactions
        }
      })
    }
  })
