/**
 * The metadata log: an ordered, durable list of MetadataRecords.
 *
 * Standalone nodes keep it in a local segmented log under
 * `<dataDir>/__meta`; clustered nodes will back it with the `__meta` Raft
 * group. `append` returns once the records are durable.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { LogStore } from "../storage/LogStore.js"
import { MetadataLogError as MetadataLogErrorClass } from "./errors.js"
import type { MetadataLogError } from "./errors.js"
import { type MetadataRecord, decodeRecord, encodeRecord } from "./MetadataRecord.js"

export interface MetadataLogShape {
  /** Appends records atomically (all or none) and returns when they are durable. */
  readonly append: (records: ReadonlyArray<MetadataRecord>) => Effect.Effect<void, MetadataLogError>
  /** Every record appended so far, in order. */
  readonly readAll: Effect.Effect<ReadonlyArray<MetadataRecord>, MetadataLogError>
}

export class MetadataLog extends Context.Tag("chronik/MetadataLog")<MetadataLog, MetadataLogShape>() {}

/** An in-memory metadata log, optionally pre-filled (tests, restarts within one process). */
export const makeMemory = (initial: ReadonlyArray<MetadataRecord> = []): Effect.Effect<MetadataLogShape> =>
  Effect.map(Ref.make<ReadonlyArray<MetadataRecord>>(initial), (ref) => ({
    append: (records) => Ref.update(ref, (all) => [...all, ...records]),
    readAll: Ref.get(ref)
  }))

export const layerMemory: Layer.Layer<MetadataLog> = Layer.effect(MetadataLog, makeMemory())

/** Log id of the metadata log in the LogStore; no topic may take this name. */
export const METADATA_LOG_ID = "__cluster_metadata"

/**
 * The metadata log kept in the node's LogStore (standalone mode): one entry
 * per record, keyed by its index, appended durably.
 */
export const layerLogStore: Layer.Layer<MetadataLog, MetadataLogError, LogStore> = Layer.effect(
  MetadataLog,
  Effect.gen(function* () {
    const store = yield* LogStore
    const log = yield* Effect.mapError(store.open(METADATA_LOG_ID), (e) => new MetadataLogErrorClass({ reason: e.message }))
    const fail = (e: { readonly message: string }) => new MetadataLogErrorClass({ reason: e.message })
    const lock = yield* Effect.makeSemaphore(1)
    return {
      append: (records) =>
        lock.withPermits(1)(
          Effect.suspend(() => {
            if (records.length === 0) return Effect.void
            const next = log.core.nextKey
            const now = Date.now()
            const entries = records.map((r, i) => ({
              firstKey: next + i,
              lastKey: next + i,
              term: 0,
              maxTimestamp: now,
              type: 0,
              payload: encodeRecord(r)
            }))
            return Effect.mapError(Effect.asVoid(log.appendDurable(entries)), fail)
          })
        ),
      readAll: Effect.gen(function* () {
        const out: Array<MetadataRecord> = []
        let key = log.core.logStartKey
        const end = log.core.nextKey
        while (key < end) {
          const r = yield* Effect.mapError(log.read(key, 4 * 1024 * 1024), fail)
          if (r.entries.length === 0) break
          for (const e of r.entries) out.push(decodeRecord(e.payload))
          key = r.nextFetchKey
        }
        return out
      })
    }
  })
)
