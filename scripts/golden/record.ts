/**
 * Records golden protocol vectors from real Kafka clients talking to a real Apache Kafka.
 *
 *   npx tsx scripts/golden/record.ts [--clients kafkajs,platformatic,kcat] [--out test/fixtures/golden]
 *
 * 1. installs (cached) and starts the reference broker (scripts/kafka-reference/*.sh),
 *    advertising the capture proxy's address so every client connection goes through it;
 * 2. drives each client through ApiVersions, Metadata, CreateTopics (where it can), Produce
 *    (known keyed records with headers, per codec, acks=all and acks=1, idempotent),
 *    Fetch, ListOffsets and a consumer-group life cycle (FindCoordinator, JoinGroup,
 *    SyncGroup, Heartbeat, OffsetCommit, OffsetFetch, LeaveGroup);
 * 3. dedupes repeated requests, checks every captured Produce batch against the records
 *    the driver sent, and writes <out>/<client>/<seq>-<ApiName>-v<ver>.{req,resp}.bin
 *    plus <out>/<client>/manifest.json.
 *
 * A client whose tool is missing is skipped (message on stderr). If Apache Kafka cannot
 * be installed (Maven Central unreachable) it prints "SKIPPED: kafka: ..." and exits 0.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as path from "node:path"
import * as zlib from "node:zlib"
import kafkajs from "kafkajs"
import {
  Admin as PAdmin,
  Consumer as PConsumer,
  Producer as PProducer,
  stringDeserializers,
  stringSerializers
} from "@platformatic/kafka"
import { decompress } from "../../src/protocol/compression.js"
import { apiName, CaptureProxy, type CapturedExchange } from "./capture-proxy.js"

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..")
const REF_SCRIPTS = path.join(REPO, "scripts/kafka-reference")
const require = createRequire(import.meta.url)

// ---------------------------------------------------------------------------------------
// Expected records

type CodecName = "none" | "gzip" | "snappy" | "lz4" | "zstd"
const CODEC_IDS: Record<CodecName, number> = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 }
const CODEC_NAMES = ["none", "gzip", "snappy", "lz4", "zstd"] as const

interface Header {
  readonly key: string
  readonly value: string | null
}
interface SentRecord {
  readonly topic: string
  readonly partition: number
  readonly key: string | null
  readonly value: string | null
  readonly headers: ReadonlyArray<Header>
}
interface ProduceStep {
  readonly label: string
  readonly codec: CodecName
  readonly acks: number
  readonly idempotent: boolean
  readonly records: ReadonlyArray<SentRecord>
  startSeq: number
  endSeq: number
}
interface ExpectedRecord extends SentRecord {
  readonly codec: CodecName
}

/** Three small records: two on partition p0 (one with a null key), one on the other partition. */
const stepRecords = (client: string, topic: string, label: string, p0: number): Array<SentRecord> => [
  {
    topic,
    partition: p0,
    key: `${client}-${label}-k0`,
    value: `value ${label} #0`,
    headers: [
      { key: "h1", value: "v1" },
      { key: "step", value: label }
    ]
  },
  { topic, partition: 1 - p0, key: `${client}-${label}-k1`, value: `value ${label} #1`, headers: [] },
  { topic, partition: p0, key: null, value: `value ${label} #2 (null key)`, headers: [{ key: "h1", value: "v1" }] }
]

// ---------------------------------------------------------------------------------------
// Context shared with the client drivers

interface DriverContext {
  readonly client: string
  readonly proxy: CaptureProxy
  /** bootstrap address (the proxy) */
  readonly bootstrap: string
  readonly steps: Array<ProduceStep>
  readonly log: (msg: string) => void
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

const runStep = async (
  ctx: DriverContext,
  step: Omit<ProduceStep, "startSeq" | "endSeq">,
  send: () => Promise<void>
): Promise<void> => {
  const s: ProduceStep = { ...step, startSeq: ctx.proxy.seq, endSeq: -1 }
  await send()
  s.endSeq = ctx.proxy.seq
  ctx.steps.push(s)
  ctx.log(`produced ${step.label} (${step.records.length} records)`)
}

// ---------------------------------------------------------------------------------------
// kafkajs 2.2.4 (codecs: none, gzip)

const driveKafkajs = async (ctx: DriverContext): Promise<void> => {
  const { Kafka, CompressionTypes, logLevel } = kafkajs
  const topic = "golden-kafkajs"
  const kafka = new Kafka({
    clientId: "golden-kafkajs",
    brokers: [ctx.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 3, initialRetryTime: 100 }
  })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true })
  await admin.fetchTopicMetadata({ topics: [topic] })

  const codecs: Array<[CodecName, number]> = [
    ["none", CompressionTypes.None],
    ["gzip", CompressionTypes.GZIP]
  ]
  const toKafkajs = (r: SentRecord) => ({
    partition: r.partition,
    key: r.key,
    value: r.value,
    headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value ?? ""]))
  })

  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false })
  await producer.connect()
  let i = 0
  for (const [codec, ctype] of codecs) {
    for (const acks of [-1, 1]) {
      const label = `${codec}-acks${acks === -1 ? "all" : acks}`
      const records = stepRecords("kafkajs", topic, label, i++ % 2)
      await runStep(ctx, { label, codec, acks, idempotent: false, records }, async () => {
        await producer.send({ topic, acks, compression: ctype, messages: records.map(toKafkajs) })
      })
    }
  }
  await producer.disconnect()

  const idem = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await idem.connect()
  for (const [codec, ctype] of codecs) {
    const label = `idempotent-${codec}`
    const records = stepRecords("kafkajs", topic, label, i++ % 2)
    await runStep(ctx, { label, codec, acks: -1, idempotent: true, records }, async () => {
      await idem.send({ topic, acks: -1, compression: ctype, messages: records.map(toKafkajs) })
    })
  }
  await idem.disconnect()

  const total = ctx.steps.reduce((n, s) => n + s.records.length, 0)
  const groupId = "golden-kafkajs-group"
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 6000,
    rebalanceTimeout: 6000,
    heartbeatInterval: 200,
    maxWaitTimeInMs: 200
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  let got = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kafkajs consumer got ${got}/${total}`)), 30_000)
    void consumer.run({
      eachMessage: async () => {
        if (++got === total) {
          clearTimeout(timer)
          resolve()
        }
      }
    })
  })
  await sleep(1200) // let a few heartbeats and the auto-commit happen
  await consumer.disconnect() // commit + LeaveGroup
  ctx.log(`consumed ${got} records`)
  await admin.fetchOffsets({ groupId, topics: [topic] }) // OffsetFetch
  await admin.fetchTopicOffsets(topic) // ListOffsets (latest + earliest)
  await admin.disconnect()
}

// ---------------------------------------------------------------------------------------
// @platformatic/kafka 1.35 (codecs: none, gzip, snappy, lz4; zstd only with node:zlib zstd)

const platformaticCodecs = (): Array<CodecName> => {
  const out: Array<CodecName> = ["none", "gzip", "snappy", "lz4"]
  if (typeof (zlib as unknown as Record<string, unknown>)["zstdCompressSync"] === "function") out.push("zstd")
  return out
}

const drivePlatformatic = async (ctx: DriverContext): Promise<void> => {
  const topic = "golden-platformatic"
  const base = { clientId: "golden-platformatic", bootstrapBrokers: [ctx.bootstrap], retries: 3, retryDelay: 100 }
  const admin = new PAdmin(base)
  await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 })
  await admin.metadata({ topics: [topic] })

  const toMsg = (r: SentRecord) => {
    const m: { topic: string; partition: number; key?: string; value?: string; headers: Map<string, string> } = {
      topic: r.topic,
      partition: r.partition,
      headers: new Map(r.headers.map((h) => [h.key, h.value ?? ""]))
    }
    if (r.key !== null) m.key = r.key
    if (r.value !== null) m.value = r.value
    return m
  }

  const producer = new PProducer({ ...base, serializers: stringSerializers, idempotent: false, autocreateTopics: false })
  let i = 0
  for (const codec of platformaticCodecs()) {
    for (const acks of [-1, 1]) {
      const label = `${codec}-acks${acks === -1 ? "all" : acks}`
      const records = stepRecords("platformatic", topic, label, i++ % 2)
      await runStep(ctx, { label, codec, acks, idempotent: false, records }, async () => {
        await producer.send({ messages: records.map(toMsg), acks, compression: codec })
      })
    }
  }
  await producer.close()

  const idem = new PProducer({ ...base, serializers: stringSerializers, idempotent: true, acks: -1 })
  for (const codec of ["none", "lz4"] as const) {
    const label = `idempotent-${codec}`
    const records = stepRecords("platformatic", topic, label, i++ % 2)
    await runStep(ctx, { label, codec, acks: -1, idempotent: true, records }, async () => {
      await idem.send({ messages: records.map(toMsg), acks: -1, compression: codec })
    })
  }
  await idem.close()

  const total = ctx.steps.reduce((n, s) => n + s.records.length, 0)
  const consumer = new PConsumer({
    ...base,
    groupId: "golden-platformatic-group",
    deserializers: stringDeserializers,
    sessionTimeout: 6000,
    rebalanceTimeout: 6000,
    heartbeatInterval: 200,
    maxWaitTime: 200
  })
  const stream = await consumer.consume({ topics: [topic], mode: "earliest", autocommit: 200, maxWaitTime: 200 })
  let got = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`platformatic consumer got ${got}/${total}`)), 30_000)
    stream.on("data", () => {
      if (++got === total) {
        clearTimeout(timer)
        resolve()
      }
    })
    stream.on("error", reject)
  })
  await sleep(1200) // heartbeats + auto-commit
  await stream.close()
  ctx.log(`consumed ${got} records`)
  await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [0, 1] }] }) // OffsetFetch
  await consumer.listOffsets({ topics: [topic] }) // ListOffsets
  await consumer.close() // LeaveGroup
  await admin.close()
}

// ---------------------------------------------------------------------------------------
// kcat (librdkafka) with -z none/gzip/snappy/lz4/zstd

const hasKcat = (): boolean => spawnSync("kcat", ["-V"], { stdio: "ignore" }).status === 0

const kcatVersion = (): string => {
  const out = spawnSync("kcat", ["-V"], { encoding: "utf8" }).stdout
  const m = /Version (\S+).*librdkafka (\S+)/s.exec(out)
  return m ? `kcat ${m[1]} (librdkafka ${m[2]})` : "kcat (unknown version)"
}

const runProcess = (cmd: string, args: ReadonlyArray<string>, input?: string, timeoutMs = 30_000): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    let err = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${cmd} ${args.join(" ")} timed out; stderr: ${err}`))
    }, timeoutMs)
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (err += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code}; stderr: ${err}`))
    })
    child.stdin.end(input ?? "")
  })

const driveKcat = async (ctx: DriverContext, createTopic: (topic: string) => Promise<void>): Promise<void> => {
  const topic = "golden-kcat"
  const common = ["-b", ctx.bootstrap, "-X", "client.id=golden-kcat", "-q"]
  // kcat cannot create topics: done out of band (untagged, not recorded).
  ctx.proxy.setTag(null)
  await createTopic(topic)
  ctx.proxy.setTag(ctx.client)

  await runProcess("kcat", [...common, "-L", "-t", topic]) // ApiVersions + Metadata

  let i = 0
  const produce = async (codec: CodecName, acks: number, idempotent: boolean): Promise<void> => {
    const label = idempotent ? `idempotent-${codec}` : `${codec}-acks${acks === -1 ? "all" : acks}`
    const partition = i++ % 2
    // kcat applies -H headers to every record of the run, and keys are always present with -K.
    const headers: Array<Header> = [
      { key: "h1", value: "v1" },
      { key: "step", value: label }
    ]
    const records: Array<SentRecord> = [0, 1, 2].map((n) => ({
      topic,
      partition,
      key: `kcat-${label}-k${n}`,
      value: `value ${label} #${n}`,
      headers
    }))
    const args = [
      ...common,
      "-P",
      "-t",
      topic,
      "-p",
      String(partition),
      "-z",
      codec,
      "-K",
      "\t",
      "-X",
      `acks=${acks === -1 ? "all" : String(acks)}`,
      "-X",
      "linger.ms=100",
      ...(idempotent ? ["-X", "enable.idempotence=true"] : []),
      ...headers.flatMap((h) => ["-H", `${h.key}=${h.value ?? ""}`])
    ]
    const input = records.map((r) => `${r.key}\t${r.value}\n`).join("")
    await runStep(ctx, { label, codec, acks, idempotent, records }, async () => {
      await runProcess("kcat", args, input)
    })
  }
  for (const codec of CODEC_NAMES) for (const acks of [-1, 1]) await produce(codec, acks, false)
  await produce("none", -1, true)
  await produce("zstd", -1, true)

  // Balanced consumer: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetFetch,
  // Fetch, OffsetCommit, LeaveGroup (on SIGINT kcat closes the consumer cleanly).
  const total = ctx.steps.reduce((n, s) => n + s.records.length, 0)
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      "kcat",
      [
        ...common,
        "-G",
        "golden-kcat-group",
        "-u",
        "-X",
        "auto.offset.reset=earliest",
        "-X",
        "heartbeat.interval.ms=200",
        "-X",
        "session.timeout.ms=6000",
        "-X",
        "auto.commit.interval.ms=200",
        "-X",
        "fetch.wait.max.ms=200",
        "-f",
        "%k\\n",
        topic
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let got = 0
    let err = ""
    let stopping = false
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`kcat consumer got ${got}/${total}; stderr: ${err}`))
    }, 40_000)
    child.stderr.on("data", (d: Buffer) => (err += d.toString()))
    child.stdout.on("data", (d: Buffer) => {
      got += d.toString().split("\n").filter((l) => l.length > 0).length
      if (got >= total && !stopping) {
        stopping = true
        setTimeout(() => child.kill("SIGINT"), 1500)
      }
    })
    child.on("close", () => {
      clearTimeout(timer)
      ctx.log(`consumed ${got} records`)
      if (got >= total) resolve()
      else reject(new Error(`kcat consumer exited with ${got}/${total}; stderr: ${err}`))
    })
  })

  // ListOffsets: latest (-1) for partition 0, earliest (-2) for partition 1.
  await runProcess("kcat", [...common, "-Q", "-t", `${topic}:0:-1`, "-t", `${topic}:1:-2`])
}

// ---------------------------------------------------------------------------------------
// Produce request parsing (only to assign the driver's records to captured requests and
// to check them; the fixtures' expectations come from what the drivers sent).

class Reader {
  pos: number
  constructor(
    readonly buf: Buffer,
    pos = 0
  ) {
    this.pos = pos
  }
  i8() {
    return this.buf.readInt8(this.pos++)
  }
  i16() {
    const v = this.buf.readInt16BE(this.pos)
    this.pos += 2
    return v
  }
  i32() {
    const v = this.buf.readInt32BE(this.pos)
    this.pos += 4
    return v
  }
  i64() {
    const v = this.buf.readBigInt64BE(this.pos)
    this.pos += 8
    return v
  }
  uvarint(): number {
    let v = 0
    let shift = 0
    for (;;) {
      const b = this.buf[this.pos++]!
      v += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return v
      shift += 7
    }
  }
  varint(): number {
    const u = this.uvarint()
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2
  }
  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return b
  }
  skipTags() {
    const n = this.uvarint()
    for (let k = 0; k < n; k++) {
      this.uvarint()
      this.pos += this.uvarint()
    }
  }
}

interface ParsedBatch {
  readonly topic: string
  readonly partition: number
  readonly codec: number
  readonly records: Array<{ key: string | null; value: string | null; headers: Array<Header> }>
}

const parseProduceRequest = (frame: Buffer): { acks: number; transactionalId: string | null; batches: Array<ParsedBatch> } => {
  const r = new Reader(frame)
  r.i16()
  const version = r.i16()
  r.i32()
  const cl = r.i16()
  if (cl > 0) r.pos += cl
  const flexible = version >= 9
  if (flexible) r.skipTags()
  const str = (): string | null => {
    const n = flexible ? r.uvarint() - 1 : r.i16()
    return n < 0 ? null : r.bytes(n).toString("utf8")
  }
  const transactionalId = version >= 3 ? str() : null
  const acks = r.i16()
  r.i32()
  const batches: Array<ParsedBatch> = []
  const nTopics = flexible ? r.uvarint() - 1 : r.i32()
  for (let t = 0; t < nTopics; t++) {
    if (version >= 13) throw new Error("Produce v13+ (topic ids) not supported by record.ts")
    const topic = str()!
    const nParts = flexible ? r.uvarint() - 1 : r.i32()
    for (let p = 0; p < nParts; p++) {
      const partition = r.i32()
      const len = flexible ? r.uvarint() - 1 : r.i32()
      const records = len < 0 ? Buffer.alloc(0) : r.bytes(len)
      if (flexible) r.skipTags()
      for (let off = 0; off < records.length; ) {
        const batchLen = records.readInt32BE(off + 8)
        const batch = records.subarray(off, off + 12 + batchLen)
        off += 12 + batchLen
        batches.push({ topic, partition, ...parseBatch(batch) })
      }
    }
    if (flexible) r.skipTags()
  }
  return { acks, transactionalId, batches }
}

const parseBatch = (batch: Buffer): Omit<ParsedBatch, "topic" | "partition"> => {
  const magic = batch.readInt8(16)
  if (magic !== 2) throw new Error(`record batch magic ${magic} (only v2 supported)`)
  const attributes = batch.readInt16BE(21)
  const codec = attributes & 7
  const count = batch.readInt32BE(57)
  const payload = batch.subarray(61)
  const raw = codec === 0 ? payload : codec === 1 ? zlib.gunzipSync(payload) : decompress(codec, Buffer.from(payload))
  const r = new Reader(raw)
  const records: ParsedBatch["records"] = []
  const nullableBytes = (): string | null => {
    const n = r.varint()
    return n < 0 ? null : r.bytes(n).toString("utf8")
  }
  for (let k = 0; k < count; k++) {
    const len = r.varint()
    const end = r.pos + len
    r.i8() // attributes
    r.varint() // timestampDelta (varlong, small)
    r.varint() // offsetDelta
    const key = nullableBytes()
    const value = nullableBytes()
    const nh = r.varint()
    const headers: Array<Header> = []
    for (let h = 0; h < nh; h++) {
      const hk = nullableBytes() ?? ""
      headers.push({ key: hk, value: nullableBytes() })
    }
    if (r.pos !== end) throw new Error(`record ${k} length mismatch`)
    records.push({ key, value, headers })
  }
  if (r.pos !== raw.length) throw new Error(`trailing bytes after ${count} records`)
  return { codec, records }
}

const sameRecord = (a: { key: string | null; value: string | null; headers: ReadonlyArray<Header> }, b: SentRecord) =>
  a.key === b.key &&
  a.value === b.value &&
  a.headers.length === b.headers.length &&
  a.headers.every((h, i) => h.key === b.headers[i]!.key && h.value === b.headers[i]!.value)

/**
 * Assigns the sent records to a Produce exchange and checks them against the wire. Each
 * batch must equal a consecutive run of the step's records for its partition; a record
 * may show up in several requests (client retries), and `covered` collects which were seen.
 */
const expectedForProduce = (ex: CapturedExchange, steps: ReadonlyArray<ProduceStep>, covered: Set<SentRecord>) => {
  const step = steps.find((s) => ex.seq >= s.startSeq && ex.seq < s.endSeq)
  if (!step) throw new Error(`Produce request seq ${ex.seq} outside every produce step`)
  const parsed = parseProduceRequest(ex.request)
  const expected: Array<ExpectedRecord> = []
  for (const b of parsed.batches) {
    if (b.codec !== CODEC_IDS[step.codec]) {
      // Clients may legitimately skip compression for tiny batches; record what is on the wire.
      console.error(`[golden] note: step ${step.label}: batch codec ${b.codec}, requested ${step.codec}`)
    }
    const candidates = step.records.filter((r) => r.topic === b.topic && r.partition === b.partition)
    let start = -1
    for (let i = 0; i + b.records.length <= candidates.length && start < 0; i++) {
      if (b.records.every((rec, j) => sameRecord(rec, candidates[i + j]!))) start = i
    }
    if (start < 0) {
      throw new Error(
        `Produce seq ${ex.seq} (${step.label}) ${b.topic}/${b.partition}: wire records ${JSON.stringify(b.records)} ` +
          `are not a run of the sent records ${JSON.stringify(candidates)}`
      )
    }
    for (let j = 0; j < b.records.length; j++) {
      const sent = candidates[start + j]!
      covered.add(sent)
      expected.push({ ...sent, codec: CODEC_NAMES[b.codec]! })
    }
  }
  return { step, acks: parsed.acks, transactionalId: parsed.transactionalId, records: expected }
}

// ---------------------------------------------------------------------------------------
// Dedupe / selection

const CAPS: Record<string, number> = { ApiVersions: 2 }
const DEFAULT_CAP = 4

const selectExchanges = (exchanges: ReadonlyArray<CapturedExchange>): Array<CapturedExchange> => {
  const seen = new Set<string>()
  const counts = new Map<string, { data: number; empty: number }>()
  const minResp = new Map<string, number>()
  for (const e of exchanges) {
    const k = `${e.apiKey}/${e.apiVersion}`
    if (e.response) minResp.set(k, Math.min(minResp.get(k) ?? Infinity, e.response.length))
  }
  const out: Array<CapturedExchange> = []
  for (const e of exchanges) {
    if (e.apiKey === 0) {
      out.push(e) // every Produce is kept (each step is a distinct codec/acks case)
      continue
    }
    const norm = Buffer.from(e.request)
    norm.writeInt32BE(0, 4) // ignore the correlation id
    const dedupeKey = `${e.apiKey}/${e.apiVersion}/${norm.toString("base64")}`
    if (seen.has(dedupeKey)) continue
    seen.add(dedupeKey)
    const k = `${e.apiKey}/${e.apiVersion}`
    const c = counts.get(k) ?? { data: 0, empty: 0 }
    counts.set(k, c)
    const cap = CAPS[apiName(e.apiKey)] ?? DEFAULT_CAP
    // "data" = a response noticeably larger than the smallest one of its kind (e.g. a Fetch
    // that returned records rather than an empty long poll). Keep up to cap/2 of each kind.
    const isData = e.response !== null && e.response.length > (minResp.get(k) ?? 0) + 64
    const half = Math.max(1, Math.ceil(cap / 2))
    if (isData ? c.data >= half : c.empty >= cap - half) continue
    if (isData) c.data++
    else c.empty++
    out.push(e)
  }
  return out
}

// ---------------------------------------------------------------------------------------
// Orchestration

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })

const pkgVersion = (name: string): string => {
  try {
    const pkgPath = path.join(REPO, "node_modules", name, "package.json")
    return (JSON.parse(fs.readFileSync(pkgPath, "utf8")) as { version: string }).version
  } catch {
    return (require(`${name}/package.json`) as { version: string }).version
  }
}

const writeFixtures = (
  outDir: string,
  client: string,
  clientVersion: string,
  kafkaVersion: string,
  exchanges: ReadonlyArray<CapturedExchange>,
  steps: ReadonlyArray<ProduceStep>
): number => {
  // Written to a staging directory first: a failed run leaves the old fixtures alone.
  const finalDir = path.join(outDir, client)
  const dir = path.join(outDir, `.${client}.staging`)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  try {
    return writeInto(dir, finalDir, client, clientVersion, kafkaVersion, exchanges, steps)
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

const writeInto = (
  dir: string,
  finalDir: string,
  client: string,
  clientVersion: string,
  kafkaVersion: string,
  exchanges: ReadonlyArray<CapturedExchange>,
  steps: ReadonlyArray<ProduceStep>
): number => {
  const covered = new Set<SentRecord>()
  const selected = selectExchanges(exchanges)
  let bytes = 0
  const files = selected.map((e, i) => {
    const base = `${String(i).padStart(3, "0")}-${apiName(e.apiKey)}-v${e.apiVersion}`
    fs.writeFileSync(path.join(dir, `${base}.req.bin`), e.request)
    bytes += e.request.length
    if (e.response) {
      fs.writeFileSync(path.join(dir, `${base}.resp.bin`), e.response)
      bytes += e.response.length
    }
    const entry: Record<string, unknown> = {
      seq: i,
      api: apiName(e.apiKey),
      apiKey: e.apiKey,
      apiVersion: e.apiVersion,
      correlationId: e.correlationId,
      clientId: e.clientId,
      connection: e.connId,
      request: `${base}.req.bin`,
      response: e.response ? `${base}.resp.bin` : null
    }
    if (e.apiKey === 0) {
      const p = expectedForProduce(e, steps, covered)
      entry["produce"] = { step: p.step.label, acks: p.acks, idempotent: p.step.idempotent, transactionalId: p.transactionalId }
      entry["records"] = p.records
    }
    return entry
  })
  for (const s of steps) {
    const missing = s.records.filter((r) => !covered.has(r)).length
    if (missing > 0) throw new Error(`${client}: step ${s.label}: ${missing} sent records not found on the wire`)
  }
  const manifest = {
    client,
    clientVersion,
    kafkaVersion,
    capturedAt: new Date().toISOString(),
    note: "Frames exclude the 4-byte size prefix. Produce entries list the exact records (in wire order) their batches must decode to.",
    files
  }
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n")
  fs.rmSync(finalDir, { recursive: true, force: true })
  fs.renameSync(dir, finalDir)
  return bytes
}

const main = async (): Promise<void> => {
  const args = process.argv.slice(2)
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name)
    return i >= 0 ? args[i + 1] : undefined
  }
  const outDir = path.resolve(REPO, opt("--out") ?? "test/fixtures/golden")
  const wanted = (opt("--clients") ?? "kafkajs,platformatic,kcat").split(",").filter(Boolean)
  const log = (m: string) => console.error(`[golden] ${m}`)

  const install = spawnSync("bash", [path.join(REF_SCRIPTS, "install.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
  if (install.status !== 0) throw new Error(`install.sh failed (${install.status})`)
  const skipped = install.stdout.split("\n").find((l) => l.startsWith("SKIPPED:"))
  if (skipped) {
    console.log(skipped)
    return
  }
  const libs = install.stdout.trim().split("\n").pop()!
  const kafkaJar = fs.readdirSync(libs).find((f) => /^kafka_2\.13-.*\.jar$/.test(f))!
  const kafkaVersion = kafkaJar.replace(/^kafka_2\.13-/, "").replace(/\.jar$/, "")

  const tmp = fs.mkdtempSync(path.join(REPO, ".tmp", "golden-record-"))
  const dataDir = path.join(tmp, "kafka")
  const kafkaPort = await freePort()
  const proxy = await CaptureProxy.start({ targetHost: "127.0.0.1", targetPort: kafkaPort })
  const bootstrap = `127.0.0.1:${proxy.port}`
  let started = false
  const cleanup = () => {
    if (started) spawnSync("bash", [path.join(REF_SCRIPTS, "stop.sh"), dataDir], { stdio: "inherit" })
    started = false
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  process.on("SIGINT", () => {
    cleanup()
    process.exit(130)
  })
  try {
    log(`starting Apache Kafka ${kafkaVersion} on 127.0.0.1:${kafkaPort}, advertised via proxy ${bootstrap}`)
    const start = spawnSync("bash", [path.join(REF_SCRIPTS, "start.sh"), String(kafkaPort), dataDir], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, KAFKA_EXTRA_PROPS: `advertised.listeners=PLAINTEXT://${bootstrap}` }
    })
    if (start.status !== 0) throw new Error("start.sh failed")
    started = true

    const { Kafka, logLevel } = kafkajs
    const setupAdmin = new Kafka({ clientId: "golden-setup", brokers: [bootstrap], logLevel: logLevel.NOTHING }).admin()
    await setupAdmin.connect()
    const createTopic = async (topic: string) => {
      await setupAdmin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true })
    }

    const drivers: Record<string, { version: () => string | null; run: (ctx: DriverContext) => Promise<void> }> = {
      kafkajs: { version: () => `kafkajs ${pkgVersion("kafkajs")}`, run: driveKafkajs },
      platformatic: { version: () => `@platformatic/kafka ${pkgVersion("@platformatic/kafka")}`, run: drivePlatformatic },
      kcat: { version: () => (hasKcat() ? kcatVersion() : null), run: (ctx) => driveKcat(ctx, createTopic) }
    }
    let total = 0
    for (const client of wanted) {
      const d = drivers[client]
      if (!d) throw new Error(`unknown client ${client}`)
      const version = d.version()
      if (version === null) {
        console.log(`SKIPPED: ${client}: not installed (run scripts/interop/install-peers.sh)`)
        continue
      }
      log(`--- ${version}`)
      const ctx: DriverContext = { client, proxy, bootstrap, steps: [], log: (m) => log(`${client}: ${m}`) }
      proxy.setTag(client)
      await d.run(ctx)
      proxy.setTag(null)
      await sleep(300)
      const exchanges = proxy.take(client)
      const bytes = writeFixtures(outDir, client, version, kafkaVersion, exchanges, ctx.steps)
      total += bytes
      const apis = [...new Set(exchanges.map((e) => apiName(e.apiKey)))].sort()
      log(`${client}: ${exchanges.length} exchanges captured, fixtures ${(bytes / 1024).toFixed(1)} KiB; APIs: ${apis.join(", ")}`)
    }
    await setupAdmin.disconnect()
    for (const a of proxy.anomalies) log(`proxy anomaly: ${a}`)
    log(`done: ${(total / 1024).toFixed(1)} KiB of fixtures in ${path.relative(REPO, outDir)}`)
  } finally {
    await proxy.close()
    cleanup()
  }
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
