/**
 * Hostile frames on some connections while a well-behaved client keeps
 * producing: the broker stays up, closes only the offending connections,
 * and the good client loses nothing.
 */
import { randomBytes } from "node:crypto"
import { Kafka, logLevel } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { connectRaw, readPartition } from "../support/rawClient.js"

const frame = (body: Buffer) => {
  const size = Buffer.alloc(4)
  size.writeInt32BE(body.length)
  return Buffer.concat([size, body])
}

describe("hostile input (real process)", () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    broker = await startBroker({ args: ["--socket-request-max-bytes", String(1 << 20)] })
  })
  afterAll(async () => {
    await broker.cleanup()
  })

  it("survives garbage on other connections while a producer keeps going", async () => {
    const kafka = new Kafka({ clientId: "good", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    let produced = 0
    let stop = false
    const good = (async () => {
      while (!stop) {
        await producer.send({ topic: "steady", acks: -1, messages: [{ key: `k${produced}`, value: `v${produced}` }] })
        produced++
      }
    })()

    const attacks: Array<(c: Awaited<ReturnType<typeof connectRaw>>) => void> = [
      (c) => c.writeRaw(frame(randomBytes(64))), // random body
      (c) => c.writeRaw(Buffer.from([0x7f, 0xff, 0xff, 0xff])), // 2 GiB size prefix
      (c) => c.writeRaw(Buffer.from([0xff, 0xff, 0xff, 0xfe])), // negative size
      (c) => c.writeRaw(frame(Buffer.from([0, 0, 0, 99, 0, 0, 0, 1]))), // unsupported version, truncated header
      (c) => c.writeRaw(frame(Buffer.from([0, 3, 0, 12, 0, 0, 0, 1, 0, 2, 0x61, 0x62, 0, 0xff, 0xff, 0xff, 0x0f]))), // huge compact array count
      (c) => c.writeRaw(frame(Buffer.concat([Buffer.from([0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0]), randomBytes(200)]))) // produce v9, random body
    ]
    let closedByBroker = 0
    for (let round = 0; round < 5; round++) {
      for (const attack of attacks) {
        const c = await connectRaw(broker.port)
        attack(c)
        const closed = await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))])
        if (closed) closedByBroker++
        c.close()
      }
    }
    stop = true
    await good
    await producer.disconnect()

    expect(closedByBroker).toBe(attacks.length * 5)
    expect(produced).toBeGreaterThan(0)
    const client = await connectRaw(broker.port)
    const records = await readPartition(client, "steady")
    client.close()
    expect(records.map((r) => r.value)).toEqual(Array.from({ length: produced }, (_, i) => `v${i}`))
    expect(broker.output()).not.toMatch(/FATAL|Unhandled|uncaught/i)
  })
})
