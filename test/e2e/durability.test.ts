/**
 * kill -9 mid-stream: every message acknowledged with acks=all is read back
 * exactly once after a restart, and the idempotent producer's retries after
 * the restart add no duplicates (its state is rebuilt from the log).
 */
import { Kafka, logLevel } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { connectRaw, readPartition } from "../support/rawClient.js"

describe.each([
  ["segments synced by each group commit (default)", "0", "false"],
  ["with the node journal (--wal-journal-file-bytes)", "65536", "false"],
  // the group commit's fdatasync must follow segment writes still on the libuv pool
  ["with segment writes on the libuv pool (--wal-async-writes)", "0", "true"]
])("crash durability (real process), %s", (_name, journalFileBytes, asyncWrites) => {
  let broker: BrokerProcess
  beforeAll(async () => {
    // with the journal, acks=all waits for the journal's fdatasync only: the restart must replay it
    broker = await startBroker({
      env: {
        CHRONIK_WAL_FSYNC: "batch",
        CHRONIK_WAL_JOURNAL_FILE_BYTES: journalFileBytes,
        CHRONIK_WAL_ASYNC_WRITES: asyncWrites
      }
    })
  })
  afterAll(async () => {
    await broker.cleanup()
  })

  it("keeps every acks=all message across kill -9, exactly once", async () => {
    const kafka = new Kafka({
      clientId: "durability",
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 }
    })
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const acked: Array<string> = []
    let sent = 0
    const sendBatch = async () => {
      const values = Array.from({ length: 50 }, () => `m-${sent++}`)
      await producer.send({ topic: "durable", acks: -1, messages: values.map((value) => ({ key: value, value })) })
      acked.push(...values)
    }
    for (let i = 0; i < 20; i++) await sendBatch()
    // Crash while a send is in flight: it is either acknowledged (and must survive) or retried.
    const inFlight = sendBatch().catch(() => undefined)
    await broker.kill9()
    await broker.restart()
    await inFlight
    for (let i = 0; i < 10; i++) await sendBatch()
    await producer.disconnect()

    const client = await connectRaw(broker.port)
    const records = await readPartition(client, "durable")
    client.close()
    const values = records.map((r) => r.value!)
    const counts = new Map<string, number>()
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
    const lost = acked.filter((v) => !counts.has(v))
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([v]) => v)
    expect(lost).toEqual([])
    expect(duplicated).toEqual([])
    // Offsets are contiguous and every record is one we sent.
    expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => BigInt(i)))
    expect(values.every((v) => /^m-\d+$/.test(v))).toBe(true)
  })
})
