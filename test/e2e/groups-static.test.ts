/**
 * Static membership (KIP-345) with @platformatic/kafka (`groupInstanceId`)
 * against a broker process, checked against what Apache Kafka does:
 *
 * - A static member that closes gracefully: @platformatic/kafka's `close()`
 *   sends LeaveGroup with its member id. Kafka removes the member (and its
 *   instance id mapping) and rebalances at once, without waiting for the
 *   session timeout; when it comes back with the same `group.instance.id` it
 *   is a new member (new member id) and the group rebalances again, giving it
 *   partitions back. (The Java consumer instead sends no LeaveGroup for static
 *   members unless asked, KIP-1092; that case is the restart without a
 *   rebalance in groups-rebalance.test.ts.)
 * - LeaveGroup v3+ naming only the `group.instance.id` (empty member id,
 *   administrative removal as `kafka-consumer-groups --delete` of a static
 *   member does) removes the member and rebalances; an unknown instance id is
 *   UNKNOWN_MEMBER_ID in its member entry.
 * - A static member that crashes (no LeaveGroup) and does not come back is
 *   removed only when its session expires; until then the group does not
 *   rebalance.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { resolve } from "node:path"
import { Connection, Consumer, MessagesStreamModes, leaveGroupV5, stringDeserializers } from "@platformatic/kafka"
import { type Admin, Kafka, logLevel } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { describeGroup, type GroupView } from "../support/groupView.js"
import { sleep, waitFor } from "../support/wait.js"

const repoRoot = resolve(import.meta.dirname, "../..")
const PARTITIONS = 6
const HEARTBEAT = 500

const settled = async (admin: Admin, groupId: string, topic: string, members: () => ReadonlyArray<string>, what: string) => {
  let last: GroupView | undefined
  await waitFor(
    async () => {
      last = await describeGroup(admin, groupId, topic)
      const ids = members()
      if (last.state !== "Stable" || last.assignments.size !== ids.length) return false
      if (!ids.every((id) => last!.assignments.has(id))) return false
      const owned = [...last.assignments.values()].flat().sort((a, b) => a - b)
      return owned.length === PARTITIONS && owned.every((p, i) => p === i)
    },
    45_000,
    what
  ).catch((e) => {
    throw new Error(`${(e as Error).message}; expected ${JSON.stringify(members())}, last ${JSON.stringify([...(last?.assignments ?? [])])} ${last?.state}`)
  })
  return last!
}

interface Join {
  readonly memberId: string
  readonly generationId: number
  readonly partitions: Array<number>
  readonly at: number
}

/** An in-process static member; `joins` are its consumer:group:join events. */
const staticMember = async (bootstrap: string, groupId: string, topic: string, instanceId: string, sessionTimeout: number) => {
  const consumer = new Consumer({
    clientId: instanceId,
    groupId,
    groupInstanceId: instanceId,
    bootstrapBrokers: [bootstrap],
    deserializers: stringDeserializers,
    sessionTimeout,
    heartbeatInterval: HEARTBEAT
  })
  const joins: Array<Join> = []
  consumer.on("consumer:group:join", (e: { memberId: string; generationId: number; assignments?: Array<{ topic: string; partitions: Array<number> }> }) =>
    joins.push({
      memberId: e.memberId,
      generationId: e.generationId,
      partitions: (e.assignments ?? []).flatMap((a) => (a.topic === topic ? a.partitions : [])).sort((a, b) => a - b),
      at: Date.now()
    })
  )
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST })
  stream.on("data", () => {})
  await waitFor(() => joins.length > 0, 30_000, `${instanceId} joined`)
  return { consumer, joins, last: () => joins.at(-1)! }
}

/** A static member in a child process (so it can be killed). CHILD_ARGS: [bootstrap, groupId, topic, instanceId, sessionTimeout] */
const STATIC_CHILD = `
import { Consumer, MessagesStreamModes, stringDeserializers } from "@platformatic/kafka"
const [bootstrap, groupId, topic, instanceId, sessionTimeout] = JSON.parse(process.env.CHILD_ARGS)
const consumer = new Consumer({
  clientId: instanceId, groupId, groupInstanceId: instanceId, bootstrapBrokers: [bootstrap],
  deserializers: stringDeserializers, sessionTimeout, heartbeatInterval: ${HEARTBEAT}
})
consumer.on("consumer:group:join", (e) => console.log(JSON.stringify({ type: "join", memberId: e.memberId, generationId: e.generationId })))
const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST })
stream.on("data", () => {})
setInterval(() => {}, 1 << 30)
`

const spawnChild = (args: ReadonlyArray<unknown>) => {
  const proc: ChildProcess = spawn(process.execPath, ["--input-type=module", "-e", STATIC_CHILD], {
    cwd: repoRoot,
    env: { ...process.env, CHILD_ARGS: JSON.stringify(args) },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const joins: Array<{ memberId: string; generationId: number }> = []
  let out = ""
  proc.stdout!.on("data", (d: Buffer) => {
    out += d.toString()
    for (const line of d.toString().split("\n")) {
      try {
        const e = JSON.parse(line) as { type: string; memberId: string; generationId: number }
        if (e.type === "join") joins.push(e)
      } catch {
        // not an event
      }
    }
  })
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()))
  const exited = new Promise<void>((res) => proc.once("exit", () => res()))
  return {
    joins,
    output: () => out,
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGKILL")
        await exited
      }
    }
  }
}

describe("static members (KIP-345) with @platformatic/kafka (real process)", () => {
  let broker: BrokerProcess
  let admin: Admin
  const cleanups: Array<() => Promise<unknown>> = []

  beforeAll(async () => {
    broker = await startBroker({
      args: ["--num-partitions", String(PARTITIONS)],
      env: { CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS: "0" }
    })
    admin = new Kafka({ clientId: "e2e-static", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 10 } }).admin()
    await admin.connect()
  })
  afterAll(async () => {
    for (const f of cleanups.reverse()) await f().catch(() => {})
    await admin?.disconnect().catch(() => {})
    await broker?.cleanup()
  })

  const createTopic = (topic: string) =>
    admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true })

  it(
    "a static member that closes gracefully leaves at once (rebalance), and rejoining with its instance id rebalances again",
    async () => {
      const topic = "static-leave"
      const groupId = "static-leave-group"
      const SESSION = 30_000
      await createTopic(topic)
      const a = await staticMember(broker.bootstrap, groupId, topic, "instance-a", SESSION)
      cleanups.push(async () => a.consumer.close(true))
      const b1 = await staticMember(broker.bootstrap, groupId, topic, "instance-b", SESSION)
      await settled(admin, groupId, topic, () => [a.consumer.memberId!, b1.consumer.memberId!], "a + b")
      await waitFor(() => a.last().partitions.length === PARTITIONS / 2, 15_000, "a rebalanced to 3 partitions")
      const generation = a.last().generationId
      expect(b1.last().generationId).toBe(generation)
      const bPartitions = b1.last().partitions
      expect(bPartitions.length).toBe(PARTITIONS / 2)
      const oldB = b1.consumer.memberId!

      // graceful close: LeaveGroup -> immediate rebalance, long before the 30 s session timeout
      const closedAt = Date.now()
      await b1.consumer.close(true)
      await waitFor(() => a.last().generationId > generation && a.last().partitions.length === PARTITIONS, 15_000, "a took over")
      expect(a.last().at - closedAt).toBeLessThan(SESSION / 3)
      const alone = await settled(admin, groupId, topic, () => [a.consumer.memberId!], "a alone")
      expect(alone.assignments.has(oldB)).toBe(false)
      const aloneGeneration = a.last().generationId

      // rejoin with the same instance id: a new member, another rebalance, partitions shared again
      const b2 = await staticMember(broker.bootstrap, groupId, topic, "instance-b", SESSION)
      cleanups.push(async () => b2.consumer.close(true))
      expect(b2.consumer.memberId).not.toBe(oldB)
      await settled(admin, groupId, topic, () => [a.consumer.memberId!, b2.consumer.memberId!], "a + rejoined b")
      await waitFor(() => a.last().generationId > aloneGeneration && a.last().partitions.length === PARTITIONS / 2, 15_000, "a rebalanced")
      expect(b2.last().generationId).toBe(a.last().generationId)
      expect(b2.last().partitions.length).toBe(PARTITIONS / 2)
      expect([...a.last().partitions, ...b2.last().partitions].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5])
      // the old member id is fenced out of the group for good
      const { groups } = await admin.describeGroups([groupId])
      expect(groups[0]!.members.map((m) => m.memberId)).not.toContain(oldB)
    },
    120_000
  )

  it(
    "LeaveGroup naming only the group.instance.id removes the static member and rebalances; an unknown instance id is UNKNOWN_MEMBER_ID",
    async () => {
      const topic = "static-admin"
      const groupId = "static-admin-group"
      await createTopic(topic)
      const a = await staticMember(broker.bootstrap, groupId, topic, "admin-a", 30_000)
      cleanups.push(async () => a.consumer.close(true))
      const child = spawnChild([broker.bootstrap, groupId, topic, "admin-b", 30_000])
      cleanups.push(() => child.kill9())
      await waitFor(() => child.joins.length > 0, 30_000, "b joined").catch((e) => {
        throw new Error(`${(e as Error).message}\n${child.output()}`)
      })
      await settled(admin, groupId, topic, () => [a.consumer.memberId!, child.joins.at(-1)!.memberId], "a + b")
      const generation = a.last().generationId
      // b is gone without a LeaveGroup; an operator removes it by instance id
      await child.kill9()

      const connection = new Connection("e2e-static-admin")
      cleanups.push(() => connection.close())
      await connection.connect("127.0.0.1", broker.port)
      const removedAt = Date.now()
      // the client's parser throws when a member entry has an error; the response is on the error
      const r = await leaveGroupV5.api
        .async(connection, groupId, [
          { memberId: "", groupInstanceId: "admin-b", reason: "operator" },
          { memberId: "", groupInstanceId: "no-such-instance", reason: null }
        ])
        .catch((e: { response?: Awaited<ReturnType<typeof leaveGroupV5.api.async>> }) => {
          if (e.response === undefined) throw e
          return e.response
        })
      expect(r.errorCode).toBe(0)
      expect(r.members.map((m) => [m.groupInstanceId, m.errorCode])).toEqual([
        ["admin-b", 0],
        ["no-such-instance", 25] // UNKNOWN_MEMBER_ID
      ])
      await waitFor(() => a.last().generationId > generation && a.last().partitions.length === PARTITIONS, 15_000, "a took over")
      expect(a.last().at - removedAt).toBeLessThan(10_000)
      await settled(admin, groupId, topic, () => [a.consumer.memberId!], "a alone")
    },
    120_000
  )

  it(
    "a static member that crashes and does not come back is removed only by session expiry",
    async () => {
      const topic = "static-crash"
      const groupId = "static-crash-group"
      const SESSION = 8000
      await createTopic(topic)
      const a = await staticMember(broker.bootstrap, groupId, topic, "crash-a", SESSION)
      cleanups.push(async () => a.consumer.close(true))
      const child = spawnChild([broker.bootstrap, groupId, topic, "crash-b", SESSION])
      cleanups.push(() => child.kill9())
      await waitFor(() => child.joins.length > 0, 30_000, "b joined").catch((e) => {
        throw new Error(`${(e as Error).message}\n${child.output()}`)
      })
      await settled(admin, groupId, topic, () => [a.consumer.memberId!, child.joins.at(-1)!.memberId], "a + b")
      await waitFor(() => a.last().partitions.length === PARTITIONS / 2, 15_000, "a has 3 partitions")
      const generation = a.last().generationId

      const crashedAt = Date.now()
      await child.kill9()
      // no rebalance while the session lasts ...
      await sleep(SESSION - 3000)
      expect(a.last().generationId).toBe(generation)
      expect((await describeGroup(admin, groupId, topic)).assignments.size).toBe(2)
      // ... then the member expires and the survivor gets everything
      await waitFor(() => a.last().generationId > generation && a.last().partitions.length === PARTITIONS, 20_000, "a took over")
      expect(a.last().at - crashedAt).toBeGreaterThanOrEqual(SESSION - 1000)
      await settled(admin, groupId, topic, () => [a.consumer.memberId!], "a alone")
    },
    120_000
  )
})
