/**
 * Cross-client: what one client writes, every other client reads back identically.
 *
 *   kafkajs (gzip)          -> kcat, Java (assign), Python (assign)
 *   @platformatic/kafka (lz4) -> kcat, Java, Python
 *   kcat (zstd)             -> Java, Python
 *
 * Each reader for a peer that is not installed is skipped with the installer's reason.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import kafkajs from "kafkajs"
import { Producer as PProducer, stringSerializers } from "@platformatic/kafka"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type Msg,
  type Target,
  describeRun,
  jsonLines,
  logSkip,
  makeMessages,
  peerSkipReason,
  readPeers,
  repoRoot,
  run,
  skipReason,
  startTarget,
  uniqueTopic
} from "./support.js"

const targetReason = skipReason() // only the reference Kafka, when it is the target
const kcatReason = peerSkipReason("kcat")
const javaReason = peerSkipReason("java")
const pythonReason = peerSkipReason("python")
logSkip("cross-client.test.ts", targetReason)
for (const r of [kcatReason, javaReason, pythonReason]) logSkip("cross-client.test.ts", r)

const N = 20

interface Got {
  readonly offset: number
  readonly key: string | null
  readonly value: string | null
  readonly headers: ReadonlyArray<readonly [string, string | null]>
}

describe.skipIf(targetReason !== undefined)("cross-client interop", () => {
  let target: Target
  let javaClasses = ""
  const peers = readPeers()

  beforeAll(async () => {
    const compile = async () => {
      if (javaReason !== undefined) return
      javaClasses = mkdtempSync(join(tmpdir(), "chronik-interop-xjava-"))
      const c = await run("javac", ["-encoding", "UTF-8", "-nowarn", "-cp", peers.JAVA_KAFKA_CLIENTS_CP, "-d", javaClasses, join(repoRoot, "test/interop/java/Interop.java")], {
        timeoutMs: 120_000
      })
      if (c.code !== 0) throw new Error(`javac failed: ${describeRun(c)}`)
    }
    const [, t] = await Promise.all([compile(), startTarget()])
    target = t
  })
  afterAll(async () => {
    await target?.stop()
    if (javaClasses) rmSync(javaClasses, { recursive: true, force: true })
  })

  // ------------------------------------------------------------ readers (partition 0 from offset 0)

  const readKcat = async (topic: string): Promise<Array<Got>> => {
    const r = await run(peers.KCAT, ["-b", target.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "0", "-e", "-J", "-q"], { timeoutMs: 30_000 })
    expect(r.code, describeRun(r)).toBe(0)
    return jsonLines<{ offset: number; key: string | null; payload: string | null; headers?: Array<string> }>(r.stdout).map((m) => {
      const h = m.headers ?? []
      const headers: Array<[string, string]> = []
      for (let i = 0; i < h.length; i += 2) headers.push([h[i]!, h[i + 1]!])
      return { offset: m.offset, key: m.key, value: m.payload, headers }
    })
  }

  const readJava = async (topic: string): Promise<Array<Got>> => {
    const r = await run(
      "java",
      ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", `${javaClasses}:${peers.JAVA_KAFKA_CLIENTS_CP}`, "Interop", "consume-assign", target.bootstrap, topic, String(N), "0"],
      { timeoutMs: 90_000 }
    )
    const lines = jsonLines<Record<string, unknown>>(r.stdout)
    const st = lines.find((l) => l["step"] === "consume-assign")
    expect(st?.["ok"], `java consume-assign: ${String(st?.["error"])}\n${describeRun(r)}`).toBe(true)
    return lines.filter((l) => l["kind"] === "record") as unknown as Array<Got>
  }

  const readPython = async (topic: string): Promise<Array<Got>> => {
    const r = await run(peers.PYTHON_CONFLUENT, [join(repoRoot, "test/interop/python/interop.py"), "consume-assign", target.bootstrap, topic, String(N), "0"], {
      timeoutMs: 90_000
    })
    const lines = jsonLines<Record<string, unknown>>(r.stdout)
    const st = lines.find((l) => l["step"] === "consume-assign")
    expect(st?.["ok"], `python consume-assign: ${String(st?.["error"])}\n${describeRun(r)}`).toBe(true)
    return lines.filter((l) => l["kind"] === "record") as unknown as Array<Got>
  }

  const expectSame = (got: ReadonlyArray<Got>, expected: ReadonlyArray<Msg>, withHeaders = true) => {
    expect(got.map((g) => g.offset)).toEqual(expected.map((_, i) => i))
    expect(got.map((g) => g.key)).toEqual(expected.map((m) => m.key))
    expect(got.map((g) => g.value)).toEqual(expected.map((m) => m.value))
    if (withHeaders) expect(got.map((g) => g.headers.map(([k, v]) => [k, v]))).toEqual(expected.map((m) => m.headers.map(([k, v]) => [k, v])))
  }

  const readers = (topic: () => string, expected: () => ReadonlyArray<Msg>, skip: ReadonlyArray<"kcat" | "java" | "python"> = []) => {
    if (!skip.includes("kcat"))
      it.skipIf(kcatReason !== undefined)(`kcat reads it identically ${kcatReason ?? ""}`, async () => expectSame(await readKcat(topic()), expected()))
    if (!skip.includes("java"))
      it.skipIf(javaReason !== undefined)(`Java KafkaConsumer reads it identically ${javaReason ?? ""}`, async () =>
        expectSame(await readJava(topic()), expected())
      )
    if (!skip.includes("python"))
      it.skipIf(pythonReason !== undefined)(`Python confluent-kafka reads it identically ${pythonReason ?? ""}`, async () =>
        expectSame(await readPython(topic()), expected())
      )
  }

  // ------------------------------------------------------------ writers

  describe("written by kafkajs (gzip, acks=-1)", () => {
    const topic = uniqueTopic("x-kafkajs")
    const msgs = makeMessages("kafkajs", N)
    it("kafkajs produces", async () => {
      const { Kafka, CompressionTypes, logLevel } = kafkajs
      const kafka = new Kafka({ clientId: "interop-kafkajs", brokers: [target.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 3 } })
      const p = kafka.producer({ allowAutoTopicCreation: true })
      await p.connect()
      try {
        const res = await p.send({
          topic,
          acks: -1,
          compression: CompressionTypes.GZIP,
          messages: msgs.map((m) => ({ key: m.key, value: m.value, partition: 0, headers: Object.fromEntries(m.headers) }))
        })
        expect(res[0]!.errorCode).toBe(0)
      } finally {
        await p.disconnect()
      }
    })
    readers(() => topic, () => msgs)
  })

  describe("written by @platformatic/kafka (lz4, acks=-1)", () => {
    const topic = uniqueTopic("x-platformatic")
    const msgs = makeMessages("platformatic", N)
    it("@platformatic/kafka produces", async () => {
      const p = new PProducer({
        clientId: "interop-platformatic",
        bootstrapBrokers: [target.bootstrap],
        serializers: stringSerializers,
        retries: 3,
        retryDelay: 200,
        autocreateTopics: true
      })
      try {
        await p.send({
          acks: -1,
          compression: "lz4",
          messages: msgs.map((m) => ({ topic, partition: 0, key: m.key, value: m.value, headers: new Map(m.headers) }))
        })
      } finally {
        await p.close()
      }
    })
    readers(() => topic, () => msgs)
  })

  describe.skipIf(kcatReason !== undefined)(`written by kcat (zstd) ${kcatReason ?? ""}`, () => {
    const topic = uniqueTopic("x-kcat")
    // kcat -H sets the same headers on every message: use those.
    const msgs = makeMessages("kcat", N).map((m) => ({ ...m, headers: [["h-codec", "kcat"], ["h-idx", "all"]] as const }))
    it("kcat produces", async () => {
      const input = msgs.map((m) => `${m.key}:${m.value}`).join("\n") + "\n"
      const r = await run(peers.KCAT, ["-b", target.bootstrap, "-P", "-t", topic, "-p", "0", "-K:", "-z", "zstd", "-H", "h-codec=kcat", "-H", "h-idx=all", "-X", "acks=all"], {
        input,
        timeoutMs: 60_000
      })
      expect(r.code, describeRun(r)).toBe(0)
    })
    readers(() => topic, () => msgs, ["kcat"])
  })
})
