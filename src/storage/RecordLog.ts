/**
 * A durable, ordered list of small records in one LogStore log: each record
 * is one entry keyed by its position. Internal state (the metadata log, the
 * group store) uses it; appends are serialised, atomic per call and durable
 * on return, and `replay` reads every record from the log start.
 */
import { Effect } from "effect"
import type { LogError } from "./errors.js"
import type { LogStoreService } from "./LogStore.js"

export interface RecordLog {
  /** Appends the payloads durably, in order; returns the position of the first. */
  readonly append: (payloads: ReadonlyArray<Buffer>) => Effect.Effect<number, LogError>
  /** Calls `f` with every payload and its position, in order. */
  readonly replay: (f: (payload: Buffer, position: number) => void) => Effect.Effect<void, LogError>
}

export const open = (store: LogStoreService, id: string): Effect.Effect<RecordLog, LogError> =>
  Effect.gen(function* () {
    const log = yield* store.open(id)
    const lock = yield* Effect.makeSemaphore(1)
    return {
      append: (payloads) =>
        lock.withPermits(1)(
          Effect.suspend(() => {
            const first = log.core.nextKey
            if (payloads.length === 0) return Effect.succeed(first)
            const now = Date.now()
            const entries = payloads.map((payload, i) => ({
              firstKey: first + i,
              lastKey: first + i,
              term: 0,
              maxTimestamp: now,
              type: 0,
              payload
            }))
            return Effect.as(log.appendDurable(entries), first)
          })
        ),
      replay: (f) =>
        Effect.gen(function* () {
          let key = log.core.logStartKey
          const end = log.core.nextKey
          while (key < end) {
            const r = yield* log.read(key, 4 * 1024 * 1024)
            if (r.entries.length === 0) break
            for (const e of r.entries) f(e.payload, e.firstKey)
            key = r.nextFetchKey
          }
        })
    }
  })
