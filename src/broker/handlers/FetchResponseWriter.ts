/**
 * The Fetch response (v4-v17), header included, written as a list of chunks
 * so that record batches go to the socket as they came from the log: no
 * `Buffer.concat` per partition and no copy into one response buffer.
 *
 * Every field except the record bytes goes into one buffer, sliced at the
 * places where a partition's batches follow; the batches themselves are
 * chunks of their own. The bytes are exactly those of the generated codec's
 * `encodeResponse(1, v, …)` for the fields this broker sets (checked field by
 * field in test/broker/fetch-sessions.test.ts): aborted transactions are
 * always null, `currentLeader`, `snapshotId` and `nodeEndpoints` are never
 * set, `divergingEpoch` is (tag 0, v12+). Like the generated codec it rejects
 * a session id before v7 and a preferred read replica before v11, and drops
 * the error code before v7 and a diverging epoch before v12.
 */
import { KafkaEncodeError } from "../../protocol/errors.js"
import * as W from "../../protocol/wire.js"

export interface FetchPartitionOut {
  readonly partitionIndex: number
  readonly errorCode: number
  readonly highWatermark: bigint
  readonly lastStableOffset: bigint
  readonly logStartOffset: bigint
  /** Whole record batches, in order (not copied). */
  readonly records: ReadonlyArray<Buffer>
  readonly recordsBytes: number
  readonly divergingEpoch?: { readonly epoch: number; readonly endOffset: bigint }
  readonly preferredReadReplica: number
}

export interface FetchTopicOut {
  readonly topic: string
  readonly topicId: string
  readonly partitions: ReadonlyArray<FetchPartitionOut>
}

export interface FetchResponseOut {
  readonly throttleTimeMs: number
  readonly errorCode: number
  readonly sessionId: number
  readonly responses: ReadonlyArray<FetchTopicOut>
}

const MIN_VERSION = 4
const MAX_VERSION = 17
const FLEXIBLE = 12
const TOPIC_IDS = 13

/** Size of a partition's fixed fields, without the records length prefix and bytes. */
const partitionFixed = (v: number, p: FetchPartitionOut): number => {
  // index, error, high watermark, last stable offset (v4+), log start offset (v5+)
  let n = 4 + 2 + 8 + 8 + (v >= 5 ? 8 : 0)
  // aborted transactions: null
  n += v >= FLEXIBLE ? 1 : 4
  if (v >= 11) n += 4
  n += v >= FLEXIBLE ? W.uvSize(p.recordsBytes + 1) : 4
  if (v >= FLEXIBLE) {
    // tagged fields: count, then divergingEpoch (tag 0, size 13: epoch, end offset, no tags)
    n += 1
    if (isDiverging(p)) n += 1 + 1 + 13
  }
  return n
}

const isDiverging = (p: FetchPartitionOut): boolean =>
  p.divergingEpoch !== undefined && (p.divergingEpoch.epoch !== -1 || p.divergingEpoch.endOffset !== -1n)

/**
 * The response frame (no size prefix) as chunks: for the fields, views into
 * one buffer; for records, the batch buffers themselves.
 */
export const encodeFetchResponse = (
  version: number,
  correlationId: number,
  r: FetchResponseOut
): { readonly chunks: Array<Buffer>; readonly size: number } => {
  if (version < MIN_VERSION || version > MAX_VERSION) {
    throw new KafkaEncodeError({ api: "FetchResponse", version, field: "", reason: `unsupported version (valid ${MIN_VERSION}-${MAX_VERSION})` })
  }
  const v = version
  const flexible = v >= FLEXIBLE
  // The generated codec's rules for fields a version lacks: these two may not be dropped silently.
  if (v < 7 && r.sessionId !== 0) W.encFail("sessionId", "non-default value for a field this version does not have")
  const lens: Array<number> = []
  // Size pass (fields only; records are counted separately).
  let n = 4 + (flexible ? 1 : 0) // header: correlation id, tagged fields (v1 header)
  n += 4 // throttle time
  if (v >= 7) n += 2 + 4
  n += flexible ? W.uvSize(r.responses.length + 1) : 4
  let recordBytes = 0
  for (const t of r.responses) {
    if (v >= TOPIC_IDS) n += 16
    else n += W.sStr(t.topic, lens, flexible, false, "topic")
    n += flexible ? W.uvSize(t.partitions.length + 1) : 4
    for (const p of t.partitions) {
      if (v < 11 && p.preferredReadReplica !== -1) {
        W.encFail("preferredReadReplica", "non-default value for a field this version does not have")
      }
      n += partitionFixed(v, p)
      recordBytes += p.recordsBytes
    }
    if (flexible) n += 1
  }
  if (flexible) n += 1
  const w: W.Writer = { buf: Buffer.allocUnsafe(n), pos: 0, lens, li: 0 }
  const chunks: Array<Buffer> = []
  let cut = 0
  // Write pass.
  W.wInt32(w, correlationId, "correlationId")
  if (flexible) W.wUvarint(w, 0)
  W.wInt32(w, r.throttleTimeMs, "throttleTimeMs")
  if (v >= 7) {
    W.wInt16(w, r.errorCode, "errorCode")
    W.wInt32(w, r.sessionId, "sessionId")
  }
  W.wArrLen(w, r.responses.length, flexible)
  for (const t of r.responses) {
    if (v >= TOPIC_IDS) W.wUuid(w, t.topicId, "topicId")
    else W.wStr(w, t.topic, flexible)
    W.wArrLen(w, t.partitions.length, flexible)
    for (const p of t.partitions) {
      W.wInt32(w, p.partitionIndex, "partitionIndex")
      W.wInt16(w, p.errorCode, "errorCode")
      W.wInt64(w, p.highWatermark, "highWatermark")
      W.wInt64(w, p.lastStableOffset, "lastStableOffset")
      if (v >= 5) W.wInt64(w, p.logStartOffset, "logStartOffset")
      W.wArrLen(w, -1, flexible)
      if (v >= 11) W.wInt32(w, p.preferredReadReplica, "preferredReadReplica")
      if (flexible) W.wUvarint(w, p.recordsBytes + 1)
      else W.wInt32(w, p.recordsBytes, "records")
      if (p.recordsBytes > 0) {
        chunks.push(w.buf.subarray(cut, w.pos))
        cut = w.pos
        for (const b of p.records) chunks.push(b)
      }
      if (flexible) {
        if (isDiverging(p)) {
          W.wUvarint(w, 1)
          W.wUvarint(w, 0)
          W.wUvarint(w, 13)
          W.wInt32(w, p.divergingEpoch!.epoch, "epoch")
          W.wInt64(w, p.divergingEpoch!.endOffset, "endOffset")
          W.wUvarint(w, 0)
        } else W.wUvarint(w, 0)
      }
    }
    if (flexible) W.wUvarint(w, 0)
  }
  if (flexible) W.wUvarint(w, 0)
  if (w.pos !== n) {
    throw new KafkaEncodeError({ api: "FetchResponse", version, field: "", reason: `internal error: wrote ${w.pos} bytes, sized ${n}` })
  }
  if (cut < n) chunks.push(w.buf.subarray(cut, n))
  return { chunks, size: n + recordBytes }
}
