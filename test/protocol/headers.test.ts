/**
 * Request/response headers and a few hand-checked byte vectors (built byte by
 * byte from the Kafka protocol guide, not from the codec).
 */
import { describe, expect, it } from "vitest"
import { KafkaDecodeError, KafkaEncodeError } from "../../src/protocol/errors.js"
import { API_TABLE, APIS } from "../../src/protocol/generated/index.js"
import {
  decodeRequest,
  decodeRequestHeader,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  requestHeaderVersion,
  responseHeaderVersion
} from "../../src/protocol/messages.js"
import { encodeApiVersionsResponse } from "../../src/protocol/generated/ApiVersionsResponse.js"
import { encodeMetadataRequest } from "../../src/protocol/generated/MetadataRequest.js"
import { decodeFetchRequest } from "../../src/protocol/generated/FetchRequest.js"
import { cursor, isUuid, uuidFromBuffer, uuidToBuffer, ZERO_UUID } from "../../src/protocol/wire.js"

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex")
const str16 = (s: string): string => Buffer.from([s.length >> 8, s.length & 0xff]).toString("hex") + Buffer.from(s).toString("hex")
const cstr = (s: string): string => Buffer.from([s.length + 1]).toString("hex") + Buffer.from(s).toString("hex")

describe("header versions", () => {
  it("request header: v2 for flexible versions, v1 otherwise, v0 only for ControlledShutdown v0", () => {
    expect(requestHeaderVersion(18, 2)).toBe(1)
    expect(requestHeaderVersion(18, 3)).toBe(2)
    expect(requestHeaderVersion(18, 9)).toBe(2) // unsupported ApiVersions versions still parse (KIP-511)
    expect(requestHeaderVersion(3, 8)).toBe(1)
    expect(requestHeaderVersion(3, 9)).toBe(2)
    expect(requestHeaderVersion(0, 8)).toBe(1)
    expect(requestHeaderVersion(0, 9)).toBe(2)
    expect(requestHeaderVersion(1, 11)).toBe(1)
    expect(requestHeaderVersion(1, 12)).toBe(2)
    expect(requestHeaderVersion(7, 0)).toBe(0)
    expect(requestHeaderVersion(7, 1)).toBe(1)
    expect(requestHeaderVersion(7, 3)).toBe(2)
    expect(requestHeaderVersion(47, 0)).toBe(1) // OffsetDelete: never flexible
    expect(requestHeaderVersion(17, 1)).toBe(1) // SaslHandshake: never flexible
    expect(requestHeaderVersion(9999, 0)).toBe(1)
  })

  it("response header: v1 for flexible versions, v0 otherwise, always v0 for ApiVersions", () => {
    expect(responseHeaderVersion(18, 0)).toBe(0)
    expect(responseHeaderVersion(18, 3)).toBe(0)
    expect(responseHeaderVersion(18, 4)).toBe(0)
    expect(responseHeaderVersion(3, 8)).toBe(0)
    expect(responseHeaderVersion(3, 12)).toBe(1)
    expect(responseHeaderVersion(1, 12)).toBe(1)
    expect(responseHeaderVersion(47, 0)).toBe(0)
  })

  it("API table: request and response agree on versions; first flexible version inside the range or -1", () => {
    expect(APIS.length).toBeGreaterThan(70)
    for (const e of APIS) {
      expect(e.request.apiKey).toBe(e.apiKey)
      expect(e.response.apiKey).toBe(e.apiKey)
      expect(e.responseMinVersion).toBe(e.requestMinVersion)
      expect(e.responseMaxVersion).toBe(e.requestMaxVersion)
      if (e.firstFlexibleVersion >= 0) {
        expect(e.firstFlexibleVersion).toBeGreaterThanOrEqual(e.requestMinVersion)
        expect(e.firstFlexibleVersion).toBeLessThanOrEqual(e.requestMaxVersion)
      }
    }
    expect(API_TABLE[0].name).toBe("Produce")
    expect(API_TABLE[1].firstFlexibleVersion).toBe(12)
    expect(API_TABLE[18].firstFlexibleVersion).toBe(3)
    expect(API_TABLE[47].firstFlexibleVersion).toBe(-1)
  })
})

describe("hand-checked request vectors", () => {
  it("ApiVersionsRequest v3 as the Java client sends it (header v2)", () => {
    const frame = hex(
      "0012 0003 0000002a" + // api key 18, version 3, correlation id 42
        str16("adminclient-1") + // client id: classic int16 string even in header v2
        "00" + // header tagged fields
        cstr("apache-kafka-java") + // ClientSoftwareName, compact string
        cstr("3.7.0") + // ClientSoftwareVersion
        "00" // body tagged fields
    )
    const d = decodeRequest(frame)
    expect(d.apiKey).toBe(18)
    expect(d.apiVersion).toBe(3)
    expect(d.correlationId).toBe(42)
    expect(d.clientId).toBe("adminclient-1")
    expect(d.body).toEqual({ clientSoftwareName: "apache-kafka-java", clientSoftwareVersion: "3.7.0" })
    expect(d.trailingBytes).toBe(0)
    expect(encodeRequest(18, 3, 42, "adminclient-1", { clientSoftwareName: "apache-kafka-java", clientSoftwareVersion: "3.7.0" })).toEqual(frame)
  })

  it("MetadataRequest v12 (header v2, compact arrays, uuid, nullable compact string)", () => {
    const body = { topics: [{ topicId: ZERO_UUID, name: "foo" }], allowAutoTopicCreation: true, includeTopicAuthorizedOperations: false }
    const bodyHex =
      "02" + // one topic (compact array: n + 1)
      "00000000000000000000000000000000" + // TopicId
      cstr("foo") + // Name
      "00" + // topic tagged fields
      "01" + // AllowAutoTopicCreation
      "00" + // IncludeTopicAuthorizedOperations
      "00" // tagged fields
    expect(encodeMetadataRequest(12, body).toString("hex")).toBe(bodyHex)
    const frame = hex("0003 000c 00000007" + "ffff" + "00" + bodyHex) // null client id
    const d = decodeRequest(frame)
    expect(d.clientId).toBeNull()
    expect(d.header.clientId).toBeNull()
    expect(d.body).toEqual({ ...body, includeClusterAuthorizedOperations: false })
    expect(encodeRequest(3, 12, 7, null, body)).toEqual(frame)
    // null topics = all topics
    expect(encodeMetadataRequest(12, { topics: null, allowAutoTopicCreation: false }).toString("hex")).toBe("00" + "00" + "00" + "00")
  })

  it("MetadataRequest v0: classic non-nullable array, no AllowAutoTopicCreation", () => {
    expect(encodeMetadataRequest(0, { topics: [{ name: "ab" }] }).toString("hex")).toBe("00000001" + str16("ab"))
    // AllowAutoTopicCreation is not ignorable: a non-default value cannot be sent at v3
    expect(() => encodeMetadataRequest(3, { topics: [], allowAutoTopicCreation: false })).toThrow(KafkaEncodeError)
    // the default (true) is fine, and so is the ignorable IncludeTopicAuthorizedOperations at v7
    expect(encodeMetadataRequest(3, { topics: [], allowAutoTopicCreation: true }).toString("hex")).toBe("00000000")
    expect(() => encodeMetadataRequest(1, { topics: null })).not.toThrow()
    expect(() => encodeMetadataRequest(0, { topics: null })).toThrow(KafkaEncodeError)
  })

  it("ControlledShutdown v0 uses request header v0 (no client id)", () => {
    const frame = hex("0007 0000 00000005" + "00000003")
    const d = decodeRequest(frame)
    expect(d.header.clientId).toBeNull()
    expect(d.body).toEqual({ brokerId: 3, brokerEpoch: -1n })
    expect(encodeRequest(7, 0, 5, "ignored at header v0", { brokerId: 3 })).toEqual(frame)
  })

  it("HeartbeatRequest v0 (header v1, classic strings)", () => {
    const frame = hex("000c 0000 00000009" + str16("cid") + str16("g") + "00000004" + str16("m"))
    const d = decodeRequest(frame)
    expect(d.clientId).toBe("cid")
    expect(d.body).toEqual({ groupId: "g", generationId: 4, memberId: "m", groupInstanceId: null })
    expect(encodeRequest(12, 0, 9, "cid", { groupId: "g", generationId: 4, memberId: "m" })).toEqual(frame)
  })

  it("unknown tagged fields in the request header are kept and re-encoded", () => {
    const frame = hex("0012 0003 00000001" + str16("c") + "02" + "05 01 aa" + "09 02 bbcc" + cstr("x") + cstr("y") + "00")
    const d = decodeRequest(frame)
    expect(d.header._unknownTaggedFields).toEqual([
      { tag: 5, data: hex("aa") },
      { tag: 9, data: hex("bbcc") }
    ])
    expect(encodeRequest(d.apiKey, 3, 1, "c", d.body, d.header._unknownTaggedFields)).toEqual(frame)
    // given out of order, they are written in ascending tag order
    const reversed = [...d.header._unknownTaggedFields!].reverse()
    expect(encodeRequest(d.apiKey, 3, 1, "c", d.body, reversed)).toEqual(frame)
  })

  it("known tagged field: FetchRequest v12 ClusterId (tag 0)", () => {
    const body =
      "ffffffff" + // ReplicaId -1
      "000001f4" + // MaxWaitMs 500
      "00000001" + // MinBytes
      "00100000" + // MaxBytes
      "00" + // IsolationLevel
      "00000000" + // SessionId
      "ffffffff" + // SessionEpoch -1
      "01" + // Topics: empty compact array
      "01" + // ForgottenTopicsData: empty
      "01" + // RackId ""
      "01" + // one tagged field
      "00" + // tag 0
      "04" + // size
      cstr("clu") // ClusterId compact nullable string
    const buf = hex(body)
    const c = cursor(buf)
    const r = decodeFetchRequest(12, c)
    expect(c.pos).toBe(buf.length)
    expect(r.clusterId).toBe("clu")
    expect(r.replicaId).toBe(-1)
    expect(r.maxBytes).toBe(0x100000)
    // default (null) ClusterId is not written at all
    const noTag = encodeRequest(1, 12, 1, null, { ...r, clusterId: null })
    expect(noTag.subarray(noTag.length - 1)).toEqual(hex("00"))
  })
})

describe("hand-checked response vectors", () => {
  it("ApiVersionsResponse v3 uses response header v0 and writes tagged fields only when not default", () => {
    const apiKeys = [{ apiKey: 0, minVersion: 0, maxVersion: 11 }]
    const bodyHex =
      "0000" + // ErrorCode
      "02" + // one ApiKeys entry
      "0000 0000 000b 00" + // key 0, min 0, max 11, entry tagged fields
      "00000000" + // ThrottleTimeMs
      "00" // no tagged fields: SupportedFeatures empty, epoch -1, no finalized, ZkMigrationReady false
    const frame = encodeResponse(18, 3, 77, { errorCode: 0, apiKeys, throttleTimeMs: 0 })
    expect(frame.toString("hex")).toBe("0000004d" + bodyHex.replace(/\s+/g, "")) // header v0: correlation id only
    const withEpoch = encodeApiVersionsResponse(3, { errorCode: 0, apiKeys, throttleTimeMs: 0, finalizedFeaturesEpoch: 5n })
    expect(withEpoch.toString("hex")).toBe(
      "0000" + "02" + "00000000000b00" + "00000000" + "01" + "01" + "08" + "0000000000000005" // tag 1, size 8, int64
    )
    const d = decodeResponse(18, 3, frame)
    expect(d.correlationId).toBe(77)
    expect(d.body.apiKeys).toEqual([{ apiKey: 0, minVersion: 0, maxVersion: 11 }])
    expect(d.body.finalizedFeaturesEpoch).toBe(-1n)
    expect(d.body.zkMigrationReady).toBe(false)
  })

  it("ApiVersionsResponse v0 (what a broker answers to an unsupported ApiVersions version)", () => {
    const frame = encodeResponse(18, 0, 3, { errorCode: 35, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 4 }] })
    expect(frame.toString("hex")).toBe("00000003" + "0023" + "00000001" + "0012 0000 0004".replace(/\s+/g, ""))
  })

  it("flexible responses use response header v1 (tagged fields after the correlation id)", () => {
    const frame = encodeResponse(12, 4, 1, { throttleTimeMs: 0, errorCode: 0 })
    expect(frame.toString("hex")).toBe("00000001" + "00" + "00000000" + "0000" + "00")
    const old = encodeResponse(12, 3, 1, { throttleTimeMs: 0, errorCode: 0 })
    expect(old.toString("hex")).toBe("00000001" + "00000000" + "0000")
    expect(decodeResponse(12, 4, frame).body).toEqual({ throttleTimeMs: 0, errorCode: 0 })
  })
})

describe("request routing errors", () => {
  it("an unsupported version still yields the header (for UNSUPPORTED_VERSION) but decodeRequest fails", () => {
    const frame = hex("0012 0063 0000000b" + str16("cli") + "00")
    const h = decodeRequestHeader(frame)
    expect(h).toMatchObject({ apiKey: 18, apiVersion: 99, correlationId: 11, clientId: "cli", headerVersion: 2 })
    const err = (() => {
      try {
        decodeRequest(frame)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(KafkaDecodeError)
    expect((err as KafkaDecodeError).field).toBe("requestApiVersion")
    expect((err as KafkaDecodeError).api).toBe("ApiVersionsRequest")
  })

  it("an unknown API key: header decodes as v1, decodeRequest fails", () => {
    const frame = hex("03e7 0000 00000005" + str16("x"))
    expect(decodeRequestHeader(frame)).toMatchObject({ apiKey: 999, correlationId: 5, clientId: "x", headerVersion: 1 })
    expect(() => decodeRequest(frame)).toThrow(KafkaDecodeError)
  })

  it("trailing bytes after the body are tolerated and reported", () => {
    const frame = Buffer.concat([encodeRequest(12, 0, 1, "c", { groupId: "g", generationId: 1, memberId: "m" }), hex("dead")])
    expect(decodeRequest(frame).trailingBytes).toBe(2)
  })

  it("decode errors name the message, version, field path and offset", () => {
    const good = encodeRequest(3, 12, 1, null, { topics: [{ topicId: ZERO_UUID, name: "foo" }], allowAutoTopicCreation: true })
    // header is 4+4+2+1 = 11 bytes; body: 02, uuid (16), then the name length byte at offset 28
    const bad = Buffer.from(good)
    bad[28] = 0x7f
    try {
      decodeRequest(bad)
      expect.fail("should throw")
    } catch (e) {
      expect(e).toBeInstanceOf(KafkaDecodeError)
      const d = e as KafkaDecodeError
      expect(d.api).toBe("MetadataRequest")
      expect(d.version).toBe(12)
      expect(d.field).toBe("topics[0].name")
      expect(d.offset).toBe(28)
    }
  })

  it("encode errors name the field path", () => {
    try {
      encodeRequest(3, 12, 1, null, { topics: [{ name: "a" }, { name: "b", topicId: "not-a-uuid" }] })
      expect.fail("should throw")
    } catch (e) {
      expect(e).toBeInstanceOf(KafkaEncodeError)
      expect((e as KafkaEncodeError).field).toBe("topics[1].topicId")
      expect((e as KafkaEncodeError).api).toBe("MetadataRequest")
    }
  })
})

describe("UUIDs", () => {
  it("use Kafka's canonical form (URL-safe base64, no padding)", () => {
    const b = Buffer.from([...Array(16).keys()])
    expect(uuidFromBuffer(b)).toBe("AAECAwQFBgcICQoLDA0ODw")
    expect(uuidToBuffer("AAECAwQFBgcICQoLDA0ODw")).toEqual(b)
    expect(uuidToBuffer(ZERO_UUID)).toEqual(Buffer.alloc(16))
    expect(uuidFromBuffer(Buffer.from("ffffffffffffffffffffffffffffffff", "hex"))).toBe("_____________________w")
    expect(isUuid("AAECAwQFBgcICQoLDA0ODw")).toBe(true)
    expect(isUuid("AAECAwQFBgcICQoLDA0ODx")).toBe(false) // non-zero padding bits: not canonical
    expect(isUuid("AAECAwQFBgcICQoLDA0OD")).toBe(false)
    expect(isUuid("AAECAwQFBgcICQoLDA0OD+")).toBe(false)
    expect(() => uuidToBuffer("nope")).toThrow(KafkaEncodeError)
  })
})
