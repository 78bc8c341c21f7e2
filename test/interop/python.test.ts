/**
 * Python confluent-kafka (librdkafka) against the broker under test: AdminClient
 * create/delete topics, an idempotent Producer per codec, a Consumer in a group and
 * one with assign(), reading back identical data.
 */
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

const reason = skipReason("python")
logSkip("python.test.ts", reason)

const N = 20
const script = join(repoRoot, "test/interop/python/interop.py")

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

describe.skipIf(reason !== undefined)(`python confluent-kafka interop (${reason ?? "installed"})`, () => {
  let target: Target
  let py: string

  const python = async (args: ReadonlyArray<string>, timeoutMs = 90_000) => {
    const r = await run(py, [script, args[0]!, target.bootstrap, ...args.slice(1)], { timeoutMs })
    return { r, lines: jsonLines<Line>(r.stdout) }
  }
  const okStep = (lines: ReadonlyArray<Line>, r: RunResult, step: string): Line => {
    const l = lines.find((x) => x.step === step)
    expect(l, `step ${step} produced no output\n${describeRun(r)}`).toBeDefined()
    expect(l!.ok, `step ${step} failed: ${l!.error}\n${String(l!["trace"] ?? "")}`).toBe(true)
    return l!
  }
  const records = (lines: ReadonlyArray<Line>) => lines.filter((x): x is Line & RecordLine => x.kind === "record")

  beforeAll(async () => {
    py = readPeers().PYTHON_CONFLUENT
    target = await startTarget()
  })
  afterAll(async () => {
    await target?.stop()
  })

  const adminTopic = uniqueTopic("py-admin")

  it("AdminClient.create_topics (2 partitions) is visible in list_topics", async () => {
    const { r, lines } = await python(["create-topic", adminTopic, "2"])
    expect(okStep(lines, r, "create-topic")["partitions"]).toBe(2)
  })

  it("produces to the created topic and a group consumer reads it back identically, then commits", async () => {
    const p = await python(["produce", adminTopic, String(N), "none", "none"])
    expect(okStep(p.lines, p.r, "produce")["offsets"]).toEqual(Array.from({ length: N }, (_, i) => i))
    const c = await python(["consume-group", adminTopic, String(N), uniqueTopic("py-group")], 120_000)
    const l = okStep(c.lines, c.r, "consume-group")
    const expected = makeMessages("none", N)
    expect(l["count"]).toBe(N)
    const recs = records(c.lines)
    expect(recs.map((x) => x.key)).toEqual(expected.map((m) => m.key))
    expect(recs.map((x) => x.value)).toEqual(expected.map((m) => m.value))
    expect(recs.map((x) => x.headers)).toEqual(expected.map((m) => m.headers.map(([k, v]) => [k, v])))
    expect(l["committed"]).toBe(N)
  })

  it("AdminClient.delete_topics removes it", async () => {
    const { r, lines } = await python(["delete-topic", adminTopic])
    expect(okStep(lines, r, "delete-topic")["stillListed"]).toBe(false)
  })

  for (const codec of CODECS) {
    it(`idempotent Producer with compression.type=${codec}, read back with assign() from offset 0`, async () => {
      const topic = uniqueTopic(`py-${codec}`)
      const p = await python(["produce", topic, String(N), codec, codec])
      expect(okStep(p.lines, p.r, "produce")["offsets"]).toEqual(Array.from({ length: N }, (_, i) => i))
      const c = await python(["consume-assign", topic, String(N), "0"])
      okStep(c.lines, c.r, "consume-assign")
      const expected = makeMessages(codec, N)
      const recs = records(c.lines)
      expect(recs.map((x) => x.offset)).toEqual(expected.map((_, i) => i))
      expect(recs.map((x) => x.value)).toEqual(expected.map((m) => m.value))
      expect(recs.map((x) => x.headers)).toEqual(expected.map((m) => m.headers.map(([k, v]) => [k, v])))
    })
  }
})
