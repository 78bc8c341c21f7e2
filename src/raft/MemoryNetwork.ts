/**
 * An in-process network shared by the nodes of a test cluster, with fault
 * injection. Every random choice comes from one seeded PRNG and every delay is
 * an `Effect.sleep` on the Clock of the runtime that created the network
 * (TestClock or the simulation clock), so one seed gives the same run message
 * for message.
 *
 * Faults (per message, in this order at send time):
 * 1. sender paused  -> buffered until `resume(sender)`
 * 2. link cut / partitioned -> dropped ("blocked")
 * 3. matches a `hold` predicate -> held until `release`
 * 4. random drop (probability `drop`)
 * 5. random duplicate (probability `duplicate`): a second copy with its own delay
 * 6. delay uniform in [minDelayMs, maxDelayMs] (different delays reorder)
 * At delivery: receiver not registered (down) -> dropped; receiver paused ->
 * buffered until `resume(receiver)`.
 */
import { Clock, Context, Effect, FiberRefs, Queue, Runtime } from "effect"
import * as DefaultServices from "effect/DefaultServices"
import { Mulberry32 } from "./core/random.js"
import type { Message, MessageType, NodeId } from "./core/types.js"
import type { InboundBatch, RaftTransportShape, SendOptions } from "./RaftTransport.js"
import { groupByDestination, StatsCounter } from "./RaftTransport.js"
import { SimClock } from "./SimWorld.js"

export interface LinkFaults {
  /** Probability in [0, 1] that a message is lost. */
  readonly drop: number
  /** Probability in [0, 1] that a message is delivered twice. */
  readonly duplicate: number
  readonly minDelayMs: number
  readonly maxDelayMs: number
}

export const noFaults: LinkFaults = { drop: 0, duplicate: 0, minDelayMs: 0, maxDelayMs: 0 }

export interface MessageInfo {
  readonly from: NodeId
  readonly to: NodeId
  readonly type: MessageType
  readonly group: string
}

export type TraceEventKind = "deliver" | "drop" | "blocked" | "hold" | "duplicate" | "down" | "buffer"

export interface TraceEvent {
  readonly seq: number
  readonly atMs: number
  readonly kind: TraceEventKind
  readonly from: NodeId
  readonly to: NodeId
  readonly type: MessageType
  readonly group: string
  readonly term: number
}

export interface MemoryNetworkOptions {
  readonly seed: number
  readonly faults?: Partial<LinkFaults>
  /** Record a trace of every message event (default true). */
  readonly trace?: boolean
}

interface Endpoint {
  readonly queue: Queue.Queue<InboundBatch>
  readonly stats: StatsCounter
}

const linkKey = (a: NodeId, b: NodeId): string => `${a}>${b}`

export class MemoryNetwork {
  private readonly rng: Mulberry32
  private defaultFaults: LinkFaults
  private readonly linkFaults = new Map<string, LinkFaults>()
  private readonly endpoints = new Map<NodeId, Endpoint>()
  private readonly blocked = new Set<string>()
  private partitionOf: Map<NodeId, number> | null = null
  private readonly paused = new Set<NodeId>()
  private pausedOut: Array<Message> = []
  private pausedIn: Array<Message> = []
  private holds: Array<(m: MessageInfo) => boolean> = []
  private held: Array<Message> = []
  private readonly clock: Clock.Clock
  private traceSeq = 0
  readonly trace: Array<TraceEvent> = []
  readonly recordTrace: boolean
  /** Frames sent: one per (send call, destination). */
  framesSent = 0
  messagesSent = 0
  messagesDelivered = 0
  private stormInstant = -1
  private stormCount = 0
  /** Deliveries allowed within one clock millisecond before the network declares a storm. */
  maxDeliveriesPerInstant = 200_000

  private constructor(
    private readonly runtime: Runtime.Runtime<never>,
    options: MemoryNetworkOptions
  ) {
    this.rng = new Mulberry32(options.seed)
    this.defaultFaults = { ...noFaults, ...options.faults }
    this.recordTrace = options.trace ?? true
    this.clock = Context.get(FiberRefs.getOrDefault(runtime.fiberRefs, DefaultServices.currentServices), Clock.Clock)
  }

  /**
   * Creates a network. Delays run on the Clock (and scheduler) of the calling
   * fiber: create it under TestClock / the simulation clock for determinism.
   */
  static make(options: MemoryNetworkOptions): Effect.Effect<MemoryNetwork> {
    return Effect.map(Effect.runtime<never>(), (rt) => new MemoryNetwork(rt, options))
  }

  // -- configuration --------------------------------------------------------

  /** Faults for every link, or for both directions of `[a, b]`. */
  setLinkFaults(faults: Partial<LinkFaults>, link?: readonly [NodeId, NodeId]): void {
    if (link === undefined) {
      this.defaultFaults = { ...this.defaultFaults, ...faults }
      this.linkFaults.clear()
      return
    }
    const [a, b] = link
    this.linkFaults.set(linkKey(a, b), { ...this.faultsFor(a, b), ...faults })
    this.linkFaults.set(linkKey(b, a), { ...this.faultsFor(b, a), ...faults })
  }

  /** Only nodes in the same list can talk; nodes in no list are isolated. */
  partition(groups: ReadonlyArray<ReadonlyArray<NodeId>>): void {
    const m = new Map<NodeId, number>()
    groups.forEach((g, i) => g.forEach((id) => m.set(id, i)))
    this.partitionOf = m
  }

  /** Cut the link a->b (and b->a unless oneWay). */
  cut(a: NodeId, b: NodeId, oneWay = false): void {
    this.blocked.add(linkKey(a, b))
    if (!oneWay) this.blocked.add(linkKey(b, a))
  }

  /** Removes partitions and cuts (not link faults, holds or pauses). */
  heal(): void {
    this.partitionOf = null
    this.blocked.clear()
  }

  /** Freeze a node's traffic both ways; buffered messages flow on `resume`. */
  pause(node: NodeId): void {
    this.paused.add(node)
  }

  resume(node: NodeId): void {
    this.paused.delete(node)
    const out = this.pausedOut.filter((m) => m.from === node)
    this.pausedOut = this.pausedOut.filter((m) => m.from !== node)
    const inb = this.pausedIn.filter((m) => m.to === node && !this.paused.has(m.from))
    this.pausedIn = this.pausedIn.filter((m) => !(m.to === node && !this.paused.has(m.from)))
    for (const m of inb) this.deliver(m)
    for (const m of out) this.route(m, false)
  }

  isPaused(node: NodeId): boolean {
    return this.paused.has(node)
  }

  /** Hold (do not deliver) every message matching `predicate` until released. */
  hold(predicate: (m: MessageInfo) => boolean): void {
    this.holds.push(predicate)
  }

  /**
   * Stops holding; releases held messages matching `predicate` (all when
   * omitted) and removes all hold predicates when `predicate` is omitted.
   * Released messages go through partitions/cuts again but not random faults.
   */
  release(predicate?: (m: MessageInfo) => boolean): number {
    if (predicate === undefined) this.holds = []
    const out: Array<Message> = []
    const keep: Array<Message> = []
    for (const m of this.held) (predicate === undefined || predicate(info(m)) ? out : keep).push(m)
    this.held = keep
    for (const m of out) {
      if (this.isBlocked(m.from, m.to)) this.record("blocked", m)
      else this.deliver(m)
    }
    return out.length
  }

  heldCount(): number {
    return this.held.length
  }

  // -- endpoints ------------------------------------------------------------

  register(node: NodeId, queue: Queue.Queue<InboundBatch>, stats: StatsCounter): void {
    this.endpoints.set(node, { queue, stats })
  }

  unregister(node: NodeId, queue: Queue.Queue<InboundBatch>): void {
    if (this.endpoints.get(node)?.queue === queue) this.endpoints.delete(node)
    // messages buffered for a node that went down are lost, as on a real network
    this.pausedIn = this.pausedIn.filter((m) => m.to !== node)
  }

  // -- data path ------------------------------------------------------------

  send(from: NodeId, messages: ReadonlyArray<Message>): void {
    const stats = this.endpoints.get(from)?.stats
    for (const [, list] of groupByDestination(messages)) {
      this.framesSent++
      if (stats !== undefined) stats.framesSent++
      for (const m of list) {
        this.messagesSent++
        if (stats !== undefined) stats.messagesSent++
        this.route(m, true)
      }
    }
  }

  private faultsFor(a: NodeId, b: NodeId): LinkFaults {
    return this.linkFaults.get(linkKey(a, b)) ?? this.defaultFaults
  }

  private isBlocked(a: NodeId, b: NodeId): boolean {
    if (this.blocked.has(linkKey(a, b))) return true
    if (this.partitionOf !== null && a !== b) {
      const pa = this.partitionOf.get(a)
      const pb = this.partitionOf.get(b)
      if (pa === undefined || pb === undefined || pa !== pb) return true
    }
    return false
  }

  private route(m: Message, randomFaults: boolean): void {
    if (this.paused.has(m.from)) {
      this.pausedOut.push(m)
      this.record("buffer", m)
      return
    }
    if (this.isBlocked(m.from, m.to)) {
      this.record("blocked", m)
      return
    }
    if (this.holds.length > 0) {
      const i = info(m)
      if (this.holds.some((p) => p(i))) {
        this.held.push(m)
        this.record("hold", m)
        return
      }
    }
    if (!randomFaults) return this.deliver(m)
    const f = this.faultsFor(m.from, m.to)
    if (f.drop > 0 && this.rng.nextFloat() < f.drop) {
      this.record("drop", m)
      return
    }
    const copies = f.duplicate > 0 && this.rng.nextFloat() < f.duplicate ? 2 : 1
    if (copies === 2) this.record("duplicate", m)
    for (let c = 0; c < copies; c++) {
      const span = f.maxDelayMs - f.minDelayMs
      const delay = f.minDelayMs + (span > 0 ? this.rng.nextFloat() * span : 0)
      if (delay <= 0) this.deliver(m)
      else {
        if (this.clock instanceof SimClock) this.clock.schedule(delay, () => this.deliver(m))
        else Runtime.runFork(this.runtime)(Effect.sleep(delay).pipe(Effect.andThen(Effect.sync(() => this.deliver(m)))))
      }
    }
  }

  private deliver(m: Message): void {
    const now = this.clock.unsafeCurrentTimeMillis()
    if (now !== this.stormInstant) {
      this.stormInstant = now
      this.stormCount = 0
    } else if (++this.stormCount > this.maxDeliveriesPerInstant) {
      // a livelock between nodes at zero delay would otherwise hang a simulation
      throw new Error(`MemoryNetwork: over ${this.maxDeliveriesPerInstant} deliveries at t=${now} ms (message storm)`)
    }
    const ep = this.endpoints.get(m.to)
    if (ep === undefined) {
      this.record("down", m)
      return
    }
    if (this.paused.has(m.to)) {
      this.pausedIn.push(m)
      this.record("buffer", m)
      return
    }
    ep.stats.framesReceived++
    ep.stats.messagesReceived++
    this.messagesDelivered++
    this.record("deliver", m)
    Queue.unsafeOffer(ep.queue, { from: m.from, messages: [m], traceparent: undefined })
  }

  private record(kind: TraceEventKind, m: Message): void {
    if (!this.recordTrace) return
    this.trace.push({
      seq: this.traceSeq++,
      atMs: this.clock.unsafeCurrentTimeMillis(),
      kind,
      from: m.from,
      to: m.to,
      type: m.type,
      group: m.group,
      term: m.term
    })
  }
}

const info = (m: Message): MessageInfo => ({ from: m.from, to: m.to, type: m.type, group: m.group })

/** A node's endpoint on `network` (scoped: unregisters on close = node down). */
export const makeMemoryTransport = (
  network: MemoryNetwork,
  nodeId: NodeId
): Effect.Effect<RaftTransportShape, never, import("effect/Scope").Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<InboundBatch>()
    const stats = new StatsCounter()
    network.register(nodeId, queue, stats)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => network.unregister(nodeId, queue)).pipe(Effect.andThen(Queue.shutdown(queue)))
    )
    const send = (messages: ReadonlyArray<Message>, _options?: SendOptions): Effect.Effect<void> =>
      Effect.sync(() => network.send(nodeId, messages))
    return {
      nodeId,
      send,
      inbound: queue,
      stats: Effect.sync(() => stats.snapshot())
    }
  })
