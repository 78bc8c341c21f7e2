/**
 * The metadata log: an ordered, durable list of MetadataRecords.
 *
 * Standalone nodes keep it in a local segmented log under
 * `<dataDir>/__meta`; clustered nodes will back it with the `__meta` Raft
 * group. `append` returns once the records are durable.
 */
import { Context, Effect, Layer, Ref } from "effect"
import type { MetadataLogError } from "./errors.js"
import type { MetadataRecord } from "./MetadataRecord.js"

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
