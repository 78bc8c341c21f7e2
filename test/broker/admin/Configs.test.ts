import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ErrorCode } from "../../../src/protocol/errorCodes.js"
import { type AdminBroker, startAdminBroker } from "./adminBroker.js"

const TOPIC = 2
const BROKER = 4
const SRC = { DYNAMIC_TOPIC: 1, STATIC_BROKER: 4, DEFAULT: 5 }
const TYPE = { BOOLEAN: 1, STRING: 2, INT: 3, LONG: 5, LIST: 7 }
const OP = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 }

describe("admin config APIs (in process)", () => {
  let broker: AdminBroker
  // log.retention.ms differs from Chronik's default: a static broker setting
  const retentionMs = 3_600_000
  beforeAll(async () => {
    broker = await startAdminBroker({ logRetentionMs: retentionMs, nodeId: 3 })
    const r = await broker.request(19, 7, {
      topics: [
        { name: "cfg", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: "max.message.bytes", value: "2048" }] },
        { name: "cfg-alter", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
        { name: "cfg-inc", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }
      ],
      timeoutMs: 1000
    })
    expect(r.topics.every((t) => t.errorCode === 0)).toBe(true)
  })
  afterAll(async () => {
    await broker.close()
  })

  const describeTopic = async (name: string, keys: Array<string> | null = null) => {
    const r = await broker.request(32, 4, {
      resources: [{ resourceType: TOPIC, resourceName: name, configurationKeys: keys }],
      includeSynonyms: true,
      includeDocumentation: false
    })
    return r.results[0]!
  }
  const overrides = async (name: string) =>
    Object.fromEntries(
      (await describeTopic(name)).configs.filter((c) => c.configSource === SRC.DYNAMIC_TOPIC).map((c) => [c.name, c.value])
    )

  describe("DescribeConfigs", () => {
    it("v0 lists every topic config with isDefault", async () => {
      const r = await broker.request(32, 0, { resources: [{ resourceType: TOPIC, resourceName: "cfg", configurationKeys: null }] })
      const res = r.results[0]!
      expect(res).toMatchObject({ errorCode: ErrorCode.NONE, errorMessage: null, resourceType: TOPIC, resourceName: "cfg" })
      const byName = new Map(res.configs.map((c) => [c.name, c]))
      expect(byName.size).toBeGreaterThan(15)
      expect(byName.get("max.message.bytes")).toMatchObject({ value: "2048", isDefault: false, readOnly: false, isSensitive: false })
      expect(byName.get("cleanup.policy")).toMatchObject({ value: "delete", isDefault: true })
      expect(byName.get("retention.ms")).toMatchObject({ value: String(retentionMs), isDefault: true })
    })

    it("v4: sources, synonyms, types and documentation", async () => {
      const r = await broker.request(32, 4, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg", configurationKeys: ["max.message.bytes", "retention.ms", "cleanup.policy", "nope"] }],
        includeSynonyms: true,
        includeDocumentation: true
      })
      const configs = r.results[0]!.configs
      expect(configs.map((c) => c.name).sort()).toEqual(["cleanup.policy", "max.message.bytes", "retention.ms"])
      const byName = new Map(configs.map((c) => [c.name, c]))
      expect(byName.get("max.message.bytes")).toMatchObject({
        value: "2048",
        configSource: SRC.DYNAMIC_TOPIC,
        configType: TYPE.INT,
        synonyms: [
          { name: "max.message.bytes", value: "2048", source: SRC.DYNAMIC_TOPIC },
          { name: "message.max.bytes", value: "1048588", source: SRC.DEFAULT }
        ]
      })
      expect(byName.get("max.message.bytes")!.documentation).toBeTruthy()
      expect(byName.get("retention.ms")).toMatchObject({
        value: String(retentionMs),
        configSource: SRC.STATIC_BROKER,
        configType: TYPE.LONG,
        synonyms: [
          { name: "log.retention.ms", value: String(retentionMs), source: SRC.STATIC_BROKER },
          { name: "log.retention.ms", value: String(7 * 24 * 3600 * 1000), source: SRC.DEFAULT }
        ]
      })
      expect(byName.get("cleanup.policy")).toMatchObject({ configSource: SRC.DEFAULT, configType: TYPE.LIST })
    })

    it("v1 without includeSynonyms has no synonyms; v2 has no documentation", async () => {
      const r1 = await broker.request(32, 1, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg", configurationKeys: ["retention.ms"] }],
        includeSynonyms: false
      })
      expect(r1.results[0]!.configs).toEqual([expect.objectContaining({ name: "retention.ms", configSource: SRC.STATIC_BROKER, synonyms: [] })])
      const r2 = await broker.request(32, 2, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg", configurationKeys: ["retention.ms"] }],
        includeSynonyms: true
      })
      expect(r2.results[0]!.configs[0]!.synonyms).toHaveLength(2)
      expect(r2.results[0]!.configs[0]!.documentation).toBeNull()
    })

    it("the broker resource: Kafka names, read-only, static vs default", async () => {
      const r = await broker.request(32, 4, {
        resources: [{ resourceType: BROKER, resourceName: String(broker.nodeId), configurationKeys: null }],
        includeSynonyms: true,
        includeDocumentation: true
      })
      const res = r.results[0]!
      expect(res.errorCode).toBe(ErrorCode.NONE)
      const byName = new Map(res.configs.map((c) => [c.name, c]))
      for (const n of [
        "node.id",
        "broker.id",
        "advertised.listeners",
        "log.retention.ms",
        "log.segment.bytes",
        "message.max.bytes",
        "num.partitions",
        "auto.create.topics.enable",
        "socket.request.max.bytes",
        "connections.max.idle.ms"
      ]) {
        expect(byName.get(n), n).toBeDefined()
        expect(byName.get(n)!.readOnly, n).toBe(true)
      }
      expect(byName.get("node.id")).toMatchObject({ value: "3", configSource: SRC.STATIC_BROKER, configType: TYPE.INT })
      expect(byName.get("log.retention.ms")).toMatchObject({ value: String(retentionMs), configSource: SRC.STATIC_BROKER })
      expect(byName.get("message.max.bytes")).toMatchObject({ value: "1048588", configSource: SRC.DEFAULT })
      expect(byName.get("auto.create.topics.enable")).toMatchObject({ value: "true", configType: TYPE.BOOLEAN })
      expect(byName.get("advertised.listeners")!.value).toMatch(/^PLAINTEXT:\/\/127\.0\.0\.1:\d+$/)
      // "" is the cluster-wide dynamic defaults: none here
      const all = await broker.request(32, 4, { resources: [{ resourceType: BROKER, resourceName: "", configurationKeys: null }] })
      expect(all.results[0]).toMatchObject({ errorCode: ErrorCode.NONE, configs: [] })
    })

    it("per-resource errors: unknown topic, bad name, other broker, unsupported type", async () => {
      const r = await broker.request(32, 4, {
        resources: [
          { resourceType: TOPIC, resourceName: "missing", configurationKeys: null },
          { resourceType: TOPIC, resourceName: "bad name", configurationKeys: null },
          { resourceType: BROKER, resourceName: "7", configurationKeys: null },
          { resourceType: BROKER, resourceName: "x", configurationKeys: null },
          { resourceType: 8, resourceName: "3", configurationKeys: null },
          { resourceType: TOPIC, resourceName: "cfg", configurationKeys: ["segment.bytes"] }
        ]
      })
      expect(r.results.map((x) => [x.resourceName, x.errorCode])).toEqual([
        ["missing", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
        ["bad name", ErrorCode.INVALID_TOPIC_EXCEPTION],
        ["7", ErrorCode.INVALID_REQUEST],
        ["x", ErrorCode.INVALID_REQUEST],
        ["3", ErrorCode.INVALID_REQUEST],
        ["cfg", ErrorCode.NONE]
      ])
      expect(r.results[0]!.errorMessage).toBeNull()
      expect(r.results[2]!.errorMessage).toBe("Unexpected broker id, expected 3 or empty string, but received 7")
      expect(r.results[3]!.errorMessage).toBe("Broker id must be an integer, but it is: x")
      expect(r.results[5]!.configs).toHaveLength(1)
    })
  })

  describe("AlterConfigs", () => {
    it("v0 replaces the whole override set", async () => {
      const set1 = await broker.request(33, 0, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg-alter", configs: [{ name: "retention.ms", value: "1000" }, { name: "segment.ms", value: "5000" }] }],
        validateOnly: false
      })
      expect(set1.responses).toEqual([{ errorCode: 0, errorMessage: null, resourceType: TOPIC, resourceName: "cfg-alter" }])
      expect(await overrides("cfg-alter")).toEqual({ "retention.ms": "1000", "segment.ms": "5000" })
      const set2 = await broker.request(33, 2, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg-alter", configs: [{ name: "retention.bytes", value: "100000" }] }],
        validateOnly: false
      })
      expect(set2.responses[0]!.errorCode).toBe(ErrorCode.NONE)
      expect(await overrides("cfg-alter")).toEqual({ "retention.bytes": "100000" })
    })

    it("validateOnly changes nothing; invalid configs are INVALID_CONFIG and change nothing", async () => {
      const v = await broker.request(33, 1, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg-alter", configs: [{ name: "retention.ms", value: "1" }] }],
        validateOnly: true
      })
      expect(v.responses[0]!.errorCode).toBe(ErrorCode.NONE)
      expect(await overrides("cfg-alter")).toEqual({ "retention.bytes": "100000" })
      const bad = await broker.request(33, 2, {
        resources: [
          { resourceType: TOPIC, resourceName: "cfg-alter", configs: [{ name: "cleanup.policy", value: "compact" }] },
          { resourceType: TOPIC, resourceName: "cfg-alter-2", configs: [] }
        ],
        validateOnly: false
      })
      expect(bad.responses[0]!.errorCode).toBe(ErrorCode.INVALID_CONFIG)
      expect(bad.responses[1]).toMatchObject({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: "The topic 'cfg-alter-2' does not exist." })
      expect(await overrides("cfg-alter")).toEqual({ "retention.bytes": "100000" })
    })

    it("BROKER resources and malformed requests get per-resource errors", async () => {
      const r = await broker.request(33, 2, {
        resources: [
          { resourceType: BROKER, resourceName: "3", configs: [{ name: "log.retention.ms", value: "1" }] },
          { resourceType: BROKER, resourceName: "4", configs: [] },
          { resourceType: BROKER, resourceName: "", configs: [] },
          { resourceType: TOPIC, resourceName: "cfg", configs: [{ name: "retention.ms", value: "1" }, { name: "retention.ms", value: "2" }] },
          { resourceType: TOPIC, resourceName: "cfg-alter", configs: [{ name: "retention.ms", value: null }] },
          { resourceType: TOPIC, resourceName: "dup", configs: [] },
          { resourceType: TOPIC, resourceName: "dup", configs: [] }
        ],
        validateOnly: false
      })
      expect(r.responses.map((x) => x.errorCode)).toEqual([
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.NONE,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST
      ])
      expect(r.responses[0]!.errorMessage).toContain("Cannot update these configs dynamically: log.retention.ms")
      expect(r.responses[1]!.errorMessage).toBe("Unexpected broker id, expected 3, but received 4")
      expect(r.responses[3]!.errorMessage).toBe("Error due to duplicate config keys")
      expect(r.responses[4]!.errorMessage).toBe("Null value not supported for : retention.ms")
      expect(r.responses[5]!.errorMessage).toBe("Each resource must appear at most once.")
      expect(await overrides("cfg")).toEqual({ "max.message.bytes": "2048" })
    })
  })

  describe("IncrementalAlterConfigs", () => {
    it("v0 SET and DELETE leave other overrides alone", async () => {
      const r = await broker.request(44, 0, {
        resources: [{
          resourceType: TOPIC,
          resourceName: "cfg-inc",
          configs: [
            { name: "retention.ms", configOperation: OP.SET, value: "1000" },
            { name: "segment.ms", configOperation: OP.SET, value: "2000" }
          ]
        }],
        validateOnly: false
      })
      expect(r.responses).toEqual([{ errorCode: 0, errorMessage: null, resourceType: TOPIC, resourceName: "cfg-inc" }])
      const r2 = await broker.request(44, 1, {
        resources: [{
          resourceType: TOPIC,
          resourceName: "cfg-inc",
          configs: [
            { name: "retention.ms", configOperation: OP.DELETE, value: null },
            { name: "retention.bytes", configOperation: OP.SET, value: "5000" },
            { name: "not.a.config", configOperation: OP.DELETE, value: null }
          ]
        }],
        validateOnly: false
      })
      expect(r2.responses[0]!.errorCode).toBe(ErrorCode.NONE)
      expect(await overrides("cfg-inc")).toEqual({ "segment.ms": "2000", "retention.bytes": "5000" })
    })

    it("v1 APPEND/SUBTRACT on list configs only; validateOnly; errors", async () => {
      const append = await broker.request(44, 1, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg-inc", configs: [{ name: "cleanup.policy", configOperation: OP.APPEND, value: "delete" }] }],
        validateOnly: false
      })
      expect(append.responses[0]!.errorCode).toBe(ErrorCode.NONE)
      expect((await overrides("cfg-inc"))["cleanup.policy"]).toBe("delete")
      const compact = await broker.request(44, 1, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg-inc", configs: [{ name: "cleanup.policy", configOperation: OP.APPEND, value: "compact" }] }],
        validateOnly: false
      })
      expect(compact.responses[0]!.errorCode).toBe(ErrorCode.INVALID_CONFIG)
      expect((await overrides("cfg-inc"))["cleanup.policy"]).toBe("delete")
      // SUBTRACT removes listed values only; emptying the list is an invalid cleanup.policy here
      const subtract = await broker.request(44, 1, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg-inc", configs: [{ name: "cleanup.policy", configOperation: OP.SUBTRACT, value: "compact" }] }],
        validateOnly: false
      })
      expect(subtract.responses[0]!.errorCode).toBe(ErrorCode.NONE)
      const empty = await broker.request(44, 1, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg-inc", configs: [{ name: "cleanup.policy", configOperation: OP.SUBTRACT, value: "delete" }] }],
        validateOnly: false
      })
      expect(empty.responses[0]!.errorCode).toBe(ErrorCode.INVALID_CONFIG)
      expect((await overrides("cfg-inc"))["cleanup.policy"]).toBe("delete")
      const single = async (resource: { resourceType: number; resourceName: string; configs: Array<{ name: string; configOperation: number; value: string | null }> }) =>
        (await broker.request(44, 1, { resources: [resource], validateOnly: false })).responses[0]!
      const notList = [
        await single({ resourceType: TOPIC, resourceName: "cfg-inc", configs: [{ name: "retention.ms", configOperation: OP.APPEND, value: "1" }] }),
        await single({ resourceType: TOPIC, resourceName: "cfg-inc-x", configs: [{ name: "retention.ms", configOperation: OP.SET, value: "1" }] }),
        await single({ resourceType: TOPIC, resourceName: "cfg", configs: [{ name: "retention.ms", configOperation: 9, value: "1" }] }),
        await single({ resourceType: BROKER, resourceName: "3", configs: [{ name: "log.retention.ms", configOperation: OP.SET, value: "1" }] }),
        await single({ resourceType: TOPIC, resourceName: "cfg", configs: [{ name: "segment.ms", configOperation: OP.SUBTRACT, value: "1" }] }),
        await single({ resourceType: TOPIC, resourceName: "cfg", configs: [{ name: "segment.ms", configOperation: OP.SET, value: null }] })
      ]
      expect(notList.map((x) => x.errorCode)).toEqual([
        ErrorCode.INVALID_CONFIG,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_CONFIG,
        ErrorCode.INVALID_REQUEST
      ])
      expect(notList[0]!.errorMessage).toBe("Can't APPEND to key retention.ms because its type is not LIST.")
      expect(notList[2]!.errorMessage).toBe("Unknown operations type 9")
      expect(notList[4]!.errorMessage).toBe("Can't SUBTRACT to key segment.ms because its type is not LIST.")
      expect(notList[5]!.errorMessage).toBe("Null value not supported for : segment.ms")
      expect(await overrides("cfg")).toEqual({ "max.message.bytes": "2048" })
      const dup = await broker.request(44, 1, {
        resources: [
          { resourceType: TOPIC, resourceName: "cfg", configs: [{ name: "retention.ms", configOperation: OP.SET, value: "1" }] },
          { resourceType: TOPIC, resourceName: "cfg", configs: [] }
        ],
        validateOnly: false
      })
      expect(dup.responses.map((x) => x.errorMessage)).toEqual(["Each resource must appear at most once.", "Each resource must appear at most once."])
      const before = await overrides("cfg-inc")
      const validate = await broker.request(44, 1, {
        resources: [{ resourceType: TOPIC, resourceName: "cfg-inc", configs: [{ name: "segment.ms", configOperation: OP.DELETE, value: null }] }],
        validateOnly: true
      })
      expect(validate.responses[0]!.errorCode).toBe(ErrorCode.NONE)
      expect(await overrides("cfg-inc")).toEqual(before)
    })

    it("BROKER: deleting (nothing dynamic to delete) succeeds, setting is refused", async () => {
      const r = await broker.request(44, 1, {
        resources: [
          { resourceType: BROKER, resourceName: "", configs: [{ name: "log.retention.ms", configOperation: OP.DELETE, value: null }] },
          { resourceType: BROKER, resourceName: "3", configs: [{ name: "num.partitions", configOperation: OP.SET, value: "3" }] }
        ],
        validateOnly: false
      })
      expect(r.responses[0]!.errorCode).toBe(ErrorCode.NONE)
      expect(r.responses[1]).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST })
      expect(r.responses[1]!.errorMessage).toContain("num.partitions")
    })
  })
})
