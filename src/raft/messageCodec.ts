/**
 * Compact binary codec for Raft core messages (TCP transport, file log store).
 *
 * All functions are plain synchronous code over `Buffer`/`Uint8Array`; decoding
 * is bounds-checked and never throws: it returns `Either<_, RaftCodecError>`.
 * Decoded byte payloads are zero-copy views (`subarray`) into the input.
 *
 * Integers are LEB128 varints (unsigned for terms/indexes/lengths, zig-zag for
 * node ids so that any safe integer round-trips). Every decoded integer is
 * checked to be a safe integer.
 *
 * Transport frame (see docs/raft-services.md):
 *
 *   u32be  length of the rest of the frame
 *   u8     kind        1 = Messages, 2 = Hello
 *   u8     flags       bit0: traceparent present
 *   [u8 len, ascii]    traceparent (W3C), when flagged
 *   Messages:  svarint from, svarint to, uvarint count, count × message
 *   Hello:     svarint nodeId, string clusterId
 *
 * A message is: u8 type code (`messageTypes` position), string group,
 * uvarint term, then the type's body. `from`/`to` are factored into the frame
 * because a frame carries messages of one node pair only. The engine's
 * quiescence messages (`MsgQuiesce`, `MsgWake`, `MsgLiveness`) travel in the
 * same frames as the Raft messages.
 */
import { Data, Either } from "effect"
import type {
  ConfState,
  Entry,
  GroupId,
  HardState,
  Message,
  MessageType,
  NodeId,
  ProposalEntry,
  Snapshot,
  SnapshotMetadata
} from "./core/types.js"
import { EntryTypeCode, entryTypeFromCode, messageTypes } from "./core/types.js"

/** A malformed or truncated encoding. */
export class RaftCodecError extends Data.TaggedError("RaftCodecError")<{
  readonly reason: string
  readonly offset: number
}> {
  override get message(): string {
    return `raft codec: ${this.reason} at offset ${this.offset}`
  }
}

/** Largest frame a decoder accepts by default (64 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024

/** Largest magnitude of a zig-zag encoded (node id) integer: 2^51. */
export const MAX_SIGNED = 2 ** 51

export const FRAME_MESSAGES = 1
export const FRAME_HELLO = 2

// ---------------------------------------------------------------------------
// Writer / Reader

/** A growable output buffer. */
export class Writer {
  buf: Buffer
  pos = 0
  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial)
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }
  u8(v: number): void {
    this.ensure(1)
    this.buf[this.pos++] = v & 0xff
  }
  u32(v: number): void {
    this.ensure(4)
    this.buf.writeUInt32BE(v >>> 0, this.pos)
    this.pos += 4
  }
  uvarint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`raft codec: not a non-negative safe integer: ${n}`)
    this.ensure(8)
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    this.buf[this.pos++] = n
  }
  svarint(n: number): void {
    if (!Number.isSafeInteger(n) || Math.abs(n) > MAX_SIGNED) throw new RangeError(`raft codec: node id out of range: ${n}`)
    // zig-zag without 32-bit operators; |n| <= 2^51 keeps 2|n|+1 exact as a double
    this.uvarintUnchecked(n >= 0 ? n * 2 : -n * 2 - 1)
  }
  private uvarintUnchecked(n: number): void {
    this.ensure(9)
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    this.buf[this.pos++] = n
  }
  bytes(b: Uint8Array): void {
    this.uvarint(b.length)
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }
  string(s: string): void {
    const len = Buffer.byteLength(s, "utf8")
    this.uvarint(len)
    this.ensure(len)
    this.pos += this.buf.write(s, this.pos, len, "utf8")
  }
  /** A view of what was written (valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos)
  }
  /** A copy of what was written. */
  finish(): Buffer {
    return Buffer.from(this.view())
  }
}

class DecodeFailure {
  constructor(
    readonly reason: string,
    readonly offset: number
  ) {}
}

/** A bounds-checked cursor; methods throw `DecodeFailure` (caught at the API edge). */
export class Reader {
  pos: number
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length
  ) {
    this.pos = start
  }
  fail(reason: string): never {
    throw new DecodeFailure(reason, this.pos)
  }
  remaining(): number {
    return this.end - this.pos
  }
  u8(): number {
    if (this.pos >= this.end) this.fail("unexpected end of input")
    return this.buf[this.pos++]!
  }
  bool(): boolean {
    const v = this.u8()
    if (v > 1) this.fail(`invalid boolean ${v}`)
    return v === 1
  }
  uvarint(): number {
    let result = 0
    let mul = 1
    for (let i = 0; i < 8; i++) {
      const b = this.u8()
      result += (b & 0x7f) * mul
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) this.fail("varint exceeds safe integer range")
        return result
      }
      mul *= 0x80
    }
    return this.fail("varint too long")
  }
  svarint(): number {
    let result = 0
    let mul = 1
    for (let i = 0; i < 9; i++) {
      const b = this.u8()
      result += (b & 0x7f) * mul
      if ((b & 0x80) === 0) {
        if (result > MAX_SIGNED * 2 + 1) this.fail("signed varint out of range")
        const v = result % 2 === 0 ? result / 2 : -(result + 1) / 2
        return v
      }
      mul *= 0x80
    }
    return this.fail("varint too long")
  }
  bytes(): Uint8Array {
    const len = this.uvarint()
    if (len > this.end - this.pos) this.fail(`byte string of ${len} exceeds input`)
    const out = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }
  string(): string {
    const b = this.bytes()
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8")
  }
  count(minBytesEach: number): number {
    const n = this.uvarint()
    if (n * minBytesEach > this.end - this.pos) this.fail(`count ${n} exceeds input`)
    return n
  }
}

const catchDecode = <A>(f: () => A): Either.Either<A, RaftCodecError> => {
  try {
    return Either.right(f())
  } catch (e) {
    if (e instanceof DecodeFailure) return Either.left(new RaftCodecError({ reason: e.reason, offset: e.offset }))
    throw e
  }
}

// ---------------------------------------------------------------------------
// Pieces

const typeCode = new Map<MessageType, number>(messageTypes.map((t, i) => [t, i]))

export const writeEntry = (w: Writer, e: Entry): void => {
  w.u8(EntryTypeCode[e.type])
  w.uvarint(e.term)
  w.uvarint(e.index)
  w.bytes(e.data)
}

export const readEntry = (r: Reader): Entry => {
  const code = r.u8()
  const type = entryTypeFromCode(code)
  if (type === undefined) r.fail(`unknown entry type ${code}`)
  const term = r.uvarint()
  const index = r.uvarint()
  const data = r.bytes()
  return { term, index, type, data }
}

/**
 * Entries of a MsgApp. Indexes are dense in practice (mode 0: only the first
 * index is written); mode 1 writes every index, so any list round-trips.
 */
const writeEntryRun = (w: Writer, entries: ReadonlyArray<Entry>): void => {
  w.uvarint(entries.length)
  if (entries.length === 0) return
  let dense = true
  for (let i = 1; i < entries.length && dense; i++) dense = entries[i]!.index === entries[0]!.index + i
  w.u8(dense ? 0 : 1)
  if (dense) w.uvarint(entries[0]!.index)
  for (const e of entries) {
    w.u8(EntryTypeCode[e.type])
    w.uvarint(e.term)
    if (!dense) w.uvarint(e.index)
    w.bytes(e.data)
  }
}

const readEntryRun = (r: Reader): Array<Entry> => {
  const n = r.count(3)
  const out = new Array<Entry>(n)
  if (n === 0) return out
  const mode = r.u8()
  if (mode > 1) r.fail(`unknown entry run mode ${mode}`)
  const dense = mode === 0
  let index = dense ? r.uvarint() : 0
  for (let i = 0; i < n; i++) {
    const code = r.u8()
    const type = entryTypeFromCode(code)
    if (type === undefined) r.fail(`unknown entry type ${code}`)
    const term = r.uvarint()
    if (!dense) index = r.uvarint()
    else if (i > 0) index++
    if (!Number.isSafeInteger(index)) r.fail("entry index out of range")
    const data = r.bytes()
    out[i] = { term, index, type, data }
  }
  return out
}

const writeNodeList = (w: Writer, ids: ReadonlyArray<NodeId>): void => {
  w.uvarint(ids.length)
  for (const id of ids) w.svarint(id)
}
const readNodeList = (r: Reader): Array<NodeId> => {
  const n = r.count(1)
  const out = new Array<NodeId>(n)
  for (let i = 0; i < n; i++) out[i] = r.svarint()
  return out
}

export const writeConfState = (w: Writer, cs: ConfState): void => {
  writeNodeList(w, cs.voters)
  writeNodeList(w, cs.learners)
}
export const readConfState = (r: Reader): ConfState => ({ voters: readNodeList(r), learners: readNodeList(r) })

export const writeSnapshotMetadata = (w: Writer, m: SnapshotMetadata): void => {
  w.uvarint(m.index)
  w.uvarint(m.term)
  writeConfState(w, m.confState)
}
export const readSnapshotMetadata = (r: Reader): SnapshotMetadata => {
  const index = r.uvarint()
  const term = r.uvarint()
  return { index, term, confState: readConfState(r) }
}

export const writeHardState = (w: Writer, hs: HardState): void => {
  w.uvarint(hs.term)
  // vote: 0 = none, else zig-zag(id) + 1
  if (hs.vote === null) w.uvarint(0)
  else w.uvarint((hs.vote >= 0 ? hs.vote * 2 : -hs.vote * 2 - 1) + 1)
  w.uvarint(hs.commit)
}
export const readHardState = (r: Reader): HardState => {
  const term = r.uvarint()
  const v = r.uvarint()
  const commit = r.uvarint()
  if (v === 0) return { term, vote: null, commit }
  const z = v - 1
  return { term, vote: z % 2 === 0 ? z / 2 : -(z + 1) / 2, commit }
}

// ---------------------------------------------------------------------------
// Messages

/** Writes one message (without from/to, which belong to the frame). */
export const writeMessage = (w: Writer, m: Message): void => {
  w.u8(typeCode.get(m.type)!)
  w.string(m.group)
  w.uvarint(m.term)
  switch (m.type) {
    case "MsgApp":
      w.uvarint(m.index)
      w.uvarint(m.logTerm)
      w.uvarint(m.commit)
      writeEntryRun(w, m.entries)
      return
    case "MsgAppResp":
      w.uvarint(m.index)
      w.u8(m.reject ? 1 : 0)
      w.uvarint(m.rejectHint)
      w.uvarint(m.logTerm)
      return
    case "MsgVote":
    case "MsgPreVote":
      w.uvarint(m.index)
      w.uvarint(m.logTerm)
      w.u8(m.transfer ? 1 : 0)
      return
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      w.u8(m.reject ? 1 : 0)
      return
    case "MsgHeartbeat":
      w.uvarint(m.commit)
      w.uvarint(m.context)
      return
    case "MsgHeartbeatResp":
      w.uvarint(m.context)
      return
    case "MsgSnap":
      writeSnapshotMetadata(w, m.snapshot)
      w.uvarint(m.offset)
      w.uvarint(m.totalBytes)
      w.u8(m.done ? 1 : 0)
      w.bytes(m.data)
      return
    case "MsgSnapResp":
      w.uvarint(m.index)
      w.uvarint(m.snapTerm)
      w.uvarint(m.offset)
      w.u8(m.reject ? 1 : 0)
      return
    case "MsgTimeoutNow":
      return
    case "MsgTransferLeader":
      w.svarint(m.transferee)
      return
    case "MsgReadIndex":
      w.string(m.context)
      return
    case "MsgReadIndexResp":
      w.string(m.context)
      w.uvarint(m.index)
      return
    case "MsgProp":
      w.uvarint(m.entries.length)
      for (const e of m.entries) {
        w.u8(EntryTypeCode[e.type])
        w.bytes(e.data)
      }
      return
    case "MsgQuiesce":
      w.uvarint(m.index)
      w.uvarint(m.logTerm)
      return
    case "MsgWake":
      return
    case "MsgLiveness":
      w.uvarint(m.epoch)
      return
  }
}

export const readMessage = (r: Reader, from: NodeId, to: NodeId): Message => {
  const code = r.u8()
  const type = messageTypes[code]
  if (type === undefined) r.fail(`unknown message type ${code}`)
  const group: GroupId = r.string()
  const term = r.uvarint()
  const h = { group, from, to, term }
  switch (type) {
    case "MsgApp": {
      const index = r.uvarint()
      const logTerm = r.uvarint()
      const commit = r.uvarint()
      return { ...h, type, index, logTerm, commit, entries: readEntryRun(r) }
    }
    case "MsgAppResp": {
      const index = r.uvarint()
      const reject = r.bool()
      const rejectHint = r.uvarint()
      return { ...h, type, index, reject, rejectHint, logTerm: r.uvarint() }
    }
    case "MsgVote":
    case "MsgPreVote": {
      const index = r.uvarint()
      const logTerm = r.uvarint()
      return { ...h, type, index, logTerm, transfer: r.bool() }
    }
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      return { ...h, type, reject: r.bool() }
    case "MsgHeartbeat": {
      const commit = r.uvarint()
      return { ...h, type, commit, context: r.uvarint() }
    }
    case "MsgHeartbeatResp":
      return { ...h, type, context: r.uvarint() }
    case "MsgSnap": {
      const snapshot = readSnapshotMetadata(r)
      const offset = r.uvarint()
      const totalBytes = r.uvarint()
      const done = r.bool()
      return { ...h, type, snapshot, offset, totalBytes, done, data: r.bytes() }
    }
    case "MsgSnapResp": {
      const index = r.uvarint()
      const snapTerm = r.uvarint()
      const offset = r.uvarint()
      return { ...h, type, index, snapTerm, offset, reject: r.bool() }
    }
    case "MsgTimeoutNow":
      return { ...h, type }
    case "MsgTransferLeader":
      return { ...h, type, transferee: r.svarint() }
    case "MsgReadIndex":
      return { ...h, type, context: r.string() }
    case "MsgReadIndexResp": {
      const context = r.string()
      return { ...h, type, context, index: r.uvarint() }
    }
    case "MsgProp": {
      const n = r.count(2)
      const entries = new Array<ProposalEntry>(n)
      for (let i = 0; i < n; i++) {
        const c = r.u8()
        const et = entryTypeFromCode(c)
        if (et === undefined) r.fail(`unknown entry type ${c}`)
        entries[i] = { type: et, data: r.bytes() }
      }
      return { ...h, type, entries }
    }
    case "MsgQuiesce": {
      const index = r.uvarint()
      return { ...h, type, index, logTerm: r.uvarint() }
    }
    case "MsgWake":
      return { ...h, type }
    case "MsgLiveness":
      return { ...h, type, epoch: r.uvarint() }
  }
}

// ---------------------------------------------------------------------------
// Frames

export interface MessagesFrame {
  readonly kind: "Messages"
  readonly from: NodeId
  readonly to: NodeId
  readonly traceparent: string | undefined
  readonly messages: ReadonlyArray<Message>
}

export interface HelloFrame {
  readonly kind: "Hello"
  readonly nodeId: NodeId
  readonly clusterId: string
  readonly traceparent: string | undefined
}

export type Frame = MessagesFrame | HelloFrame

const writeHeader = (w: Writer, kind: number, traceparent: string | undefined): number => {
  const start = w.pos
  w.u32(0) // length placeholder
  w.u8(kind)
  if (traceparent === undefined) {
    w.u8(0)
  } else {
    const len = Buffer.byteLength(traceparent, "latin1")
    if (len > 255) throw new RangeError("raft codec: traceparent longer than 255 bytes")
    w.u8(1)
    w.u8(len)
    w.ensure(len)
    w.pos += w.buf.write(traceparent, w.pos, len, "latin1")
  }
  return start
}

const patchLength = (w: Writer, start: number): void => {
  w.buf.writeUInt32BE(w.pos - start - 4, start)
}

/**
 * Appends a length-prefixed Messages frame to `w`. All messages must have the
 * given `from`/`to` (the transport groups by destination).
 */
export const writeMessagesFrame = (
  w: Writer,
  from: NodeId,
  to: NodeId,
  messages: ReadonlyArray<Message>,
  traceparent?: string
): void => {
  const start = writeHeader(w, FRAME_MESSAGES, traceparent)
  w.svarint(from)
  w.svarint(to)
  w.uvarint(messages.length)
  for (const m of messages) writeMessage(w, m)
  patchLength(w, start)
}

export const writeHelloFrame = (w: Writer, nodeId: NodeId, clusterId: string, traceparent?: string): void => {
  const start = writeHeader(w, FRAME_HELLO, traceparent)
  w.svarint(nodeId)
  w.string(clusterId)
  patchLength(w, start)
}

/** One Messages frame as a fresh Buffer (length prefix included). */
export const encodeMessagesFrame = (
  from: NodeId,
  to: NodeId,
  messages: ReadonlyArray<Message>,
  traceparent?: string
): Buffer => {
  const w = new Writer(64 + messages.length * 32)
  writeMessagesFrame(w, from, to, messages, traceparent)
  return w.finish()
}

export const encodeHelloFrame = (nodeId: NodeId, clusterId: string, traceparent?: string): Buffer => {
  const w = new Writer(64)
  writeHelloFrame(w, nodeId, clusterId, traceparent)
  return w.finish()
}

/** Decodes a frame body (the bytes after the u32 length prefix). */
export const decodeFrameBody = (body: Uint8Array): Either.Either<Frame, RaftCodecError> =>
  catchDecode(() => {
    const r = new Reader(body)
    const kind = r.u8()
    const flags = r.u8()
    if ((flags & ~1) !== 0) r.fail(`unknown frame flags ${flags}`)
    let traceparent: string | undefined
    if ((flags & 1) !== 0) {
      const len = r.u8()
      if (len > r.remaining()) r.fail("traceparent exceeds input")
      traceparent = Buffer.from(body.buffer, body.byteOffset + r.pos, len).toString("latin1")
      r.pos += len
    }
    let frame: Frame
    if (kind === FRAME_MESSAGES) {
      const from = r.svarint()
      const to = r.svarint()
      const n = r.count(3)
      const messages = new Array<Message>(n)
      for (let i = 0; i < n; i++) messages[i] = readMessage(r, from, to)
      frame = { kind: "Messages", from, to, traceparent, messages }
    } else if (kind === FRAME_HELLO) {
      const nodeId = r.svarint()
      frame = { kind: "Hello", nodeId, clusterId: r.string(), traceparent }
    } else {
      return r.fail(`unknown frame kind ${kind}`)
    }
    if (r.remaining() !== 0) r.fail(`${r.remaining()} trailing bytes in frame`)
    return frame
  })

/** Decodes exactly one length-prefixed frame. */
export const decodeFrame = (bytes: Uint8Array): Either.Either<Frame, RaftCodecError> => {
  if (bytes.length < 4) return Either.left(new RaftCodecError({ reason: "frame shorter than its length prefix", offset: 0 }))
  const len = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(0)
  if (len !== bytes.length - 4) {
    return Either.left(new RaftCodecError({ reason: `length prefix ${len} != body ${bytes.length - 4}`, offset: 0 }))
  }
  return decodeFrameBody(bytes.subarray(4))
}

/**
 * Incremental splitter for a byte stream of length-prefixed frames. Feed
 * socket chunks with `push`; complete frame bodies come out of `next()`.
 * A frame longer than `maxFrameBytes` is an error (the connection must close).
 */
export class FrameSplitter {
  private chunks: Array<Buffer> = []
  private buffered = 0
  constructor(readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  /** The next complete frame body, `undefined` if more bytes are needed, or an error. */
  next(): Buffer | undefined | RaftCodecError {
    if (this.buffered < 4) return undefined
    const head = this.peek(4)
    const len = head.readUInt32BE(0)
    if (len > this.maxFrameBytes) {
      return new RaftCodecError({ reason: `frame of ${len} bytes exceeds limit ${this.maxFrameBytes}`, offset: 0 })
    }
    if (this.buffered < 4 + len) return undefined
    this.consume(4)
    return this.consume(len)
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!
    if (first.length >= n) return first
    this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0]!
  }

  private consume(n: number): Buffer {
    const first = this.chunks[0]!
    if (first.length === n) {
      this.chunks.shift()
      this.buffered -= n
      return first
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n)
      this.buffered -= n
      return first.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    let off = 0
    while (off < n) {
      const c = this.chunks[0]!
      const take = Math.min(c.length, n - off)
      c.copy(out, off, 0, take)
      off += take
      if (take === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(take)
    }
    this.buffered -= n
    return out
  }
}

// ---------------------------------------------------------------------------
// Standalone records (log store persistence)

export const encodeEntries = (entries: ReadonlyArray<Entry>): Buffer => {
  const w = new Writer(16 + entries.length * 24)
  w.uvarint(entries.length)
  for (const e of entries) writeEntry(w, e)
  return w.finish()
}

export const decodeEntries = (bytes: Uint8Array): Either.Either<Array<Entry>, RaftCodecError> =>
  catchDecode(() => {
    const r = new Reader(bytes)
    const n = r.count(4)
    const out = new Array<Entry>(n)
    for (let i = 0; i < n; i++) out[i] = readEntry(r)
    if (r.remaining() !== 0) r.fail("trailing bytes")
    return out
  })

export const encodeSnapshot = (s: Snapshot): Buffer => {
  const w = new Writer(32 + s.data.length)
  writeSnapshotMetadata(w, s.metadata)
  w.bytes(s.data)
  return w.finish()
}

export const decodeSnapshot = (bytes: Uint8Array): Either.Either<Snapshot, RaftCodecError> =>
  catchDecode(() => {
    const r = new Reader(bytes)
    const metadata = readSnapshotMetadata(r)
    const data = r.bytes()
    if (r.remaining() !== 0) r.fail("trailing bytes")
    return { metadata, data }
  })

export const encodeHardState = (hs: HardState): Buffer => {
  const w = new Writer(24)
  writeHardState(w, hs)
  return w.finish()
}

export const decodeHardState = (bytes: Uint8Array): Either.Either<HardState, RaftCodecError> =>
  catchDecode(() => {
    const r = new Reader(bytes)
    const hs = readHardState(r)
    if (r.remaining() !== 0) r.fail("trailing bytes")
    return hs
  })
