/**
 * RaftEngine: hosts many Raft groups on one node (multi-Raft).
 *
 * One driver fiber per node owns every `RaftCore`. Everything that touches a
 * core (ticks, inbound messages, proposals, reads, membership changes) is an
 * event in one mailbox; the driver takes ALL pending events, applies them,
 * then runs one Ready cycle over every group that has work:
 *
 *   1. persist the Ready output of all groups with ONE `RaftLogStore.persist`
 *      (one sync: group commit across groups);
 *   2. send every message of every group with ONE `RaftTransport.send`
 *      (one frame per peer: heartbeats of 1,000 groups travel as one frame per
 *      node pair per heartbeat tick);
 *   3. apply snapshots and committed entries to each group's `StateMachine`,
 *      complete proposals and reads;
 *   4. `advance` every core.
 *
 * While a cycle persists, new events queue up and are handled together in the
 * next cycle, so batching grows with load. A separate ticker fiber puts one
 * Tick event per `tickMs` (Effect Clock) in the mailbox: one tick loop per
 * node, not a timer per group.
 */
import { Context, Data, Deferred, Effect, Either, FiberId, Layer, PubSub, Queue, Random, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { Mulberry32 } from "./core/random.js"
import type { ProgressStatus } from "./core/raft.js"
import { RaftCore } from "./core/raft.js"
import type {
  ConfChangeType,
  ConfState,
  Entry,
  GroupId,
  Message,
  NodeId,
  RaftError,
  Ready,
  Role,
  Snapshot
} from "./core/types.js"
import { isEmptySnapshot, NotLeader } from "./core/types.js"
import type { GroupLog, PersistItem } from "./RaftLogStore.js"
import { RaftLogStore } from "./RaftLogStore.js"
import type { InboundBatch } from "./RaftTransport.js"
import { RaftTransport } from "./RaftTransport.js"

// ---------------------------------------------------------------------------
// Public types

/** The application state of one group. All methods are synchronous. */
export interface StateMachine<R = unknown> {
  /** Applies a committed Normal entry; the result completes the matching proposal. */
  apply(entry: Entry): R
  /** Serializes the state (for log compaction and InstallSnapshot). */
  snapshot(): Uint8Array
  /** Replaces the state with a snapshot's data. */
  restore(data: Uint8Array): void
}

export interface GroupOptions {
  /** Membership of a brand-new group (ignored when the group recovers from the log store). */
  readonly voters: ReadonlyArray<NodeId>
  readonly learners?: ReadonlyArray<NodeId>
  readonly stateMachine: StateMachine
}

export interface LeadershipChange {
  readonly group: GroupId
  readonly leader: NodeId | null
  readonly term: number
  readonly role: Role
}

/** Per-group figures for metrics and tests. */
export interface GroupFigures {
  readonly group: GroupId
  readonly term: number
  readonly role: Role
  readonly leader: NodeId | null
  readonly commitIndex: number
  readonly appliedIndex: number
  readonly lastIndex: number
  readonly firstIndex: number
  readonly confState: ConfState
  /** Leader only. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>
  readonly elections: number
  readonly leaderChanges: number
  readonly proposals: number
  readonly proposalsFailed: number
  readonly snapshotsSent: number
  readonly snapshotsApplied: number
  readonly snapshotsCreated: number
}

export interface EngineFigures {
  readonly groups: number
  readonly cycles: number
  readonly persistCalls: number
  readonly ticks: number
  readonly messagesSent: number
  readonly messagesReceived: number
  readonly messagesDroppedUnknownGroup: number
}

// ---------------------------------------------------------------------------
// Errors

export class GroupNotFound extends Data.TaggedError("GroupNotFound")<{ readonly group: GroupId }> {
  override get message(): string {
    return `raft group ${this.group} not hosted on this node`
  }
}

/** The operation did not complete within its timeout; its outcome is unknown. */
export class RaftTimeout extends Data.TaggedError("RaftTimeout")<{
  readonly group: GroupId
  readonly operation: "propose" | "readIndex" | "confChange"
  readonly afterMs: number
}> {
  override get message(): string {
    return `group ${this.group}: ${this.operation} timed out after ${this.afterMs} ms`
  }
}

/** The entry's slot was taken by another leader's entry, or a snapshot skipped it. */
export class ProposalLost extends Data.TaggedError("ProposalLost")<{
  readonly group: GroupId
  readonly index: number
  readonly reason: "Overwritten" | "SnapshotSkipped" | "EngineStopped"
}> {
  override get message(): string {
    return `group ${this.group}: proposal at index ${this.index} lost (${this.reason})`
  }
}

export type ProposeError = RaftError | GroupNotFound | RaftTimeout | ProposalLost

// ---------------------------------------------------------------------------
// Config and service

export interface RaftEngineConfig {
  readonly nodeId: NodeId
  /** Milliseconds per tick. Default 100. */
  readonly tickMs?: number
  /** Ticks before a follower campaigns (randomized in [e, 2e)). Default 10. */
  readonly electionTicks?: number
  /** Ticks between heartbeats. Default 1. */
  readonly heartbeatTicks?: number
  /** Seed for election jitter; default drawn from Effect's `Random`. */
  readonly seed?: number
  /** Default 3 election timeouts. */
  readonly proposalTimeoutMs?: number
  /** Take a state-machine snapshot and compact after this many applied entries (0 = never). Default 0. */
  readonly snapshotEvery?: number
  /** Entries kept behind a snapshot for slow followers. Default 64. */
  readonly snapshotKeepEntries?: number
  readonly preVote?: boolean
  readonly checkQuorum?: boolean
  readonly maxSizePerMsg?: number
  readonly maxInflightMsgs?: number
  readonly maxSnapshotChunkBytes?: number
}

export interface RaftEngineShape {
  readonly nodeId: NodeId
  /** Creates (or recovers from the log store) a group on this node. Idempotent. */
  readonly createGroup: (group: GroupId, options: GroupOptions) => Effect.Effect<void, never>
  readonly removeGroup: (group: GroupId) => Effect.Effect<void>
  /** Proposes `data`; succeeds with the state machine's result once applied on this node. */
  readonly propose: (group: GroupId, data: Uint8Array) => Effect.Effect<unknown, ProposeError>
  /**
   * Linearizable read barrier: succeeds with an index once this node applied
   * at least that far; reading the local state machine then is linearizable.
   */
  readonly readIndex: (group: GroupId) => Effect.Effect<number, RaftError | GroupNotFound | RaftTimeout>
  readonly transferLeadership: (group: GroupId, to: NodeId) => Effect.Effect<void, RaftError | GroupNotFound>
  /** Membership changes; succeed once the change is applied on this (leader) node. */
  readonly addLearner: (group: GroupId, node: NodeId) => Effect.Effect<void, ProposeError>
  readonly promote: (group: GroupId, node: NodeId) => Effect.Effect<void, ProposeError>
  readonly removeNode: (group: GroupId, node: NodeId) => Effect.Effect<void, ProposeError>
  /** Starts an election now (tests, manual failover). */
  readonly campaign: (group: GroupId) => Effect.Effect<void, GroupNotFound>
  readonly leadershipChanges: Stream.Stream<LeadershipChange>
  readonly figures: (group: GroupId) => Effect.Effect<GroupFigures, GroupNotFound>
  readonly allFigures: Effect.Effect<ReadonlyArray<GroupFigures>>
  readonly engineFigures: Effect.Effect<EngineFigures>
  /** Entries [lo, hi) of a group's local log (observation). */
  readonly logEntries: (group: GroupId, lo: number, hi: number) => Effect.Effect<ReadonlyArray<Entry>, GroupNotFound>
}

export class RaftEngine extends Context.Tag("chronik/RaftEngine")<RaftEngine, RaftEngineShape>() {}

// ---------------------------------------------------------------------------
// Internals

interface Pending {
  readonly term: number
  readonly deferred: Deferred.Deferred<unknown, ProposeError>
}

interface GroupState {
  readonly id: GroupId
  readonly core: RaftCore
  readonly log: GroupLog
  readonly sm: StateMachine
  readonly pending: Map<number, Pending>
  readonly reads: Map<string, Deferred.Deferred<number, RaftError | GroupNotFound | RaftTimeout>>
  /** Read states whose index is not yet applied. */
  waitingReads: Array<{ index: number; context: string }>
  snapshotIndex: number
  elections: number
  leaderChanges: number
  proposals: number
  proposalsFailed: number
  snapshotsSent: number
  snapshotsApplied: number
  snapshotsCreated: number
  lastLeader: NodeId | null
}

type Event =
  | { readonly _tag: "Tick" }
  | { readonly _tag: "Inbound"; readonly batch: InboundBatch }
  | { readonly _tag: "Run"; readonly run: () => void }

const hashString = (s: string): number => {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

export const make = (
  config: RaftEngineConfig
): Effect.Effect<RaftEngineShape, never, RaftTransport | RaftLogStore | Scope.Scope> =>
  Effect.gen(function* () {
    const transport = yield* RaftTransport
    const logStore = yield* RaftLogStore
    const self = config.nodeId
    const tickMs = config.tickMs ?? 100
    const electionTicks = config.electionTicks ?? 10
    const heartbeatTicks = config.heartbeatTicks ?? 1
    const proposalTimeoutMs = config.proposalTimeoutMs ?? 3 * electionTicks * tickMs
    const snapshotEvery = config.snapshotEvery ?? 0
    const keepEntries = config.snapshotKeepEntries ?? 64
    const seed = config.seed ?? (yield* Random.nextIntBetween(0, 2 ** 31))

    const groups = new Map<GroupId, GroupState>()
    const mailbox = yield* Queue.unbounded<Event>()
    const leadership = yield* PubSub.unbounded<LeadershipChange>()
    let readSeq = 0
    const figures = { cycles: 0, persistCalls: 0, ticks: 0, messagesSent: 0, messagesReceived: 0, dropped: 0 }

    // -- the driver ----------------------------------------------------------

    const handle = (ev: Event): void => {
      switch (ev._tag) {
        case "Tick":
          figures.ticks++
          for (const g of groups.values()) g.core.tick()
          return
        case "Inbound":
          for (const m of ev.batch.messages) {
            figures.messagesReceived++
            const g = groups.get(m.group)
            if (g === undefined) figures.dropped++
            else g.core.step(m)
          }
          return
        case "Run":
          ev.run()
          return
      }
    }

    const completeReads = (g: GroupState): void => {
      if (g.waitingReads.length === 0) return
      const applied = g.core.applied
      const still: Array<{ index: number; context: string }> = []
      for (const rs of g.waitingReads) {
        if (rs.index <= applied) {
          const d = g.reads.get(rs.context)
          if (d !== undefined) {
            g.reads.delete(rs.context)
            Deferred.unsafeDone(d, Effect.succeed(rs.index))
          }
        } else still.push(rs)
      }
      g.waitingReads = still
    }

    let changes: Array<LeadershipChange> = []

    const applyReady = (g: GroupState, rd: Ready): void => {
      if (rd.softState !== null) {
        const ss = rd.softState
        if (ss.role === "Candidate") g.elections++
        if (ss.leader !== g.lastLeader) {
          g.leaderChanges++
          g.lastLeader = ss.leader
        }
        changes.push({ group: g.id, leader: ss.leader, term: g.core.term, role: ss.role })
      }
      if (rd.snapshot !== null && !isEmptySnapshot(rd.snapshot)) {
        g.sm.restore(rd.snapshot.data)
        g.snapshotsApplied++
        g.snapshotIndex = rd.snapshot.metadata.index
        for (const [index, p] of g.pending) {
          if (index <= rd.snapshot.metadata.index) {
            g.pending.delete(index)
            Deferred.unsafeDone(p.deferred, Effect.fail(new ProposalLost({ group: g.id, index, reason: "SnapshotSkipped" })))
          }
        }
      }
      for (const e of rd.committedEntries) {
        let result: unknown = undefined
        if (e.type === "Normal" && e.data.length > 0) result = g.sm.apply(e)
        const p = g.pending.get(e.index)
        if (p !== undefined) {
          g.pending.delete(e.index)
          if (p.term === e.term) Deferred.unsafeDone(p.deferred, Effect.succeed(result))
          else {
            g.proposalsFailed++
            Deferred.unsafeDone(p.deferred, Effect.fail(new ProposalLost({ group: g.id, index: e.index, reason: "Overwritten" })))
          }
        }
      }
      for (const m of rd.messages) if (m.type === "MsgSnap" && m.offset === 0) g.snapshotsSent++
      for (const rs of rd.readStates) g.waitingReads.push(rs)
    }

    const cycle = Effect.gen(function* () {
      const work: Array<readonly [GroupState, Ready]> = []
      for (const g of groups.values()) if (g.core.hasReady()) work.push([g, g.core.ready()])
      if (work.length === 0) return
      figures.cycles++
      // 1. persist (one sync for all groups)
      const items: Array<PersistItem> = []
      for (const [g, rd] of work) {
        if (rd.entries.length > 0 || rd.hardState !== null || (rd.snapshot !== null && !isEmptySnapshot(rd.snapshot))) {
          items.push({ group: g.id, entries: rd.entries, hardState: rd.hardState, snapshot: rd.snapshot })
        }
      }
      if (items.length > 0) {
        figures.persistCalls++
        yield* logStore.persist(items)
      }
      // 2. send (one frame per peer)
      const out: Array<Message> = []
      for (const [, rd] of work) for (const m of rd.messages) out.push(m)
      if (out.length > 0) {
        figures.messagesSent += out.length
        yield* transport.send(out)
      }
      // 3. apply, 4. advance
      for (const [g, rd] of work) {
        applyReady(g, rd)
        g.core.advance(rd)
        completeReads(g)
      }
      if (changes.length > 0) {
        const c = changes
        changes = []
        yield* PubSub.publishAll(leadership, c)
      }
      // local snapshots / compaction
      if (snapshotEvery > 0) {
        for (const [g] of work) {
          if (g.core.applied - g.snapshotIndex >= snapshotEvery) {
            const index = g.core.applied
            yield* logStore.compact(g.id, index, g.core.confState(), g.sm.snapshot(), keepEntries)
            g.snapshotIndex = index
            g.snapshotsCreated++
          }
        }
      }
    })

    const driver = Effect.gen(function* () {
      for (;;) {
        const events = yield* Queue.takeBetween(mailbox, 1, 100_000)
        for (const ev of events) handle(ev)
        // loop until no group has work (advance may produce more, e.g. commit after self-persist)
        for (let i = 0; i < 16; i++) {
          let any = false
          for (const g of groups.values()) {
            if (g.core.hasReady()) {
              any = true
              break
            }
          }
          if (!any) break
          yield* cycle
        }
      }
    })

    // A storage failure stops the node's Raft driver (like etcd, which panics): continuing
    // without durable writes would break the persist-before-send rule.
    yield* Effect.forkScoped(
      driver.pipe(
        Effect.tapError((e) => Effect.logError("RaftEngine driver stopped: log store failure", e)),
        Effect.orDie
      )
    )
    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(Effect.sleep(tickMs), Queue.offer(mailbox, { _tag: "Tick" })))
    )
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(Queue.takeBetween(transport.inbound, 1, 100_000), (batches) =>
          Queue.offerAll(
            mailbox,
            Array.from(batches, (batch): Event => ({ _tag: "Inbound", batch }))
          )
        )
      )
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const g of groups.values()) {
          for (const [index, p] of g.pending) {
            Deferred.unsafeDone(p.deferred, Effect.fail(new ProposalLost({ group: g.id, index, reason: "EngineStopped" })))
          }
          for (const d of g.reads.values()) Deferred.unsafeDone(d, Effect.interrupt)
        }
      })
    )

    /** Runs `f` on the driver (with exclusive access to the cores) and returns its result. */
    const onDriver = <A, E>(f: () => Either.Either<A, E>): Effect.Effect<A, E> =>
      Effect.flatMap(Deferred.make<A, E>(), (d) =>
        Effect.zipRight(
          Queue.offer(mailbox, {
            _tag: "Run",
            run: () => {
              Deferred.unsafeDone(d, Either.match(f(), { onLeft: Effect.fail, onRight: Effect.succeed }))
            }
          }),
          Deferred.await(d)
        )
      )

    const withGroup = <A, E>(group: GroupId, f: (g: GroupState) => Either.Either<A, E>) =>
      onDriver<A, E | GroupNotFound>(() => {
        const g = groups.get(group)
        return g === undefined ? Either.left(new GroupNotFound({ group })) : f(g)
      })

    const timeout = <A, E>(
      group: GroupId,
      operation: "propose" | "readIndex" | "confChange",
      eff: Effect.Effect<A, E>
    ): Effect.Effect<A, E | RaftTimeout> =>
      Effect.timeoutFail(eff, {
        duration: proposalTimeoutMs,
        onTimeout: () => new RaftTimeout({ group, operation, afterMs: proposalTimeoutMs })
      })

    const createGroup = (group: GroupId, options: GroupOptions): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (groups.has(group)) return
        const log = yield* Effect.orDie(
          logStore.open(group, { voters: [...options.voters], learners: [...(options.learners ?? [])] })
        )
        yield* onDriver(() => {
          if (groups.has(group)) return Either.right(undefined)
          const snap = log.snapshot()
          if (snap.metadata.index > 0) options.stateMachine.restore(snap.data)
          const core = new RaftCore({
            id: self,
            group,
            storage: log.storage,
            random: new Mulberry32((seed ^ hashString(group) ^ Math.imul(self + 1, 0x9e3779b1)) >>> 0),
            electionTick: electionTicks,
            heartbeatTick: heartbeatTicks,
            ...(config.preVote !== undefined ? { preVote: config.preVote } : {}),
            ...(config.checkQuorum !== undefined ? { checkQuorum: config.checkQuorum } : {}),
            ...(config.maxSizePerMsg !== undefined ? { maxSizePerMsg: config.maxSizePerMsg } : {}),
            ...(config.maxInflightMsgs !== undefined ? { maxInflightMsgs: config.maxInflightMsgs } : {}),
            ...(config.maxSnapshotChunkBytes !== undefined ? { maxSnapshotChunkBytes: config.maxSnapshotChunkBytes } : {})
          })
          groups.set(group, {
            id: group,
            core,
            log,
            sm: options.stateMachine,
            pending: new Map(),
            reads: new Map(),
            waitingReads: [],
            snapshotIndex: snap.metadata.index,
            elections: 0,
            leaderChanges: 0,
            proposals: 0,
            proposalsFailed: 0,
            snapshotsSent: 0,
            snapshotsApplied: 0,
            snapshotsCreated: 0,
            lastLeader: null
          })
          return Either.right(undefined)
        })
      })

    const propose = (group: GroupId, data: Uint8Array): Effect.Effect<unknown, ProposeError> =>
      Effect.flatMap(
        withGroup(group, (g) => {
          const res = g.core.propose(data)
          if (Either.isLeft(res)) {
            g.proposalsFailed++
            return Either.left(res.left)
          }
          g.proposals++
          const d = Deferred.unsafeMake<unknown, ProposeError>(FiberId.none)
          g.pending.set(res.right.lastIndex, { term: res.right.term, deferred: d })
          return Either.right(d)
        }),
        (d) => timeout(group, "propose", Deferred.await(d))
      )

    const confChange = (group: GroupId, type: ConfChangeType, node: NodeId): Effect.Effect<void, ProposeError> =>
      Effect.flatMap(
        withGroup(group, (g) => {
          const res = g.core.proposeConfChange({ type, nodeId: node })
          if (Either.isLeft(res)) return Either.left(res.left)
          const d = Deferred.unsafeMake<unknown, ProposeError>(FiberId.none)
          g.pending.set(res.right.lastIndex, { term: res.right.term, deferred: d })
          return Either.right(d)
        }),
        (d) => Effect.asVoid(timeout(group, "confChange", Deferred.await(d)))
      )

    const readIndex = (group: GroupId): Effect.Effect<number, RaftError | GroupNotFound | RaftTimeout> =>
      Effect.flatMap(
        withGroup(group, (g) => {
          const context = `${self}:${readSeq++}`
          const res = g.core.readIndex(context)
          if (Either.isLeft(res)) return Either.left(res.left)
          const d = Deferred.unsafeMake<number, RaftError | GroupNotFound | RaftTimeout>(FiberId.none)
          g.reads.set(context, d)
          return Either.right([d, context] as const)
        }),
        ([d, context]) =>
          timeout(group, "readIndex", Deferred.await(d)).pipe(
            Effect.onError(() =>
              Queue.offer(mailbox, { _tag: "Run", run: () => groups.get(group)?.reads.delete(context) })
            )
          )
      )

    const figuresOf = (g: GroupState): GroupFigures => {
      const st = g.core.status()
      return {
        group: g.id,
        term: st.hardState.term,
        role: st.softState.role,
        leader: st.softState.leader,
        commitIndex: st.hardState.commit,
        appliedIndex: st.applied,
        lastIndex: st.lastIndex,
        firstIndex: st.firstIndex,
        confState: st.confState,
        progress: st.progress,
        elections: g.elections,
        leaderChanges: g.leaderChanges,
        proposals: g.proposals,
        proposalsFailed: g.proposalsFailed,
        snapshotsSent: g.snapshotsSent,
        snapshotsApplied: g.snapshotsApplied,
        snapshotsCreated: g.snapshotsCreated
      }
    }

    const shape: RaftEngineShape = {
      nodeId: self,
      createGroup,
      removeGroup: (group) =>
        onDriver(() => {
          const g = groups.get(group)
          if (g !== undefined) {
            groups.delete(group)
            for (const [index, p] of g.pending) {
              Deferred.unsafeDone(p.deferred, Effect.fail(new ProposalLost({ group, index, reason: "EngineStopped" })))
            }
          }
          return Either.right(undefined)
        }),
      propose,
      readIndex,
      transferLeadership: (group, to) => withGroup(group, (g) => g.core.transferLeader(to)),
      addLearner: (group, node) => confChange(group, "AddLearner", node),
      promote: (group, node) => confChange(group, "PromoteLearner", node),
      removeNode: (group, node) => confChange(group, "RemoveNode", node),
      campaign: (group) =>
        withGroup(group, (g) => {
          g.core.campaign()
          return Either.right(undefined)
        }),
      leadershipChanges: Stream.fromPubSub(leadership),
      figures: (group) =>
        Effect.suspend(() => {
          const g = groups.get(group)
          return g === undefined ? Effect.fail(new GroupNotFound({ group })) : Effect.succeed(figuresOf(g))
        }),
      allFigures: Effect.sync(() => Array.from(groups.values(), figuresOf)),
      engineFigures: Effect.sync(() => ({
        groups: groups.size,
        cycles: figures.cycles,
        persistCalls: figures.persistCalls,
        ticks: figures.ticks,
        messagesSent: figures.messagesSent,
        messagesReceived: figures.messagesReceived,
        messagesDroppedUnknownGroup: figures.dropped
      })),
      logEntries: (group, lo, hi) =>
        Effect.suspend(() => {
          const g = groups.get(group)
          return g === undefined ? Effect.fail(new GroupNotFound({ group })) : Effect.sync(() => g.log.entries(lo, hi))
        })
    }
    return shape
  })

export const layer = (config: RaftEngineConfig): Layer.Layer<RaftEngine, never, RaftTransport | RaftLogStore> =>
  Layer.scoped(RaftEngine, make(config))

/** Convenience: a `NotLeader` check for callers that want the hint. */
export const isNotLeader = (e: unknown): e is NotLeader => e instanceof NotLeader

export type { Snapshot }
