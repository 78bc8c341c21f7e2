/**
 * Real npm clients produce to a broker process under every compression codec
 * they support; the partition is then read back over the wire and must hold
 * exactly what each client sent (keys, values, headers, order).
 */
import { Producer, stringSerializers } from "@platformatic/kafka"
import { CompressionTypes, Kafka, logLevel } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import "../support/kafkajsCodecs.js"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { connectRaw, readPartition } from "../support/rawClient.js"


const COUNT = 2000

const expected = (prefix: string) =>
  Array.from({ length: COUNT }, (_, i) => ({ key: `${prefix}-k${i}`, value: `${prefix}-v${i}-${"x".repeat(i % 50)}`, headers: { seq: String(i), src: prefix } }))

describe("npm clients produce under every codec (real process)", () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    broker = await startBroker()
  })
  afterAll(async () => {
    await broker.cleanup()
  })

  const readBack = async (topic: string) => {
    const client = await connectRaw(broker.port)
    try {
      return (await readPartition(client, topic)).map(({ key, value, headers }) => ({ key, value, headers }))
    } finally {
      client.close()
    }
  }

  const kafkajsCodecs = [
    ["none", CompressionTypes.None],
    ["gzip", CompressionTypes.GZIP],
    ["snappy", CompressionTypes.Snappy],
    ["lz4", CompressionTypes.LZ4],
    ["zstd", CompressionTypes.ZSTD]
  ] as const

  it("kafkajs", async () => {
    const kafka = new Kafka({ clientId: "codecs", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const producer = kafka.producer({ idempotent: true })
    await producer.connect()
    for (const [name, compression] of kafkajsCodecs) {
      const msgs = expected(`kafkajs-${name}`)
      for (let i = 0; i < msgs.length; i += 500) {
        await producer.send({ topic: `kafkajs-${name}`, acks: -1, compression, messages: msgs.slice(i, i + 500) })
      }
      expect(await readBack(`kafkajs-${name}`), name).toEqual(msgs)
    }
    await producer.disconnect()
  })

  it("@platformatic/kafka", async () => {
    // zstd in this client needs zlib's zstd, which Node 20 lacks.
    const codecs = ["none", "gzip", "snappy", "lz4"] as const
    for (const compression of codecs) {
      const producer = new Producer({
        clientId: "codecs",
        bootstrapBrokers: [broker.bootstrap],
        serializers: stringSerializers,
        compression,
        idempotent: true,
        autocreateTopics: true
      })
      const topic = `platformatic-${compression}`
      const msgs = expected(topic)
      for (let i = 0; i < msgs.length; i += 500) {
        await producer.send({
          acks: -1,
          messages: msgs.slice(i, i + 500).map((m) => ({ topic, partition: 0, key: m.key, value: m.value, headers: m.headers }))
        })
      }
      await producer.close()
      expect(await readBack(topic), compression).toEqual(msgs)
    }
  })
})
