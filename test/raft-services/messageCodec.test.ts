import { Either } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { Entry, EntryType, Message, Snapshot } from "../../src/raft/core/types.js"
import {
  decodeEntries,
  decodeFrame,
  decodeFrameBody,
  decodeHardState,
  decodeSnapshot,
  encodeEntries,
  encodeHelloFrame,
  encodeHardState,
  encodeMessagesFrame,
  encodeSnapshot,
  FrameSplitter,
  RaftCodecError
} from "../../src/raft/messageCodec.js"

const nat = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
const smallNat = fc.integer({ min: 0, max: 1_000_000 })
const nodeId = fc.integer({ min: -1000, max: 2 ** 31 })
const group = fc.string({ maxLength: 20, unit: "grapheme" })
const bytes = fc.uint8Array({ maxLength: 64 })
const entryType = fc.constantFrom<EntryType>("Normal", "ConfChange", "Noop")
const confState = fc.record({ voters: fc.array(nodeId, { maxLength: 5 }), learners: fc.array(nodeId, { maxLength: 3 }) })
const snapMeta = fc.record({ index: nat, term: nat, confState })

const denseEntries = fc
  .tuple(smallNat, fc.array(fc.record({ term: nat, type: entryType, data: bytes }), { maxLength: 8 }))
  .map(([first, es]) => es.map((e, i): Entry => ({ ...e, index: first + i })))
const anyEntries = fc.array(fc.record({ term: nat, index: nat, type: entryType, data: bytes }), { maxLength: 8 })

const message = (from: number, to: number): fc.Arbitrary<Message> => {
  const h = fc.record({ group, term: nat }).map((x) => ({ ...x, from, to }))
  return fc.oneof(
    fc.tuple(h, nat, nat, nat, fc.oneof(denseEntries, anyEntries)).map(([h, index, logTerm, commit, entries]) => ({
      ...h,
      type: "MsgApp" as const,
      index,
      logTerm,
      commit,
      entries
    })),
    fc.tuple(h, nat, fc.boolean(), nat, nat).map(([h, index, reject, rejectHint, logTerm]) => ({
      ...h,
      type: "MsgAppResp" as const,
      index,
      reject,
      rejectHint,
      logTerm
    })),
    fc.tuple(h, fc.constantFrom("MsgVote" as const, "MsgPreVote" as const), nat, nat, fc.boolean()).map(
      ([h, type, index, logTerm, transfer]) => ({ ...h, type, index, logTerm, transfer })
    ),
    fc.tuple(h, fc.constantFrom("MsgVoteResp" as const, "MsgPreVoteResp" as const), fc.boolean()).map(
      ([h, type, reject]) => ({ ...h, type, reject })
    ),
    fc.tuple(h, nat, nat).map(([h, commit, context]) => ({ ...h, type: "MsgHeartbeat" as const, commit, context })),
    fc.tuple(h, nat).map(([h, context]) => ({ ...h, type: "MsgHeartbeatResp" as const, context })),
    fc.tuple(h, snapMeta, nat, nat, bytes, fc.boolean()).map(([h, snapshot, offset, totalBytes, data, done]) => ({
      ...h,
      type: "MsgSnap" as const,
      snapshot,
      offset,
      totalBytes,
      data,
      done
    })),
    fc.tuple(h, nat, nat, nat, fc.boolean()).map(([h, index, snapTerm, offset, reject]) => ({
      ...h,
      type: "MsgSnapResp" as const,
      index,
      snapTerm,
      offset,
      reject
    })),
    h.map((h) => ({ ...h, type: "MsgTimeoutNow" as const })),
    fc.tuple(h, nodeId).map(([h, transferee]) => ({ ...h, type: "MsgTransferLeader" as const, transferee })),
    fc.tuple(h, group).map(([h, context]) => ({ ...h, type: "MsgReadIndex" as const, context })),
    fc.tuple(h, group, nat).map(([h, context, index]) => ({ ...h, type: "MsgReadIndexResp" as const, context, index })),
    fc
      .tuple(h, fc.array(fc.record({ type: entryType, data: bytes }), { maxLength: 4 }))
      .map(([h, entries]) => ({ ...h, type: "MsgProp" as const, entries }))
  )
}

/** Normalizes Uint8Array views to plain arrays for deep equality. */
const norm = (v: unknown): unknown =>
  v instanceof Uint8Array
    ? Array.from(v)
    : Array.isArray(v)
      ? v.map(norm)
      : v !== null && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]))
        : v

const frameArb = fc
  .tuple(nodeId, nodeId)
  .chain(([from, to]) =>
    fc.record({
      from: fc.constant(from),
      to: fc.constant(to),
      messages: fc.array(message(from, to), { maxLength: 6 }),
      traceparent: fc.option(fc.constant("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), { nil: undefined })
    })
  )

describe("messageCodec", () => {
  it("round-trips every message type inside frames", () => {
    fc.assert(
      fc.property(frameArb, ({ from, to, messages, traceparent }) => {
        const buf = encodeMessagesFrame(from, to, messages, traceparent)
        const decoded = decodeFrame(buf)
        expect(Either.isRight(decoded)).toBe(true)
        const frame = Either.getOrThrow(decoded)
        expect(frame.kind).toBe("Messages")
        if (frame.kind !== "Messages") return
        expect(frame.from).toBe(from)
        expect(frame.to).toBe(to)
        expect(frame.traceparent).toBe(traceparent)
        expect(norm(frame.messages)).toEqual(norm(messages))
      }),
      { numRuns: 500 }
    )
  })

  it("never throws on truncated or corrupted frames, only typed errors", () => {
    fc.assert(
      fc.property(frameArb, fc.nat(), fc.nat(255), ({ from, to, messages, traceparent }, pos, byte) => {
        const buf = encodeMessagesFrame(from, to, messages, traceparent)
        const body = buf.subarray(4)
        const cut = body.subarray(0, pos % (body.length + 1))
        const r1 = decodeFrameBody(cut)
        if (cut.length < body.length) {
          expect(Either.isLeft(r1)).toBe(true)
          if (Either.isLeft(r1)) expect(r1.left).toBeInstanceOf(RaftCodecError)
        }
        const corrupt = Buffer.from(body)
        if (corrupt.length > 0) corrupt[pos % corrupt.length] = byte
        // must not throw; any result is acceptable
        const r2 = decodeFrameBody(corrupt)
        expect(Either.isLeft(r2) || Either.isRight(r2)).toBe(true)
      }),
      { numRuns: 500 }
    )
  })

  it("round-trips hello frames, entries, snapshots and hard states", () => {
    const hello = decodeFrame(encodeHelloFrame(7, "cluster-a", "00-aa-bb-01"))
    expect(Either.getOrThrow(hello)).toEqual({ kind: "Hello", nodeId: 7, clusterId: "cluster-a", traceparent: "00-aa-bb-01" })
    fc.assert(
      fc.property(anyEntries, snapMeta, bytes, nat, fc.option(nodeId, { nil: null }), nat, (es, meta, data, term, vote, commit) => {
        expect(norm(Either.getOrThrow(decodeEntries(encodeEntries(es))))).toEqual(norm(es))
        const snap: Snapshot = { metadata: meta, data }
        expect(norm(Either.getOrThrow(decodeSnapshot(encodeSnapshot(snap))))).toEqual(norm(snap))
        expect(Either.getOrThrow(decodeHardState(encodeHardState({ term, vote, commit })))).toEqual({ term, vote, commit })
      })
    )
  })

  it("splits a byte stream into frames regardless of chunking", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }), (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeMessagesFrame(f.from, f.to, f.messages, f.traceparent)))
        const splitter = new FrameSplitter()
        const out: Array<Buffer> = []
        let pos = 0
        let i = 0
        while (pos < stream.length) {
          const n = cuts[i++ % cuts.length]!
          splitter.push(stream.subarray(pos, pos + n))
          pos += n
          for (;;) {
            const f = splitter.next()
            if (f === undefined) break
            if (f instanceof RaftCodecError) throw f
            out.push(f)
          }
        }
        expect(out.length).toBe(frames.length)
        out.forEach((body, k) => {
          const f = Either.getOrThrow(decodeFrameBody(body))
          expect(f.kind === "Messages" && norm(f.messages)).toEqual(norm(frames[k]!.messages))
        })
      }),
      { numRuns: 200 }
    )
  })

  it("rejects oversized frames and bad length prefixes", () => {
    const s = new FrameSplitter(100)
    const b = Buffer.alloc(8)
    b.writeUInt32BE(101, 0)
    s.push(b)
    expect(s.next()).toBeInstanceOf(RaftCodecError)
    const good = encodeMessagesFrame(1, 2, [])
    expect(Either.isLeft(decodeFrame(good.subarray(0, good.length - 1)))).toBe(true)
    expect(Either.isLeft(decodeFrame(Buffer.from([0, 0])))).toBe(true)
  })

  it("is compact: an idle heartbeat costs a handful of bytes", () => {
    const hb: Message = { type: "MsgHeartbeat", group: "g1", from: 1, to: 2, term: 5, commit: 100, context: 0 }
    const one = encodeMessagesFrame(1, 2, [hb]).length
    const hundred = encodeMessagesFrame(1, 2, Array.from({ length: 100 }, () => hb)).length
    expect(one).toBeLessThan(20)
    expect((hundred - one) / 99).toBeLessThanOrEqual(8)
  })
})
