/**
 * The Java kafka-clients (the reference client) against the broker under test:
 * AdminClient, an idempotent KafkaProducer in every codec, a KafkaConsumer with
 * assign()+seek() (no group) and with a classic consumer group.
 *
 * test/interop/java/Interop.java is compiled with javac at test time against the
 * jars from scripts/interop/install-peers.sh; it prints one JSON line per step.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  CODECS,
  type RunResult,
  type Target,
  describeRun,
  jsonLines,
  logSkip,
  makeMessages,
  readPeers,
  repoRoot,
  run,
  skipReason,
  startTarget,
  uniqueTopic
} from "./support.js"

const reason = skipReason("java")
logSkip("java.test.ts", reason)

const N = 30

interface Line {
  readonly step?: string
  readonly ok?: boolean
  readonly error?: string
  readonly kind?: string
  readonly [k: string]: unknown
}

interface RecordLine {
  readonly kind: "record"
  readonly offset: number
  readonly key: string
  readonly value: string
  readonly headers: ReadonlyArray<[string, string]>
}

describe.skipIf(reason !== undefined)(`java kafka-clients interop (${reason ?? "installed"})`, () => {
  let target: Target
  let classes: string
  let cp: string

  const java = async (args: ReadonlyArray<string>, timeoutMs = 120_000): Promise<{ r: RunResult; lines: Array<Line> }> => {
    const r = await run(
      "java",
      ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", `${classes}:${cp}`, "Interop", args[0]!, target.bootstrap, ...args.slice(1)],
      { timeoutMs }
    )
    return { r, lines: jsonLines<Line>(r.stdout) }
  }

  /** The line of a step, asserting it ran and succeeded (with its error and the process output otherwise). */
  const okStep = (lines: ReadonlyArray<Line>, r: RunResult, step: string, pred: (l: Line) => boolean = () => true): Line => {
    const l = lines.find((x) => x.step === step && pred(x))
    expect(l, `step ${step} produced no output\n${describeRun(r)}`).toBeDefined()
    expect(l!.ok, `step ${step} failed: ${l!.error}`).toBe(true)
    return l!
  }

  beforeAll(async () => {
    cp = readPeers().JAVA_KAFKA_CLIENTS_CP
    classes = mkdtempSync(join(tmpdir(), "chronik-interop-java-"))
    const [compiled, t] = await Promise.all([
      run("javac", ["-encoding", "UTF-8", "-nowarn", "-cp", cp, "-d", classes, join(repoRoot, "test/interop/java/Interop.java")], { timeoutMs: 120_000 }),
      startTarget()
    ])
    target = t
    if (compiled.code !== 0) throw new Error(`javac failed: ${describeRun(compiled)}`)
  })
  afterAll(async () => {
    await target?.stop()
    if (classes) rmSync(classes, { recursive: true, force: true })
  })

  describe("AdminClient", () => {
    const topic = uniqueTopic("java-admin")
    let res: { r: RunResult; lines: Array<Line> }
    beforeAll(async () => {
      res = await java(["admin", topic], 170_000)
    })
    const get = (step: string) => okStep(res.lines, res.r, step)

    it("describeCluster", () => {
      const l = get("describeCluster")
      expect(l["nodes"]).toBe(1)
    })
    it("createTopics (3 partitions, retention.ms=3600000)", () => {
      get("createTopics")
    })
    it("describeTopics", () => {
      const l = get("describeTopics")
      expect(l["partitions"]).toBe(3)
      expect((l["leaders"] as Array<number>).every((x) => x >= 0)).toBe(true)
    })
    it("describeConfigs", () => {
      const l = get("describeConfigs")
      expect(l["retention.ms"]).toBe("3600000")
      expect(l["cleanup.policy"]).toBe("delete")
    })
    it("incrementalAlterConfigs (SET retention.ms=7200000, read back)", () => {
      expect(get("incrementalAlterConfigs")["retention.ms"]).toBe("7200000")
    })
    it("createPartitions (3 -> 4)", () => {
      expect(get("createPartitions")["partitions"]).toBe(4)
    })
    it("deleteRecords (before offset 4) moves the low watermark", () => {
      expect(get("produceForDeleteRecords")["lastOffset"]).toBe(9)
      expect(get("deleteRecords")["lowWatermark"]).toBe(4)
      const b = get("beginningOffsetsAfterDeleteRecords")
      expect(b["beginning"]).toBe(4)
      expect(b["end"]).toBe(10)
    })
    it("deleteTopics", () => {
      expect(get("deleteTopics")["stillListed"]).toBe(false)
    })
  })

  describe("idempotent KafkaProducer (acks=all) and consumers", () => {
    const prefix = uniqueTopic("java-idem")
    let prod: { r: RunResult; lines: Array<Line> }
    beforeAll(async () => {
      prod = await java(["produce", prefix, String(N), ...CODECS], 170_000)
    })

    for (const codec of CODECS) {
      const expected = makeMessages(codec, N)
      const topic = `${prefix}-${codec}`

      it(`produces ${N} records with compression.type=${codec}`, () => {
        const l = okStep(prod.lines, prod.r, "produce", (x) => x["codec"] === codec)
        expect(l["offsets"]).toEqual(expected.map((_, i) => i))
      })

      it(`reads them back (${codec}) with assign()+seek(0), identical`, async () => {
        const { r, lines } = await java(["consume-assign", topic, String(N), "0"])
        const l = okStep(lines, r, "consume-assign")
        const recs = lines.filter((x): x is Line & RecordLine => x.kind === "record")
        expect(recs.map((x) => x.offset)).toEqual(expected.map((_, i) => i))
        expect(recs.map((x) => x.key)).toEqual(expected.map((m) => m.key))
        expect(recs.map((x) => x.value)).toEqual(expected.map((m) => m.value))
        expect(recs.map((x) => x.headers)).toEqual(expected.map((m) => m.headers.map(([k, v]) => [k, v])))
        expect(l["position"]).toBe(N)
      })
    }

    it("seek(17) starts at offset 17", async () => {
      const { r, lines } = await java(["consume-assign", `${prefix}-lz4`, String(N - 17), "17"])
      okStep(lines, r, "consume-assign")
      const recs = lines.filter((x): x is Line & RecordLine => x.kind === "record")
      expect(recs.map((x) => x.offset)).toEqual(Array.from({ length: N - 17 }, (_, i) => i + 17))
      expect(recs.map((x) => x.value)).toEqual(makeMessages("lz4", N).slice(17).map((m) => m.value))
    })

    describe("consumer group (group.protocol=classic)", () => {
      let grp: { r: RunResult; lines: Array<Line> }
      const expected = makeMessages("zstd", N)
      beforeAll(async () => {
        grp = await java(["consume-group", `${prefix}-zstd`, String(N), uniqueTopic("java-group")], 170_000)
      })
      it("subscribe() joins, gets partition 0 and reads every record", () => {
        const l = okStep(grp.lines, grp.r, "consume-group")
        expect(l["count"]).toBe(N)
        const recs = grp.lines.filter((x): x is Line & RecordLine => x.kind === "record")
        expect(recs.map((x) => x.value)).toEqual(expected.map((m) => m.value))
      })
      it("commitSync() then committed() returns the end offset", () => {
        expect(okStep(grp.lines, grp.r, "consume-group")["committed"]).toBe(N)
      })
      it("a new member of the group resumes from the committed offset", () => {
        const l = okStep(grp.lines, grp.r, "consume-group-resume")
        expect(l["newRecords"]).toBe(0)
        expect(l["position"]).toBe(N)
      })
    })
  })
})
