import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ErrorCode } from "../../../src/protocol/errorCodes.js"
import { type AdminBroker, batch, startAdminBroker } from "./adminBroker.js"

const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"

describe("admin topic APIs (in process)", () => {
  let broker: AdminBroker
  beforeAll(async () => {
    broker = await startAdminBroker({ numPartitions: 2 })
  })
  afterAll(async () => {
    await broker.close()
  })

  const metadataOf = async (name: string) => {
    const md = await broker.request(3, 12, { topics: [{ name }], allowAutoTopicCreation: false })
    return md.topics[0]!
  }

  describe("CreateTopics", () => {
    it("v0 creates a topic with explicit partitions and replication factor", async () => {
      const r = await broker.request(19, 0, {
        topics: [{ name: "ct-v0", numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] }],
        timeoutMs: 1000
      })
      expect(r.topics).toHaveLength(1)
      expect(r.topics[0]).toMatchObject({ name: "ct-v0", errorCode: ErrorCode.NONE })
      const md = await metadataOf("ct-v0")
      expect(md.errorCode).toBe(ErrorCode.NONE)
      expect(md.partitions).toHaveLength(3)
    })

    it("v7 uses the broker defaults for -1 and returns id, counts and the topic's configs", async () => {
      const r = await broker.request(19, 7, {
        topics: [{ name: "ct-v7", numPartitions: -1, replicationFactor: -1, assignments: [], configs: [{ name: "retention.ms", value: "12345" }] }],
        timeoutMs: 1000,
        validateOnly: false
      })
      const t = r.topics[0]!
      expect(t.errorCode).toBe(ErrorCode.NONE)
      expect(t.errorMessage).toBeNull()
      expect(t.numPartitions).toBe(2) // num.partitions of this broker
      expect(t.replicationFactor).toBe(1)
      const md = await metadataOf("ct-v7")
      expect(t.topicId).toBe(md.topicId)
      expect(t.topicId).not.toBe(ZERO_UUID)
      const names = t.configs!.map((c) => c.name)
      expect(names).toEqual([...names].sort())
      expect(t.configs!.find((c) => c.name === "retention.ms")).toEqual({
        name: "retention.ms",
        value: "12345",
        readOnly: false,
        configSource: 1, // DYNAMIC_TOPIC_CONFIG
        isSensitive: false
      })
      expect(t.configs!.find((c) => c.name === "cleanup.policy")).toMatchObject({ value: "delete", configSource: 5, readOnly: false })
      // segment.bytes comes from the broker's log.segment.bytes, left at its default here
      expect(t.configs!.find((c) => c.name === "segment.bytes")).toMatchObject({ value: String(1024 * 1024 * 1024), configSource: 5 })
    })

    it("accepts an explicit replica assignment", async () => {
      const r = await broker.request(19, 5, {
        topics: [{
          name: "ct-assigned",
          numPartitions: -1,
          replicationFactor: -1,
          assignments: [{ partitionIndex: 1, brokerIds: [broker.nodeId] }, { partitionIndex: 0, brokerIds: [broker.nodeId] }],
          configs: []
        }],
        timeoutMs: 1000
      })
      expect(r.topics[0]).toMatchObject({ errorCode: ErrorCode.NONE, numPartitions: 2, replicationFactor: 1 })
    })

    it("rejects bad assignments with Kafka's codes", async () => {
      const r = await broker.request(19, 7, {
        topics: [
          { name: "ct-a1", numPartitions: 1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [broker.nodeId] }], configs: [] },
          { name: "ct-a2", numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [99] }], configs: [] },
          { name: "ct-a3", numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 1, brokerIds: [broker.nodeId] }], configs: [] },
          { name: "ct-a4", numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [broker.nodeId, broker.nodeId] }], configs: [] }
        ],
        timeoutMs: 1000
      })
      expect(r.topics.map((t) => [t.name, t.errorCode])).toEqual([
        ["ct-a1", ErrorCode.INVALID_REQUEST],
        ["ct-a2", ErrorCode.INVALID_REPLICA_ASSIGNMENT],
        ["ct-a3", ErrorCode.INVALID_REPLICA_ASSIGNMENT],
        ["ct-a4", ErrorCode.INVALID_REPLICA_ASSIGNMENT]
      ])
      expect(r.topics[1]!.errorMessage).toBe("The manual partition assignment includes broker 99, but no such broker is registered.")
      for (const n of ["ct-a1", "ct-a2", "ct-a3", "ct-a4"]) expect((await metadataOf(n)).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    })

    it("per-topic errors: exists, bad name, bad counts, replication factor, configs", async () => {
      const col = await broker.request(19, 2, {
        topics: [{ name: "ct.col", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
        timeoutMs: 1000
      })
      expect(col.topics[0]!.errorCode).toBe(ErrorCode.NONE)
      const r = await broker.request(19, 7, {
        topics: [
          { name: "ct-v0", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
          { name: "bad name!", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
          { name: "ct-zero", numPartitions: 0, replicationFactor: 1, assignments: [], configs: [] },
          { name: "ct-rf3", numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] },
          { name: "ct-unknown-cfg", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: "no.such.config", value: "1" }] },
          { name: "ct-compact", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: "cleanup.policy", value: "compact" }] },
          { name: "ct-null-cfg", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: "retention.ms", value: null }] },
          { name: "ct-ok", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
          { name: "__cluster_metadata", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
          { name: "ct_col", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }
        ],
        timeoutMs: 1000
      })
      const byName = new Map(r.topics.map((t) => [t.name, t]))
      expect(byName.get("ct-v0")).toMatchObject({ errorCode: ErrorCode.TOPIC_ALREADY_EXISTS, errorMessage: "Topic 'ct-v0' already exists." })
      expect(byName.get("bad name!")!.errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION)
      expect(byName.get("ct-zero")!.errorCode).toBe(ErrorCode.INVALID_PARTITIONS)
      expect(byName.get("ct-rf3")!.errorCode).toBe(ErrorCode.INVALID_REPLICATION_FACTOR)
      expect(byName.get("ct-unknown-cfg")).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG })
      expect(byName.get("ct-unknown-cfg")!.errorMessage).toContain("no.such.config")
      expect(byName.get("ct-compact")!.errorCode).toBe(ErrorCode.INVALID_CONFIG)
      expect(byName.get("ct-compact")!.errorMessage).toContain("compact is not supported")
      expect(byName.get("ct-null-cfg")).toMatchObject({
        errorCode: ErrorCode.INVALID_CONFIG,
        errorMessage: "Null value not supported for topic configs: retention.ms"
      })
      expect(byName.get("ct-ok")!.errorCode).toBe(ErrorCode.NONE)
      expect(byName.get("ct_col")).toMatchObject({
        errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
        errorMessage: "Topic 'ct_col' collides with existing topic: ct.col"
      })
      expect(byName.get("__cluster_metadata")).toMatchObject({
        errorCode: ErrorCode.INVALID_REQUEST,
        errorMessage: "Creation of internal topic __cluster_metadata is prohibited."
      })
      // v5+ error results carry -1/-1
      expect(byName.get("ct-zero")).toMatchObject({ numPartitions: -1, replicationFactor: -1, topicId: ZERO_UUID })
      expect((await metadataOf("ct-compact")).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    })

    it("duplicate names get one INVALID_REQUEST result and nothing is created", async () => {
      const t = { name: "ct-dup", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }
      const r = await broker.request(19, 4, { topics: [t, { ...t, numPartitions: 2 }, { ...t, name: "ct-nodup" }], timeoutMs: 1000 })
      expect(r.topics).toEqual([
        expect.objectContaining({ name: "ct-dup", errorCode: ErrorCode.INVALID_REQUEST, errorMessage: "Duplicate topic name." }),
        expect.objectContaining({ name: "ct-nodup", errorCode: ErrorCode.NONE })
      ])
      expect((await metadataOf("ct-dup")).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    })

    it("validateOnly (v1+) checks and answers like a creation but creates nothing", async () => {
      const r = await broker.request(19, 7, {
        topics: [
          { name: "ct-validate", numPartitions: 4, replicationFactor: 1, assignments: [], configs: [{ name: "segment.ms", value: "1000" }] },
          { name: "ct-validate-bad", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: "segment.ms", value: "x" }] }
        ],
        timeoutMs: 1000,
        validateOnly: true
      })
      expect(r.topics[0]).toMatchObject({ errorCode: ErrorCode.NONE, numPartitions: 4, replicationFactor: 1 })
      expect(r.topics[0]!.configs!.find((c) => c.name === "segment.ms")).toMatchObject({ value: "1000", configSource: 1 })
      expect(r.topics[1]!.errorCode).toBe(ErrorCode.INVALID_CONFIG)
      expect((await metadataOf("ct-validate")).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      const v1 = await broker.request(19, 1, {
        topics: [{ name: "ct-validate", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
        timeoutMs: 1000,
        validateOnly: true
      })
      expect(v1.topics[0]).toMatchObject({ errorCode: ErrorCode.NONE, errorMessage: null })
      expect((await metadataOf("ct-validate")).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    })
  })

  describe("DeleteTopics", () => {
    const create = (name: string, partitions = 1) =>
      broker.request(19, 7, { topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 1000 })

    it("v0 deletes by name; an unknown name is UNKNOWN_TOPIC_OR_PARTITION", async () => {
      await create("dt-v0")
      const r = await broker.request(20, 0, { topicNames: ["dt-v0", "dt-missing"], timeoutMs: 1000 })
      const byName = new Map(r.responses.map((x) => [x.name, x.errorCode]))
      expect(byName.get("dt-v0")).toBe(ErrorCode.NONE)
      expect(byName.get("dt-missing")).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      expect((await metadataOf("dt-v0")).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    })

    it("v6 deletes by id and by name, with per-topic errors", async () => {
      const created = await create("dt-id")
      const id = created.topics[0]!.topicId!
      await create("dt-name")
      await create("dt-both")
      const r = await broker.request(20, 6, {
        topics: [
          { topicId: id },
          { name: "dt-name", topicId: ZERO_UUID },
          { topicId: "AAAAAAAAAAAAAAAAAAAAAg" },
          { name: "dt-both", topicId: id },
          { name: null, topicId: ZERO_UUID },
          { name: "dt-gone", topicId: ZERO_UUID }
        ],
        timeoutMs: 1000
      })
      const find = (pred: (x: (typeof r.responses)[number]) => boolean) => r.responses.find(pred)!
      expect(find((x) => x.topicId === id && x.name === "dt-id")).toMatchObject({ errorCode: ErrorCode.NONE, errorMessage: null })
      expect(find((x) => x.name === "dt-name")).toMatchObject({ errorCode: ErrorCode.NONE })
      expect(find((x) => x.name === "dt-name").topicId).not.toBe(ZERO_UUID)
      expect(find((x) => x.topicId === "AAAAAAAAAAAAAAAAAAAAAg")).toMatchObject({ name: null, errorCode: ErrorCode.UNKNOWN_TOPIC_ID })
      expect(find((x) => x.name === "dt-both")).toMatchObject({
        errorCode: ErrorCode.INVALID_REQUEST,
        errorMessage: "You may not specify both topic name and topic id."
      })
      expect(find((x) => x.name === null && x.topicId === ZERO_UUID)).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST })
      expect(find((x) => x.name === "dt-gone")).toMatchObject({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION })
      expect((await metadataOf("dt-id")).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      expect((await metadataOf("dt-both")).errorCode).toBe(ErrorCode.NONE)
    })

    it("a duplicate name is INVALID_REQUEST and is not deleted", async () => {
      await create("dt-dup")
      const r = await broker.request(20, 5, { topicNames: ["dt-dup", "dt-dup"], timeoutMs: 1000 })
      expect(r.responses).toEqual([expect.objectContaining({ name: "dt-dup", errorCode: ErrorCode.INVALID_REQUEST, errorMessage: "Duplicate topic name." })])
      expect((await metadataOf("dt-dup")).errorCode).toBe(ErrorCode.NONE)
    })

    it("deleting removes the data: a topic re-created under the same name is empty", async () => {
      await create("dt-data")
      const produced = await broker.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "dt-data", partitionData: [{ index: 0, records: batch(5) }] }]
      })
      expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE)
      const del = await broker.request(20, 4, { topicNames: ["dt-data"], timeoutMs: 1000 })
      expect(del.responses[0]!.errorCode).toBe(ErrorCode.NONE)
      await create("dt-data")
      const f = await broker.request(1, 12, {
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 20,
        topics: [{ topic: "dt-data", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
      })
      const p = f.responses[0]!.partitions[0]!
      expect(p.errorCode).toBe(ErrorCode.NONE)
      expect(p.highWatermark).toBe(0n)
      expect(p.records === null || p.records.length === 0).toBe(true)
    })
  })

  describe("CreatePartitions", () => {
    const create = (name: string, partitions = 1) =>
      broker.request(19, 7, { topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 1000 })

    it("v0 adds partitions that can be produced to at once", async () => {
      await create("cp-v0", 1)
      const r = await broker.request(37, 0, { topics: [{ name: "cp-v0", count: 3, assignments: null }], timeoutMs: 1000, validateOnly: false })
      expect(r.results).toEqual([{ name: "cp-v0", errorCode: ErrorCode.NONE, errorMessage: null }])
      expect((await metadataOf("cp-v0")).partitions).toHaveLength(3)
      const produced = await broker.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "cp-v0", partitionData: [{ index: 2, records: batch(1) }] }]
      })
      expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE)
    })

    it("v3 with assignments, validateOnly, and the error paths", async () => {
      await create("cp-v3", 2)
      const r = await broker.request(37, 3, {
        topics: [
          { name: "cp-v3", count: 3, assignments: [{ brokerIds: [broker.nodeId] }] },
          { name: "cp-missing", count: 3, assignments: null },
          { name: "cp-v0", count: 3, assignments: null },
          { name: "cp-v0-less", count: 1, assignments: null }
        ],
        timeoutMs: 1000,
        validateOnly: false
      })
      expect(r.results[0]).toEqual({ name: "cp-v3", errorCode: ErrorCode.NONE, errorMessage: null })
      expect(r.results[1]).toEqual({ name: "cp-missing", errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null })
      expect(r.results[2]).toEqual({ name: "cp-v0", errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: "Topic already has 3 partition(s)." })
      expect(r.results[3]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      expect((await metadataOf("cp-v3")).partitions).toHaveLength(3)

      const errs = await broker.request(37, 3, {
        topics: [
          { name: "cp-v3", count: 2, assignments: null },
          { name: "cp-v0", count: 5, assignments: [{ brokerIds: [broker.nodeId] }] },
          { name: "ct-v0", count: 4, assignments: [{ brokerIds: [42] }] }
        ],
        timeoutMs: 1000,
        validateOnly: false
      })
      expect(errs.results[0]).toEqual({
        name: "cp-v3",
        errorCode: ErrorCode.INVALID_PARTITIONS,
        errorMessage: "The topic cp-v3 currently has 3 partition(s); 2 would not be an increase."
      })
      expect(errs.results[1]).toEqual({
        name: "cp-v0",
        errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        errorMessage: "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."
      })
      expect(errs.results[2]!.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT)

      const validate = await broker.request(37, 3, {
        topics: [{ name: "cp-v3", count: 10, assignments: null }],
        timeoutMs: 1000,
        validateOnly: true
      })
      expect(validate.results[0]!.errorCode).toBe(ErrorCode.NONE)
      expect((await metadataOf("cp-v3")).partitions).toHaveLength(3)

      const dup = await broker.request(37, 2, {
        topics: [{ name: "cp-v3", count: 5, assignments: null }, { name: "cp-v3", count: 6, assignments: null }],
        timeoutMs: 1000,
        validateOnly: false
      })
      expect(dup.results).toEqual([{ name: "cp-v3", errorCode: ErrorCode.INVALID_REQUEST, errorMessage: "Duplicate topic name." }])
      expect((await metadataOf("cp-v3")).partitions).toHaveLength(3)
    })
  })
})
