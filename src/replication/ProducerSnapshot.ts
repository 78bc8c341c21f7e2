/**
 * Producer-state snapshots of one partition (Kafka's `<offset>.snapshot`):
 * the idempotent producer table and the leader-epoch history as of a log
 * offset, so that opening a replica replays only the batches after it
 * instead of the whole log. Format in docs/producer-state.md.
 *
 * Plain synchronous functions over Buffer, and a tiny file store over the
 * storage engine's FileIO (the files live next to the partition's segments).
 */
import { crc32c } from "@node-rs/crc32"
import * as path from "node:path"
import type { FileIO } from "../storage/FileIO.js"
import { segmentName } from "../storage/Segment.js"
import { BATCHES_TO_RETAIN, type BatchMeta, type ProducerEntry } from "./ProducerState.js"

export const SNAPSHOT_VERSION = 1
/** Snapshot files kept per partition. */
export const SNAPSHOTS_TO_KEEP = 2

/** A leader epoch and the first offset written in it. */
export interface EpochEntry {
  readonly epoch: number
  readonly startOffset: number
}

export interface ProducerSnapshot {
  /** Every batch with an offset below this one is covered (the log end offset when taken). */
  readonly offset: number
  readonly epochs: ReadonlyArray<EpochEntry>
  readonly producers: ReadonlyArray<readonly [bigint, ProducerEntry]>
}

const HEADER = 2 + 4 + 8 + 4
const EPOCH_SIZE = 4 + 8
const PRODUCER_SIZE = 8 + 2 + 8 + 1
const BATCH_SIZE = 4 + 4 + 8 + 4 + 8

/** Encodes a snapshot; copies everything out of `producers` (live table entries are fine). */
export const encodeSnapshot = (
  offset: number,
  epochs: ReadonlyArray<EpochEntry>,
  producers: Iterable<readonly [bigint, Readonly<Omit<ProducerEntry, "batches">> & { readonly batches: ReadonlyArray<BatchMeta> }]>
): Buffer => {
  const list = [...producers].filter(([, e]) => e.batches.length > 0)
  let size = HEADER + epochs.length * EPOCH_SIZE + 4
  for (const [, e] of list) size += PRODUCER_SIZE + Math.min(e.batches.length, BATCHES_TO_RETAIN) * BATCH_SIZE
  const buf = Buffer.alloc(size)
  buf.writeUInt16BE(SNAPSHOT_VERSION, 0)
  let at = 6
  buf.writeBigInt64BE(BigInt(offset), at)
  at += 8
  buf.writeUInt32BE(epochs.length, at)
  at += 4
  for (const e of epochs) {
    buf.writeInt32BE(e.epoch, at)
    buf.writeBigInt64BE(BigInt(e.startOffset), at + 4)
    at += EPOCH_SIZE
  }
  buf.writeUInt32BE(list.length, at)
  at += 4
  for (const [pid, e] of list) {
    const batches = e.batches.slice(-BATCHES_TO_RETAIN)
    buf.writeBigInt64BE(pid, at)
    buf.writeInt16BE(e.epoch, at + 8)
    buf.writeBigInt64BE(e.lastTimestamp, at + 10)
    buf.writeUInt8(batches.length, at + 18)
    at += PRODUCER_SIZE
    for (const b of batches) {
      buf.writeInt32BE(b.firstSeq, at)
      buf.writeInt32BE(b.lastSeq, at + 4)
      buf.writeBigInt64BE(b.firstOffset, at + 8)
      buf.writeUInt32BE(Number(b.lastOffset - b.firstOffset), at + 16)
      buf.writeBigInt64BE(b.maxTimestamp, at + 20)
      at += BATCH_SIZE
    }
  }
  buf.writeUInt32BE(crc32c(buf.subarray(6)), 2)
  return buf
}

/** Decodes a snapshot; undefined if it is truncated, corrupt (CRC) or of another version. */
export const decodeSnapshot = (buf: Buffer): ProducerSnapshot | undefined => {
  if (buf.length < HEADER + 4) return undefined
  if (buf.readUInt16BE(0) !== SNAPSHOT_VERSION) return undefined
  if (buf.readUInt32BE(2) !== crc32c(buf.subarray(6))) return undefined
  try {
    let at = 6
    const offset = Number(buf.readBigInt64BE(at))
    at += 8
    const ne = buf.readUInt32BE(at)
    at += 4
    if (!Number.isSafeInteger(offset) || offset < 0 || at + ne * EPOCH_SIZE + 4 > buf.length) return undefined
    const epochs: Array<EpochEntry> = []
    for (let i = 0; i < ne; i++) {
      const epoch = buf.readInt32BE(at)
      const startOffset = Number(buf.readBigInt64BE(at + 4))
      const prev = epochs[epochs.length - 1]
      if (startOffset < 0 || startOffset > offset || (prev && (epoch <= prev.epoch || startOffset < prev.startOffset))) {
        return undefined
      }
      epochs.push({ epoch, startOffset })
      at += EPOCH_SIZE
    }
    const np = buf.readUInt32BE(at)
    at += 4
    const producers: Array<readonly [bigint, ProducerEntry]> = []
    for (let i = 0; i < np; i++) {
      const pid = buf.readBigInt64BE(at)
      const epoch = buf.readInt16BE(at + 8)
      const lastTimestamp = buf.readBigInt64BE(at + 10)
      const nb = buf.readUInt8(at + 18)
      at += PRODUCER_SIZE
      if (nb === 0 || nb > BATCHES_TO_RETAIN) return undefined
      const batches: Array<BatchMeta> = []
      for (let j = 0; j < nb; j++) {
        const firstOffset = buf.readBigInt64BE(at + 8)
        const lastOffset = firstOffset + BigInt(buf.readUInt32BE(at + 16))
        if (firstOffset < 0n || lastOffset >= BigInt(offset)) return undefined
        batches.push({
          firstSeq: buf.readInt32BE(at),
          lastSeq: buf.readInt32BE(at + 4),
          firstOffset,
          lastOffset,
          maxTimestamp: buf.readBigInt64BE(at + 20)
        })
        at += BATCH_SIZE
      }
      producers.push([pid, { epoch, batches, lastTimestamp }])
    }
    return at === buf.length ? { offset, epochs, producers } : undefined
  } catch {
    return undefined
  }
}

/** Snapshot files of one partition, next to its segments. All calls are synchronous and throw on I/O errors. */
export interface SnapshotStore {
  /** Offsets of the snapshot files present, ascending. */
  readonly list: () => ReadonlyArray<number>
  readonly read: (offset: number) => Buffer | undefined
  /** Writes `<offset>.snapshot` durably (temp file, fsync, rename), then keeps only the newest SNAPSHOTS_TO_KEEP. */
  readonly write: (offset: number, data: Buffer) => void
  readonly remove: (offset: number) => void
}

const SUFFIX = ".snapshot"

export const snapshotFileName = (offset: number): string => `${segmentName(offset)}${SUFFIX}`

export const parseSnapshotFileName = (file: string): number | undefined => {
  const m = /^(\d{20})\.snapshot$/.exec(file)
  return m ? Number(m[1]) : undefined
}

export const snapshotStore = (io: FileIO, dir: string): SnapshotStore => {
  const file = (offset: number) => path.join(dir, snapshotFileName(offset))
  const list = (): ReadonlyArray<number> => {
    const out: Array<number> = []
    for (const f of io.readdir(dir)) {
      const o = parseSnapshotFileName(f)
      if (o !== undefined) out.push(o)
    }
    return out.sort((a, b) => a - b)
  }
  return {
    list,
    read: (offset) => io.readFile(file(offset)),
    write: (offset, data) => {
      io.writeFileDurable(file(offset), data)
      const all = list()
      for (let i = 0; i < all.length - SNAPSHOTS_TO_KEEP; i++) io.unlink(file(all[i]!))
    },
    remove: (offset) => io.unlink(file(offset))
  }
}
