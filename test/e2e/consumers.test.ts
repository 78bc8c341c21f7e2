/**
 * Produce and consume through real npm clients with consumer groups, on a
 * broker process: 100,000 keyed messages with headers, each batch under the
 * next compression codec in turn, consumed in order per partition; committed
 * offsets survive a broker restart; seeking by offset.
 */
import { Consumer, MessagesStreamModes, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka"
import { CompressionTypes, type EachBatchPayload, Kafka, logLevel } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import "../support/kafkajsCodecs.js"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { waitFor } from "../support/wait.js"


const TOTAL = 100_000
const BATCH = 1000
const KEYS = 97

const message = (i: number) => ({ key: `key-${i % KEYS}`, value: `value-${i}`, headers: { seq: String(i), codec: String(Math.floor(i / BATCH) % 5) } })

/** Checks that every key's values arrive in production order, exactly once. */
const checkOrder = (received: Array<{ key: string; value: string }>) => {
  const lastPerKey = new Map<string, number>()
  const seen = new Set<string>()
  for (const { key, value } of received) {
    const n = Number(value.slice("value-".length))
    const last = lastPerKey.get(key) ?? -1
    if (n <= last) throw new Error(`${key}: ${value} after value-${last}`)
    lastPerKey.set(key, n)
    if (seen.has(value)) throw new Error(`duplicate ${value}`)
    seen.add(value)
  }
  return seen.size
}

describe("consumer groups with real clients (real process)", () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    broker = await startBroker({ args: ["--num-partitions", "3"] })
  })
  afterAll(async () => {
    await broker.cleanup()
  })

  it("kafkajs: 100,000 keyed messages with headers under rotating codecs, consumed in order by a group", async () => {
    const kafka = new Kafka({ clientId: "e2e-kafkajs", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const producer = kafka.producer({ idempotent: true })
    await producer.connect()
    const codecs = [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD]
    for (let b = 0; b < TOTAL / BATCH; b++) {
      const messages = Array.from({ length: BATCH }, (_, i) => message(b * BATCH + i))
      await producer.send({ topic: "kjs-events", acks: -1, compression: codecs[b % codecs.length]!, messages })
    }
    await producer.disconnect()

    const received: Array<{ key: string; value: string; headers: Record<string, string> }> = []
    const consumer = kafka.consumer({ groupId: "kjs-group", sessionTimeout: 10_000, heartbeatInterval: 1000 })
    await consumer.connect()
    await consumer.subscribe({ topic: "kjs-events", fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch }: EachBatchPayload) => {
        for (const m of batch.messages) {
          received.push({
            key: m.key!.toString(),
            value: m.value!.toString(),
            headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)]))
          })
        }
      }
    })
    await waitFor(() => received.length >= TOTAL, 120_000, "all messages")
    await consumer.disconnect()
    expect(received.length).toBe(TOTAL)
    expect(checkOrder(received)).toBe(TOTAL)
    const sample = received.find((r) => r.value === "value-12345")!
    expect(sample).toEqual({ key: `key-${12345 % KEYS}`, value: "value-12345", headers: { seq: "12345", codec: "2" } })
  })

  it("committed offsets survive a broker restart, and seek by offset works", async () => {
    const kafka = new Kafka({ clientId: "e2e-resume", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 20 } })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic: "resume", acks: -1, messages: Array.from({ length: 30 }, (_, i) => ({ partition: 0, value: `r${i}` })) })
    const read = async (groupId: string, from: { offset?: string } = {}) => {
      const values: Array<string> = []
      const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000 })
      await consumer.connect()
      await consumer.subscribe({ topic: "resume", fromBeginning: true })
      await consumer.run({ eachMessage: async ({ message: m }) => void values.push(m.value!.toString()) })
      if (from.offset !== undefined) consumer.seek({ topic: "resume", partition: 0, offset: from.offset })
      return { values, consumer }
    }
    const first = await read("resume-group")
    await waitFor(() => first.values.length >= 30, 60_000, "first read")
    await first.consumer.disconnect() // commits on the way out
    await broker.stop()
    await broker.restart()
    await producer.send({ topic: "resume", acks: -1, messages: [{ partition: 0, value: "after-restart" }] })
    const second = await read("resume-group")
    await waitFor(() => second.values.length >= 1, 60_000, "second read")
    await new Promise((r) => setTimeout(r, 500))
    await second.consumer.disconnect()
    expect(second.values).toEqual(["after-restart"])
    const seeking = await read("seek-group", { offset: "25" })
    await waitFor(() => seeking.values.includes("after-restart"), 60_000, "seek read")
    await seeking.consumer.disconnect()
    expect(seeking.values[0]).toBe("r25")
    await producer.disconnect()
  })

  it("@platformatic/kafka: produce under each codec and consume through a group", async () => {
    const producer = new Producer({
      clientId: "e2e-pk",
      bootstrapBrokers: [broker.bootstrap],
      serializers: stringSerializers,
      idempotent: true,
      autocreateTopics: true
    })
    const codecs = ["none", "gzip", "snappy", "lz4"] as const
    const total = 20_000
    for (let b = 0; b < total / BATCH; b++) {
      await producer.send({
        acks: -1,
        compression: codecs[b % codecs.length]!,
        messages: Array.from({ length: BATCH }, (_, i) => {
          const m = message(b * BATCH + i)
          return { topic: "pk-events", key: m.key, value: m.value, headers: m.headers }
        })
      })
    }
    await producer.close()
    const consumer = new Consumer({
      clientId: "e2e-pk-consumer",
      groupId: "pk-group",
      bootstrapBrokers: [broker.bootstrap],
      deserializers: stringDeserializers,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000
    })
    const stream = await consumer.consume({ topics: ["pk-events"], mode: MessagesStreamModes.EARLIEST })
    const received: Array<{ key: string; value: string }> = []
    for await (const m of stream) {
      received.push({ key: m.key as string, value: m.value as string })
      if (received.length >= total) break
    }
    await stream.close()
    await consumer.close()
    expect(checkOrder(received)).toBe(total)
  })
})
