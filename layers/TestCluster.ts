/**
 * A simulated Raft cluster in one process: n nodes (ids 1..n) over the
 * in-memory network and in-memory disks, under a virtual clock
 * (`SimWorld`), running one group "kv" with a string key-value state machine.
 *
 * Each node's layers are built separately (`Layer.buildWithScope` with a
 * fresh memo map and its own scope), so nodes never share services; crashing
 * a node closes its scope (interrupting its fibers mid-write if need be) and
 * applies the disk's crash semantics; restarting rebuilds it from its disk.
 *
 * All operations are Effects that step virtual time synchronously until they
 * complete (client operations) or for the requested duration (`advance`).
 * The same seed gives the same run. Invariants are checked after every step:
 * at most one leader per term, committed entries never change, commit never
 * goes backwards within a node's life. Violations are collected in
 * `violations()` (and make `advance` fail when `failOnViolation` is set).
 */
import { Data, Effect, Exit, Layer, Option, Scope } from "effect"
import type { Entry, EntryType, NodeId } from "../src/raft/core/types.js"
import type { KvCommand, KvResult } from "../src/raft/KvStateMachine.js"
import { encodeKvCommand, KvStateMachine } from "../src/raft/KvStateMachine.js"
import type { LinkFaults, MessageInfo } from "../src/raft/MemoryNetwork.js"
import { MemoryNetwork } from "../src/raft/MemoryNetwork.js"
import type { ProposeError, RaftEngineShape } from "../src/raft/RaftEngine.js"
import * as RaftEngine from "../src/raft/RaftEngine.js"
import type { CrashOptions } from "../src/raft/RaftLogStore.js"
import * as RaftLogStore from "../src/raft/RaftLogStore.js"
import * as RaftTransport from "../src/raft/RaftTransport.js"
import type { SimClock } from "../src/raft/SimWorld.js"
import { SimWorld } from "../src/raft/SimWorld.js"

export const KV_GROUP = "kv"

export class NodeDown extends Data.TaggedError("NodeDown")<{ readonly node: NodeId }> {
  override get message(): string {
    return `node ${this.node} is down`
  }
}

/** The harness gave up waiting (virtual time) for an operation. */
export class HarnessTimeout extends Data.TaggedError("HarnessTimeout")<{
  readonly operation: string
  readonly afterMs: number
}> {}

export class InvariantViolation extends Data.TaggedError("InvariantViolation")<{
  readonly seed: number
  readonly atMs: number
  readonly violation: string
}> {
  override get message(): string {
    return `seed ${this.seed} at ${this.atMs} ms: ${this.violation}`
  }
}

export interface TestClusterOptions {
  readonly seed: number
  readonly electionTimeoutMs?: number
  readonly heartbeatMs?: number
  /** Delay before a disk write is durable (crash window). Default 1 ms. */
  readonly fsyncDelayMs?: number
  /** Initial link faults. */
  readonly faults?: Partial<LinkFaults>
  /** Engine snapshot/compaction interval in entries (0 = never). Default 0. */
  readonly snapshotEvery?: number
  /** Record a network trace (default true). */
  readonly trace?: boolean
  /**
   * Engine settings passed through to every node's `RaftEngine.layer` (for
   * example `{ quiescence: false }`); the harness's timing options win.
   */
  readonly engine?: Partial<RaftEngine.RaftEngineConfig>
}

export interface CommittedEntry {
  readonly index: number
  readonly term: number
  readonly type: EntryType
  readonly data: Uint8Array
}

export type ClientError = ProposeError | NodeDown | HarnessTimeout

export interface RaftTestCluster {
  readonly seed: number
  readonly ids: ReadonlyArray<NodeId>
  readonly world: SimWorld
  readonly network: MemoryNetwork
  // Time
  readonly advance: (ms: number) => Effect.Effect<void, InvariantViolation>
  readonly skew: (node: NodeId, offsetMs: number, rate?: number) => Effect.Effect<void>
  readonly now: Effect.Effect<number>
  // Faults
  readonly crash: (node: NodeId, options?: CrashOptions) => Effect.Effect<void>
  readonly restart: (node: NodeId) => Effect.Effect<void>
  readonly pause: (node: NodeId) => Effect.Effect<void>
  readonly resume: (node: NodeId) => Effect.Effect<void>
  readonly partition: (groups: ReadonlyArray<ReadonlyArray<NodeId>>) => Effect.Effect<void>
  readonly cut: (a: NodeId, b: NodeId, options?: { readonly oneWay?: boolean }) => Effect.Effect<void>
  readonly heal: Effect.Effect<void>
  readonly setLinkFaults: (faults: Partial<LinkFaults>, link?: readonly [NodeId, NodeId]) => Effect.Effect<void>
  readonly hold: (predicate: (m: MessageInfo) => boolean) => Effect.Effect<void>
  readonly release: (predicate?: (m: MessageInfo) => boolean) => Effect.Effect<number>
  // Client
  readonly propose: (node: NodeId, command: KvCommand) => Effect.Effect<KvResult, ClientError>
  readonly read: (node: NodeId, key: string) => Effect.Effect<string | null, ClientError>
  // Membership
  readonly addLearner: (id: NodeId) => Effect.Effect<void, ClientError>
  readonly promote: (id: NodeId) => Effect.Effect<void, ClientError>
  readonly remove: (id: NodeId) => Effect.Effect<void, ClientError>
  readonly transferLeadership: (from: NodeId, to: NodeId) => Effect.Effect<void, ClientError>
  // Observation
  readonly leader: (node: NodeId) => Effect.Effect<Option.Option<{ readonly id: NodeId; readonly term: number }>>
  /** Steps time until some running node is leader (with a majority of running nodes agreeing), or fails. */
  readonly awaitLeader: (withinMs?: number) => Effect.Effect<{ readonly id: NodeId; readonly term: number }, HarnessTimeout>
  readonly committedIndex: (node: NodeId) => Effect.Effect<number, NodeDown>
  readonly committedLog: (node: NodeId) => Effect.Effect<ReadonlyArray<CommittedEntry>, NodeDown>
  readonly figures: (node: NodeId) => Effect.Effect<RaftEngine.GroupFigures, NodeDown>
  readonly engine: (node: NodeId) => Effect.Effect<RaftEngineShape, NodeDown>
  /** Runs an effect on `node` (its clock), stepping virtual time until it completes. */
  readonly runOn: <A, E>(
    node: NodeId,
    f: (engine: RaftEngineShape) => Effect.Effect<A, E>
  ) => Effect.Effect<A, E | NodeDown | HarnessTimeout>
  readonly isUp: (node: NodeId) => boolean
  /** Invariant violations seen so far (empty when all is well). */
  readonly violations: Effect.Effect<ReadonlyArray<string>>
  /** Fails if any invariant was violated. */
  readonly checkInvariants: Effect.Effect<void, InvariantViolation>
}

interface Slot {
  readonly id: NodeId
  readonly disk: RaftLogStore.MemoryDisk
  readonly clock: SimClock
  scope: Scope.CloseableScope | null
  engine: RaftEngineShape | null
  sm: KvStateMachine | null
  savedRate: number | null
  lastCommit: number
}

/**
 * Builds the cluster. Scoped: closing the scope stops every node.
 * Run it from any fiber; the cluster keeps its own virtual time.
 */
export const makeRaftTestCluster = (
  n: number,
  options: TestClusterOptions
): Effect.Effect<RaftTestCluster, never, Scope.Scope> =>
  Effect.gen(function* () {
    const seed = options.seed
    const heartbeatMs = options.heartbeatMs ?? 100
    const electionTimeoutMs = options.electionTimeoutMs ?? 1000
    const electionTicks = Math.max(2, Math.round(electionTimeoutMs / heartbeatMs))
    const fsyncDelayMs = options.fsyncDelayMs ?? 1
    const clientTimeoutMs = electionTimeoutMs * 3
    const world = new SimWorld()
    const network = world.runOrThrow(
      MemoryNetwork.make({ seed, ...(options.faults !== undefined ? { faults: options.faults } : {}), trace: options.trace ?? true })
    )
    const initialVoters = Array.from({ length: n }, (_, i) => i + 1)
    const slots = new Map<NodeId, Slot>()
    const violations: Array<string> = []
    const leaderOfTerm = new Map<number, NodeId>()
    const committed = new Map<number, { term: number; data: string }>()

    const newSlot = (id: NodeId): Slot => {
      const s: Slot = {
        id,
        disk: new RaftLogStore.MemoryDisk({ syncDelayMs: fsyncDelayMs }),
        clock: world.makeClock(`node-${id}`),
        scope: null,
        engine: null,
        sm: null,
        savedRate: null,
        lastCommit: 0
      }
      slots.set(id, s)
      return s
    }

    const start = (s: Slot, voters: ReadonlyArray<NodeId>): void => {
      const scope = world.runOrThrow(Scope.make())
      const layer = RaftEngine.layer({
        ...options.engine,
        nodeId: s.id,
        tickMs: heartbeatMs,
        electionTicks,
        heartbeatTicks: 1,
        seed: (seed * 31 + s.id) >>> 0,
        proposalTimeoutMs: clientTimeoutMs,
        snapshotEvery: options.snapshotEvery ?? 0
      }).pipe(
        Layer.provide(Layer.merge(RaftTransport.layerMemory(network, s.id), RaftLogStore.layerMemory(s.disk)))
      )
      const ctx = world.runOrThrow(Layer.buildWithScope(layer, scope), { clock: s.clock })
      const engine = ctx.unsafeMap.get(RaftEngine.RaftEngine.key) as RaftEngineShape
      const sm = new KvStateMachine()
      world.runOrThrow(engine.createGroup(KV_GROUP, { voters, stateMachine: sm }), { clock: s.clock })
      s.scope = scope
      s.engine = engine
      s.sm = sm
      s.lastCommit = 0
    }

    const stop = (s: Slot): void => {
      if (s.scope === null) return
      const scope = s.scope
      s.scope = null
      s.engine = null
      s.sm = null
      world.runOrThrow(Scope.close(scope, Exit.void), { clock: s.clock })
    }

    for (const id of initialVoters) start(newSlot(id), initialVoters)
    yield* Effect.addFinalizer(() => Effect.sync(() => slots.forEach(stop)))

    // -- invariants ------------------------------------------------------------

    const violate = (v: string): void => {
      if (violations.length < 100) violations.push(`seed ${seed} t=${world.now}ms: ${v}`)
    }

    const observe = (): void => {
      for (const s of slots.values()) {
        if (s.engine === null) continue
        const f = Effect.runSync(Effect.either(s.engine.figures(KV_GROUP)))
        if (f._tag === "Left") continue
        const fig = f.right
        if (fig.role === "Leader") {
          const prev = leaderOfTerm.get(fig.term)
          if (prev === undefined) leaderOfTerm.set(fig.term, s.id)
          else if (prev !== s.id) violate(`two leaders in term ${fig.term}: ${prev} and ${s.id}`)
        }
        if (fig.commitIndex < s.lastCommit) violate(`node ${s.id} commit went back ${s.lastCommit} -> ${fig.commitIndex}`)
        if (fig.commitIndex > s.lastCommit) {
          const lo = Math.max(s.lastCommit + 1, fig.firstIndex)
          const ents = Effect.runSync(Effect.orDie(s.engine.logEntries(KV_GROUP, lo, fig.commitIndex + 1)))
          for (const e of ents) checkCommitted(s.id, e)
          s.lastCommit = fig.commitIndex
        }
      }
    }

    const checkCommitted = (node: NodeId, e: Entry): void => {
      const data = Buffer.from(e.data).toString("base64")
      const prev = committed.get(e.index)
      if (prev === undefined) committed.set(e.index, { term: e.term, data })
      else if (prev.term !== e.term || prev.data !== data) {
        violate(`node ${node} committed index ${e.index} term ${e.term}, but term ${prev.term} was committed there before`)
      }
    }

    /** Steps the world until `done()` or `ms` elapsed, checking invariants after each step. */
    const stepFor = (ms: number, done: () => boolean = () => false): boolean => {
      const target = world.now + ms
      world.drain()
      observe()
      while (!done()) {
        if (!world.stepUntil(target)) {
          world.now = Math.max(world.now, target)
          world.drain()
          observe()
          return done()
        }
        observe()
      }
      return true
    }

    const slot = (node: NodeId): Slot => {
      const s = slots.get(node)
      if (s === undefined) throw new Error(`TestCluster: no node ${node}`)
      return s
    }

    const running = (node: NodeId): Effect.Effect<Slot & { engine: RaftEngineShape; sm: KvStateMachine }, NodeDown> =>
      Effect.suspend(() => {
        const s = slots.get(node)
        return s === undefined || s.engine === null || s.sm === null
          ? Effect.fail(new NodeDown({ node }))
          : Effect.succeed(s as Slot & { engine: RaftEngineShape; sm: KvStateMachine })
      })

    /** Runs `eff` on `node`'s clock, stepping virtual time until it completes. */
    const onNode = <A, E>(s: Slot, eff: Effect.Effect<A, E>, operation: string): Effect.Effect<A, E | HarnessTimeout> =>
      Effect.suspend(() => {
        let out: Exit.Exit<A, E> | undefined
        world.fork(
          Effect.onExit(eff, (e) =>
            Effect.sync(() => {
              out = e
            })
          ),
          s.clock
        )
        const limit = clientTimeoutMs * 2
        stepFor(limit, () => out !== undefined)
        if (out === undefined) return Effect.fail(new HarnessTimeout({ operation, afterMs: limit }))
        return out as Effect.Effect<A, E | HarnessTimeout>
      })

    const leaderInfo = (s: Slot): Option.Option<{ id: NodeId; term: number }> => {
      if (s.engine === null) return Option.none()
      const f = Effect.runSync(Effect.either(s.engine.figures(KV_GROUP)))
      if (f._tag === "Left" || f.right.leader === null) return Option.none()
      return Option.some({ id: f.right.leader, term: f.right.term })
    }

    /** The running node that is leader with the highest term. */
    const currentLeader = (): Slot | undefined => {
      let best: Slot | undefined
      let bestTerm = -1
      for (const s of slots.values()) {
        if (s.engine === null) continue
        const f = Effect.runSync(Effect.either(s.engine.figures(KV_GROUP)))
        if (f._tag === "Right" && f.right.role === "Leader" && f.right.term > bestTerm) {
          best = s
          bestTerm = f.right.term
        }
      }
      return best
    }

    const awaitLeader = (withinMs = electionTimeoutMs * 10) =>
      Effect.suspend(() => {
        let found: { id: NodeId; term: number } | undefined
        const ok = stepFor(withinMs, () => {
          const l = currentLeader()
          if (l === undefined) return false
          const info = leaderInfo(l)
          if (Option.isNone(info)) return false
          // a majority of running nodes knows this leader
          let agree = 0
          let up = 0
          for (const s of slots.values()) {
            if (s.engine === null) continue
            up++
            const li = leaderInfo(s)
            if (Option.isSome(li) && li.value.id === l.id && li.value.term === info.value.term) agree++
          }
          if (agree * 2 <= up) return false
          found = info.value
          return true
        })
        return ok && found !== undefined
          ? Effect.succeed(found)
          : Effect.fail(new HarnessTimeout({ operation: "awaitLeader", afterMs: withinMs }))
      })

    /** Runs a membership change on the current leader, retrying while leadership moves. */
    const onLeader = (operation: string, f: (e: RaftEngineShape) => Effect.Effect<void, ProposeError>) =>
      Effect.gen(function* () {
        const deadline = world.now + clientTimeoutMs * 2
        for (;;) {
          const l = currentLeader()
          if (l === undefined || l.engine === null) {
            if (world.now >= deadline) return yield* Effect.fail(new HarnessTimeout({ operation, afterMs: clientTimeoutMs * 2 }))
            stepFor(heartbeatMs)
            continue
          }
          const r = yield* Effect.either(onNode(l, f(l.engine), operation))
          if (r._tag === "Right") return
          const e = r.left
          const retry = e._tag === "NotLeader" || e._tag === "ConfigChangeInProgress" || e._tag === "LeadershipTransferInProgress"
          if (!retry || world.now >= deadline) return yield* Effect.fail(e)
          stepFor(heartbeatMs)
        }
      })

    const cluster: RaftTestCluster = {
      seed,
      ids: initialVoters,
      world,
      network,
      advance: (ms) =>
        Effect.suspend(() => {
          stepFor(ms)
          return violations.length > 0
            ? Effect.fail(new InvariantViolation({ seed, atMs: world.now, violation: violations[0]! }))
            : Effect.void
        }),
      skew: (node, offsetMs, rate) => Effect.sync(() => slot(node).clock.skew(offsetMs, rate)),
      now: Effect.sync(() => world.now),
      crash: (node, crashOptions) =>
        Effect.sync(() => {
          const s = slot(node)
          stop(s)
          s.disk.crash(crashOptions)
        }),
      restart: (node) =>
        Effect.sync(() => {
          const s = slot(node)
          stop(s)
          start(s, initialVoters.includes(node) ? initialVoters : [])
          world.drain()
        }),
      pause: (node) =>
        Effect.sync(() => {
          const s = slot(node)
          if (s.savedRate !== null) return
          s.savedRate = s.clock.rate
          s.clock.skew(0, 0)
          network.pause(node)
        }),
      resume: (node) =>
        Effect.sync(() => {
          const s = slot(node)
          if (s.savedRate === null) return
          s.clock.skew(0, s.savedRate)
          s.savedRate = null
          network.resume(node)
          world.drain()
        }),
      partition: (groups) => Effect.sync(() => network.partition(groups)),
      cut: (a, b, o) => Effect.sync(() => network.cut(a, b, o?.oneWay ?? false)),
      heal: Effect.sync(() => network.heal()),
      setLinkFaults: (faults, link) => Effect.sync(() => network.setLinkFaults(faults, link)),
      hold: (predicate) => Effect.sync(() => network.hold(predicate)),
      release: (predicate) =>
        Effect.sync(() => {
          const n = network.release(predicate)
          world.drain()
          return n
        }),
      propose: (node, command) =>
        Effect.flatMap(running(node), (s) =>
          onNode(s, s.engine.propose(KV_GROUP, encodeKvCommand(command)), "propose")
        ) as Effect.Effect<KvResult, ClientError>,
      read: (node, key) =>
        Effect.flatMap(running(node), (s) =>
          onNode(
            s,
            Effect.map(s.engine.readIndex(KV_GROUP), () => s.sm.get(key)),
            "read"
          )
        ),
      addLearner: (id) =>
        Effect.suspend(() => {
          const s = slots.get(id) ?? newSlot(id)
          if (s.engine === null) start(s, [])
          return onLeader("addLearner", (e) => e.addLearner(KV_GROUP, id))
        }),
      promote: (id) => onLeader("promote", (e) => e.promote(KV_GROUP, id)),
      remove: (id) => onLeader("remove", (e) => e.removeNode(KV_GROUP, id)),
      transferLeadership: (from, to) =>
        Effect.flatMap(running(from), (s) =>
          Effect.flatMap(onNode(s, s.engine.transferLeadership(KV_GROUP, to), "transferLeadership"), () =>
            Effect.suspend(() => {
              const ok = stepFor(electionTimeoutMs * 3, () => {
                const t = slots.get(to)
                if (t === undefined || t.engine === null) return false
                const f = Effect.runSync(Effect.either(t.engine.figures(KV_GROUP)))
                return f._tag === "Right" && f.right.role === "Leader"
              })
              return ok ? Effect.void : Effect.fail(new HarnessTimeout({ operation: "transferLeadership", afterMs: electionTimeoutMs * 3 }))
            })
          )
        ),
      leader: (node) => Effect.sync(() => leaderInfo(slot(node))),
      awaitLeader,
      committedIndex: (node) =>
        Effect.flatMap(running(node), (s) => Effect.map(Effect.orDie(s.engine.figures(KV_GROUP)), (f) => f.commitIndex)),
      committedLog: (node) =>
        Effect.flatMap(running(node), (s) =>
          Effect.gen(function* () {
            const f = yield* Effect.orDie(s.engine.figures(KV_GROUP))
            const ents = yield* Effect.orDie(s.engine.logEntries(KV_GROUP, f.firstIndex, f.commitIndex + 1))
            return ents.map((e) => ({ index: e.index, term: e.term, type: e.type, data: e.data }))
          })
        ),
      figures: (node) => Effect.flatMap(running(node), (s) => Effect.orDie(s.engine.figures(KV_GROUP))),
      engine: (node) => Effect.map(running(node), (s) => s.engine),
      runOn: (node, f) => Effect.flatMap(running(node), (s) => onNode(s, f(s.engine), "runOn")),
      isUp: (node) => slots.get(node)?.engine != null,
      violations: Effect.sync(() => [...violations]),
      checkInvariants: Effect.suspend(() =>
        violations.length > 0
          ? Effect.fail(new InvariantViolation({ seed, atMs: world.now, violation: violations[0]! }))
          : Effect.void
      )
    }
    return cluster
  })
