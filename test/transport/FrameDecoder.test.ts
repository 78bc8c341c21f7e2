import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { encodeFrames, FrameDecoder, InvalidFrameSize } from "../../src/transport/FrameDecoder.js"

/** Splits `bytes` at the given cut points (sorted, deduplicated, in range). */
const split = (bytes: Buffer, cuts: ReadonlyArray<number>): Array<Buffer> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Buffer> = []
  let prev = 0
  for (const p of points) {
    out.push(bytes.subarray(prev, p))
    prev = p
  }
  out.push(bytes.subarray(prev))
  return out
}

const drain = (d: FrameDecoder): Array<Buffer> => {
  const out: Array<Buffer> = []
  let f: Buffer | undefined
  while ((f = d.next()) !== undefined) out.push(Buffer.from(f))
  return out
}

describe("FrameDecoder", () => {
  it("decodes any stream of frames split at arbitrary points", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 60 }),
        (frames, cuts) => {
          const stream = encodeFrames(frames)
          const d = new FrameDecoder(1000)
          const got: Array<Buffer> = []
          for (const chunk of split(stream, cuts)) {
            d.push(chunk)
            got.push(...drain(d))
          }
          expect(got.map((b) => b.toString("hex"))).toEqual(frames.map((f) => Buffer.from(f).toString("hex")))
          expect(d.buffered).toBe(0)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("returns views without copying when a frame lies inside one chunk", () => {
    const stream = encodeFrames([Buffer.from("abc"), Buffer.from("defg")])
    const d = new FrameDecoder(100)
    d.push(stream)
    const a = d.next()!
    const b = d.next()!
    expect(a.toString()).toBe("abc")
    expect(b.toString()).toBe("defg")
    expect(a.buffer).toBe(stream.buffer)
    expect(b.buffer).toBe(stream.buffer)
    expect(d.next()).toBeUndefined()
  })

  it("copies a frame straddling chunks exactly once, one byte at a time", () => {
    const payload = Buffer.from("hello, straddling world")
    const stream = encodeFrames([payload])
    const d = new FrameDecoder(100)
    for (let i = 0; i < stream.length - 1; i++) {
      d.push(stream.subarray(i, i + 1))
      expect(d.next()).toBeUndefined()
    }
    d.push(stream.subarray(stream.length - 1))
    expect(d.next()!.toString()).toBe(payload.toString())
  })

  it("accepts zero-length frames", () => {
    const d = new FrameDecoder(10)
    d.push(encodeFrames([Buffer.alloc(0), Buffer.from("x"), Buffer.alloc(0)]))
    expect(drain(d).map((b) => b.length)).toEqual([0, 1, 0])
  })

  it("rejects sizes above the maximum and negative sizes, even with the prefix split", () => {
    const big = Buffer.alloc(4)
    big.writeInt32BE(101)
    const d1 = new FrameDecoder(100)
    d1.push(big.subarray(0, 2))
    expect(d1.next()).toBeUndefined()
    d1.push(big.subarray(2))
    expect(() => d1.next()).toThrow(InvalidFrameSize)

    const neg = Buffer.alloc(4)
    neg.writeInt32BE(-5)
    const d2 = new FrameDecoder(100)
    d2.push(neg.subarray(0, 1))
    d2.push(neg.subarray(1))
    expect(() => d2.next()).toThrow(/negative/)

    const exact = new FrameDecoder(100)
    exact.push(encodeFrames([Buffer.alloc(100)]))
    expect(exact.next()!.length).toBe(100)
  })
})
