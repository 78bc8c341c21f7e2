/**
 * The metadata log: an ordered, durable list of MetadataRecords.
 *
 * Standalone nodes keep it in a local segmented log under
 * `<dataDir>/__meta`; clustered nodes will back it with the `__meta` Raft
 * group. `append` returns once the records are durable.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { LogStore } from "../storage/LogStore.js"
import * as RecordLog from "../storage/RecordLog.js"
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
 * The metadata log kept in the node's LogStore (standalone mode): one
 * durable record per entry.
 */
export const layerLogStore: Layer.Layer<MetadataLog, MetadataLogError, LogStore> = Layer.effect(
  MetadataLog,
  Effect.gen(function* () {
    const fail = (e: { readonly message: string }) => new MetadataLogErrorClass({ reason: e.message })
    const log = yield* Effect.mapError(Effect.flatMap(LogStore, (store) => RecordLog.open(store, METADATA_LOG_ID)), fail)
    return {
      append: (records) => Effect.mapError(Effect.asVoid(log.append(records.map(encodeRecord))), fail),
      readAll: Effect.suspend(() => {
        const out: Array<MetadataRecord> = []
        return Effect.as(Effect.mapError(log.replay((payload) => void out.push(decodeRecord(payload))), fail), out)
      })
    }
  })
)
