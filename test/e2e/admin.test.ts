/**
 * Every admin API through kafkajs's AdminClient against a broker process,
 * plus seeking by timestamp (ListOffsets) and DeleteRecords.
 */
import { ConfigResourceTypes, Kafka, logLevel } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type BrokerProcess, startBroker } from "../support/broker.js"

describe("admin APIs through kafkajs (real process)", () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    broker = await startBroker({ args: ["--auto-create-topics", "false"] })
  })
  afterAll(async () => {
    await broker.cleanup()
  })

  it("creates, describes, alters, grows, trims and deletes topics", async () => {
    const kafka = new Kafka({ clientId: "admin-e2e", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    try {
      const cluster = await admin.describeCluster()
      expect(cluster.brokers).toEqual([{ nodeId: 1, host: "127.0.0.1", port: broker.port }])
      expect(cluster.clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/)

      expect(
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: "orders", numPartitions: 2, configEntries: [{ name: "retention.ms", value: "3600000" }] }]
        })
      ).toBe(true)
      await expect(admin.createTopics({ topics: [{ topic: "orders" }] })).resolves.toBe(false)
      await expect(
        admin.createTopics({ topics: [{ topic: "compacted", configEntries: [{ name: "cleanup.policy", value: "compact" }] }] })
      ).rejects.toThrow()
      expect(await admin.listTopics()).toEqual(["orders"])

      const describe = async () =>
        (await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: "orders" }] }))
          .resources[0]!.configEntries
      const retention = (entries: Awaited<ReturnType<typeof describe>>) => entries.find((e) => e.configName === "retention.ms")
      expect(retention(await describe())).toMatchObject({ configValue: "3600000", isDefault: false })
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: "orders", configEntries: [{ name: "retention.ms", value: "7200000" }] }]
      })
      expect(retention(await describe())).toMatchObject({ configValue: "7200000" })

      await admin.createPartitions({ topicPartitions: [{ topic: "orders", count: 4 }] })
      const md = await admin.fetchTopicMetadata({ topics: ["orders"] })
      expect(md.topics[0]!.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2, 3])
      for (const p of md.topics[0]!.partitions) expect(p).toMatchObject({ leader: 1, replicas: [1], isr: [1] })

      // Seek by timestamp, then trim with DeleteRecords.
      const producer = kafka.producer()
      await producer.connect()
      const t0 = Date.now() - 10_000
      for (let i = 0; i < 10; i++) {
        await producer.send({ topic: "orders", acks: -1, messages: [{ partition: 0, value: `m${i}`, timestamp: String(t0 + i * 1000) }] })
      }
      await producer.disconnect()
      const offsets = await admin.fetchTopicOffsets("orders")
      expect(offsets.find((o) => o.partition === 0)).toMatchObject({ low: "0", high: "10" })
      const byTime = await admin.fetchTopicOffsetsByTimestamp("orders", t0 + 4500)
      expect(byTime.find((o) => o.partition === 0)!.offset).toBe("5")
      await admin.deleteTopicRecords({ topic: "orders", partitions: [{ partition: 0, offset: "3" }] })
      const trimmed = await admin.fetchTopicOffsets("orders")
      expect(trimmed.find((o) => o.partition === 0)).toMatchObject({ low: "3", high: "10" })

      await admin.deleteTopics({ topics: ["orders"] })
      expect(await admin.listTopics()).toEqual([])
    } finally {
      await admin.disconnect()
    }
  })
})
