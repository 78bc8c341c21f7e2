import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { FRAME_HEADER, checkFrame, decodeFrame, encodeFrame, readI64, writeI64 } from "../../src/storage/Frame.js"

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
          span: fc.integer({ min: 0, max: 1000 }),
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
          expect(d.maxTimestamp).toBe(e.maxTimestamp)
          expect(d.type).toBe(e.type)
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
})
