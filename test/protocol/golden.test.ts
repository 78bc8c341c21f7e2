/**
 * Golden vectors captured from real clients (kafkajs, @platformatic/kafka, kcat/librdkafka)
 * talking to a real Apache Kafka broker (see docs/golden-vectors.md and
 * scripts/golden/record.ts).
 *
 * For every captured frame:
 * - the request decodes (header matches the manifest) and re-encodes byte for byte;
 * - the response decodes (generated codec and decodeResponse) and re-encodes byte for byte;
 * - Produce requests: the record batches decode (CRC checked, decompressed) to exactly
 *   the records the client was asked to send, in wire order, with the manifest's codec.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { API_TABLE } from "../../src/protocol/generated/index.js"
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from "../../src/protocol/messages.js"
import type { ApiKey } from "../../src/protocol/messages.js"
import { decodeRecords, splitBatches } from "../../src/protocol/recordBatch.js"
import { cursor, readUnsignedVarint } from "../../src/protocol/varint.js"
import type { TaggedField } from "../../src/protocol/wire.js"

const GOLDEN_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../fixtures/golden")

interface ExpectedRecord {
  readonly topic: string
  readonly partition: number
  readonly key: string | null
  readonly value: string | null
  readonly headers: ReadonlyArray<{ readonly key: string; readonly value: string | null }>
  readonly codec: string
}

interface ManifestEntry {
  readonly seq: number
  readonly api: string
  readonly apiKey: number
  readonly apiVersion: number
  readonly correlationId: number
  readonly clientId: string | null
  readonly request: string
  readonly response: string | null
  readonly produce?: { readonly step: string; readonly acks: number; readonly idempotent: boolean }
  readonly records?: ReadonlyArray<ExpectedRecord>
}

interface Manifest {
  readonly client: string
  readonly clientVersion: string
  readonly kafkaVersion: string
  readonly files: ReadonlyArray<ManifestEntry>
}

const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]

const loadManifests = (): Array<{ dir: string; manifest: Manifest }> => {
  if (!fs.existsSync(GOLDEN_DIR)) return []
  return fs
    .readdirSync(GOLDEN_DIR)
    .filter((d) => fs.existsSync(path.join(GOLDEN_DIR, d, "manifest.json")))
    .sort()
    .map((d) => ({
      dir: path.join(GOLDEN_DIR, d),
      manifest: JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, d, "manifest.json"), "utf8")) as Manifest
    }))
}

/** Byte equality with a readable failure: the first differing offset and some context. */
const expectSameBytes = (actual: Buffer, expected: Buffer, what: string): void => {
  if (actual.equals(expected)) return
  let i = 0
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++
  const ctx = (b: Buffer) => b.subarray(Math.max(0, i - 8), i + 24).toString("hex")
  expect.fail(
    `${what}: re-encoded ${actual.length} bytes vs captured ${expected.length}; first difference at byte ${i}\n` +
      `  re-encoded: ${ctx(actual)}\n  captured:   ${ctx(expected)}`
  )
}

/** Response header v1 (flexible responses, except ApiVersions which always uses v0). */
const responseHeaderLength = (apiKey: number, apiVersion: number, frame: Buffer): number => {
  const entry = API_TABLE[apiKey as keyof typeof API_TABLE]
  const flexible = apiKey !== 18 && entry.firstFlexibleVersion >= 0 && apiVersion >= entry.firstFlexibleVersion
  if (!flexible) return 4
  const c = cursor(frame, 4)
  const n = readUnsignedVarint(c)
  for (let i = 0; i < n; i++) {
    readUnsignedVarint(c)
    c.pos += readUnsignedVarint(c)
  }
  return c.pos
}

const REQUIRED_APIS = [
  "ApiVersions",
  "Metadata",
  "Produce",
  "Fetch",
  "ListOffsets",
  "FindCoordinator",
  "JoinGroup",
  "SyncGroup",
  "Heartbeat",
  "OffsetCommit",
  "OffsetFetch",
  "LeaveGroup",
  "InitProducerId"
]

const manifests = loadManifests()

describe("golden vectors", () => {
  it("fixtures are present", () => {
    expect(manifests.map((m) => m.manifest.client).sort()).toEqual(expect.arrayContaining(["kafkajs", "kcat", "platformatic"]))
  })

  for (const { dir, manifest } of manifests) {
    describe(`${manifest.client} (${manifest.clientVersion}, Apache Kafka ${manifest.kafkaVersion})`, () => {
      it("covers the required APIs", () => {
        const apis = new Set(manifest.files.map((f) => f.api))
        for (const api of REQUIRED_APIS) expect(apis, `missing ${api}`).toContain(api)
      })

      it("covers every codec it produced with and both acks=all and acks=1", () => {
        const produce = manifest.files.filter((f) => f.apiKey === 0)
        const acks = new Set(produce.map((f) => f.produce?.acks))
        expect(acks).toContain(-1)
        expect(acks).toContain(1)
        expect(produce.some((f) => f.produce?.idempotent === true)).toBe(true)
        for (const f of produce) for (const r of f.records ?? []) expect(CODECS).toContain(r.codec)
      })

      for (const f of manifest.files) {
        const reqBytes = () => fs.readFileSync(path.join(dir, f.request))

        it(`${f.request}: decodes and re-encodes byte for byte`, () => {
          const frame = reqBytes()
          const d = decodeRequest(frame)
          expect(d.apiKey).toBe(f.apiKey)
          expect(d.apiVersion).toBe(f.apiVersion)
          expect(d.correlationId).toBe(f.correlationId)
          expect(d.clientId).toBe(f.clientId)
          const headerTags = (d.header as { readonly _unknownTaggedFields?: ReadonlyArray<TaggedField> } | undefined)
            ?._unknownTaggedFields
          const again = encodeRequest(d.apiKey, d.apiVersion, d.correlationId, d.clientId, d.body, headerTags)
          expectSameBytes(again, frame, f.request)
        })

        if (f.response !== null) {
          const response = f.response
          it(`${response}: decodes and re-encodes byte for byte`, () => {
            const frame = fs.readFileSync(path.join(dir, response))
            expect(frame.readInt32BE(0)).toBe(f.correlationId)
            const codec = API_TABLE[f.apiKey as keyof typeof API_TABLE].response
            const headerLen = responseHeaderLength(f.apiKey, f.apiVersion, frame)
            const c = cursor(frame, headerLen)
            const body = codec.decode(f.apiVersion, c)
            expect(c.pos, "response body fully consumed").toBe(frame.length)
            expectSameBytes(codec.encode(f.apiVersion, body as never), frame.subarray(headerLen), response)
            // Same through the frame-level API (response header tags are never sent by Kafka here).
            const r = decodeResponse(f.apiKey as ApiKey, f.apiVersion, frame)
            expect(r.correlationId).toBe(f.correlationId)
            expect(r.trailingBytes).toBe(0)
            expectSameBytes(encodeResponse(f.apiKey as ApiKey, f.apiVersion, r.correlationId, r.body as never), frame, `${response} (frame)`)
          })
        }

        if (f.apiKey === 0 && f.records !== undefined) {
          const expected = f.records
          it(`${f.request}: record batches hold exactly the produced records`, () => {
            const d = decodeRequest(reqBytes())
            const body = d.body as {
              readonly topicData: ReadonlyArray<{
                readonly name: string
                readonly partitionData: ReadonlyArray<{ readonly index: number; readonly records: Buffer | null }>
              }>
            }
            const actual: Array<ExpectedRecord> = []
            for (const t of body.topicData) {
              for (const p of t.partitionData) {
                if (p.records === null) continue
                const { batches } = splitBatches(p.records)
                for (const batch of batches) {
                  const codec = CODECS[batch.readInt16BE(21) & 0x07] ?? "unknown"
                  for (const r of decodeRecords(batch)) {
                    actual.push({
                      topic: t.name,
                      partition: p.index,
                      key: r.key === null ? null : r.key.toString("utf8"),
                      value: r.value === null ? null : r.value.toString("utf8"),
                      headers: r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : h.value.toString("utf8") })),
                      codec
                    })
                  }
                }
              }
            }
            expect(actual).toEqual(expected)
          })
        }
      }
    })
  }
})
