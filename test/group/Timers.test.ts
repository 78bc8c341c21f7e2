import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as Timers from "../../src/group/Timers.js"

describe("Timers", () => {
  it.scoped("runs actions at their deadlines in order; set replaces, cancel removes; driven by TestClock", () =>
    Effect.gen(function* () {
      const t = yield* Timers.make
      const fired: Array<string> = []
      const rec = (s: string) => Effect.sync(() => void fired.push(s))
      t.set("a", 3000, rec("a"))
      t.set("b", 1000, rec("b"))
      t.set("c", 2000, rec("c"))
      t.set("c", 5000, rec("c2")) // replaces c
      t.set("d", 4000, rec("d"))
      t.cancel("d")
      expect(t.size()).toBe(3)
      yield* TestClock.adjust(999)
      expect(fired).toEqual([])
      yield* TestClock.adjust(1)
      expect(fired).toEqual(["b"])
      yield* TestClock.adjust(3000)
      expect(fired).toEqual(["b", "a"])
      yield* TestClock.adjust(1000)
      expect(fired).toEqual(["b", "a", "c2"])
      expect(t.size()).toBe(0)
    })
  )

  it.scoped("an action can schedule further timers, and an earlier deadline wakes the scheduler", () =>
    Effect.gen(function* () {
      const t = yield* Timers.make
      const fired: Array<number> = []
      const tick = (n: number): Effect.Effect<void> =>
        Effect.sync(() => {
          fired.push(n)
          if (n < 5) t.set("tick", (n + 1) * 100, tick(n + 1))
        })
      t.set("far", 1_000_000, Effect.void)
      t.set("tick", 100, tick(1))
      yield* TestClock.adjust(1000)
      expect(fired).toEqual([1, 2, 3, 4, 5])
    })
  )

  it.scoped("a failing action does not stop the scheduler; many replaced deadlines compact", () =>
    Effect.gen(function* () {
      const t = yield* Timers.make
      let ok = 0
      t.set("bad", 10, Effect.die("boom"))
      t.set("good", 20, Effect.sync(() => void ok++))
      for (let i = 0; i < 1000; i++) t.set("hb", 100 + i, Effect.sync(() => void ok++))
      yield* TestClock.adjust(2000)
      expect(ok).toBe(2)
    })
  )
})
