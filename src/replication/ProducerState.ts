/**
 * Idempotent-producer state of one partition, following Kafka's
 * ProducerStateManager rules:
 *
 * - per producer id: the current epoch and the last 5 appended batches
 *   (first/last sequence, first/last offset);
 * - a batch equal (same epoch, same first and last sequence) to one of those 5
 *   is a duplicate: it is acknowledged with the ORIGINAL offsets, not appended;
 * - an older epoch is rejected (INVALID_PRODUCER_EPOCH);
 * - a newer epoch must start at sequence 0, unless the producer is unknown;
 * - within an epoch, the first sequence must follow the last one, wrapping
 *   from 2^31-1 to 0 (OUT_OF_ORDER_SEQUENCE_NUMBER otherwise);
 * - a producer with no state (new, or expired by retention) may start at any
 *   sequence, as Kafka accepts.
 *
 * The state can always be rebuilt from the partition log (`record` the batch
 * headers in offset order), so it never needs its own durable file for
 * correctness. To avoid reading the whole log at every start, the replica
 * saves `entries()` in a snapshot (ProducerSnapshot.ts) and rebuilds with
 * `restore` plus a replay of the batches after the snapshot.
 * This module is pure: no Effects, no I/O.
 */

import { NO_PRODUCER_EPOCH, NO_PRODUCER_ID } from "../protocol/recordBatch.js"

export const MAX_SEQUENCE = 2 ** 31 - 1
/** Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN. */
export const BATCHES_TO_RETAIN = 5

export interface BatchMeta {
  readonly firstSeq: number
  readonly lastSeq: number
  readonly firstOffset: bigint
  readonly lastOffset: bigint
  readonly maxTimestamp: bigint
}

export interface ProducerEntry {
  epoch: number
  /** Oldest first, at most BATCHES_TO_RETAIN. */
  batches: Array<BatchMeta>
  lastTimestamp: bigint
}

/** The producer fields of a batch header. */
export interface ProducerBatch {
  readonly producerId: bigint
  readonly producerEpoch: number
  readonly baseSequence: number
  /** Number of records minus one (the batch header's lastOffsetDelta). */
  readonly lastOffsetDelta: number
  readonly maxTimestamp: bigint
}

export type CheckResult =
  | { readonly _tag: "Append" }
  | { readonly _tag: "Duplicate"; readonly firstOffset: bigint; readonly lastOffset: bigint; readonly maxTimestamp: bigint }
  | { readonly _tag: "InvalidProducerEpoch"; readonly message: string }
  | { readonly _tag: "OutOfOrderSequence"; readonly message: string }

const APPEND: CheckResult = { _tag: "Append" }

/** Sequence of the last record of a batch, with wrap-around. */
export const lastSequence = (baseSequence: number, lastOffsetDelta: number): number => {
  const s = baseSequence + lastOffsetDelta
  return s > MAX_SEQUENCE ? s - MAX_SEQUENCE - 1 : s
}

const inSequence = (lastSeq: number, nextSeq: number): boolean =>
  nextSeq === lastSeq + 1 || (nextSeq === 0 && lastSeq === MAX_SEQUENCE)

export class ProducerStateTable {
  private readonly producers = new Map<bigint, ProducerEntry>()

  get size(): number {
    return this.producers.size
  }

  /** Decides what to do with a batch, without changing state. */
  check(b: ProducerBatch): CheckResult {
    if (b.producerId === NO_PRODUCER_ID) return APPEND
    const entry = this.producers.get(b.producerId)
    const firstSeq = b.baseSequence
    const lastSeq = lastSequence(firstSeq, b.lastOffsetDelta)
    if (entry === undefined) return APPEND
    if (b.producerEpoch < entry.epoch) {
      return {
        _tag: "InvalidProducerEpoch",
        message: `Epoch of producer ${b.producerId} is ${b.producerEpoch}, which is smaller than the last seen epoch ${entry.epoch}`
      }
    }
    if (b.producerEpoch > entry.epoch) {
      return firstSeq === 0 || entry.epoch === NO_PRODUCER_EPOCH
        ? APPEND
        : {
            _tag: "OutOfOrderSequence",
            message: `Invalid sequence number for new epoch of producer ${b.producerId} at epoch ${b.producerEpoch}: ${firstSeq} (expected 0)`
          }
    }
    for (const d of entry.batches) {
      if (d.firstSeq === firstSeq && d.lastSeq === lastSeq) {
        return { _tag: "Duplicate", firstOffset: d.firstOffset, lastOffset: d.lastOffset, maxTimestamp: d.maxTimestamp }
      }
    }
    const last = entry.batches[entry.batches.length - 1]
    if (last === undefined || inSequence(last.lastSeq, firstSeq)) return APPEND
    return {
      _tag: "OutOfOrderSequence",
      message: `Out of order sequence number for producer ${b.producerId} at offset ?: ${firstSeq} (incoming seq. number), ${last.lastSeq} (current end sequence number)`
    }
  }

  /** Records an appended batch at its assigned base offset (also how the state is rebuilt from the log, in offset order). */
  record(b: ProducerBatch, baseOffset: bigint): void {
    if (b.producerId === NO_PRODUCER_ID) return
    let entry = this.producers.get(b.producerId)
    if (entry === undefined || b.producerEpoch !== entry.epoch) {
      entry = { epoch: b.producerEpoch, batches: [], lastTimestamp: b.maxTimestamp }
      this.producers.set(b.producerId, entry)
    }
    entry.batches.push({
      firstSeq: b.baseSequence,
      lastSeq: lastSequence(b.baseSequence, b.lastOffsetDelta),
      firstOffset: baseOffset,
      lastOffset: baseOffset + BigInt(b.lastOffsetDelta),
      maxTimestamp: b.maxTimestamp
    })
    if (entry.batches.length > BATCHES_TO_RETAIN) entry.batches.shift()
    entry.lastTimestamp = b.maxTimestamp
  }

  /** Forgets producers whose last batch lies entirely before the log start (retention, DeleteRecords). */
  truncateBefore(logStartOffset: bigint): void {
    for (const [pid, e] of this.producers) {
      const last = e.batches[e.batches.length - 1]
      if (last !== undefined && last.lastOffset < logStartOffset) this.producers.delete(pid)
    }
  }

  /** Drops everything (the log was truncated above these batches; replay again). */
  clear(): void {
    this.producers.clear()
  }

  /** Every producer's state, for a snapshot (live objects: encode them before the next append). */
  entries(): IterableIterator<[bigint, ProducerEntry]> {
    return this.producers.entries()
  }

  /** Sets a producer's state from a snapshot (batches oldest first; at most BATCHES_TO_RETAIN kept). */
  restore(producerId: bigint, entry: ProducerEntry): void {
    const batches = entry.batches.slice(-BATCHES_TO_RETAIN)
    if (batches.length === 0) return
    this.producers.set(producerId, { epoch: entry.epoch, batches, lastTimestamp: entry.lastTimestamp })
  }

  /** Epoch and last sequence of a producer, for tests and DescribeProducers. */
  describe(producerId: bigint): { epoch: number; lastSequence: number; lastOffset: bigint } | undefined {
    const e = this.producers.get(producerId)
    const last = e?.batches[e.batches.length - 1]
    return e === undefined || last === undefined
      ? undefined
      : { epoch: e.epoch, lastSequence: last.lastSeq, lastOffset: last.lastOffset }
  }
}
