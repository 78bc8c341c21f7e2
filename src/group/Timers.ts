/**
 * Timers: keyed, replaceable deadlines on the Effect Clock, run by one
 * scheduler fiber (not a fiber per timer).
 *
 * The group coordinator keeps one deadline per member (session expiry), one
 * per rebalancing group (join and sync phases) and one for the offset
 * retention sweep. A heartbeat moves a member's deadline; it does not fork or
 * interrupt anything: `set` only records the new deadline in a map and pushes
 * it on a min-heap (stale heap entries are skipped when they surface). The
 * scheduler fiber sleeps until the earliest deadline, or until a `set` brings
 * an earlier one, so `TestClock.adjust` drives every expiry in tests.
 *
 * `set` and `cancel` are synchronous so the coordinator's state machine (plain
 * synchronous code) can call them while it mutates group state.
 */
import { Cause, Clock, Effect, Queue } from "effect"
import type { Scope } from "effect"

export interface Timers {
  /** Schedules `run` at `atMs` (Clock millis) under `key`, replacing any timer with that key. */
  readonly set: (key: string, atMs: number, run: Effect.Effect<void>) => void
  /** Cancels the timer with that key, if any. */
  readonly cancel: (key: string) => void
  /** The deadline of the timer with that key, if any. */
  readonly deadline: (key: string) => number | undefined
  /** Number of live timers. */
  readonly size: () => number
}

interface Entry {
  readonly at: number
  readonly seq: number
  readonly key: string
}

interface Live {
  readonly at: number
  readonly seq: number
  readonly run: Effect.Effect<void>
}

/** A binary min-heap of entries ordered by (at, seq). */
class Heap {
  private readonly a: Array<Entry> = []
  get length(): number {
    return this.a.length
  }
  peek(): Entry | undefined {
    return this.a[0]
  }
  push(e: Entry): void {
    const a = this.a
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(a[i]!, a[p]!)) break
      const t = a[i]!
      a[i] = a[p]!
      a[p] = t
      i = p
    }
  }
  pop(): Entry | undefined {
    const a = this.a
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && less(a[l]!, a[m]!)) m = l
        if (r < a.length && less(a[r]!, a[m]!)) m = r
        if (m === i) break
        const t = a[i]!
        a[i] = a[m]!
        a[m] = t
        i = m
      }
    }
    return top
  }
  /** Rebuilds the heap from the live entries only (drops stale ones). */
  rebuild(live: Map<string, Live>): void {
    this.a.length = 0
    for (const [key, l] of live) this.push({ at: l.at, seq: l.seq, key })
  }
}

const less = (x: Entry, y: Entry): boolean => x.at < y.at || (x.at === y.at && x.seq < y.seq)

/**
 * Builds the timers and forks their scheduler fiber into the scope. Timer
 * actions run one at a time on the scheduler fiber; a failing or dying action
 * is logged and does not stop the scheduler.
 */
export const make: Effect.Effect<Timers, never, Scope.Scope> = Effect.gen(function* () {
  const live = new Map<string, Live>()
  const heap = new Heap()
  let seq = 0
  // The deadline the scheduler currently sleeps towards (Infinity: none).
  let sleepingUntil = Number.POSITIVE_INFINITY
  const wake = yield* Queue.sliding<void>(1)

  const set = (key: string, atMs: number, run: Effect.Effect<void>): void => {
    const s = ++seq
    live.set(key, { at: atMs, seq: s, run })
    heap.push({ at: atMs, seq: s, key })
    if (heap.length > 64 && heap.length > 4 * live.size) heap.rebuild(live)
    if (atMs < sleepingUntil) {
      sleepingUntil = atMs
      wake.unsafeOffer(undefined)
    }
  }
  const cancel = (key: string): void => {
    live.delete(key)
  }

  /** Pops and returns the next due action, or undefined when none is due at `now`. */
  const nextDue = (now: number): Effect.Effect<void> | undefined => {
    for (;;) {
      const top = heap.peek()
      if (top === undefined || top.at > now) return undefined
      heap.pop()
      const l = live.get(top.key)
      if (l !== undefined && l.seq === top.seq) {
        live.delete(top.key)
        return l.run
      }
    }
  }

  /** The earliest live deadline (stale heap tops are dropped on the way). */
  const earliest = (): number => {
    for (;;) {
      const top = heap.peek()
      if (top === undefined) return Number.POSITIVE_INFINITY
      const l = live.get(top.key)
      if (l !== undefined && l.seq === top.seq) return top.at
      heap.pop()
    }
  }

  const loop = Effect.gen(function* () {
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      let run = nextDue(now)
      while (run !== undefined) {
        yield* run.pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("group coordinator timer action failed", cause)
          )
        )
        const t = yield* Clock.currentTimeMillis
        run = nextDue(t)
      }
      // Drain a stale wake-up first, so that a `set` after the deadline is
      // computed below always wakes the sleep.
      yield* Queue.poll(wake)
      const t = yield* Clock.currentTimeMillis
      const next = earliest()
      sleepingUntil = next
      if (next <= t) continue
      if (next === Number.POSITIVE_INFINITY) {
        yield* Queue.take(wake)
      } else {
        yield* Effect.raceFirst(Effect.sleep(next - t), Queue.take(wake))
      }
    }
  })

  yield* Effect.forkScoped(Effect.interruptible(loop))

  return {
    set,
    cancel,
    deadline: (key) => live.get(key)?.at,
    size: () => live.size
  } satisfies Timers
})
