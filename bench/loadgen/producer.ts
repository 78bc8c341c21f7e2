/**
 * Producer load generator, one process per run (started by bench/run.ts):
 *
 *   npx tsx bench/loadgen/producer.ts --bootstrap 127.0.0.1:9092 --topic t \
 *     [--client platformatic|kafkajs] [--size 1024] [--duration 15] [--count 0] \
 *     [--partitions 1] [--acks 1|-1] [--compression none|gzip|snappy|lz4|zstd] \
 *     [--batch 256] [--inflight 8] [--create true] [--timeout 60]
 *
 * Keeps `inflight` send() calls of `batch` messages each in flight (values of `size`
 * bytes, no key, spread round-robin over partitions 0..partitions-1) until `count`
 * messages were acknowledged or `duration` seconds passed. The produce latency of a
 * message is the time from the send() of its batch to the acknowledgement (every
 * message of a batch shares it; batches have equal size, so batch percentiles are
 * message percentiles). With --create it first creates the topic with `partitions`
 * partitions (CreateTopics); if the broker refuses, the topic is auto-created on the
 * first Metadata request and the run notes it.
 *
 * Prints one JSON line: { ok, client, messages, bytes, seconds, mbps, msgsPerSec,
 * latencyMs: { p50, p99, p999, max }, errors, error? }. MB = 10^6 bytes of values.
 */
import { performance } from "node:perf_hooks"
import kafkajs from "kafkajs"
import { Admin, Producer } from "@platformatic/kafka"
import { errorText, num, parseArgs, payload, percentile, report, round, str } from "./common.js"

const args = parseArgs(process.argv.slice(2))
const bootstrap = str(args, "bootstrap", "127.0.0.1:9092")
const topic = str(args, "topic", "bench")
const client = str(args, "client", "platformatic")
const size = num(args, "size", 1024)
const duration = num(args, "duration", 15)
const count = num(args, "count", 0)
const partitions = num(args, "partitions", 1)
const acksArg = str(args, "acks", "1")
const acks = acksArg === "all" ? -1 : Number(acksArg)
const compression = str(args, "compression", "none")
const batch = num(args, "batch", 256)
const inflight = num(args, "inflight", 8)
const create = str(args, "create", "true") === "true"
const hardTimeout = num(args, "timeout", duration + 45)

const values = Array.from({ length: 16 }, (_, i) => payload(size, i + 1))
const notes: Array<string> = []
const latencies: Array<number> = []
let acked = 0
let errors = 0
let firstError: string | undefined
let started = 0
let finished = false

const result = (ok: boolean, error?: string) => {
  const seconds = (performance.now() - started) / 1000
  const sorted = Float64Array.from(latencies).sort()
  return {
    ok,
    ...(error === undefined ? {} : { error }),
    client,
    topic,
    partitions,
    acks,
    compression,
    size,
    batch,
    inflight,
    messages: acked,
    bytes: acked * size,
    seconds: round(seconds, 3),
    mbps: round((acked * size) / 1e6 / seconds),
    msgsPerSec: Math.round(acked / seconds),
    latencyMs: {
      p50: round(percentile(sorted, 0.5)),
      p99: round(percentile(sorted, 0.99)),
      p999: round(percentile(sorted, 0.999)),
      max: round(percentile(sorted, 1))
    },
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    notes
  }
}

const timer = setTimeout(() => {
  report(result(false, `hard timeout after ${hardTimeout}s`))
  process.exit(2)
}, hardTimeout * 1000)
timer.unref()

type Send = (msgs: number, first: number) => Promise<void>

const withPlatformatic = async (): Promise<{ send: Send; close: () => Promise<void> }> => {
  const base = { clientId: "chronik-bench-producer", bootstrapBrokers: [bootstrap], retries: 2, retryDelay: 200, timeout: 15_000 }
  if (create) {
    const admin = new Admin(base)
    try {
      await admin.createTopics({ topics: [topic], partitions, replicas: 1 })
    } catch (e) {
      notes.push(`createTopics failed (${errorText(e)}); relying on auto-create`)
    } finally {
      await admin.close().catch(() => undefined)
    }
  }
  const producer = new Producer({
    ...base,
    acks,
    idempotent: false,
    autocreateTopics: true,
    compression: compression as "none"
  })
  const send: Send = async (n, first) => {
    const messages = new Array(n)
    for (let i = 0; i < n; i++) messages[i] = { topic, partition: (first + i) % partitions, value: values[(first + i) & 15]! }
    await producer.send({ messages, acks, compression: compression as "none" })
  }
  return { send, close: () => producer.close() }
}

const withKafkajs = async (): Promise<{ send: Send; close: () => Promise<void> }> => {
  const { Kafka, CompressionTypes, logLevel } = kafkajs
  const codec = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }[compression]
  if (codec === undefined) throw new Error(`kafkajs has no built-in ${compression} codec (none, gzip only)`)
  const kafka = new Kafka({
    clientId: "chronik-bench-producer",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
    requestTimeout: 15_000
  })
  if (create) {
    const admin = kafka.admin()
    try {
      await admin.connect()
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true, timeout: 15_000 })
    } catch (e) {
      notes.push(`createTopics failed (${errorText(e)}); relying on auto-create`)
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  }
  const producer = kafka.producer({ allowAutoTopicCreation: true, maxInFlightRequests: inflight })
  await producer.connect()
  const send: Send = async (n, first) => {
    const messages = new Array(n)
    for (let i = 0; i < n; i++) messages[i] = { partition: (first + i) % partitions, value: values[(first + i) & 15]! }
    await producer.send({ topic, acks, compression: codec, messages, timeout: 15_000 })
  }
  return { send, close: () => producer.disconnect() }
}

const main = async () => {
  const { send, close } = client === "kafkajs" ? await withKafkajs() : await withPlatformatic()
  // Warm-up: metadata, connections, and (auto-)creation of the topic, outside the timing.
  const warmDeadline = Date.now() + 20_000
  for (;;) {
    try {
      await send(Math.min(partitions, 64), 0)
      break
    } catch (e) {
      if (Date.now() > warmDeadline) throw new Error(`warm-up send failed: ${errorText(e)}`)
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  started = performance.now()
  const endAt = started + duration * 1000
  let issued = 0
  const worker = async () => {
    while (!finished) {
      if (performance.now() >= endAt || (count > 0 && issued >= count)) break
      const n = count > 0 ? Math.min(batch, count - issued) : batch
      const first = issued
      issued += n
      const t0 = performance.now()
      try {
        await send(n, first)
        latencies.push(performance.now() - t0)
        acked += n
      } catch (e) {
        errors++
        firstError ??= errorText(e)
        if (errors > 20) {
          finished = true
          throw new Error(`too many send errors; first: ${firstError}`)
        }
      }
    }
  }
  const outcomes = await Promise.allSettled(Array.from({ length: inflight }, worker))
  finished = true
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected")
  const res = result(failed === undefined && acked > 0, failed === undefined ? (acked > 0 ? undefined : "nothing acknowledged") : errorText(failed.reason))
  await Promise.race([close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))])
  report(res)
  process.exit(res.ok ? 0 : 1)
}

main().catch((e) => {
  report(result(false, errorText(e)))
  process.exit(1)
})
