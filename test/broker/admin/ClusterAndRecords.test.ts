import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CLUSTER_AUTHORIZED_OPERATIONS } from "../../../src/broker/handlers/common.js"
import { ErrorCode } from "../../../src/protocol/errorCodes.js"
import { type AdminBroker, batch, startAdminBroker } from "./adminBroker.js"

const OMITTED = -2147483648

describe("DescribeCluster and DeleteRecords (in process)", () => {
  let broker: AdminBroker
  beforeAll(async () => {
    broker = await startAdminBroker({ advertisedHost: "kafka.example", advertisedPort: 19092 })
  })
  afterAll(async () => {
    await broker.close()
  })

  describe("DescribeCluster", () => {
    it("v0 describes this node as the only broker and the controller", async () => {
      const r = await broker.request(60, 0, { includeClusterAuthorizedOperations: false })
      expect(r).toMatchObject({
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        clusterId: await broker.clusterId(),
        controllerId: broker.nodeId,
        brokers: [{ brokerId: broker.nodeId, host: "kafka.example", port: 19092, rack: null }],
        clusterAuthorizedOperations: OMITTED
      })
    })

    it("v1 brokers endpoint, authorized operations when asked", async () => {
      const r = await broker.request(60, 1, { includeClusterAuthorizedOperations: true, endpointType: 1 })
      expect(r).toMatchObject({
        errorCode: ErrorCode.NONE,
        endpointType: 1,
        clusterId: await broker.clusterId(),
        brokers: [{ brokerId: broker.nodeId, host: "kafka.example", port: 19092 }],
        clusterAuthorizedOperations: CLUSTER_AUTHORIZED_OPERATIONS
      })
    })

    it("v1 rejects the controllers endpoint and unknown endpoint types as Kafka's broker does", async () => {
      const controllers = await broker.request(60, 1, { includeClusterAuthorizedOperations: false, endpointType: 2 })
      expect(controllers).toMatchObject({
        errorCode: 114, // MISMATCHED_ENDPOINT_TYPE
        errorMessage: "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
        clusterId: "",
        brokers: []
      })
      const unknown = await broker.request(60, 1, { includeClusterAuthorizedOperations: false, endpointType: 3 })
      expect(unknown).toMatchObject({ errorCode: 115, errorMessage: "Unsupported endpoint type 3", brokers: [] })
    })
  })

  describe("DeleteRecords", () => {
    const fetchAt = async (topic: string, offset: bigint) => {
      const f = await broker.request(1, 12, {
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 20,
        topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }]
      })
      return f.responses[0]!.partitions[0]!
    }

    beforeAll(async () => {
      const c = await broker.request(19, 7, {
        topics: [{ name: "dr", numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
        timeoutMs: 1000
      })
      expect(c.topics[0]!.errorCode).toBe(ErrorCode.NONE)
      for (let i = 0; i < 3; i++) {
        const p = await broker.request(0, 9, {
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name: "dr", partitionData: [{ index: 0, records: batch(4) }, { index: 1, records: batch(2) }] }]
        })
        expect(p.responses[0]!.partitionResponses.every((x) => x.errorCode === 0)).toBe(true)
      }
    })

    it("v0 moves the log start; a fetch below it is OFFSET_OUT_OF_RANGE", async () => {
      const r = await broker.request(21, 0, { topics: [{ name: "dr", partitions: [{ partitionIndex: 0, offset: 6n }] }], timeoutMs: 1000 })
      expect(r.topics).toEqual([{ name: "dr", partitions: [{ partitionIndex: 0, lowWatermark: 6n, errorCode: ErrorCode.NONE }] }])
      const below = await fetchAt("dr", 3n)
      expect(below.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE)
      expect(below.logStartOffset).toBe(6n)
      const at = await fetchAt("dr", 6n)
      expect(at.errorCode).toBe(ErrorCode.NONE)
      expect(at.logStartOffset).toBe(6n)
      expect(at.records!.length).toBeGreaterThan(0)
      // an offset at or below the start changes nothing
      const again = await broker.request(21, 1, { topics: [{ name: "dr", partitions: [{ partitionIndex: 0, offset: 2n }] }], timeoutMs: 1000 })
      expect(again.topics[0]!.partitions[0]).toEqual({ partitionIndex: 0, lowWatermark: 6n, errorCode: ErrorCode.NONE })
    })

    it("v2: -1 means the high watermark; per-partition errors", async () => {
      const r = await broker.request(21, 2, {
        topics: [
          { name: "dr", partitions: [{ partitionIndex: 1, offset: -1n }, { partitionIndex: 0, offset: 13n }, { partitionIndex: 7, offset: 0n }, { partitionIndex: 0, offset: -2n }] },
          { name: "dr-missing", partitions: [{ partitionIndex: 0, offset: 0n }] }
        ],
        timeoutMs: 1000
      })
      expect(r.topics[0]!.partitions).toEqual([
        { partitionIndex: 1, lowWatermark: 6n, errorCode: ErrorCode.NONE },
        { partitionIndex: 0, lowWatermark: -1n, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE },
        { partitionIndex: 7, lowWatermark: -1n, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION },
        { partitionIndex: 0, lowWatermark: -1n, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE }
      ])
      expect(r.topics[1]).toEqual({ name: "dr-missing", partitions: [{ partitionIndex: 0, lowWatermark: -1n, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] })
      const p1 = await broker.request(1, 12, {
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 20,
        topics: [{ topic: "dr", partitions: [{ partition: 1, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
      })
      expect(p1.responses[0]!.partitions[0]).toMatchObject({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, logStartOffset: 6n, highWatermark: 6n })
      // the partition still takes writes after the offsets it deleted
      const more = await broker.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "dr", partitionData: [{ index: 1, records: batch(1) }] }]
      })
      expect(more.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 6n, logStartOffset: 6n })
    })
  })
})
