/**
 * kcat (librdkafka) against the broker under test: keyed messages with headers in
 * every codec, consumed back from an absolute offset and from `-o beginning`, and a
 * metadata listing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  CODECS,
  type Target,
  describeRun,
  jsonLines,
  logSkip,
  makeMessages,
  readPeers,
  run,
  skipReason,
  startTarget,
  uniqueTopic
} from "./support.js"

const reason = skipReason("kcat")
logSkip("kcat.test.ts", reason)

const N = 25

interface KcatJson {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly payload: string | null
  readonly headers?: ReadonlyArray<string>
}

describe.skipIf(reason !== undefined)(`kcat interop (${reason ?? "installed"})`, () => {
  let target: Target
  let kcat: string
  const topics: Record<string, string> = {}

  beforeAll(async () => {
    kcat = readPeers().KCAT
    target = await startTarget()
  })
  afterAll(async () => {
    await target?.stop()
  })

  const common = () => ["-b", target.bootstrap, "-X", "socket.timeout.ms=10000", "-X", "api.version.request=true"]

  const consume = async (topic: string, offset: string, extra: ReadonlyArray<string> = []) => {
    const r = await run(kcat, [...common(), "-C", "-t", topic, "-p", "0", "-o", offset, "-e", "-J", "-q", ...extra], {
      timeoutMs: 30_000
    })
    return { r, msgs: jsonLines<KcatJson>(r.stdout) }
  }

  for (const codec of CODECS) {
    describe(`codec ${codec}`, () => {
      const msgs = makeMessages(codec, N)

      it(`produces ${N} keyed messages with headers (-P -K: -H -z ${codec})`, async () => {
        const topic = uniqueTopic(`kcat-${codec}`)
        topics[codec] = topic
        const input = msgs.map((m) => `${m.key}:${m.value}`).join("\n") + "\n"
        const r = await run(
          kcat,
          [...common(), "-P", "-t", topic, "-p", "0", "-K:", "-z", codec, "-H", `h-codec=${codec}`, "-H", "h-run=interop", "-X", "acks=all", "-X", "linger.ms=5"],
          { input, timeoutMs: 60_000 }
        )
        expect(r.code, describeRun(r) + "\n--- broker\n" + target.log()).toBe(0)
        expect(r.stderr).not.toMatch(/ERROR|Delivery failed|failed to deliver/i)
      })

      it("consumes them back identically from offset 0 (-C -o 0 -e)", async () => {
        const topic = topics[codec]
        expect(topic, "produce step did not run").toBeDefined()
        const { r, msgs: got } = await consume(topic!, "0")
        expect(r.code, describeRun(r)).toBe(0)
        expect(got.map((m) => m.offset)).toEqual(msgs.map((_, i) => i))
        expect(got.map((m) => m.key)).toEqual(msgs.map((m) => m.key))
        expect(got.map((m) => m.payload)).toEqual(msgs.map((m) => m.value))
        for (const m of got) expect(m.headers).toEqual(["h-codec", codec, "h-run", "interop"])
      })

      it("consumes from an absolute offset (-o 10)", async () => {
        const { r, msgs: got } = await consume(topics[codec]!, "10")
        expect(r.code, describeRun(r)).toBe(0)
        expect(got.map((m) => m.offset)).toEqual(msgs.slice(10).map((_, i) => i + 10))
        expect(got.map((m) => m.payload)).toEqual(msgs.slice(10).map((m) => m.value))
      })

      it("consumes from -o beginning (logical offset, ListOffsets)", async () => {
        const { r, msgs: got } = await consume(topics[codec]!, "beginning")
        expect(r.code, describeRun(r)).toBe(0)
        expect(got.map((m) => m.key)).toEqual(msgs.map((m) => m.key))
        expect(got.map((m) => m.payload)).toEqual(msgs.map((m) => m.value))
      })

      it("consumes the last 5 (-o -5, relative to the end)", async () => {
        const { r, msgs: got } = await consume(topics[codec]!, "-5")
        expect(r.code, describeRun(r)).toBe(0)
        expect(got.map((m) => m.payload)).toEqual(msgs.slice(-5).map((m) => m.value))
      })
    })
  }

  it("lists metadata (-L -J): the broker and the produced topics", async () => {
    const r = await run(kcat, [...common(), "-L", "-J"], { timeoutMs: 30_000 })
    expect(r.code, describeRun(r)).toBe(0)
    const md = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
      brokers: Array<{ id: number; name: string }>
      topics: Array<{ topic: string; partitions: Array<{ partition: number; leader: number }> }>
    }
    expect(md.brokers.length).toBe(1)
    expect(md.brokers[0]!.name).toBe(`${target.host}:${target.port}`)
    const names = md.topics.map((t) => t.topic)
    for (const t of Object.values(topics)) expect(names).toContain(t)
    for (const t of md.topics.filter((x) => Object.values(topics).includes(x.topic))) {
      expect(t.partitions.length).toBeGreaterThanOrEqual(1)
      expect(t.partitions[0]!.leader).toBe(md.brokers[0]!.id)
    }
  })
})
