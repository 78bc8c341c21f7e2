/**
 * Seeded random membership churn: members join, leave, crash (stop
 * heartbeating until their session expires) and change subscriptions; after
 * every change the live members rebalance. Invariants after each generation:
 * the generation grew, the group's members are exactly the live clients, and
 * every partition is assigned to exactly one of them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { SESSION, client, coordinator, expectEachPartitionOnce, heartbeatFor, join, rebalance, type Client } from "./helpers.js"

const lcg = (seed: number) => {
  let s = seed >>> 0
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s % n
  }
}

const COUNTS = { t: 7, u: 3 }

describe("randomized membership churn", () => {
  for (const seed of [1, 7, 42, 1234, 99991]) {
    it.scoped(`seed ${seed}: every generation assigns each partition exactly once to the live members`, () =>
      Effect.gen(function* () {
        const rnd = lcg(seed)
        const gc = yield* coordinator({ initialRebalanceDelayMs: 0 })
        let alive: Array<Client> = [client("c0", ["t", "u"])]
        let next = 1
        let generation = 0
        yield* rebalance(gc, alive, COUNTS)
        for (let step = 0; step < 12; step++) {
          const op = alive.length === 0 ? 0 : alive.length >= 5 ? 1 + rnd(3) : rnd(4)
          if (op === 0) {
            // A new member joins: the others find out through a rebalance.
            const c = client(`c${next++}`, ["t", "u"])
            if (alive.length > 0) {
              const f = yield* Effect.fork(join(gc, c))
              yield* TestClock.adjust(0)
              yield* Fiber.interrupt(f)
            }
            alive = [...alive, c]
          } else if (op === 1) {
            const victim = alive[rnd(alive.length)]!
            const r = yield* gc.leaveGroup("g", [{ memberId: victim.memberId, groupInstanceId: null }])
            expect(r.members[0]!.errorCode).toBe(0)
            alive = alive.filter((c) => c !== victim)
          } else if (op === 2) {
            // A member crashes: the others keep heartbeating until its session expires.
            const victim = alive[rnd(alive.length)]!
            alive = alive.filter((c) => c !== victim)
            yield* heartbeatFor(gc, alive, SESSION + 2000)
          } else {
            // A member changes its subscription (and so its metadata).
            const c = alive[rnd(alive.length)]!
            c.topics = c.topics.length === 2 ? ["t", "u", "v"] : ["t", "u"]
            const f = yield* Effect.fork(join(gc, c))
            yield* TestClock.adjust(0)
            yield* Fiber.interrupt(f)
          }
          if (alive.length === 0) {
            yield* TestClock.adjust(0)
            expect((yield* gc.describeGroup("g")).state).toBe("Empty")
            continue
          }
          yield* rebalance(gc, alive, COUNTS)
          const gen = alive[0]!.generation
          expect(gen).toBeGreaterThan(generation)
          generation = gen
          for (const c of alive) expect(c.generation).toBe(gen)
          const d = yield* gc.describeGroup("g")
          expect(d.state).toBe("Stable")
          expect(d.members.map((m) => m.memberId).sort()).toEqual(alive.map((c) => c.memberId).sort())
          expectEachPartitionOnce(alive, COUNTS)
        }
      })
    )
  }
})
