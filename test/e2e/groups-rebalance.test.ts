/**
 * Consumer-group rebalances with real npm clients on a broker process:
 * partitions stay assigned exactly once among the live members as members
 * join, leave gracefully and crash (session expiry); no message is processed
 * twice across rebalances when kafkajs commits before revocation; a static
 * member (@platformatic/kafka `groupInstanceId`) that restarts within its
 * session timeout gets its partitions back without a rebalance.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { resolve } from "node:path"
import { Consumer, MessagesStreamModes, stringDeserializers } from "@platformatic/kafka"
import { type Admin, type Consumer as KjsConsumer, Kafka, logLevel } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { describeGroup, type GroupView } from "../support/groupView.js"
import { sleep, waitFor } from "../support/wait.js"

const repoRoot = resolve(import.meta.dirname, "../..")
const PARTITIONS = 6
const SESSION_TIMEOUT = 6000
const HEARTBEAT = 500

/** Stable, exactly the expected members, and every partition owned by exactly one of them. */
const isSettled = (view: GroupView, members: ReadonlySet<string>): boolean => {
  if (view.state !== "Stable") return false
  if (view.assignments.size !== members.size) return false
  for (const id of members) if (!view.assignments.has(id)) return false
  const owned = [...view.assignments.values()].flat().sort((a, b) => a - b)
  return owned.length === PARTITIONS && owned.every((p, i) => p === i)
}

const waitSettled = async (admin: Admin, groupId: string, topic: string, members: () => ReadonlySet<string>, what: string) => {
  let last: GroupView | undefined
  try {
    await waitFor(
      async () => {
        last = await describeGroup(admin, groupId, topic)
        return isSettled(last, members())
      },
      45_000,
      what
    )
  } catch (e) {
    throw new Error(
      `${(e as Error).message}; expected members ${JSON.stringify([...members()])}, last view ${JSON.stringify({ state: last?.state, assignments: [...(last?.assignments ?? [])] })}`
    )
  }
  return last!
}

/** A child process running a script; lines of stdout are parsed as JSON events. */
interface Child {
  readonly proc: ChildProcess
  readonly events: Array<Record<string, unknown>>
  readonly output: () => string
  readonly kill9: () => Promise<void>
}

const spawnScript = (script: string, args: ReadonlyArray<string>): Child => {
  const proc = spawn(process.execPath, ["--input-type=module", "-e", script], {
    cwd: repoRoot,
    env: { ...process.env, CHILD_ARGS: JSON.stringify(args) },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const events: Array<Record<string, unknown>> = []
  let out = ""
  let buf = ""
  proc.stdout!.on("data", (d: Buffer) => {
    out += d.toString()
    buf += d.toString()
    let nl: number
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      try {
        events.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        // not an event
      }
    }
  })
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()))
  const exited = new Promise<void>((res) => proc.once("exit", () => res()))
  return {
    proc,
    events,
    output: () => out,
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGKILL")
        await exited
      }
    }
  }
}

/** kafkajs group member in a child process: prints every GROUP_JOIN. CHILD_ARGS: [bootstrap, groupId, topic] */
const KAFKAJS_MEMBER = `
import kafkajs from "kafkajs"
const [bootstrap, groupId, topic] = JSON.parse(process.env.CHILD_ARGS)
const kafka = new kafkajs.Kafka({ clientId: "crash-member", brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING })
const consumer = kafka.consumer({ groupId, sessionTimeout: ${SESSION_TIMEOUT}, heartbeatInterval: ${HEARTBEAT}, maxWaitTimeInMs: 500 })
consumer.on(consumer.events.GROUP_JOIN, (e) => console.log(JSON.stringify({ type: "join", memberId: e.payload.memberId })))
await consumer.connect()
await consumer.subscribe({ topic, fromBeginning: true })
await consumer.run({ eachMessage: async () => {} })
setInterval(() => {}, 1 << 30)
`

/** @platformatic/kafka static member in a child process. CHILD_ARGS: [bootstrap, groupId, topic, instanceId] */
const STATIC_MEMBER = `
import { Consumer, MessagesStreamModes, stringDeserializers } from "@platformatic/kafka"
const [bootstrap, groupId, topic, instanceId] = JSON.parse(process.env.CHILD_ARGS)
const consumer = new Consumer({
  clientId: "static-member", groupId, groupInstanceId: instanceId, bootstrapBrokers: [bootstrap],
  deserializers: stringDeserializers, sessionTimeout: 20000, heartbeatInterval: ${HEARTBEAT}
})
consumer.on("consumer:group:join", (e) => console.log(JSON.stringify({
  type: "join", memberId: e.memberId, generationId: e.generationId,
  partitions: (e.assignments ?? []).flatMap((a) => a.topic === topic ? a.partitions : []).sort((a, b) => a - b)
})))
const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST })
stream.on("data", () => {})
setInterval(() => {}, 1 << 30)
`

describe("consumer group rebalances with real clients (real process)", () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  const cleanups: Array<() => Promise<unknown>> = []
  const children: Array<Child> = []

  beforeAll(async () => {
    broker = await startBroker({
      args: ["--num-partitions", String(PARTITIONS)],
      env: { CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS: "0" }
    })
    kafka = new Kafka({ clientId: "e2e-rebalance", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 10 } })
    admin = kafka.admin()
    await admin.connect()
  })
  afterAll(async () => {
    for (const c of children) await c.kill9().catch(() => {})
    for (const f of cleanups.reverse()) await f().catch(() => {})
    await admin?.disconnect().catch(() => {})
    await broker?.cleanup()
  })

  const createTopic = async (topic: string) => {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true })
  }

  /** An in-process kafkajs member; `memberId()` is its id from the latest GROUP_JOIN. */
  const kjsMember = (groupId: string) => {
    const consumer: KjsConsumer = kafka.consumer({
      groupId,
      sessionTimeout: SESSION_TIMEOUT,
      heartbeatInterval: HEARTBEAT,
      maxWaitTimeInMs: 500
    })
    let memberId: string | undefined
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      memberId = e.payload.memberId
    })
    let disconnected = false
    const disconnect = async () => {
      if (disconnected) return
      disconnected = true
      await consumer.disconnect()
    }
    cleanups.push(disconnect)
    return { consumer, memberId: () => memberId, disconnect }
  }

  it(
    "kafkajs: every partition is assigned exactly once as members join, leave and crash",
    async () => {
      const topic = "rb-assign"
      const groupId = "rb-assign-group"
      await createTopic(topic)
      const live = new Map<string, () => string | undefined>()
      const handles = new Map<string, ReturnType<typeof kjsMember>>()
      const liveIds = () => new Set([...live.values()].map((f) => f() ?? "?"))

      for (const name of ["a", "b", "c"]) {
        const m = kjsMember(groupId)
        await m.consumer.connect()
        await m.consumer.subscribe({ topic, fromBeginning: true })
        await m.consumer.run({ eachMessage: async () => {} })
        live.set(name, m.memberId)
        handles.set(name, m)
      }
      const settled3 = await waitSettled(admin, groupId, topic, liveIds, "3 members settled")
      expect([...settled3.assignments.values()].every((ps) => ps.length === 2)).toBe(true)

      // (a) a 4th member joins (in a child process, so it can crash later)
      const crasher = spawnScript(KAFKAJS_MEMBER, [broker.bootstrap, groupId, topic])
      children.push(crasher)
      const crasherId = () => {
        const joins = crasher.events.filter((e) => e.type === "join")
        return joins.length > 0 ? String(joins[joins.length - 1]!.memberId) : undefined
      }
      live.set("d", crasherId)
      await waitSettled(admin, groupId, topic, liveIds, "4 members settled").catch((e) => {
        throw new Error(`${(e as Error).message}\nchild output:\n${crasher.output()}`)
      })

      // (b) a member leaves gracefully
      await handles.get("a")!.disconnect()
      live.delete("a")
      await waitSettled(admin, groupId, topic, liveIds, "3 members after a graceful leave")

      // (c) a member crashes: no LeaveGroup, the broker must expire its session
      const crashedId = crasherId()!
      const crashedAt = Date.now()
      await crasher.kill9()
      live.delete("d")
      const afterCrash = await waitSettled(admin, groupId, topic, liveIds, "2 members after a crash")
      expect(afterCrash.assignments.has(crashedId)).toBe(false)
      // the crashed member was only removed by session expiry, not earlier
      expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(SESSION_TIMEOUT - 1000)
      expect([...afterCrash.assignments.values()].every((ps) => ps.length === 3)).toBe(true)
    },
    120_000
  )

  it(
    "kafkajs: no message is processed twice across rebalances when offsets are committed before revocation",
    async () => {
      const topic = "rb-dup"
      const groupId = "rb-dup-group"
      await createTopic(topic)

      let producing = true
      let produced = 0
      const producer = kafka.producer()
      await producer.connect()
      cleanups.push(() => producer.disconnect())
      const producerLoop = (async () => {
        while (producing) {
          await producer.send({
            topic,
            acks: -1,
            messages: Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, value: `m${produced + p}` }))
          })
          produced += PARTITIONS
          await sleep(20)
        }
      })()

      const processed: Array<{ member: string; partition: number; offset: number }> = []
      const members = new Map<string, ReturnType<typeof kjsMember>>()
      const start = async (name: string) => {
        const m = kjsMember(groupId)
        members.set(name, m)
        await m.consumer.connect()
        await m.consumer.subscribe({ topic, fromBeginning: true })
        await m.consumer.run({
          eachMessage: async ({ partition, message }) => {
            processed.push({ member: name, partition, offset: Number(message.offset) })
          }
        })
      }
      const liveIds = () => new Set([...members.values()].map((m) => m.memberId() ?? "?"))
      const settle = (what: string) => waitSettled(admin, groupId, topic, liveIds, what)

      try {
        await start("a")
        await settle("a alone")
        await sleep(1000)
        await start("b")
        await settle("a, b")
        await sleep(1000)
        await start("c")
        await settle("a, b, c")
        await sleep(1000)
        await members.get("a")!.disconnect()
        members.delete("a")
        await settle("b, c")
        await sleep(1000)
        await start("d")
        await settle("b, c, d")
        await sleep(1000)
        await members.get("b")!.disconnect()
        members.delete("b")
        await settle("c, d")
        await sleep(1000)
      } finally {
        producing = false
        await producerLoop
      }

      const ends = await admin.fetchTopicOffsets(topic)
      const highWatermark = new Map(ends.map((e) => [e.partition, Number(e.high)]))
      expect([...highWatermark.values()].reduce((a, b) => a + b, 0)).toBe(produced)
      const covered = () => {
        const seen = new Set(processed.map((p) => `${p.partition}:${p.offset}`))
        for (const [p, hw] of highWatermark) for (let o = 0; o < hw; o++) if (!seen.has(`${p}:${o}`)) return false
        return true
      }
      await waitFor(covered, 60_000, "every produced offset processed")
      await sleep(1000)

      const byOffset = new Map<string, Array<string>>()
      for (const p of processed) {
        const k = `${p.partition}:${p.offset}`
        byOffset.set(k, [...(byOffset.get(k) ?? []), p.member])
      }
      const duplicates = [...byOffset].filter(([, who]) => who.length > 1)
      expect(duplicates.slice(0, 20), `duplicates (partition:offset -> members) of ${duplicates.length}`).toEqual([])
      expect(byOffset.size).toBe(produced)
      // the workload really moved partitions between members while messages flowed
      expect(produced).toBeGreaterThan(300)
      expect(new Set(processed.map((p) => p.member)).size).toBeGreaterThanOrEqual(3)
    },
    150_000
  )

  it(
    "@platformatic/kafka: a static member restarting within its session timeout gets its partitions back without a rebalance",
    async () => {
      const topic = "rb-static"
      const groupId = "rb-static-group"
      await createTopic(topic)

      // the leader: an in-process static member
      const leader = new Consumer({
        clientId: "static-leader",
        groupId,
        groupInstanceId: "static-leader",
        bootstrapBrokers: [broker.bootstrap],
        deserializers: stringDeserializers,
        sessionTimeout: 20_000,
        heartbeatInterval: HEARTBEAT
      })
      cleanups.push(async () => leader.close(true))
      const leaderJoins: Array<{ generationId: number }> = []
      leader.on("consumer:group:join", (e: { generationId: number }) => leaderJoins.push({ generationId: e.generationId }))
      const stream = await leader.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST })
      stream.on("data", () => {})
      await waitFor(() => leaderJoins.length > 0, 30_000, "leader joined")

      const joinsOf = (c: Child) => c.events.filter((e) => e.type === "join")
      const first = spawnScript(STATIC_MEMBER, [broker.bootstrap, groupId, topic, "static-follower"])
      children.push(first)
      await waitFor(() => joinsOf(first).length > 0, 30_000, "follower joined").catch((e) => {
        throw new Error(`${(e as Error).message}\nchild output:\n${first.output()}`)
      })
      const memberIds = () =>
        new Set([leader.memberId ?? "?", String(joinsOf(first).at(-1)?.memberId ?? "?")])
      await waitSettled(admin, groupId, topic, memberIds, "leader + follower settled")
      const generation = leader.generationId
      const before = joinsOf(first).at(-1)!
      expect(before.generationId).toBe(generation)
      const followerPartitions = before.partitions as Array<number>
      expect(followerPartitions.length).toBe(PARTITIONS / 2)
      const leaderJoinCount = leaderJoins.length

      // crash the follower (no LeaveGroup) and restart it with the same groupInstanceId
      await first.kill9()
      const second = spawnScript(STATIC_MEMBER, [broker.bootstrap, groupId, topic, "static-follower"])
      children.push(second)
      await waitFor(() => joinsOf(second).length > 0, 30_000, "restarted follower joined").catch((e) => {
        throw new Error(`${(e as Error).message}\nchild output:\n${second.output()}`)
      })
      const after = joinsOf(second).at(-1)!
      expect(after.memberId).not.toBe(before.memberId)
      expect(after.generationId).toBe(generation)
      expect(after.partitions).toEqual(followerPartitions)

      const view = await waitSettled(
        admin,
        groupId,
        topic,
        () => new Set([leader.memberId ?? "?", String(after.memberId)]),
        "leader + restarted follower"
      )
      expect(view.assignments.get(String(after.memberId))).toEqual(followerPartitions)
      // no rebalance: the leader never rejoined and its generation is unchanged
      await sleep(2 * HEARTBEAT + 500)
      expect(leader.generationId).toBe(generation)
      expect(leaderJoins.length).toBe(leaderJoinCount)
      await second.kill9()
    },
    120_000
  )
})
