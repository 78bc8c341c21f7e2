import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { crc32c } from "@node-rs/crc32"
import {
  FRAME_HEADER,
  checkFrame,
  decodeFrame,
  encodeFrame,
  encodeHeader,
  frameIndex,
  readI64,
  writeI64
} from "../../src/storage/Frame.js"
import { crc32cCombine } from "../../src/storage/crc32cCombine.js"
import { encodeBatch } from "../../src/protocol/recordBatch.js"
import { frameOf } from "../../src/replication/PartitionRaftLogs.js"

describe("Frame", () => {
  it("round-trips int64 numbers", () => {
    fc.assert(
      fc.property(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), (v) => {
        const b = Buffer.alloc(8)
        writeI64(b, v, 0)
        expect(readI64(b, 0)).toBe(v)
        expect(b.readBigInt64BE(0)).toBe(BigInt(v))
      })
    )
  })

  it("round-trips frames and detects any single corrupted byte", () => {
    fc.assert(
      fc.property(
        fc.record({
          firstKey: fc.integer({ min: 0, max: 2 ** 50 }),
          span: fc.integer({ min: -1, max: 1000 }),
          index: fc.integer({ min: 0, max: 2 ** 50 }),
          term: fc.integer({ min: -1, max: 2 ** 40 }),
          maxTimestamp: fc.integer({ min: -1, max: 2 ** 45 }),
          type: fc.integer({ min: 0, max: 255 }),
          payload: fc.uint8Array({ maxLength: 300 })
        }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (r, where, xor) => {
          const e = { ...r, lastKey: r.firstKey + r.span }
          const buf = Buffer.alloc(FRAME_HEADER + e.payload.length)
          const size = encodeFrame(buf, 0, e)
          const c = checkFrame(buf, 0, size)
          expect(c).toEqual({ _tag: "ok", size })
          const d = decodeFrame(buf, 0, size)
          expect(d.firstKey).toBe(e.firstKey)
          expect(d.lastKey).toBe(e.lastKey)
          expect(d.term).toBe(e.term)
          // an empty-range entry (span -1) takes no key and stores maxTimestamp -1
          expect(d.maxTimestamp).toBe(r.span < 0 ? -1 : e.maxTimestamp)
          expect(d.index).toBe(e.index)
          expect(frameIndex(buf, 0)).toBe(e.index)
          expect(d.type).toBe(e.type)
          expect(buf.readUInt32BE(0)).toBe(size - 4)
          // the vectored path's header + payload CRC gives the same bytes
          const h = Buffer.alloc(FRAME_HEADER)
          encodeHeader(h, 0, e)
          expect(Buffer.concat([h, Buffer.from(e.payload)]).equals(buf)).toBe(true)
          expect(Buffer.from(d.payload).equals(Buffer.from(e.payload))).toBe(true)
          // corrupt one byte: never accepted as the same valid frame
          const i = where % size
          buf[i] = buf[i]! ^ xor
          const c2 = checkFrame(buf, 0, size)
          expect(c2._tag).not.toBe("ok")
        }
      ),
      { numRuns: 300 }
    )
  })

  it("reports incomplete frames", () => {
    const e = { firstKey: 5, lastKey: 9, term: 1, maxTimestamp: 1, type: 0, payload: Buffer.alloc(50, 1) }
    const buf = Buffer.alloc(FRAME_HEADER + 50)
    encodeFrame(buf, 0, e)
    expect(checkFrame(buf, 0, 2)._tag).toBe("incomplete")
    expect(checkFrame(buf, 0, 30)._tag).toBe("incomplete")
    expect(checkFrame(buf, 0, FRAME_HEADER + 49)).toEqual({ _tag: "incomplete", need: FRAME_HEADER + 50 })
    expect(checkFrame(Buffer.alloc(64), 0, 64)._tag).toBe("bad")
  })

  it("has the v2 layout: 49-byte header, index at 40, type at 48", () => {
    expect(FRAME_HEADER).toBe(49)
    const buf = Buffer.alloc(FRAME_HEADER + 3)
    encodeFrame(buf, 0, { firstKey: 7, lastKey: 9, term: 4, maxTimestamp: 123, type: 0xab, index: 2 ** 40 + 5, payload: Buffer.from([1, 2, 3]) })
    expect(buf.readUInt32BE(0)).toBe(48)
    expect(buf.readUInt32BE(4)).toBe(crc32c(buf.subarray(8)))
    expect(readI64(buf, 8)).toBe(7)
    expect(readI64(buf, 16)).toBe(9)
    expect(readI64(buf, 24)).toBe(4)
    expect(readI64(buf, 32)).toBe(123)
    expect(readI64(buf, 40)).toBe(2 ** 40 + 5)
    expect(buf[48]).toBe(0xab)
    expect([...buf.subarray(49)]).toEqual([1, 2, 3])
    // no index: written as 0
    encodeFrame(buf, 0, { firstKey: 7, lastKey: 9, term: 4, maxTimestamp: 123, type: 0, payload: Buffer.from([1, 2, 3]) })
    expect(readI64(buf, 40)).toBe(0)
    expect(decodeFrame(buf, 0, buf.length).index).toBe(0)
  })

  it("checkFrame accepts empty ranges (last = first - 1) and rejects first < 0 and last < first - 1", () => {
    /** A frame with arbitrary keys and a valid CRC. */
    const frame = (first: number, last: number, index = 1): Buffer => {
      const b = Buffer.alloc(FRAME_HEADER + 4)
      encodeFrame(b, 0, { firstKey: 0, lastKey: 0, term: 1, maxTimestamp: 0, type: 1, index, payload: Buffer.alloc(4, 9) })
      writeI64(b, first, 8)
      writeI64(b, last, 16)
      b.writeUInt32BE(crc32c(b.subarray(8)), 4)
      return b
    }
    const size = FRAME_HEADER + 4
    expect(checkFrame(frame(5, 4), 0, size)).toEqual({ _tag: "ok", size })
    expect(checkFrame(frame(0, -1), 0, size)).toEqual({ _tag: "ok", size })
    expect(checkFrame(frame(5, 5), 0, size)).toEqual({ _tag: "ok", size })
    expect(checkFrame(frame(5, 3), 0, size)._tag).toBe("bad")
    expect(checkFrame(frame(-1, -2), 0, size)._tag).toBe("bad")
    expect(checkFrame(frame(-3, 5), 0, size)._tag).toBe("bad")
    expect(checkFrame(frame(5, 9, -1), 0, size)).toEqual({ _tag: "bad", reason: "bad index" })
  })
})

describe("crc32cCombine and frames with a known payload CRC", () => {
  it("combines the CRCs of two parts into the CRC of their concatenation", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 5000 }), (a, b) => {
        const whole = crc32c(Buffer.concat([Buffer.from(a), Buffer.from(b)]))
        expect(crc32cCombine(crc32c(Buffer.from(a)), crc32c(Buffer.from(b)), b.length)).toBe(whole)
      })
    )
    // lengths with many set bits, and a large one
    for (const n of [0, 1, 255, 4095, 65_535, 1 << 20]) {
      const a = Buffer.from("head")
      const b = Buffer.alloc(n, 0xa5)
      expect(crc32cCombine(crc32c(a), crc32c(b), n)).toBe(crc32c(Buffer.concat([a, b])))
    }
  })

  it("a frame written with payloadCrc is byte for byte the frame written without it", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(3000), (payloadBytes, cut) => {
        const payload = Buffer.from(payloadBytes)
        const from = Math.min(cut, payload.length)
        const e = { firstKey: 10, lastKey: 12, term: 3, maxTimestamp: 1_700_000_000_000, index: 7, type: 0, payload }
        const withCrc = { ...e, payloadCrc: { from, crc: crc32c(payload.subarray(from)) } }
        const size = FRAME_HEADER + payload.length
        const plain = Buffer.alloc(size)
        const fast = Buffer.alloc(size)
        encodeFrame(plain, 0, e)
        encodeFrame(fast, 0, withCrc)
        expect(fast.equals(plain)).toBe(true)
        const header = Buffer.alloc(FRAME_HEADER)
        encodeHeader(header, 0, withCrc)
        expect(header.equals(plain.subarray(0, FRAME_HEADER))).toBe(true)
        expect(checkFrame(plain, 0, size)._tag).toBe("ok")
      })
    )
  })

  it("a wrong payloadCrc makes the frame fail its check (it is not trusted on read)", () => {
    const payload = Buffer.alloc(100, 1)
    const e = { firstKey: 0, lastKey: 0, term: 1, maxTimestamp: 0, index: 1, type: 0, payload, payloadCrc: { from: 21, crc: 0x1234 } }
    const buf = Buffer.alloc(FRAME_HEADER + payload.length)
    encodeFrame(buf, 0, e)
    expect(checkFrame(buf, 0, buf.length)).toEqual({ _tag: "bad", reason: "CRC mismatch" })
  })
})

describe("partition frames use the record batch's own CRC", () => {
  it("a frame of a Kafka batch (offsets and leader epoch set by the leader) passes the frame check", () => {
    for (const compression of [0, 1]) {
      const batch = encodeBatch({
        baseOffset: 0,
        compression,
        records: Array.from({ length: 20 }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.alloc(100 + i, i), timestamp: 1_000 + i }))
      })
      // the leader assigns the base offset and its epoch: bytes the batch CRC does not cover
      writeI64(batch, 500, 0)
      batch.writeInt32BE(9, 12)
      const f = frameOf({ index: 42, term: 9, type: "Normal", data: batch }, 500)
      expect(f.payloadCrc?.from).toBe(21)
      const size = FRAME_HEADER + batch.length
      const buf = Buffer.alloc(size)
      encodeFrame(buf, 0, f)
      expect(checkFrame(buf, 0, size)._tag).toBe("ok")
      const header = Buffer.alloc(FRAME_HEADER)
      encodeHeader(header, 0, f)
      expect(header.equals(buf.subarray(0, FRAME_HEADER))).toBe(true)
    }
  })
})
