/**
 * Hostile input: truncated frames, negative and huge lengths/counts, random
 * bytes and 100,000+ mutated valid frames across every API and version. Each
 * input must either decode or throw KafkaDecodeError (never another error),
 * and nothing may allocate in proportion to a length or count read from the
 * wire.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { KafkaDecodeError, KafkaEncodeError } from "../../src/protocol/errors.js"
import { APIS } from "../../src/protocol/generated/index.js"
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from "../../src/protocol/messages.js"
import { messageArb, SCHEMA_BY_NAME } from "./arbitraries.js"

/** Deterministic PRNG (mulberry32) so failures reproduce. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex")

interface Outcome {
  readonly ok: number
  readonly rejected: number
}

/** Decodes; a successful decode must also re-encode (or fail with KafkaEncodeError only). */
const attempt = (frame: Buffer, what: () => string): "ok" | "rejected" => {
  let d: ReturnType<typeof decodeRequest>
  try {
    d = decodeRequest(frame)
  } catch (e) {
    if (e instanceof KafkaDecodeError) return "rejected"
    throw new Error(`${what()}: decodeRequest threw ${String(e)} (${(e as Error)?.constructor?.name})\nframe: ${frame.toString("hex")}`)
  }
  try {
    encodeRequest(d.apiKey, d.apiVersion, d.correlationId, d.clientId, d.body, d.header._unknownTaggedFields)
  } catch (e) {
    if (!(e instanceof KafkaEncodeError)) throw new Error(`${what()}: re-encoding a decoded request threw ${String(e)}\nframe: ${frame.toString("hex")}`)
  }
  return "ok"
}

/** Valid request frames: two generated values for every API at every version. */
const corpus: Array<{ name: string; version: number; frame: Buffer }> = []
for (const api of APIS) {
  const schema = SCHEMA_BY_NAME.get(api.request.name)!
  for (let v = api.requestMinVersion; v <= api.requestMaxVersion; v++) {
    const values = fc.sample(messageArb(schema, v), { numRuns: 2, seed: api.apiKey * 100 + v })
    values.forEach((body, i) => {
      corpus.push({ name: api.request.name, version: v, frame: encodeRequest(api.apiKey, v, 1000 + i, i === 0 ? "hostile" : null, body as never) })
    })
  }
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x0f, 0x10]

describe("hostile request frames", () => {
  it("the corpus covers every API and version and decodes cleanly", () => {
    const versions = APIS.reduce((n, a) => n + a.requestMaxVersion - a.requestMinVersion + 1, 0)
    expect(corpus.length).toBe(versions * 2)
    for (const { frame } of corpus) expect(decodeRequest(frame).trailingBytes).toBe(0)
  })

  it("every strict prefix of every valid frame is rejected with KafkaDecodeError", () => {
    let n = 0
    const accepted: Array<string> = []
    for (const { name, version, frame } of corpus) {
      for (let len = 0; len < frame.length; len++) {
        const r = attempt(frame.subarray(0, len), () => `${name} v${version} truncated to ${len}`)
        if (r !== "rejected") accepted.push(`${name} v${version} truncated to ${len}/${frame.length}`)
        n++
      }
    }
    expect(accepted).toEqual([])
    expect(n).toBeGreaterThan(10_000)
  })

  it("100,000+ mutated valid frames decode or throw KafkaDecodeError, with bounded memory", () => {
    const rnd = prng(20261126)
    const int = (n: number): number => Math.floor(rnd() * n)
    const counts: Record<string, Outcome> = {}
    const t0 = performance.now()
    const heap0 = process.memoryUsage().rss
    const N = 100_000
    for (let i = 0; i < N; i++) {
      const src = corpus[int(corpus.length)]!
      let f: Buffer
      const kind = int(6)
      switch (kind) {
        case 0: {
          // 1-3 bit flips
          f = Buffer.from(src.frame)
          for (let k = 1 + int(3); k > 0; k--) {
            const p = int(f.length)
            f[p] = f[p]! ^ (1 << int(8))
          }
          break
        }
        case 1: {
          // byte replacements with boundary values (lengths and counts become 0, -1, huge...)
          f = Buffer.from(src.frame)
          for (let k = 1 + int(2); k > 0; k--) f[int(f.length)] = INTERESTING[int(INTERESTING.length)]!
          break
        }
        case 2: {
          // a run of 0xff / 0x7f (huge or negative lengths, long varints)
          f = Buffer.from(src.frame)
          const p = int(f.length)
          const b = rnd() < 0.5 ? 0xff : 0x7f
          f.fill(b, p, Math.min(f.length, p + 1 + int(5)))
          break
        }
        case 3: {
          // truncation
          f = Buffer.from(src.frame.subarray(0, int(src.frame.length)))
          break
        }
        case 4: {
          // insertion of random bytes
          const p = int(src.frame.length + 1)
          const ins = Buffer.alloc(1 + int(4))
          for (let k = 0; k < ins.length; k++) ins[k] = int(256)
          f = Buffer.concat([src.frame.subarray(0, p), ins, src.frame.subarray(p)])
          break
        }
        default: {
          // deletion of a few bytes
          const p = int(src.frame.length)
          f = Buffer.concat([src.frame.subarray(0, p), src.frame.subarray(p + 1 + int(3))])
          break
        }
      }
      const r = attempt(f, () => `mutation ${kind} of ${src.name} v${src.version} (#${i})`)
      const o = (counts[src.name] ??= { ok: 0, rejected: 0 })
      counts[src.name] = r === "ok" ? { ok: o.ok + 1, rejected: o.rejected } : { ok: o.ok, rejected: o.rejected + 1 }
    }
    const ms = performance.now() - t0
    const grew = process.memoryUsage().rss - heap0
    const totals = Object.values(counts).reduce((a, o) => ({ ok: a.ok + o.ok, rejected: a.rejected + o.rejected }), { ok: 0, rejected: 0 })
    expect(totals.ok + totals.rejected).toBe(N)
    // both outcomes happen a lot: mutations are neither all harmless nor all fatal
    expect(totals.ok).toBeGreaterThan(N / 20)
    expect(totals.rejected).toBeGreaterThan(N / 4)
    expect(Object.keys(counts).length).toBe(APIS.length)
    expect(grew, "RSS growth during the mutation run").toBeLessThan(512 * 1024 * 1024)
    console.log(`hostile: ${N} mutated frames in ${ms.toFixed(0)} ms, ${totals.ok} decoded, ${totals.rejected} rejected`)
  })

  it("random bytes, with and without a valid request header in front", () => {
    const rnd = prng(7)
    const int = (n: number): number => Math.floor(rnd() * n)
    for (let i = 0; i < 20_000; i++) {
      const f = Buffer.alloc(int(80))
      for (let k = 0; k < f.length; k++) f[k] = int(256)
      if (i % 2 === 0 && f.length >= 4) {
        const api = APIS[int(APIS.length)]!
        f.writeInt16BE(api.apiKey, 0)
        f.writeInt16BE(api.requestMinVersion + int(api.requestMaxVersion - api.requestMinVersion + 1), 2)
        if (f.length >= 10 && i % 4 === 0) f.writeInt16BE(-1, 8) // null client id, so the body decoder runs
      }
      attempt(f, () => `random frame #${i}`)
    }
  })

  it("mutated response frames (client side) decode or throw KafkaDecodeError", () => {
    const responses: Array<{ apiKey: (typeof APIS)[number]["apiKey"]; version: number; frame: Buffer }> = []
    for (const api of APIS) {
      const schema = SCHEMA_BY_NAME.get(api.response.name)!
      for (let v = api.responseMinVersion; v <= api.responseMaxVersion; v++) {
        for (const body of fc.sample(messageArb(schema, v), { numRuns: 1, seed: api.apiKey * 100 + v })) {
          responses.push({ apiKey: api.apiKey, version: v, frame: encodeResponse(api.apiKey, v, 7, body as never) })
        }
      }
    }
    const rnd = prng(99)
    const int = (n: number): number => Math.floor(rnd() * n)
    let decoded = 0
    for (let i = 0; i < 20_000; i++) {
      const src = responses[int(responses.length)]!
      const f = i % 3 === 0 ? Buffer.from(src.frame.subarray(0, int(src.frame.length))) : Buffer.from(src.frame)
      if (i % 3 !== 0) for (let k = 1 + int(3); k > 0; k--) f[int(f.length)] = rnd() < 0.5 ? int(256) : INTERESTING[int(INTERESTING.length)]!
      try {
        decodeResponse(src.apiKey, src.version, f)
        decoded++
      } catch (e) {
        if (!(e instanceof KafkaDecodeError)) throw new Error(`response ${src.apiKey} v${src.version}: ${String(e)}\nframe: ${f.toString("hex")}`)
      }
    }
    expect(decoded).toBeGreaterThan(1000)
  })

  const expectRejected = (frame: Buffer, field: string, api: string): KafkaDecodeError => {
    const before = process.memoryUsage().arrayBuffers
    let err: unknown
    try {
      decodeRequest(frame)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(KafkaDecodeError)
    const d = err as KafkaDecodeError
    expect(d.field).toBe(field)
    expect(d.api).toBe(api)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1024 * 1024)
    return d
  }

  // Produce v3 header (v1, null client id) then body: transactionalId null, acks 1, timeout 0
  const produceV3 = "0000 0003 00000001 ffff" + "ffff" + "0001" + "00000000"

  it("huge array counts are rejected before anything is allocated", () => {
    expectRejected(hex(produceV3 + "7fffffff"), "topicData", "ProduceRequest")
    expectRejected(hex(produceV3 + "00100000" + "0001 61"), "topicData", "ProduceRequest")
    // compact (flexible) count: uvarint 2^32-1 -> 2^32-2 elements
    expectRejected(hex("0000 0009 00000001 ffff 00" + "00" + "0001" + "00000000" + "ffffffff0f"), "topicData", "ProduceRequest")
    // nested count inside the first topic
    const d = expectRejected(hex(produceV3 + "00000001" + "0001 61" + "7ffffff0"), "topicData[0].partitionData", "ProduceRequest")
    expect(d.version).toBe(3)
    expect(d.offset).toBe(25)
  })

  it("negative lengths and counts other than -1 (null where allowed) are rejected", () => {
    expectRejected(hex(produceV3 + "fffffffe"), "topicData", "ProduceRequest")
    expectRejected(hex(produceV3 + "ffffffff"), "topicData", "ProduceRequest") // not nullable
    expectRejected(hex("0000 0003 00000001 ffff" + "fffe"), "transactionalId", "ProduceRequest")
    // records length -2
    expectRejected(hex(produceV3 + "00000001" + "0001 61" + "00000001" + "00000000" + "fffffffe"), "topicData[0].partitionData[0].records", "ProduceRequest")
    // records length 2^31-1 with 0 bytes left
    expectRejected(hex(produceV3 + "00000001" + "0001 61" + "00000001" + "00000000" + "7fffffff"), "topicData[0].partitionData[0].records", "ProduceRequest")
    // -1 records is null, which Produce allows
    const ok = decodeRequest(hex(produceV3 + "00000001" + "0001 61" + "00000001" + "00000000" + "ffffffff"))
    expect(ok.apiKey === 0 && ok.body.topicData[0]!.partitionData[0]!.records).toBeNull()
  })

  it("huge string lengths and over-long varints are rejected", () => {
    expectRejected(hex("0000 0003 00000001 7fff 61"), "clientId", "RequestHeader")
    expectRejected(hex("0012 0003 00000001 ffff 00 ffffffffff"), "clientSoftwareName", "ApiVersionsRequest")
    expectRejected(hex("0012 0003 00000001 ffff 00 8080808080 00"), "clientSoftwareName", "ApiVersionsRequest")
    // tagged field count far beyond the remaining bytes
    expectRejected(hex("0012 0003 00000001 ffff 00 01 01 ffffff0f"), "_taggedFields", "ApiVersionsRequest")
    // tagged field whose size runs past the end
    expectRejected(hex("0012 0003 00000001 ffff 00 01 01 01 05 7f 00"), "_tagSize", "ApiVersionsRequest")
  })

  it("records stay a view of the frame (never copied or decoded)", () => {
    const frame = hex(produceV3 + "00000001" + "0001 61" + "00000001" + "00000000" + "00000003" + "aabbcc")
    const d = decodeRequest(frame)
    if (d.apiKey !== 0) throw new Error("not a produce request")
    const rec = d.body.topicData[0]!.partitionData[0]!.records!
    expect(rec).toEqual(hex("aabbcc"))
    expect(rec.buffer).toBe(frame.buffer)
    expect(rec.byteOffset).toBe(frame.byteOffset + frame.length - 3)
  })
})
