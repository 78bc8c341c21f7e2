/**
 * Consumer-group soak (not part of `npm test`): `npm run soak:groups -- --minutes 10`.
 *
 * Starts a broker process (test/support/broker.ts), an in-process kafkajs
 * producer (acks=all) and kafkajs consumers in child processes that join and
 * leave every few seconds: graceful leaves (SIGTERM -> disconnect, which sends
 * LeaveGroup) and crashes (SIGKILL, so the broker must expire the session).
 * The group log is compacted many times on the way (a low compaction threshold).
 *
 * Checked continuously:
 *  - no partition is assigned to two members in one generation (each member
 *    reports its generation and assignment, from kafkajs' "Received assignment");
 *  - no partition is owned twice in any DescribeGroups view of a Stable group;
 *  - committed offsets never go backwards and never pass the log end;
 *  - the broker's RSS (/proc/<pid>/status) and the group log's size on disk
 *    are sampled; the first and last minutes are compared.
 * At the end: production stops, every produced message must be consumed and
 * the committed offsets must reach the log end; then the broker is killed
 * (kill -9) and restarted, and the committed offsets must still be there.
 *
 * Prints a JSON summary; exits 1 on any violation.
 *
 * Options: --minutes N (default 10), --seed N, --partitions N (8),
 * --rate messages/s (200), --min-members N (2), --max-members N (5).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs"
import { join, resolve } from "node:path"
import { AssignerProtocol, Kafka, logLevel } from "kafkajs"
import { startBroker } from "../test/support/broker.js"

const repoRoot = resolve(import.meta.dirname, "..")

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return fallback
  const v = Number(process.argv[i + 1])
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`)
  return v
}

const MINUTES = arg("minutes", 10)
const SEED = arg("seed", Date.now() % 1_000_000)
const PARTITIONS = arg("partitions", 8)
const RATE = arg("rate", 200)
const MIN_MEMBERS = arg("min-members", 2)
const MAX_MEMBERS = arg("max-members", 5)
const SESSION_TIMEOUT = 6000
const HEARTBEAT = 500
const TOPIC = "soak"
const GROUP = "soak-group"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** mulberry32 */
const random = (() => {
  let s = SEED | 0
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
})()

const violations: Array<string> = []
const violation = (what: string) => {
  if (violations.length < 200) violations.push(`${new Date().toISOString()} ${what}`)
  console.error(`VIOLATION: ${what}`)
}
const log = (what: string) => console.error(`[soak ${new Date().toISOString()}] ${what}`)

/**
 * A kafkajs group member. Prints one JSON line per consumed message (before
 * kafkajs resolves and commits its offset: stdout is a pipe, written
 * synchronously) and one per assignment with its generation.
 * CHILD_ARGS: [bootstrap, groupId, topic, name]
 */
const MEMBER = `
import kafkajs from "kafkajs"
const [bootstrap, groupId, topic, name] = JSON.parse(process.env.CHILD_ARGS)
const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n")
const logCreator = () => ({ namespace, log }) => {
  if (log.message === "Received assignment") {
    out({ t: "a", g: log.generationId, m: log.memberId, ps: (log.memberAssignment?.[topic] ?? []).slice().sort((a, b) => a - b) })
  }
}
const kafka = new kafkajs.Kafka({ clientId: name, brokers: [bootstrap], logLevel: kafkajs.logLevel.DEBUG, logCreator,
  retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 2000 } })
const consumer = kafka.consumer({ groupId, sessionTimeout: ${SESSION_TIMEOUT}, heartbeatInterval: ${HEARTBEAT}, maxWaitTimeInMs: 500,
  retry: { retries: 20 } })
consumer.on(consumer.events.CRASH, (e) => out({ t: "crash", error: String(e.payload.error), restart: e.payload.restart }))
let stopping = false
process.on("SIGTERM", async () => {
  if (stopping) return
  stopping = true
  try { await consumer.disconnect() } finally { process.exit(0) }
})
await consumer.connect()
await consumer.subscribe({ topic, fromBeginning: true })
await consumer.run({
  eachMessage: async ({ partition, message }) => { out({ t: "c", p: partition, o: Number(message.offset) }) }
})
out({ t: "running" })
setInterval(() => {}, 1 << 30)
`

interface Member {
  readonly name: string
  readonly proc: ChildProcess
  readonly exited: Promise<void>
  alive: boolean
}

const main = async () => {
  const startedAt = Date.now()
  const broker = await startBroker({
    args: ["--num-partitions", String(PARTITIONS)],
    env: {
      CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS: "0",
      // compact the group log often, so the soak exercises compaction
      CHRONIK_GROUP_STORE_COMPACT_MIN_SUPERSEDED_RECORDS: "2000"
    }
  })
  const brokerPid = (): number | undefined => {
    for (const d of readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue
      try {
        const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8")
        if (cmd.includes(broker.dataDir) && cmd.includes("layers/main.ts")) return Number(d)
      } catch {
        // gone
      }
    }
    return undefined
  }
  const rssMb = (pid: number): number | undefined => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
      return m ? Number(m[1]) / 1024 : undefined
    } catch {
      return undefined
    }
  }
  const groupLogBytes = (): number => {
    const dir = join(broker.dataDir, "__group_metadata")
    if (!existsSync(dir)) return 0
    let n = 0
    for (const f of readdirSync(dir)) {
      try {
        n += statSync(join(dir, f)).size
      } catch {
        // deleted meanwhile (compaction)
      }
    }
    return n
  }

  const kafka = new Kafka({ clientId: "soak-driver", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 20 } })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true })

  // -- consumption bookkeeping
  const consumed = Array.from({ length: PARTITIONS }, () => new Uint8Array(1 << 16))
  let consumedMessages = 0
  let duplicates = 0
  const markConsumed = (p: number, o: number) => {
    let bits = consumed[p]!
    if (o >= bits.length) {
      const next = new Uint8Array(Math.max(bits.length * 2, o + 1))
      next.set(bits)
      consumed[p] = next
      bits = next
    }
    consumedMessages++
    if (bits[o] === 1) duplicates++
    bits[o] = 1
  }
  /** generation -> memberId -> partitions */
  const generations = new Map<number, Map<string, Array<number>>>()
  let assignmentsReported = 0
  const onAssignment = (generation: number, memberId: string, partitions: Array<number>) => {
    assignmentsReported++
    let g = generations.get(generation)
    if (!g) generations.set(generation, (g = new Map()))
    g.set(memberId, partitions)
    const owners = new Map<number, string>()
    for (const [m, ps] of g) {
      for (const p of ps) {
        const other = owners.get(p)
        if (other !== undefined && other !== m) violation(`partition ${p} assigned to ${other} and ${m} in generation ${generation}`)
        owners.set(p, m)
      }
    }
  }

  // -- members
  const members: Array<Member> = []
  let started = 0
  let gracefulLeaves = 0
  let crashes = 0
  let memberCrashEvents = 0
  const startMember = (): Member => {
    const name = `member-${++started}`
    const proc = spawn(process.execPath, ["--input-type=module", "-e", MEMBER], {
      cwd: repoRoot,
      env: { ...process.env, CHILD_ARGS: JSON.stringify([broker.bootstrap, GROUP, TOPIC, name]) },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let buf = ""
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString()
      let nl: number
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let e: { t: string; p?: number; o?: number; g?: number; m?: string; ps?: Array<number>; error?: string }
        try {
          e = JSON.parse(line)
        } catch {
          continue
        }
        if (e.t === "c") markConsumed(e.p!, e.o!)
        else if (e.t === "a") onAssignment(e.g!, e.m!, e.ps!)
        else if (e.t === "crash") {
          memberCrashEvents++
          log(`${name}: kafkajs consumer crash event: ${e.error}`)
        }
      }
    })
    let err = ""
    proc.stderr!.on("data", (d: Buffer) => {
      err += d.toString()
      if (err.length > 10_000) err = err.slice(-5000)
    })
    const m: Member = {
      name,
      proc,
      alive: true,
      exited: new Promise((res) =>
        proc.once("exit", (code, signal) => {
          if (m.alive && signal === null) log(`${name} exited by itself (${code}): ${err.slice(-500)}`)
          m.alive = false
          res()
        })
      )
    }
    members.push(m)
    return m
  }
  const live = () => members.filter((m) => m.alive)
  const stopMember = async (m: Member) => {
    m.alive = false
    m.proc.kill("SIGTERM")
    const t = setTimeout(() => m.proc.kill("SIGKILL"), 20_000)
    await m.exited
    clearTimeout(t)
    m.alive = false
  }
  const crashMember = async (m: Member) => {
    m.alive = false
    m.proc.kill("SIGKILL")
    await m.exited
  }

  // -- producer
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  let producing = true
  let produced = 0
  let produceErrors = 0
  const producerLoop = (async () => {
    const perTick = Math.max(1, Math.round(RATE / 10))
    let next = 0
    while (producing) {
      const t0 = Date.now()
      try {
        await producer.send({
          topic: TOPIC,
          acks: -1,
          messages: Array.from({ length: perTick }, (_, i) => ({ partition: (next + i) % PARTITIONS, value: `m${produced + i}` }))
        })
        next = (next + perTick) % PARTITIONS
        produced += perTick
      } catch (e) {
        produceErrors++
        log(`produce failed: ${(e as Error).message}`)
      }
      await sleep(Math.max(0, 100 - (Date.now() - t0)))
    }
  })()

  // -- monitors
  const committed = new Map<number, number>()
  let commitPolls = 0
  let committedAdvances = 0
  const pollCommits = async (): Promise<Map<number, number>> => {
    const [t] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] })
    const now = new Map<number, number>()
    for (const p of t?.partitions ?? []) now.set(p.partition, Number(p.offset))
    commitPolls++
    for (const [p, o] of now) {
      const before = committed.get(p) ?? -1
      if (o < before) violation(`committed offset of partition ${p} went back from ${before} to ${o}`)
      if (o > before) committedAdvances++
      committed.set(p, Math.max(before, o))
    }
    return now
  }
  let describePolls = 0
  let stableViews = 0
  const pollDescribe = async () => {
    const { groups } = await admin.describeGroups([GROUP])
    describePolls++
    const g = groups[0]
    if (!g || g.state !== "Stable") return
    stableViews++
    const owners = new Map<number, string>()
    for (const m of g.members) {
      if (m.memberAssignment.length === 0) continue
      const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment)
      for (const p of a?.assignment[TOPIC] ?? []) {
        const other = owners.get(p)
        if (other !== undefined) violation(`DescribeGroups: partition ${p} owned by ${other} and ${m.memberId}`)
        owners.set(p, m.memberId)
      }
    }
  }
  const memory: Array<{ t: number; rssMb: number; groupLogBytes: number }> = []
  let pid = brokerPid()
  const sampleMemory = () => {
    if (pid === undefined) pid = brokerPid()
    const rss = pid === undefined ? undefined : rssMb(pid)
    if (rss !== undefined) memory.push({ t: (Date.now() - startedAt) / 1000, rssMb: rss, groupLogBytes: groupLogBytes() })
  }
  let monitoring = true
  const monitorLoop = (async () => {
    let tick = 0
    while (monitoring) {
      try {
        await pollCommits()
        if (tick % 2 === 0) await pollDescribe()
        if (tick % 5 === 0) sampleMemory()
      } catch (e) {
        log(`monitor: ${(e as Error).message}`)
      }
      tick++
      await sleep(1000)
    }
  })()

  // -- churn
  for (let i = 0; i < MIN_MEMBERS; i++) startMember()
  const churnUntil = startedAt + MINUTES * 60_000
  let lastReport = Date.now()
  while (Date.now() < churnUntil) {
    await sleep(2000 + random() * 3000)
    const l = live()
    const r = random()
    if (l.length < MIN_MEMBERS || (l.length < MAX_MEMBERS && r < 0.4)) {
      startMember()
    } else if (r < 0.75 || l.length >= MAX_MEMBERS) {
      const victim = l[Math.floor(random() * l.length)]!
      if (random() < 0.6) {
        gracefulLeaves++
        void stopMember(victim)
      } else {
        crashes++
        await crashMember(victim)
      }
      if (live().length < MIN_MEMBERS) startMember()
    }
    if (Date.now() - lastReport > 60_000) {
      lastReport = Date.now()
      log(
        `produced ${produced}, consumed ${consumedMessages}, live members ${live().length}, generations ${generations.size}, rss ${memory.at(-1)?.rssMb.toFixed(0)} MB, group log ${memory.at(-1)?.groupLogBytes} B, violations ${violations.length}`
      )
    }
  }

  // -- drain: stop producing, keep two members, everything must be consumed and committed
  producing = false
  await producerLoop
  const ends = await admin.fetchTopicOffsets(TOPIC)
  const logEnd = new Map(ends.map((e) => [e.partition, Number(e.high)]))
  const totalEnd = [...logEnd.values()].reduce((a, b) => a + b, 0)
  if (totalEnd !== produced) violation(`log end total ${totalEnd} != acknowledged produced ${produced}`)
  while (live().length < MIN_MEMBERS) startMember()
  const drainStart = Date.now()
  const allConsumed = () => {
    for (const [p, end] of logEnd) for (let o = 0; o < end; o++) if (consumed[p]![o] !== 1) return false
    return true
  }
  const allCommitted = () => [...logEnd].every(([p, end]) => (committed.get(p) ?? -1) === end)
  let drained = false
  while (Date.now() - drainStart < 180_000) {
    if (allConsumed() && allCommitted()) {
      drained = true
      break
    }
    await sleep(1000)
  }
  const drainSeconds = (Date.now() - drainStart) / 1000
  if (!drained) {
    const missing = [...logEnd].map(([p, end]) => {
      let n = 0
      for (let o = 0; o < end; o++) if (consumed[p]![o] !== 1) n++
      return { partition: p, end, committed: committed.get(p) ?? -1, unconsumed: n }
    })
    violation(`not drained within 180 s: ${JSON.stringify(missing)}`)
  }
  monitoring = false
  await monitorLoop
  sampleMemory()

  // -- members leave; kill -9 the broker, restart it: the committed offsets are still the log end
  await Promise.all(live().map(stopMember))
  await admin.disconnect().catch(() => {})
  await producer.disconnect().catch(() => {})
  await broker.kill9()
  await broker.restart()
  const admin2 = new Kafka({ clientId: "soak-check", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 20 } }).admin()
  await admin2.connect()
  const [afterRestart] = await admin2.fetchOffsets({ groupId: GROUP, topics: [TOPIC] })
  const restored = new Map((afterRestart?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]))
  for (const [p, end] of logEnd) {
    if (restored.get(p) !== end) violation(`after kill -9 and restart, partition ${p} committed ${restored.get(p)} != log end ${end}`)
  }
  await admin2.disconnect().catch(() => {})
  const brokerErrors = broker
    .output()
    .split("\n")
    .filter((l) => /level=(ERROR|FATAL)|\bERROR\b|Fatal|Unhandled/i.test(l)).length
  await broker.stop()
  await broker.cleanup()

  // -- memory trend
  const inWindow = (from: number, to: number) => memory.filter((s) => s.t >= from && s.t < to)
  const avg = (xs: Array<number>) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length)
  const churnSeconds = MINUTES * 60
  const first = inWindow(0, 60)
  const last = inWindow(Math.max(0, churnSeconds - 60), churnSeconds)
  const firstRss = avg(first.map((s) => s.rssMb))
  const lastRss = avg(last.map((s) => s.rssMb))
  const n = memory.length
  const mt = avg(memory.map((s) => s.t))
  const mr = avg(memory.map((s) => s.rssMb))
  const slope =
    n < 2
      ? 0
      : memory.reduce((a, s) => a + (s.t - mt) * (s.rssMb - mr), 0) / Math.max(1e-9, memory.reduce((a, s) => a + (s.t - mt) ** 2, 0))
  const rssGrowth = firstRss > 0 ? lastRss / firstRss : 1
  if (MINUTES >= 3 && rssGrowth > 1.5) violation(`broker RSS grew from ${firstRss.toFixed(0)} MB (first minute) to ${lastRss.toFixed(0)} MB (last minute)`)
  const maxGroupLog = Math.max(0, ...memory.map((s) => s.groupLogBytes))

  let uniqueConsumed = 0
  for (const [p, end] of logEnd) for (let o = 0; o < end; o++) if (consumed[p]![o] === 1) uniqueConsumed++

  const summary = {
    ok: violations.length === 0,
    seed: SEED,
    minutes: MINUTES,
    wallSeconds: Math.round((Date.now() - startedAt) / 1000),
    partitions: PARTITIONS,
    producedMessages: produced,
    produceErrors,
    logEnd: totalEnd,
    consumedMessages,
    uniqueConsumed,
    redelivered: duplicates,
    membersStarted: started,
    gracefulLeaves,
    crashes,
    memberCrashEvents,
    generations: generations.size,
    assignmentsReported,
    doubleAssignments: violations.filter((v) => v.includes("assigned to") || v.includes("owned by")).length,
    describePolls,
    stableViews,
    commitPolls,
    committedAdvances,
    committedWentBack: violations.filter((v) => v.includes("went back")).length,
    drained,
    drainSeconds,
    committedAfterKill9Restart: Object.fromEntries(restored),
    memory: {
      samples: n,
      firstMinuteRssMb: Number(firstRss.toFixed(1)),
      lastMinuteRssMb: Number(lastRss.toFixed(1)),
      rssGrowth: Number(rssGrowth.toFixed(3)),
      rssSlopeMbPerMin: Number((slope * 60).toFixed(2)),
      maxRssMb: Number(Math.max(0, ...memory.map((s) => s.rssMb)).toFixed(1)),
      maxGroupLogBytes: maxGroupLog,
      finalGroupLogBytes: memory.at(-1)?.groupLogBytes ?? 0
    },
    brokerErrorLines: brokerErrors,
    violations
  }
  console.log(JSON.stringify(summary, null, 2))
  process.exit(summary.ok ? 0 : 1)
}

main().catch((e) => {
  console.error(e)
  process.exit(2)
})
