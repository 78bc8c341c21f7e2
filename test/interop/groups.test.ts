/**
 * Consumer groups (classic protocol) with real clients, several member processes per group:
 *
 * - librdkafka (Python confluent-kafka, test/interop/python/group_member.py) with the `range`
 *   and the `cooperative-sticky` assignors;
 * - the Java KafkaConsumer (group.protocol=classic, test/interop/java/GroupMember.java) with
 *   the same two assignors;
 * - mixed groups of Java and librdkafka members (both clients name these assignors "range" and
 *   "cooperative-sticky", so each can be the leader and assign for the other).
 *
 * Each member is a long-running process controlled on stdin ("leave"), printing JSON lines:
 * its assignment changes (assign/revoke/lost, with a timestamp; Java adds the generation), every
 * record it consumes and every commit. Offsets are committed synchronously on revocation, every
 * second and on leave. A scenario on a 6-partition topic, with records produced (kafkajs) while
 * members come and go:
 *
 * - after every join or leave, once the group settles (no assignment change for a while), each
 *   partition is owned by exactly one live member;
 * - over the whole run (the members' events merged by timestamp), a partition is never assigned
 *   to a member while another one still owns it (eager: revoke-all before the new generation;
 *   cooperative: incremental revocation, then assignment in the next rebalance);
 * - every produced record is consumed (nothing lost) exactly once (the revocation commits leave
 *   no duplicates), except that the records a crashed member (SIGKILL, removed at session expiry)
 *   consumed after its last commit are consumed once more by the next owner;
 * - a new member of the emptied group resumes from the committed offsets: it consumes nothing
 *   old, and exactly the records produced after it joined.
 *
 * CHRONIK_INTEROP_GROUPS_DUMP=<dir> writes every member's JSON lines there (<scenario>-<member>.jsonl).
 *
 * Chronik runs with CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS=0, as the reference Kafka
 * (group.initial.rebalance.delay.ms=0 in scripts/kafka-reference/start.sh), unless the variable is
 * set in the test's environment (e.g. 3000, the default, to exercise the initial delay).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import kafkajs from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type LiveProcess,
  type Target,
  describeRun,
  killAllLive,
  logSkip,
  readPeers,
  repoRoot,
  run,
  skipReason,
  spawnLive,
  startTarget,
  uniqueTopic,
  waitUntil
} from "./support.js"

const pythonReason = skipReason("python")
const javaReason = skipReason("java")
const mixedReason = pythonReason ?? javaReason
logSkip("groups.test.ts", pythonReason)
logSkip("groups.test.ts", javaReason)

const PARTITIONS = 6
const ALL = Array.from({ length: PARTITIONS }, (_, i) => i)
/** Records per batch, produced after every membership change (BATCH / PARTITIONS per partition). */
const BATCH = 60
/** A settled group: no assignment change for this long. */
const QUIET_MS = 1500
const SETTLE_TIMEOUT_MS = 45_000
/** Hard limit of a member process (it exits by itself, and is SIGKILLed a bit later). */
const MEMBER_LIFETIME_S = 150

type Kind = "py" | "java"
type Strategy = "range" | "cooperative-sticky"
/** join a new member; leave: member #i (in start order) leaves (LeaveGroup); crash: member #i is SIGKILLed (session expiry). */
type Step = { readonly join: Kind } | { readonly leave: number } | { readonly crash: number }

interface Scenario {
  readonly title: string
  readonly strategy: Strategy
  readonly initial: ReadonlyArray<Kind>
  readonly steps: ReadonlyArray<Step>
  readonly resume: Kind
}

interface Member {
  readonly name: string
  readonly kind: Kind
  readonly proc: LiveProcess
  left: boolean
  crashed: boolean
}

type Ev = Record<string, unknown> & { readonly ev: string; readonly t: number; readonly _at: number }

const OWNERSHIP = new Set(["assign", "revoke", "lost", "release"])

const runnable = [pythonReason, javaReason].some((r) => r === undefined)

describe.skipIf(!runnable)("consumer groups with librdkafka and Java members", () => {
  let target: Target
  let classes = ""
  const peers = readPeers()
  let kafka: InstanceType<typeof kafkajs.Kafka>
  let producer: ReturnType<InstanceType<typeof kafkajs.Kafka>["producer"]>

  beforeAll(async () => {
    const compile = async () => {
      if (javaReason !== undefined) return
      classes = mkdtempSync(join(tmpdir(), "chronik-interop-groups-"))
      const c = await run(
        "javac",
        ["-encoding", "UTF-8", "-nowarn", "-cp", peers.JAVA_KAFKA_CLIENTS_CP, "-d", classes, join(repoRoot, "test/interop/java/GroupMember.java")],
        { timeoutMs: 120_000 }
      )
      if (c.code !== 0) throw new Error(`javac failed: ${describeRun(c)}`)
    }
    const delay = process.env["CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS"] ?? "0"
    const [, t] = await Promise.all([compile(), startTarget({ chronikEnv: { CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS: delay } })])
    target = t
    kafka = new kafkajs.Kafka({
      clientId: "interop-groups",
      brokers: [target.bootstrap],
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 5 }
    })
    producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
  })

  afterAll(async () => {
    await killAllLive()
    await producer?.disconnect().catch(() => undefined)
    await target?.stop()
    if (classes) rmSync(classes, { recursive: true, force: true })
  })

  // ------------------------------------------------------------------ helpers

  const spawnMember = (kind: Kind, name: string, topic: string, group: string, strategy: Strategy): LiveProcess => {
    const args = [target.bootstrap, topic, group, strategy, name, String(PARTITIONS), String(MEMBER_LIFETIME_S)]
    const timeoutMs = (MEMBER_LIFETIME_S + 10) * 1000
    if (kind === "py") return spawnLive(name, peers.PYTHON_CONFLUENT, [join(repoRoot, "test/interop/python/group_member.py"), ...args], { timeoutMs })
    return spawnLive(
      name,
      "java",
      [
        "-Xmx128m",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Xshare:auto",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-cp",
        `${classes}:${peers.JAVA_KAFKA_CLIENTS_CP}`,
        "GroupMember",
        ...args
      ],
      { timeoutMs }
    )
  }

  const events = (m: Member): Array<Ev> => m.proc.lines as Array<Ev>

  /** The partitions a member owns after its last assignment event. */
  const ownedBy = (m: Member): ReadonlyArray<number> => {
    const last = events(m).filter((e) => OWNERSHIP.has(e.ev)).at(-1)
    return last === undefined ? [] : (last["owned"] as Array<number>)
  }

  const ownershipSummary = (ms: ReadonlyArray<Member>): string =>
    ms.map((m) => `${m.name}${m.left ? " (left)" : ""}: [${ownedBy(m).join(",")}]`).join("; ")

  const diagnostics = (ms: ReadonlyArray<Member>): string =>
    `\n${ms.map((m) => m.proc.describe()).join("\n")}\n--- broker log (tail)\n${target.log().slice(-3000)}`

  /** Waits until the live members own every partition exactly once, each at least one, with no change for QUIET_MS. */
  const settle = async (all: ReadonlyArray<Member>, phase: string): Promise<Record<string, ReadonlyArray<number>>> => {
    const live = all.filter((m) => !m.left)
    const lastChange = () => Math.max(0, ...live.map((m) => events(m).filter((e) => OWNERSHIP.has(e.ev)).at(-1)?._at ?? 0))
    const exact = () => {
      const owned = live.map(ownedBy)
      const flat = owned.flat()
      return owned.every((o) => o.length > 0) && flat.length === PARTITIONS && new Set(flat).size === PARTITIONS
    }
    await waitUntil(
      () => {
        for (const m of all) if (!m.proc.alive() && !m.left) throw new Error(`${m.name} exited unexpectedly${diagnostics(all)}`)
        return exact() && Date.now() - lastChange() >= QUIET_MS
      },
      SETTLE_TIMEOUT_MS,
      () => `the group to settle after ${phase}: ${ownershipSummary(all)}${diagnostics(all)}`
    )
    // The Java members report the generation: after settling they all are in the same one.
    const gens = live
      .filter((m) => m.kind === "java")
      .map((m) => events(m).filter((e) => e.ev === "assign").at(-1)?.["gen"])
    expect(new Set(gens).size, `generations of the Java members after ${phase}: ${JSON.stringify(gens)}`).toBeLessThanOrEqual(1)
    const snapshot = Object.fromEntries(live.map((m) => [m.name, ownedBy(m)]))
    expect(
      Object.values(snapshot)
        .flat()
        .sort((a, b) => a - b),
      `after ${phase}: ${JSON.stringify(snapshot)}`
    ).toEqual(ALL)
    return snapshot
  }

  /**
   * Produces `perPartition` records to every partition (idempotent, acks=all) and reads the new end
   * offsets into `ends` (so a producer retry could not make the expected offsets wrong).
   */
  const produceBatch = async (topic: string, ends: Array<number>, perPartition: number, tag: string): Promise<void> => {
    const messages = ALL.flatMap((p) =>
      Array.from({ length: perPartition }, (_, i) => ({ partition: p, key: `${tag}-p${p}-${i}`, value: `v-${tag}-${i}` }))
    )
    await producer.send({ topic, acks: -1, messages })
    const admin = kafka.admin()
    await admin.connect()
    try {
      for (const o of await admin.fetchTopicOffsets(topic)) ends[o.partition] = Number(o.high)
    } finally {
      await admin.disconnect()
    }
  }

  /** Merged ownership timeline: a partition is never assigned while another member still owns it. */
  const checkTimeline = (ms: ReadonlyArray<Member>): void => {
    const order = (ev: string) => (ev === "assign" ? 1 : 0)
    const all = ms
      .flatMap((m) => events(m).filter((e) => OWNERSHIP.has(e.ev)).map((e) => ({ m: m.name, e })))
      .sort((a, b) => a.e.t - b.e.t || order(a.e.ev) - order(b.e.ev))
    const owner = new Map<number, string>()
    const violations: Array<string> = []
    for (const { m, e } of all) {
      const parts = (e["parts"] as Array<number> | undefined) ?? []
      if (e.ev === "assign") {
        for (const p of parts) {
          const o = owner.get(p)
          if (o !== undefined && o !== m) violations.push(`t=${e.t}: partition ${p} assigned to ${m} while ${o} owns it`)
          owner.set(p, m)
        }
      } else if (e.ev === "release") {
        for (const [p, o] of owner) if (o === m) owner.delete(p)
      } else {
        for (const p of parts) if (owner.get(p) === m) owner.delete(p)
      }
    }
    expect(violations, `ownership timeline\n${all.map(({ m, e }) => `${e.t} ${m} ${e.ev} [${String(e["parts"] ?? "")}]`).join("\n")}`).toEqual([])
  }

  /** Eager (range): every revocation revokes everything. Cooperative: some revocations are incremental, none revokes all in a rebalance. */
  const checkProtocol = (ms: ReadonlyArray<Member>, strategy: Strategy): void => {
    const revokes = ms.flatMap((m) => {
      const released = events(m).find((e) => e.ev === "release")?.t ?? Infinity
      return events(m)
        .filter((e) => e.ev === "revoke" && e.t < released && (e["parts"] as Array<number>).length > 0)
        .map((e) => ({ m: m.name, parts: e["parts"] as Array<number>, owned: e["owned"] as Array<number> }))
    })
    expect(revokes.length, "revocations during rebalances").toBeGreaterThan(0)
    if (strategy === "range") {
      expect(revokes.filter((r) => r.owned.length > 0), "eager revocations that kept partitions").toEqual([])
    } else {
      expect(revokes.filter((r) => r.owned.length === 0), "cooperative revocations of every owned partition").toEqual([])
    }
  }

  const recsOf = (ms: ReadonlyArray<Member>) =>
    ms.flatMap((m) => events(m).filter((e) => e.ev === "rec").map((e) => ({ m: m.name, p: e["p"] as number, o: e["o"] as number, k: e["k"] as string })))

  const distinctConsumed = (ms: ReadonlyArray<Member>): number => new Set(recsOf(ms).map((r) => `${r.p}:${r.o}`)).size

  const problems = (ms: ReadonlyArray<Member>): Array<string> =>
    ms.flatMap((m) =>
      events(m)
        .filter((e) => e.ev === "error" || e.ev === "fatal" || e.ev === "lost" || e.ev === "timeout" || (e.ev === "commit_error" && e["why"] !== "periodic"))
        .map((e) => `${m.name}: ${JSON.stringify(e)}`)
    )

  // ------------------------------------------------------------------ the scenario

  const runScenario = async (sc: Scenario): Promise<void> => {
    const topic = uniqueTopic(`grp-${sc.strategy}`)
    const group = uniqueTopic(`g-${sc.title.replace(/[^a-z]+/gi, "-")}`)
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const ends = ALL.map(() => 0)
    const members: Array<Member> = []
    let seq = 0
    const start = (kind: Kind): Member => {
      const name = `${kind}-${++seq}`
      const m: Member = { name, kind, proc: spawnMember(kind, name, topic, group, sc.strategy), left: false, crashed: false }
      members.push(m)
      return m
    }
    const leave = async (m: Member): Promise<void> => {
      m.proc.send("leave")
      const r = await Promise.race([m.proc.exited, new Promise<null>((res) => setTimeout(() => res(null), 30_000))])
      expect(r?.code, `${m.name} did not leave cleanly${diagnostics(members)}`).toBe(0)
      expect(events(m).some((e) => e.ev === "closed"), m.proc.describe()).toBe(true)
      m.left = true
    }
    try {
      // Records are produced while the first members join, and after every change.
      for (const k of sc.initial) start(k)
      await produceBatch(topic, ends, BATCH / PARTITIONS, "b0")
      await settle(members, `the first ${sc.initial.length} members joined`)
      let batch = 0
      for (const step of sc.steps) {
        batch++
        if ("join" in step) {
          const m = start(step.join)
          await produceBatch(topic, ends, BATCH / PARTITIONS, `b${batch}`)
          await settle(members, `${m.name} joined`)
        } else if ("leave" in step) {
          const m = members[step.leave]!
          const leaving = leave(m)
          await produceBatch(topic, ends, BATCH / PARTITIONS, `b${batch}`)
          await leaving
          await settle(members, `${m.name} left`)
        } else {
          // No LeaveGroup: the coordinator removes the member when its session (6 s) expires.
          const m = members[step.crash]!
          m.proc.kill()
          await m.proc.exited
          m.proc.lines.push({ ev: "release", t: Date.now(), owned: [], crashed: true, _at: Date.now() })
          m.left = true
          m.crashed = true
          await produceBatch(topic, ends, BATCH / PARTITIONS, `b${batch}`)
          await settle(members, `${m.name} crashed`)
        }
      }
      const total = ends.reduce((a, b) => a + b, 0)
      await waitUntil(
        () => distinctConsumed(members) >= total,
        30_000,
        () => `all ${total} records consumed (got ${distinctConsumed(members)})${diagnostics(members)}`
      )
      for (const m of members.filter((x) => !x.left)) await leave(m)

      expect(problems(members), diagnostics(members)).toEqual([])
      checkTimeline(members)
      checkProtocol(members, sc.strategy)
      // Nothing lost, nothing twice.
      const recs = recsOf(members)
      const expected = ALL.flatMap((p) => Array.from({ length: ends[p]! }, (_, o) => `${p}:${o}`)).sort()
      expect([...new Set(recs.map((r) => `${r.p}:${r.o}`))].sort(), "consumed offsets").toEqual(expected)
      const seen = new Map<string, Array<string>>()
      for (const r of recs) seen.set(`${r.p}:${r.o}`, [...(seen.get(`${r.p}:${r.o}`) ?? []), r.m])
      // A crashed member did not commit what it consumed after its last commit: those records are
      // consumed again by the next owner (at-least-once), once more and only those.
      const lastCommit = new Map<string, number>()
      for (const m of members.filter((x) => x.crashed)) {
        for (const e of events(m)) {
          if (e.ev !== "commit") continue
          for (const [p, o] of Object.entries(e["offsets"] as Record<string, number>)) lastCommit.set(`${m.name}:${p}`, o)
        }
      }
      const redelivery = (key: string, who: ReadonlyArray<string>): boolean => {
        const [p, o] = key.split(":").map(Number) as [number, number]
        const crashed = who.filter((n) => members.find((m) => m.name === n)!.crashed)
        return who.length === 2 && crashed.length === 1 && o >= (lastCommit.get(`${crashed[0]}:${p}`) ?? 0)
      }
      const dups = [...seen]
        .filter(([k, who]) => who.length > 1 && !redelivery(k, who))
        .map(([k, who]) => `${k} by ${who.join(",")}`)
      expect(dups, "records consumed more than once").toEqual([])
      for (const r of recs) expect(r.k.includes(`-p${r.p}-`), `key ${r.k} at ${r.p}:${r.o}`).toBe(true)

      // A new member resumes from the committed offsets.
      const fresh = start(sc.resume)
      await settle([fresh], `${fresh.name} joined the emptied group`)
      await new Promise((r) => setTimeout(r, 1000))
      expect(recsOf([fresh]), `${fresh.name} re-consumed committed records`).toEqual([])
      // The group's committed offsets are the end offsets: every record was consumed and committed.
      fresh.proc.send("committed")
      await waitUntil(() => events(fresh).some((e) => e.ev === "committed"), 20_000, () => `committed offsets${diagnostics([fresh])}`)
      expect(events(fresh).find((e) => e.ev === "committed")!["offsets"], "committed offsets").toEqual(
        Object.fromEntries(ALL.map((p) => [String(p), ends[p]!]))
      )
      const before = [...ends]
      await produceBatch(topic, ends, 1, "resume")
      const added = ends.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)
      await waitUntil(() => recsOf([fresh]).length >= added, 20_000, () => `the resumed member to consume the new records${diagnostics([fresh])}`)
      await new Promise((r) => setTimeout(r, 300))
      expect(
        recsOf([fresh])
          .map((r) => [r.p, r.o])
          .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!),
        "the resumed member reads exactly the records produced after it joined"
      ).toEqual(ALL.flatMap((p) => Array.from({ length: ends[p]! - before[p]! }, (_, i) => [p, before[p]! + i])))
      await leave(fresh)
      expect(problems([fresh]), diagnostics([fresh])).toEqual([])
    } finally {
      for (const m of members) m.proc.kill()
      const dump = process.env["CHRONIK_INTEROP_GROUPS_DUMP"]
      if (dump !== undefined && dump !== "") {
        mkdirSync(dump, { recursive: true })
        for (const m of members) {
          writeFileSync(join(dump, `${sc.title}-${m.name}.jsonl`), m.proc.lines.map((l) => JSON.stringify(l)).join("\n") + "\n")
        }
      }
    }
  }

  // ------------------------------------------------------------------ scenarios

  const churn = (k: Kind): Pick<Scenario, "initial" | "steps" | "resume"> => ({
    initial: [k, k, k],
    steps: [{ join: k }, { leave: 0 }, { crash: 1 }],
    resume: k
  })

  describe.skipIf(pythonReason !== undefined)(`librdkafka (confluent-kafka) members (${pythonReason ?? "installed"})`, () => {
    for (const strategy of ["range", "cooperative-sticky"] as const) {
      it(`${strategy}: 3 members, a 4th joins, one leaves, one crashes; exactly-once ownership, no loss, no duplicates, resume`, async () => {
        await runScenario({ title: `py-${strategy}`, strategy, ...churn("py") })
      })
    }
  })

  describe.skipIf(javaReason !== undefined)(`Java KafkaConsumer, group.protocol=classic (${javaReason ?? "installed"})`, () => {
    for (const strategy of ["range", "cooperative-sticky"] as const) {
      it(`${strategy}: 2 members, a 3rd joins, 1 leaves; exactly-once ownership, no loss, no duplicates, resume`, async () => {
        await runScenario({
          title: `java-${strategy}`,
          strategy,
          initial: ["java", "java"],
          steps: [{ join: "java" }, { leave: 0 }],
          resume: "java"
        })
      })
    }
  })

  describe.skipIf(mixedReason !== undefined)(`mixed Java and librdkafka members (${mixedReason ?? "installed"})`, () => {
    for (const strategy of ["range", "cooperative-sticky"] as const) {
      it(`${strategy}: java + librdkafka members join, one leaves, one crashes; exactly-once ownership, no loss, no duplicates, resume`, async () => {
        await runScenario({
          title: `mixed-${strategy}`,
          strategy,
          initial: ["java", "py"],
          steps: [{ join: "py" }, { join: "java" }, { leave: 0 }, { crash: 1 }],
          resume: strategy === "range" ? "py" : "java"
        })
      })
    }
  })
})
