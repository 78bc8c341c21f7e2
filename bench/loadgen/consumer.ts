/**
 * Consumer load generator, one process per run (started by bench/run.ts):
 *
 *   npx tsx bench/loadgen/consumer.ts --bootstrap 127.0.0.1:9092 --topic t \
 *     [--mode fetch|group] [--client platformatic|kafkajs] [--partitions 1] \
 *     [--count N] [--duration 15] [--timeout 60]
 *
 * Reads the topic from offset 0 until `count` messages (default: every message up to
 * the high watermark seen in the first fetch... i.e. pass --count) or `duration` s.
 *
 * - `--mode fetch` (default, @platformatic/kafka): no consumer group; Metadata to find
 *   the topic id and partition leaders, then a loop of Fetch requests for all
 *   partitions from explicit offsets (no ListOffsets, no group coordinator).
 * - `--mode group`: a consumer group reading from the earliest offset
 *   (@platformatic/kafka consume() stream, or kafkajs eachBatch with --client kafkajs):
 *   needs FindCoordinator/JoinGroup/SyncGroup/Heartbeat/OffsetFetch/ListOffsets.
 *
 * Prints one JSON line: { ok, mode, client, messages, bytes, seconds, mbps,
 * msgsPerSec, error? }. bytes = value bytes.
 */
import { performance } from "node:perf_hooks"
import kafkajs from "kafkajs"
import { Consumer } from "@platformatic/kafka"
import { errorText, num, parseArgs, report, round, str } from "./common.js"

const args = parseArgs(process.argv.slice(2))
const bootstrap = str(args, "bootstrap", "127.0.0.1:9092")
const topic = str(args, "topic", "bench")
const mode = str(args, "mode", "fetch")
const client = str(args, "client", "platformatic")
const partitions = num(args, "partitions", 1)
const count = num(args, "count", 0)
const duration = num(args, "duration", 15)
const hardTimeout = num(args, "timeout", duration + 45)

let messages = 0
let bytes = 0
let started = performance.now()
const notes: Array<string> = []

const result = (ok: boolean, error?: string) => {
  const seconds = (performance.now() - started) / 1000
  return {
    ok,
    ...(error === undefined ? {} : { error }),
    mode,
    client,
    topic,
    partitions,
    messages,
    bytes,
    seconds: round(seconds, 3),
    mbps: round(bytes / 1e6 / seconds),
    msgsPerSec: Math.round(messages / seconds),
    notes
  }
}

const timer = setTimeout(() => {
  report(result(false, `hard timeout after ${hardTimeout}s (read ${messages}/${count})`))
  process.exit(2)
}, hardTimeout * 1000)
timer.unref()

const done = () => (count > 0 && messages >= count) || performance.now() - started > duration * 1000

const fetchMode = async () => {
  const consumer = new Consumer({
    clientId: "chronik-bench-consumer",
    groupId: "chronik-bench-unused",
    bootstrapBrokers: [bootstrap],
    retries: 2,
    retryDelay: 200,
    timeout: 15_000
  })
  try {
    const md = await consumer.metadata({ topics: [topic] })
    const t = md.topics.get(topic)
    if (t === undefined) throw new Error(`topic ${topic} not in metadata`)
    // Partitions grouped by leader; one fetch loop per leader (a single broker here).
    const byLeader = new Map<number, Array<{ partition: number; offset: bigint }>>()
    for (let p = 0; p < Math.min(partitions, t.partitions.length); p++) {
      const leader = t.partitions[p]!.leader
      const list = byLeader.get(leader) ?? []
      list.push({ partition: p, offset: 0n })
      byLeader.set(leader, list)
    }
    started = performance.now()
    await Promise.all(
      [...byLeader].map(async ([node, parts]) => {
        while (!done()) {
          const res = await consumer.fetch({
            node,
            maxWaitTime: 200,
            minBytes: 1,
            maxBytes: 32 * 1024 * 1024,
            topics: [
              {
                topicId: t.id,
                partitions: parts.map((p) => ({
                  partition: p.partition,
                  currentLeaderEpoch: -1,
                  fetchOffset: p.offset,
                  lastFetchedEpoch: -1,
                  partitionMaxBytes: 8 * 1024 * 1024
                }))
              }
            ]
          })
          let progressed = false
          for (const topicRes of res.responses) {
            for (const pr of topicRes.partitions) {
              if (pr.errorCode !== 0) throw new Error(`fetch error code ${pr.errorCode} on partition ${pr.partitionIndex}`)
              const st = parts.find((p) => p.partition === pr.partitionIndex)!
              for (const b of pr.records ?? []) {
                const next = b.firstOffset + BigInt(b.lastOffsetDelta) + 1n
                for (const r of b.records) {
                  const off = b.firstOffset + BigInt(r.offsetDelta)
                  if (off < st.offset) continue
                  messages++
                  bytes += r.value?.length ?? 0
                }
                if (next > st.offset) {
                  st.offset = next
                  progressed = true
                }
              }
            }
          }
          if (!progressed && count > 0 && messages < count) await new Promise((r) => setTimeout(r, 5))
        }
      })
    )
  } finally {
    await Promise.race([(consumer.close(true) as unknown as Promise<void>).catch(() => undefined), new Promise((r) => setTimeout(r, 5000))])
  }
}

const groupModePlatformatic = async () => {
  const consumer = new Consumer({
    clientId: "chronik-bench-consumer",
    groupId: `chronik-bench-${Date.now()}`,
    bootstrapBrokers: [bootstrap],
    retries: 2,
    retryDelay: 200,
    timeout: 15_000,
    sessionTimeout: 10_000,
    rebalanceTimeout: 10_000,
    heartbeatInterval: 1000
  })
  try {
    started = performance.now()
    const stream = await consumer.consume({ topics: [topic], mode: "earliest", autocommit: false, maxWaitTime: 200, maxBytes: 32 * 1024 * 1024 })
    notes.push(`joined after ${round((performance.now() - started) / 1000, 3)}s`)
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (done()) {
          clearInterval(check)
          resolve()
        }
      }, 50)
      stream.on("data", (m: { value: Buffer | null }) => {
        messages++
        bytes += m.value?.length ?? 0
        if (count > 0 && messages >= count) {
          clearInterval(check)
          resolve()
        }
      })
      stream.on("error", (e: unknown) => {
        clearInterval(check)
        reject(e)
      })
    })
    await Promise.race([stream.close(), new Promise((r) => setTimeout(r, 5000))])
  } finally {
    await Promise.race([(consumer.close(true) as unknown as Promise<void>).catch(() => undefined), new Promise((r) => setTimeout(r, 5000))])
  }
}

const groupModeKafkajs = async () => {
  const { Kafka, logLevel } = kafkajs
  const kafka = new Kafka({ clientId: "chronik-bench-consumer", brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 2 } })
  const consumer = kafka.consumer({ groupId: `chronik-bench-${Date.now()}`, sessionTimeout: 10_000, maxBytes: 32 * 1024 * 1024, maxWaitTimeInMs: 200 })
  try {
    started = performance.now()
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (done()) {
          clearInterval(check)
          resolve()
        }
      }, 50)
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              messages++
              bytes += m.value?.length ?? 0
            }
          }
        })
        .catch(reject)
      consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error))
    })
  } finally {
    await Promise.race([consumer.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))])
  }
}

const main = async () => {
  if (mode === "fetch") await fetchMode()
  else if (client === "kafkajs") await groupModeKafkajs()
  else await groupModePlatformatic()
  const ok = count > 0 ? messages >= count : messages > 0
  const res = result(ok, ok ? undefined : `read ${messages}/${count} messages within ${duration}s`)
  report(res)
  process.exit(ok ? 0 : 1)
}

main().catch((e) => {
  report(result(false, errorText(e)))
  process.exit(1)
})
