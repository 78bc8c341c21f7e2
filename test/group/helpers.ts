/**
 * Test helpers: a coordinator over a shared in-memory store, and a tiny
 * consumer client model (join with MEMBER_ID_REQUIRED handling, a range
 * assignor run by the leader, sync) to drive whole rebalances.
 */
import { Effect, Fiber, Layer, TestClock } from "effect"
import type { Scope } from "effect"
import { expect } from "vitest"
import {
  GroupCoordinatorConfig,
  defaultConfig,
  make,
  type GroupCoordinatorConfigShape,
  type GroupCoordinatorShape,
  type JoinGroupResult,
  type MakeOptions
} from "../../src/group/GroupCoordinator.js"
import { GroupStore, makeMemory, type GroupStoreShape } from "../../src/group/GroupStore.js"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import {
  decodeConsumerProtocolAssignment,
  encodeConsumerProtocolAssignment
} from "../../src/protocol/generated/ConsumerProtocolAssignment.js"
import {
  decodeConsumerProtocolSubscription,
  encodeConsumerProtocolSubscription
} from "../../src/protocol/generated/ConsumerProtocolSubscription.js"
import { cursor } from "../../src/protocol/wire.js"

export const SESSION = 10_000
export const REBALANCE = 30_000

export const testConfig = (o: Partial<GroupCoordinatorConfigShape> = {}): GroupCoordinatorConfigShape => ({
  ...defaultConfig,
  initialRebalanceDelayMs: 0,
  ...o
})

/** Builds a coordinator in the current scope. */
export const coordinator = (
  o: Partial<GroupCoordinatorConfigShape> = {},
  store: GroupStoreShape = makeMemory(),
  options: MakeOptions = {}
): Effect.Effect<GroupCoordinatorShape, never, Scope.Scope> =>
  make(options).pipe(
    Effect.provide(Layer.mergeAll(Layer.succeed(GroupStore, store), Layer.succeed(GroupCoordinatorConfig, testConfig(o)))),
    Effect.orDie
  )

const withVersion = (v: number, body: Buffer): Buffer => {
  const b = Buffer.alloc(2 + body.length)
  b.writeInt16BE(v, 0)
  body.copy(b, 2)
  return b
}

export const subscription = (
  topics: ReadonlyArray<string>,
  version = 1,
  owned: ReadonlyArray<string> = []
): Buffer => {
  const byTopic = new Map<string, Array<number>>()
  for (const tp of owned) {
    const i = tp.lastIndexOf("-")
    const t = tp.slice(0, i)
    byTopic.set(t, [...(byTopic.get(t) ?? []), Number(tp.slice(i + 1))])
  }
  const ownedPartitions = [...byTopic].map(([topic, partitions]) => ({ topic, partitions }))
  return withVersion(version, encodeConsumerProtocolSubscription(version, { topics, userData: null, ownedPartitions }))
}

export const ownedOf = (metadata: Buffer): Array<string> =>
  decodeConsumerProtocolSubscription(Math.min(metadata.readInt16BE(0), 3), cursor(metadata, 2)).ownedPartitions.flatMap((tp) =>
    tp.partitions.map((p) => `${tp.topic}-${p}`)
  )

export const topicsOf = (metadata: Buffer): Array<string> =>
  decodeConsumerProtocolSubscription(Math.min(metadata.readInt16BE(0), 3), cursor(metadata, 2)).topics

export const assignmentBytes = (parts: ReadonlyArray<{ topic: string; partitions: ReadonlyArray<number> }>): Buffer =>
  withVersion(0, encodeConsumerProtocolAssignment(0, { assignedPartitions: parts, userData: null }))

export const partitionsOf = (assignment: Buffer): Array<string> => {
  if (assignment.length === 0) return []
  const a = decodeConsumerProtocolAssignment(0, cursor(assignment, 2))
  return a.assignedPartitions.flatMap((tp) => tp.partitions.map((p) => `${tp.topic}-${p}`))
}

export type Assignor = (
  members: ReadonlyArray<{ memberId: string; metadata: Buffer }>,
  counts: Record<string, number>
) => Array<{ memberId: string; assignment: Buffer }>

/** Kafka's range assignor for one or more topics of `counts` partitions. */
export const rangeAssign: Assignor = (members, counts) => {
  const result = new Map<string, Array<{ topic: string; partitions: Array<number> }>>()
  for (const m of members) result.set(m.memberId, [])
  for (const [topic, n] of Object.entries(counts)) {
    const subs = members.filter((m) => topicsOf(m.metadata).includes(topic)).map((m) => m.memberId).sort()
    const per = Math.floor(n / subs.length)
    const extra = n % subs.length
    let next = 0
    subs.forEach((id, i) => {
      const take = per + (i < extra ? 1 : 0)
      const ps = Array.from({ length: take }, (_, k) => next + k)
      next += take
      if (ps.length > 0) result.get(id)!.push({ topic, partitions: ps })
    })
  }
  return [...result].map(([memberId, parts]) => ({ memberId, assignment: assignmentBytes(parts) }))
}

export interface Client {
  readonly clientId: string
  readonly instanceId: string | null
  memberId: string
  generation: number
  topics: ReadonlyArray<string>
  assignment: Array<string>
  /** Owned partitions sent in the subscription (cooperative protocols). */
  owned: Array<string>
}

export const client = (clientId: string, topics: ReadonlyArray<string> = ["t"], instanceId: string | null = null): Client => ({
  clientId,
  instanceId,
  memberId: "",
  generation: -1,
  topics,
  assignment: [],
  owned: []
})

export const joinParams = (c: Client, groupId = "g") => ({
  groupId,
  memberId: c.memberId,
  groupInstanceId: c.instanceId,
  clientId: c.clientId,
  clientHost: "/127.0.0.1",
  rebalanceTimeoutMs: REBALANCE,
  sessionTimeoutMs: SESSION,
  protocolType: "consumer",
  protocols: [{ name: "range", metadata: subscription(c.topics, 1, c.owned) }],
  requireKnownMemberId: true,
  supportSkippingAssignment: false
})

/** JoinGroup as a v4+ client does it: a first join without id gets MEMBER_ID_REQUIRED, then rejoins with the id. */
export const join = (gc: GroupCoordinatorShape, c: Client, groupId = "g"): Effect.Effect<JoinGroupResult> =>
  Effect.gen(function* () {
    let r = yield* gc.joinGroup(joinParams(c, groupId))
    if (r.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
      c.memberId = r.memberId
      r = yield* gc.joinGroup(joinParams(c, groupId))
    }
    if (r.errorCode === ErrorCode.NONE) {
      c.memberId = r.memberId
      c.generation = r.generationId
    }
    return r
  })

/**
 * One full rebalance of `clients` (all of them join; the initial delay, if
 * any, is passed with `delayMs`), the leader assigns with the range assignor,
 * everybody syncs. Returns the join results.
 */
export const rebalance = (
  gc: GroupCoordinatorShape,
  clients: ReadonlyArray<Client>,
  counts: Record<string, number> = { t: 6 },
  delayMs = 0,
  groupId = "g",
  assign: Assignor = rangeAssign
): Effect.Effect<Array<JoinGroupResult>> =>
  Effect.gen(function* () {
    const fibers = []
    for (const c of clients) fibers.push(yield* Effect.fork(join(gc, c, groupId)))
    if (delayMs > 0) yield* TestClock.adjust(delayMs)
    const results: Array<JoinGroupResult> = []
    for (const f of fibers) results.push(yield* Fiber.join(f))
    for (const r of results) expect(r.errorCode).toBe(ErrorCode.NONE)
    const leader = results.find((r) => r.members.length > 0)
    expect(leader).toBeDefined()
    const assignments = assign(leader!.members, counts)
    const syncs = []
    for (const c of clients) {
      const mine = c.memberId === leader!.memberId
      syncs.push(
        yield* Effect.fork(
          gc.syncGroup({
            groupId,
            generationId: c.generation,
            memberId: c.memberId,
            groupInstanceId: c.instanceId,
            protocolType: "consumer",
            protocolName: "range",
            assignments: mine ? assignments : []
          })
        )
      )
    }
    for (let i = 0; i < clients.length; i++) {
      const s = yield* Fiber.join(syncs[i]!)
      expect(s.errorCode).toBe(ErrorCode.NONE)
      clients[i]!.assignment = partitionsOf(s.assignment)
    }
    return results
  })

/** Every partition of `counts` is assigned to exactly one of `clients`. */
export const expectEachPartitionOnce = (clients: ReadonlyArray<Client>, counts: Record<string, number> = { t: 6 }) => {
  const all = clients.flatMap((c) => c.assignment).sort()
  const want = Object.entries(counts)
    .flatMap(([t, n]) => Array.from({ length: n }, (_, p) => `${t}-${p}`))
    .sort()
  expect(all).toEqual(want)
}

/** Advances the clock by `totalMs` in `stepMs` steps, heartbeating `alive` clients at every step; returns the errors seen. */
export const heartbeatFor = (
  gc: GroupCoordinatorShape,
  alive: ReadonlyArray<Client>,
  totalMs: number,
  stepMs = 2000,
  groupId = "g"
): Effect.Effect<Array<number>> =>
  Effect.gen(function* () {
    const errors: Array<number> = []
    for (let t = 0; t < totalMs; t += stepMs) {
      yield* TestClock.adjust(stepMs)
      for (const c of alive) {
        const e = yield* gc.heartbeat({ groupId, generationId: c.generation, memberId: c.memberId, groupInstanceId: c.instanceId })
        errors.push(e)
      }
    }
    return errors
  })
