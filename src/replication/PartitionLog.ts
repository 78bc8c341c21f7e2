/**
 * The log a partition replica writes to: the narrow view of the storage
 * engine's segmented log that replication needs. Keys are Kafka offsets
 * (a batch's entry spans [baseOffset, lastOffset]); `term` holds the leader
 * epoch the batch was written in (= the Raft term of its group). Reads by key
 * never return the Raft-internal frames (they take no offset).
 */
import type { Effect } from "effect"
import type { LogError } from "../storage/errors.js"
import type { SnapshotStore } from "./ProducerSnapshot.js"
import type { PartitionRaftOps } from "./PartitionRaftLogs.js"

export interface PartitionLogEntry {
  readonly firstKey: number
  readonly lastKey: number
  readonly term: number
  readonly maxTimestamp: number
  readonly payload: Buffer
}

/**
 * A frame of the partition's Raft group: a record batch (type 0, keys = its
 * offsets) or a Raft-internal entry with an empty key range at the log end
 * (`lastKey = firstKey - 1`; type = the Raft entry type code).
 */
export interface RaftFrame {
  readonly firstKey: number
  readonly lastKey: number
  readonly term: number
  readonly maxTimestamp: number
  readonly index: number
  readonly type: number
  readonly payload: Uint8Array
  /** CRC-32C of `payload.subarray(from)` (see `AppendEntry.payloadCrc`). */
  readonly payloadCrc?: { readonly from: number; readonly crc: number }
}

export interface PartitionLog {
  /** First offset still in the log. */
  readonly startKey: () => number
  /** Offset the next appended batch will get (log end offset). */
  readonly nextKey: () => number
  /** The Raft side: the partition log is its Raft group's log (see PartitionRaftLogs). */
  readonly raft: PartitionRaftOps
  /**
   * Calls `done` once every entry up to `key` is durable under the fsync
   * policy (at once if it already is), or with the error if the log fails.
   */
  readonly onDurable: (key: number, done: (error?: LogError) => void) => void
  /**
   * Calls `done` once every entry appended so far is written to the file
   * system (at once unless segment writes are asynchronous), or with the error
   * if a write failed.
   */
  readonly onWritten: (done: (error?: LogError) => void) => void
  readonly readPooled: (
    fromKey: number,
    maxBytes: number,
    endKey: number
  ) => Effect.Effect<{ readonly entries: ReadonlyArray<PartitionLogEntry>; readonly buffers: ReadonlyArray<Buffer> }, LogError>
  /**
   * The entry with the largest maxTimestamp (the first on ties) among those
   * with startKey <= lastKey < endKey, or undefined (ListOffsets MAX_TIMESTAMP).
   */
  readonly maxTimestamp: (endKey: number) => Effect.Effect<PartitionLogEntry | undefined, LogError>
  /** First entry whose maxTimestamp >= ts, or undefined. */
  readonly offsetForTimestamp: (ts: number) => Effect.Effect<PartitionLogEntry | undefined, LogError>
  /** Moves the log start to `key` (DeleteRecords), dropping whole segments below it. */
  readonly deleteBefore: (key: number) => Effect.Effect<void, LogError>
  /** Enforces retention; returns the new start key. */
  readonly enforceRetention: (policy: {
    readonly retentionMs: number
    readonly retentionBytes: number
    readonly now: number
  }) => Effect.Effect<number, LogError>
  /** Producer-state snapshot files kept next to the log's segments. */
  readonly snapshots: SnapshotStore
  /**
   * Sets (undefined: clears) the function called synchronously, from inside
   * `appendNow`, when the log rolls to a new segment starting at `base`.
   */
  readonly onRoll: (listener: ((base: number) => void) | undefined) => void
}
