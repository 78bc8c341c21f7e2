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
