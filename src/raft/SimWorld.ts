/**
 * A deterministic single-process world for simulating clusters: a virtual
 * time base, per-node clocks (with skew and pause) implementing Effect's
 * `Clock`, and an Effect `Scheduler` that runs fiber work only when the world
 * is stepped. Fibers started through `runtimeFor(clock)` sleep on virtual time
 * and run synchronously inside `advance`/`drain`, so a seeded run is exactly
 * reproducible and thousands of virtual seconds take milliseconds.
 *
 * (TestClock would also work, but it yields to the real event loop with
 * setTimeout(0) between sleepers, which makes long simulations slow.)
 */
import { Cause, Clock, Context, Duration, Effect, Exit, Fiber, FiberId, FiberRef, FiberRefs, Runtime } from "effect"
import * as DefaultServices from "effect/DefaultServices"
import type * as Scheduler from "effect/Scheduler"

/** Runs scheduled fiber tasks only when drained. */
export class SimScheduler implements Scheduler.Scheduler {
  private tasks: Array<Scheduler.Task> = []
  private head = 0
  private running = false
  tasksRun = 0

  shouldYield(fiber: Fiber.RuntimeFiber<unknown, unknown>): number | false {
    return fiber.currentOpCount > fiber.getFiberRef(FiberRef.currentMaxOpsBeforeYield)
      ? fiber.getFiberRef(FiberRef.currentSchedulingPriority)
      : false
  }

  scheduleTask(task: Scheduler.Task, _priority: number): void {
    this.tasks.push(task)
  }

  pending(): number {
    return this.tasks.length - this.head
  }

  /** Runs tasks until none is left. */
  drain(maxTasks = 50_000_000): void {
    if (this.running) return
    this.running = true
    try {
      let n = 0
      while (this.head < this.tasks.length) {
        const t = this.tasks[this.head]!
        this.tasks[this.head] = noop
        this.head++
        if (this.head > 4096 && this.head * 2 > this.tasks.length) {
          this.tasks = this.tasks.slice(this.head)
          this.head = 0
        }
        t()
        this.tasksRun++
        if (++n > maxTasks) throw new Error("SimScheduler: runaway task loop")
      }
      this.tasks = []
      this.head = 0
    } finally {
      this.running = false
    }
  }
}

const noop = (): void => {}

interface Timer {
  readonly deadline: number // in the owning clock's time
  readonly seq: number
  readonly fire: () => void
  cancelled: boolean
}

/** A clock whose time is a linear function of world time: `offset + rate * t`. */
export class SimClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  private anchorLocal: number
  private anchorWorld: number
  private rateValue = 1
  private timers: Array<Timer> = []

  constructor(
    private readonly world: SimWorld,
    readonly name: string
  ) {
    this.anchorLocal = world.now
    this.anchorWorld = world.now
  }

  get rate(): number {
    return this.rateValue
  }

  /** Local time at world time `t`. */
  localAt(t: number): number {
    return this.rateValue === 1
      ? this.anchorLocal + (t - this.anchorWorld)
      : this.anchorLocal + this.rateValue * (t - this.anchorWorld)
  }

  /** Jumps this clock by `offsetMs` and sets its rate (0 freezes it). */
  skew(offsetMs: number, rate: number = this.rateValue): void {
    if (rate < 0 || !Number.isFinite(rate)) throw new RangeError("SimClock: rate must be finite and >= 0")
    this.anchorLocal = this.localAt(this.world.now) + offsetMs
    this.anchorWorld = this.world.now
    this.rateValue = rate
  }

  /** World time at which the earliest live timer fires (Infinity if none / frozen). */
  nextWake(): number {
    this.timers = this.timers.filter((t) => !t.cancelled)
    if (this.timers.length === 0 || this.rateValue === 0) return Infinity
    let min = Infinity
    for (const t of this.timers) if (t.deadline < min) min = t.deadline
    const w = this.rateValue === 1 ? this.anchorWorld + (min - this.anchorLocal) : this.anchorWorld + (min - this.anchorLocal) / this.rateValue
    return Math.max(w, this.world.now)
  }

  /** Fires every timer due at the current world time, in (deadline, seq) order. */
  fireDue(): boolean {
    const now = this.localAt(this.world.now) + 1e-9
    const due = this.timers.filter((t) => !t.cancelled && t.deadline <= now)
    if (due.length === 0) return false
    due.sort((a, b) => a.deadline - b.deadline || a.seq - b.seq)
    const dueSet = new Set(due)
    this.timers = this.timers.filter((t) => !dueSet.has(t))
    for (const t of due) if (!t.cancelled) t.fire()
    return true
  }

  unsafeCurrentTimeMillis(): number {
    return Math.floor(this.localAt(this.world.now))
  }
  get currentTimeMillis(): Effect.Effect<number> {
    return Effect.sync(() => this.unsafeCurrentTimeMillis())
  }
  unsafeCurrentTimeNanos(): bigint {
    return BigInt(Math.floor(this.localAt(this.world.now) * 1_000_000))
  }
  get currentTimeNanos(): Effect.Effect<bigint> {
    return Effect.sync(() => this.unsafeCurrentTimeNanos())
  }
  /**
   * Calls `fire` after `delayMs` of this clock's time, outside any fiber (the
   * world drains afterwards). Cheaper than a fiber sleeping on the clock for
   * high-volume events such as simulated network deliveries; ordered with the
   * sleeps by (deadline, sequence).
   */
  schedule(delayMs: number, fire: () => void): void {
    this.timers.push({
      deadline: this.localAt(this.world.now) + Math.max(0, delayMs),
      seq: this.world.nextSeq(),
      fire,
      cancelled: false
    })
  }

  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      const timer: Timer = {
        deadline: this.localAt(this.world.now) + Math.max(0, Duration.toMillis(duration)),
        seq: this.world.nextSeq(),
        fire: () => resume(Effect.void),
        cancelled: false
      }
      this.timers.push(timer)
      return Effect.sync(() => {
        timer.cancelled = true
      })
    })
  }
}

/** Virtual time, clocks and the scheduler of one simulation. */
export class SimWorld {
  now = 0
  private seq = 0
  private sameTimeSteps = 0
  readonly scheduler = new SimScheduler()
  private readonly clocks: Array<SimClock> = []
  /** The unskewed clock (network delays, harness timeouts). */
  readonly clock: SimClock

  constructor(startMs = 0) {
    this.now = startMs
    this.clock = this.makeClock("world")
  }

  nextSeq(): number {
    return this.seq++
  }

  makeClock(name: string): SimClock {
    const c = new SimClock(this, name)
    this.clocks.push(c)
    return c
  }

  /** A runtime whose fibers use `clock` and this world's scheduler. */
  runtimeFor(clock: Clock.Clock = this.clock): Runtime.Runtime<never> {
    const base = Runtime.defaultRuntime
    let refs = FiberRefs.updateAs(base.fiberRefs, {
      fiberId: FiberId.none,
      fiberRef: FiberRef.currentScheduler,
      value: this.scheduler
    })
    refs = FiberRefs.updateAs(refs, {
      fiberId: FiberId.none,
      fiberRef: DefaultServices.currentServices,
      value: Context.add(DefaultServices.liveServices, Clock.Clock, clock)
    })
    return Runtime.make({ context: Context.empty(), runtimeFlags: base.runtimeFlags, fiberRefs: refs })
  }

  /** Starts `effect` as a fiber of this world (on `clock`); it runs when the world is drained/stepped. */
  fork<A, E>(effect: Effect.Effect<A, E>, clock: Clock.Clock = this.clock): Fiber.RuntimeFiber<A, E> {
    return Runtime.runFork(this.runtimeFor(clock))(effect)
  }

  /**
   * Runs `effect` in this world, stepping virtual time until it completes or
   * `timeoutMs` of world time passed (then the fiber is interrupted and
   * `undefined` is returned).
   */
  run<A, E>(effect: Effect.Effect<A, E>, options?: { readonly clock?: Clock.Clock; readonly timeoutMs?: number }): Exit.Exit<A, E> | undefined {
    let out: Exit.Exit<A, E> | undefined
    const fiber = this.fork(
      Effect.onExit(effect, (e) =>
        Effect.sync(() => {
          out = e
        })
      ),
      options?.clock
    )
    if (!this.runUntil(() => out !== undefined, options?.timeoutMs ?? 60_000)) {
      this.fork(Fiber.interrupt(fiber))
      this.drain()
      return undefined
    }
    return out
  }

  /** `run`, throwing on failure or timeout (tests and harness setup). */
  runOrThrow<A, E>(effect: Effect.Effect<A, E>, options?: { readonly clock?: Clock.Clock; readonly timeoutMs?: number }): A {
    const exit = this.run(effect, options)
    if (exit === undefined) throw new Error("SimWorld.run: timed out in virtual time")
    if (Exit.isFailure(exit)) throw new Error(`SimWorld.run failed: ${Cause.pretty(exit.cause)}`)
    return exit.value
  }

  /** Runs all runnable fiber work without moving time. */
  drain(): void {
    this.scheduler.drain()
  }

  /** Earliest pending wake-up in world time. */
  nextWake(): number {
    let min = Infinity
    for (const c of this.clocks) {
      const w = c.nextWake()
      if (w < min) min = w
    }
    return min
  }

  /**
   * Moves to the next wake-up if it is at or before `limit`: fires it and
   * drains. Returns false (and does nothing) otherwise.
   */
  stepUntil(limit: number): boolean {
    this.drain()
    const next = this.nextWake()
    if (next > limit) return false
    if (next > this.now) {
      this.now = next
      this.sameTimeSteps = 0
    } else if (++this.sameTimeSteps > 1_000_000) {
      throw new Error(`SimWorld: over a million wake-ups at t=${this.now} ms without time moving (a zero-delay loop)`)
    }
    for (const c of this.clocks) c.fireDue()
    this.drain()
    return true
  }

  /** Advances world time by `ms`, firing timers in order. */
  advance(ms: number, maxSteps = 10_000_000): void {
    const target = this.now + ms
    let steps = 0
    while (this.stepUntil(target)) {
      if (++steps > maxSteps) throw new Error("SimWorld: too many steps (a zero-delay timer loop?)")
    }
    this.now = Math.max(this.now, target)
    this.drain()
  }

  /** Steps until `done()` or `ms` of world time passed. Returns whether `done()` held. */
  runUntil(done: () => boolean, ms: number): boolean {
    const target = this.now + ms
    this.drain()
    while (!done()) {
      if (!this.stepUntil(target)) {
        this.now = Math.max(this.now, target)
        this.drain()
        return done()
      }
    }
    return true
  }
}
