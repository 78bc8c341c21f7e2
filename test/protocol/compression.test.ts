import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as zlib from "node:zlib"
import zstd from "zstd-napi/binding.js"
import {
  Codec,
  CompressionError,
  XERIAL_MAGIC,
  compress,
  decompress,
  isXerialSnappy,
  lz4HeaderChecksum,
  xxhash32
} from "../../src/protocol/compression.js"

const codecs = [Codec.Gzip, Codec.Snappy, Codec.Lz4, Codec.Zstd] as const

const expectCompressionError = (f: () => unknown, kind: "corrupt" | "tooLarge" | "unsupported"): CompressionError => {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(CompressionError)
    expect((e as CompressionError).kind).toBe(kind)
    return e as CompressionError
  }
  throw new Error("expected a CompressionError")
}

const int32BE = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}
const u32LE = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

/** A raw snappy block made only of one literal (valid for 1..60 bytes). */
const snappyLiteralBlock = (s: string): Buffer => {
  const data = Buffer.from(s)
  expect(data.length).toBeGreaterThan(0)
  expect(data.length).toBeLessThanOrEqual(60)
  return Buffer.concat([Buffer.from([data.length, (data.length - 1) << 2]), data])
}

const xerialHeader = () => Buffer.concat([XERIAL_MAGIC, int32BE(1), int32BE(1)])

describe("round trips", () => {
  it("every codec round-trips arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...codecs), fc.uint8Array({ maxLength: 70_000 }), fc.boolean(), (codec, bytes, raw) => {
        const input = Buffer.from(bytes)
        const packed = compress(codec, input, { snappyFormat: raw ? "raw" : "xerial" })
        expect(decompress(codec, packed).equals(input)).toBe(true)
      }),
      { numRuns: 120 }
    )
  })

  it("every codec round-trips compressible data larger than a block", () => {
    const input = Buffer.alloc(300_000)
    for (let i = 0; i < input.length; i++) input[i] = (i * 7) % 13
    for (const codec of codecs) {
      const packed = compress(codec, input)
      expect(packed.length).toBeLessThan(input.length / 10)
      expect(decompress(codec, packed).equals(input)).toBe(true)
    }
  })

  it("codec none passes through, unknown codecs are refused", () => {
    const b = Buffer.from("abc")
    expect(compress(Codec.None, b)).toBe(b)
    expect(decompress(Codec.None, b)).toBe(b)
    expectCompressionError(() => compress(5, b), "unsupported")
    expectCompressionError(() => decompress(7, b), "unsupported")
  })
})

describe("gzip", () => {
  it("reads what zlib writes, including concatenated members", () => {
    const a = zlib.gzipSync(Buffer.from("hello "))
    const b = zlib.gzipSync(Buffer.from("world"))
    expect(decompress(Codec.Gzip, Buffer.concat([a, b])).toString()).toBe("hello world")
  })

  it("rejects garbage and caps output", () => {
    expectCompressionError(() => decompress(Codec.Gzip, Buffer.from("not gzip at all")), "corrupt")
    const bomb = zlib.gzipSync(Buffer.alloc(5_000_000))
    expectCompressionError(() => decompress(Codec.Gzip, bomb, { maxOutputBytes: 1_000_000 }), "tooLarge")
    expect(decompress(Codec.Gzip, bomb, { maxOutputBytes: 5_000_000 }).length).toBe(5_000_000)
  })
})

describe("snappy", () => {
  it("writes xerial framing by default, raw on request", () => {
    const input = Buffer.alloc(100_000, "kafka")
    const x = compress(Codec.Snappy, input)
    expect(isXerialSnappy(x)).toBe(true)
    expect(x.subarray(0, 8).equals(XERIAL_MAGIC)).toBe(true)
    expect(x.readInt32BE(8)).toBe(1)
    expect(x.readInt32BE(12)).toBe(1)
    // 32 KiB blocks, as the Java client's SnappyOutputStream
    let pos = 16
    let blocks = 0
    while (pos < x.length) {
      const len = x.readInt32BE(pos)
      pos += 4 + len
      blocks++
    }
    expect(pos).toBe(x.length)
    expect(blocks).toBe(Math.ceil(100_000 / 32_768))
    const r = compress(Codec.Snappy, input, { snappyFormat: "raw" })
    expect(isXerialSnappy(r)).toBe(false)
    expect(decompress(Codec.Snappy, r).equals(input)).toBe(true)
  })

  it("decodes a hand-built raw snappy block", () => {
    expect(decompress(Codec.Snappy, snappyLiteralBlock("hello")).toString()).toBe("hello")
  })

  it("decodes a hand-built xerial stream with two blocks", () => {
    const b1 = snappyLiteralBlock("hello ")
    const b2 = snappyLiteralBlock("xerial")
    const frame = Buffer.concat([xerialHeader(), int32BE(b1.length), b1, int32BE(b2.length), b2])
    expect(decompress(Codec.Snappy, frame).toString()).toBe("hello xerial")
  })

  it("decodes concatenated xerial streams and an empty xerial stream", () => {
    const b1 = snappyLiteralBlock("ab")
    const b2 = snappyLiteralBlock("cd")
    const frame = Buffer.concat([xerialHeader(), int32BE(b1.length), b1, xerialHeader(), int32BE(b2.length), b2])
    expect(decompress(Codec.Snappy, frame).toString()).toBe("abcd")
    expect(decompress(Codec.Snappy, xerialHeader()).length).toBe(0)
  })

  it("rejects hostile xerial block lengths and truncation", () => {
    const b1 = snappyLiteralBlock("hello")
    expectCompressionError(() => decompress(Codec.Snappy, Buffer.concat([xerialHeader(), int32BE(-5), b1])), "corrupt")
    expectCompressionError(() => decompress(Codec.Snappy, Buffer.concat([xerialHeader(), int32BE(0x7fffffff), b1])), "corrupt")
    expectCompressionError(() => decompress(Codec.Snappy, Buffer.concat([xerialHeader(), int32BE(b1.length), b1.subarray(0, 3)])), "corrupt")
    expectCompressionError(() => decompress(Codec.Snappy, Buffer.concat([xerialHeader(), Buffer.from([0, 0])])), "corrupt")
  })

  it("refuses a block whose length preamble exceeds the cap before decoding it", () => {
    // preamble claims 2^31 bytes; nothing of that size is ever allocated
    const bomb = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x08, 0x00])
    expectCompressionError(() => decompress(Codec.Snappy, bomb), "tooLarge")
    const big = compress(Codec.Snappy, Buffer.alloc(3_000_000))
    expectCompressionError(() => decompress(Codec.Snappy, big, { maxOutputBytes: 1_000_000 }), "tooLarge")
    expectCompressionError(() => decompress(Codec.Snappy, Buffer.from([0x05, 0xff, 0xff])), "corrupt")
  })
})

describe("lz4", () => {
  it("xxhash32 matches the reference vectors", () => {
    expect(xxhash32(Buffer.alloc(0))).toBe(0x02cc5d05)
    expect(xxhash32(Buffer.from("abc"))).toBe(0x32d153ff)
    expect(xxhash32(Buffer.from("Nobody inspects the spammish repetition"))).toBe(0xe2293b2f)
  })

  it("writes a frame the Java client accepts (KIP-57): v1, independent blocks, valid HC", () => {
    for (const size of [0, 10, 70_000, 1_000_000]) {
      const input = Buffer.alloc(size, "lz4 frame ")
      const f = compress(Codec.Lz4, input)
      expect(f.readUInt32LE(0)).toBe(0x184d2204)
      const flg = f[4]!
      const bd = f[5]!
      expect(flg >>> 6).toBe(1) // version 01
      expect(flg & 0x20).toBe(0x20) // block independence (Java refuses linked blocks)
      expect(flg & 0x03).toBe(0) // reserved + dict id
      expect(bd & 0x8f).toBe(0)
      expect((bd >>> 4) & 7).toBeGreaterThanOrEqual(4)
      const descEnd = (flg & 0x08) !== 0 ? 14 : 6
      expect(f[descEnd]).toBe(lz4HeaderChecksum(f, 4, descEnd))
      expect(decompress(Codec.Lz4, f).equals(input)).toBe(true)
    }
  })

  const lz4Header = (flg = 0x60, bd = 0x40) => {
    const hdr = Buffer.from([0x04, 0x22, 0x4d, 0x18, flg, bd, 0])
    hdr[6] = lz4HeaderChecksum(hdr, 4, 6)
    return hdr
  }

  it("the header checksum of Kafka's standard descriptor (FLG 0x60, BD 0x40) is 0x82", () => {
    expect(lz4Header()[6]).toBe(0x82)
  })

  it("decodes a hand-built frame with an uncompressed block and a compressed literal-only block", () => {
    const raw = Buffer.from("stored ")
    const lit = Buffer.from("literal")
    const compressedBlock = Buffer.concat([Buffer.from([lit.length << 4]), lit]) // token: literals only
    const frame = Buffer.concat([
      lz4Header(),
      u32LE(0x80000000 | raw.length),
      raw,
      u32LE(compressedBlock.length),
      compressedBlock,
      u32LE(0)
    ])
    expect(decompress(Codec.Lz4, frame).toString()).toBe("stored literal")
  })

  it("decodes a hand-built frame with content size and content checksum (as librdkafka may write)", () => {
    const content = Buffer.from("literal")
    const hdr = Buffer.alloc(15)
    hdr.writeUInt32LE(0x184d2204, 0)
    hdr[4] = 0x6c // version 1, independent, content size, content checksum
    hdr[5] = 0x40
    hdr.writeBigUInt64LE(BigInt(content.length), 6)
    hdr[14] = lz4HeaderChecksum(hdr, 4, 14)
    const block = Buffer.concat([Buffer.from([content.length << 4]), content])
    const frame = Buffer.concat([hdr, u32LE(block.length), block, u32LE(0), u32LE(xxhash32(content))])
    expect(decompress(Codec.Lz4, frame).toString()).toBe("literal")
    // the block-by-block path (bound 64 KiB > limit 100 B, real size 7 B)
    expect(decompress(Codec.Lz4, frame, { maxOutputBytes: 100 }).toString()).toBe("literal")
    // a wrong content checksum is caught
    const bad = Buffer.from(frame)
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1
    expectCompressionError(() => decompress(Codec.Lz4, bad), "corrupt")
  })

  it("rejects a wrong header checksum, bad magic, truncation, oversize blocks", () => {
    const good = compress(Codec.Lz4, Buffer.from("hello hello hello"))
    const badHc = Buffer.from(good)
    badHc[6] = badHc[6]! ^ 0xff
    expectCompressionError(() => decompress(Codec.Lz4, badHc), "corrupt")
    const badMagic = Buffer.from(good)
    badMagic[0] = 0
    expectCompressionError(() => decompress(Codec.Lz4, badMagic), "corrupt")
    expectCompressionError(() => decompress(Codec.Lz4, good.subarray(0, good.length - 2)), "corrupt")
    const oversize = Buffer.concat([lz4Header(), u32LE(0x80000000 | 100_000), Buffer.alloc(100_000), u32LE(0)])
    expectCompressionError(() => decompress(Codec.Lz4, oversize), "corrupt")
  })

  it("caps output: announced content size, and block-by-block decoding of a bomb", () => {
    // FLG with content-size flag, claiming 2^40 bytes
    const hdr = Buffer.alloc(15)
    hdr.writeUInt32LE(0x184d2204, 0)
    hdr[4] = 0x68
    hdr[5] = 0x40
    hdr.writeBigUInt64LE(1n << 40n, 6)
    hdr[14] = lz4HeaderChecksum(hdr, 4, 14)
    expectCompressionError(() => decompress(Codec.Lz4, Buffer.concat([hdr, u32LE(0)])), "tooLarge")
    const bomb = compress(Codec.Lz4, Buffer.alloc(8_000_000))
    expectCompressionError(() => decompress(Codec.Lz4, bomb, { maxOutputBytes: 1_000_000 }), "tooLarge")
    // the block-by-block path still decodes correctly under the limit
    const input = Buffer.alloc(3_000_000)
    for (let i = 0; i < input.length; i++) input[i] = i % 251 === 0 ? i & 0xff : 0
    const f = compress(Codec.Lz4, input)
    expect(decompress(Codec.Lz4, f, { maxOutputBytes: 3_000_000 }).equals(input)).toBe(true)
  })
})

describe("zstd", () => {
  it("decodes a hand-built frame without content size (raw block)", () => {
    const frame = Buffer.concat([
      u32LE(0xfd2fb528), // magic
      Buffer.from([0x00, 0x00]), // FHD: no content size, not single segment; window descriptor
      Buffer.from([0x29, 0x00, 0x00]), // block header: last, raw, size 5
      Buffer.from("hello")
    ])
    expect(zstd.getFrameContentSize(frame)).toBeNull()
    expect(decompress(Codec.Zstd, frame).toString()).toBe("hello")
  })

  it("decodes streaming frames (no content size) and concatenated frames", () => {
    const input = Buffer.alloc(500_000)
    for (let i = 0; i < input.length; i++) input[i] = (i * 31) % 7
    const cctx = new zstd.CCtx()
    cctx.setParameter(zstd.CParameter.contentSizeFlag, 0)
    const dst = Buffer.alloc(zstd.compressBound(input.length))
    const n = cctx.compress2(dst, input)
    const frame = dst.subarray(0, n)
    expect(zstd.getFrameContentSize(frame)).toBeNull()
    expect(decompress(Codec.Zstd, frame).equals(input)).toBe(true)
    const two = Buffer.concat([compress(Codec.Zstd, Buffer.from("ab")), compress(Codec.Zstd, Buffer.from("cd"))])
    expect(decompress(Codec.Zstd, two).toString()).toBe("abcd")
  })

  it("rejects truncated and garbage input, caps output on both paths", () => {
    const good = compress(Codec.Zstd, Buffer.alloc(100_000, "zstd"))
    expectCompressionError(() => decompress(Codec.Zstd, good.subarray(0, good.length - 3)), "corrupt")
    expectCompressionError(() => decompress(Codec.Zstd, Buffer.from("definitely not zstd")), "corrupt")
    expectCompressionError(() => decompress(Codec.Zstd, Buffer.alloc(0)), "corrupt")
    // after errors the shared context still works
    expect(decompress(Codec.Zstd, good).length).toBe(100_000)
    const withSize = compress(Codec.Zstd, Buffer.alloc(5_000_000))
    expectCompressionError(() => decompress(Codec.Zstd, withSize, { maxOutputBytes: 1_000_000 }), "tooLarge")
    const cctx = new zstd.CCtx()
    cctx.setParameter(zstd.CParameter.contentSizeFlag, 0)
    const zeros = Buffer.alloc(5_000_000)
    const dst = Buffer.alloc(zstd.compressBound(zeros.length))
    const streaming = dst.subarray(0, cctx.compress2(dst, zeros))
    expect(zstd.getFrameContentSize(streaming)).toBeNull()
    expectCompressionError(() => decompress(Codec.Zstd, streaming, { maxOutputBytes: 1_000_000 }), "tooLarge")
    expect(decompress(Codec.Zstd, streaming, { maxOutputBytes: 5_000_000 }).length).toBe(5_000_000)
  })
})

describe("hostile input never escapes as a non-CompressionError", () => {
  it("random bytes (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...codecs), fc.uint8Array({ maxLength: 300 }), (codec, bytes) => {
        try {
          decompress(codec, Buffer.from(bytes), { maxOutputBytes: 1 << 20 })
        } catch (e) {
          expect(e).toBeInstanceOf(CompressionError)
        }
      }),
      { numRuns: 400 }
    )
  })

  it("mutated valid frames (property)", () => {
    const input = Buffer.alloc(5000)
    for (let i = 0; i < input.length; i++) input[i] = (i * 13) % 17
    const frames = codecs.map((c) => [c, compress(c, input)] as const)
    fc.assert(
      fc.property(fc.constantFrom(...frames), fc.nat(), fc.integer({ min: 1, max: 255 }), ([codec, frame], at, x) => {
        const m = Buffer.from(frame)
        m[at % m.length] = m[at % m.length]! ^ x
        try {
          const out = decompress(codec, m, { maxOutputBytes: 1 << 20 })
          expect(out.length).toBeLessThanOrEqual(1 << 20)
        } catch (e) {
          expect(e).toBeInstanceOf(CompressionError)
        }
      }),
      { numRuns: 400 }
    )
  })
})
