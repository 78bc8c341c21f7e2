/**
 * RaftLogStore: durable per-group Raft state (entries, hard state, snapshots).
 *
 * The core reads through the synchronous `RaftStorage` interface, so every
 * group keeps its log in memory (`MemoryStorage`) as a read cache; this
 * service makes the writes durable:
 * - `persist(batch)` writes the Ready output of many groups and returns only
 *   once all of it is durable, with ONE sync for the whole batch (group commit
 *   across groups). The engine sends messages only after it returns.
 * - `append` and `saveHardState` are single-group shorthands with the same
 *   guarantee.
 *
 * Layers:
 * - `layerMemory(disk?)`: a `MemoryDisk` that survives node restarts within a
 *   process. Writes are visible at once and become durable after
 *   `syncDelayMs` (on the Effect Clock); `disk.crash({ loseUnsynced, tornTail })`
 *   decides what an interrupted write leaves behind.
 * - a file layer on the storage engine's segmented log is not built yet (see
 *   docs/raft-services.md).
 */
import { Context, Data, Effect, Layer } from "effect"
import type { RaftStorage } from "./core/storage.js"
import { MemoryStorage } from "./core/storage.js"
import type { ConfState, Entry, GroupId, HardState, Snapshot } from "./core/types.js"
import { isEmptySnapshot } from "./core/types.js"

export class RaftLogStoreError extends Data.TaggedError("RaftLogStoreError")<{
  readonly group: GroupId
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `raft log store, group ${this.group}: ${this.reason}`
  }
}

/**
 * `persist` failed for some groups only (each group's own log, e.g. a
 * partition whose disk failed): everything else in the batch is durable. The
 * engine stops those groups and goes on with the others.
 */
export class GroupsFailed extends Data.TaggedError("GroupsFailed")<{
  /** Reason by group. */
  readonly failures: ReadonlyMap<GroupId, string>
}> {
  override get message(): string {
    return [...this.failures].map(([g, reason]) => `raft log store, group ${g}: ${reason}`).join("; ")
  }
}

/** One group's share of a Ready cycle. */
export interface PersistItem {
  readonly group: GroupId
  /** A snapshot received from the leader: replaces the log up to its index. */
  readonly snapshot?: Snapshot | null
  /** Entries to append; they replace any existing entries from `entries[0].index` on. */
  readonly entries?: ReadonlyArray<Entry>
  readonly hardState?: HardState | null
  /**
   * false: `persist` need not wait for these entries' sync (the store has
   * `onDurable`, and the engine asks it when they are durable). The hard
   * state and snapshot are durable on return all the same. Default true.
   */
  readonly waitForEntries?: boolean
}

/** A group's log as the core sees it, plus what is needed to restart. */
export interface GroupLog {
  readonly group: GroupId
  /** Synchronous reads for `RaftCore` (in-memory cache of the durable log). */
  readonly storage: RaftStorage
  /** Latest snapshot (empty snapshot metadata index 0 if none). */
  readonly snapshot: () => Snapshot
  readonly hardState: () => HardState
  readonly lastIndex: () => number
  readonly firstIndex: () => number
  /** Entries [lo, hi) (for tests and observation). */
  readonly entries: (lo: number, hi: number) => ReadonlyArray<Entry>
}

export interface LogStoreStats {
  /** Syncs performed (one per non-empty `persist`). */
  readonly syncs: number
  readonly persistCalls: number
  readonly entriesAppended: number
  readonly snapshotsSaved: number
}

export interface RaftLogStoreShape {
  /** Opens (recovering) or creates a group; `bootstrap` is the membership of a brand-new group. */
  readonly open: (group: GroupId, bootstrap: ConfState) => Effect.Effect<GroupLog, RaftLogStoreError>
  /** Groups with persisted state. */
  readonly groups: Effect.Effect<ReadonlyArray<GroupId>>
  /**
   * Durable on return: everything in `batch`, with one sync. Entries the
   * store already holds with the same index and term (written by `writeNow`)
   * are skipped; an entry whose index is held with another term truncates the
   * log from there, and the rest is written after it. `GroupsFailed`: only
   * the groups it names failed, the rest of the batch is durable. Items with
   * `waitForEntries: false` (only for a store with `onDurable`): their
   * entries are written but may become durable after the return.
   */
  readonly persist: (batch: ReadonlyArray<PersistItem>) => Effect.Effect<void, RaftLogStoreError | GroupsFailed>
  /**
   * Optional synchronous, NOT yet durable write of entries a leader just
   * appended (`RaftEngine.proposeNow`): the produce path writes its data at
   * propose time and the engine's Ready cycle later only waits for
   * durability through `persist`. Contract:
   * - `entries` are in index order, contiguous, and start at or below the
   *   store's last held index + 1 (contiguous with what it holds);
   * - an entry already held with the same index and term is skipped (the
   *   engine may pass again entries a concurrent `persist` is writing, e.g.
   *   a new leader's no-op); an entry whose index is held with another term
   *   means: truncate from there and write the rest;
   * - `persist` later includes the same entries (same index and term): the
   *   store skips them and makes them durable;
   * - it should not make entries visible through `GroupLog.storage` (the
   *   core's view of the stable log) before `persist` does, as usual;
   * - it is called before the core appends the new entries; it may throw,
   *   and then must have written none of them (undo a partial write):
   *   `proposeNow` answers `Refused` and the core stays as it was.
   */
  readonly writeNow?: (group: GroupId, entries: ReadonlyArray<Entry>) => void
  /**
   * Optional: calls `done` once every entry written so far for `group` is
   * durable (with the error instead if that fails: the group must stop). A
   * store that has it lets the engine persist a leader's entries without
   * waiting (`PersistItem.waitForEntries: false`) and count them for commit
   * when `done` is called, so the Ready cycle does not wait for syncs: the
   * entries written while one sync runs start the next one at once.
   */
  readonly onDurable?: (group: GroupId, done: (error?: unknown) => void) => void
  readonly append: (group: GroupId, entries: ReadonlyArray<Entry>) => Effect.Effect<void, RaftLogStoreError>
  readonly saveHardState: (group: GroupId, hardState: HardState) => Effect.Effect<void, RaftLogStoreError>
  /**
   * Records a local state-machine snapshot at `index` (<= applied) and drops
   * entries up to `index - keepEntries`.
   */
  readonly compact: (
    group: GroupId,
    index: number,
    confState: ConfState,
    data: Uint8Array,
    keepEntries?: number
  ) => Effect.Effect<Snapshot, RaftLogStoreError>
  /** Deletes a group's state. */
  readonly drop: (group: GroupId) => Effect.Effect<void, RaftLogStoreError>
  readonly stats: Effect.Effect<LogStoreStats>
}

export class RaftLogStore extends Context.Tag("chronik/RaftLogStore")<RaftLogStore, RaftLogStoreShape>() {}

// ---------------------------------------------------------------------------
// Memory disk

type DiskRecord =
  | { readonly kind: "bootstrap"; readonly confState: ConfState }
  | { readonly kind: "entries"; readonly entries: ReadonlyArray<Entry> }
  | { readonly kind: "hardState"; readonly hardState: HardState }
  | { readonly kind: "snapshot"; readonly snapshot: Snapshot }
  | { readonly kind: "compact"; readonly snapshot: Snapshot; readonly compactTo: number }

interface DiskGroup {
  records: Array<DiskRecord>
}

export interface CrashOptions {
  /** Lose every write not yet synced (a power failure). */
  readonly loseUnsynced?: boolean
  /** Keep unsynced writes except the last one, which is torn (recovery drops it). */
  readonly tornTail?: boolean
}

export interface MemoryDiskOptions {
  /** Delay between a write and its durability, on the Effect Clock. Default 0. */
  readonly syncDelayMs?: number
}

/**
 * The "disk" of one node: an ordered record log per group, a sync watermark,
 * and crash semantics. It outlives the node's layers, so a restarted node
 * recovers from it.
 */
export class MemoryDisk {
  readonly groups = new Map<GroupId, DiskGroup>()
  /** Records of all groups in write order: [group, record]; `synced` of them are durable. */
  private journal: Array<readonly [GroupId, DiskRecord]> = []
  private synced = 0
  syncDelayMs: number
  syncs = 0
  persistCalls = 0
  entriesAppended = 0
  snapshotsSaved = 0

  constructor(options: MemoryDiskOptions = {}) {
    this.syncDelayMs = options.syncDelayMs ?? 0
  }

  write(group: GroupId, record: DiskRecord): void {
    let g = this.groups.get(group)
    if (g === undefined) {
      g = { records: [] }
      this.groups.set(group, g)
    }
    g.records.push(record)
    this.journal.push([group, record])
  }

  /** Marks everything written so far durable. */
  sync(): void {
    this.synced = this.journal.length
    this.syncs++
  }

  unsyncedCount(): number {
    return this.journal.length - this.synced
  }

  /** An independent copy (records are immutable and shared). */
  clone(): MemoryDisk {
    const d = new MemoryDisk({ syncDelayMs: this.syncDelayMs })
    for (const [g, r] of this.journal) d.write(g, r)
    d.synced = this.synced
    return d
  }

  /** Applies crash semantics to unsynced writes. Call after the node's scope closed. */
  crash(options: CrashOptions = {}): void {
    let keep = this.journal.length
    if (options.loseUnsynced === true) keep = this.synced
    else if (options.tornTail === true && this.journal.length > this.synced) keep = this.journal.length - 1
    if (keep === this.journal.length) return
    this.journal = this.journal.slice(0, keep)
    this.synced = Math.min(this.synced, keep)
    // rebuild per-group views from the journal (records are shared objects)
    const byGroup = new Map<GroupId, Array<DiskRecord>>()
    for (const [g, r] of this.journal) {
      const l = byGroup.get(g)
      if (l === undefined) byGroup.set(g, [r])
      else l.push(r)
    }
    for (const [g, dg] of this.groups) dg.records = byGroup.get(g) ?? []
    // compaction of the journal is unnecessary for tests; groups without records vanish
    for (const [g, dg] of this.groups) if (dg.records.length === 0) this.groups.delete(g)
  }

  /** Replays a group's records into a fresh MemoryStorage. */
  recover(group: GroupId): MemoryStorage | undefined {
    const g = this.groups.get(group)
    if (g === undefined || g.records.length === 0) return undefined
    let ms: MemoryStorage | undefined
    for (const r of g.records) {
      switch (r.kind) {
        case "bootstrap":
          ms = new MemoryStorage(r.confState)
          break
        case "entries":
          ms ??= new MemoryStorage()
          appendSafely(ms, r.entries)
          break
        case "hardState":
          ms ??= new MemoryStorage()
          ms.setHardState(r.hardState)
          break
        case "snapshot":
          ms ??= new MemoryStorage()
          if (r.snapshot.metadata.index > (ms.snapshot()?.metadata.index ?? 0)) ms.applySnapshot(r.snapshot)
          break
        case "compact":
          ms ??= new MemoryStorage()
          applyCompact(ms, r.snapshot, r.compactTo)
          break
      }
    }
    if (ms === undefined) return undefined
    // a hard state may name a commit beyond a torn log tail: clamp (commit is not safety-critical to persist)
    const hs = ms.hardState()
    if (hs.commit > ms.lastIndex()) ms.setHardState({ ...hs, commit: ms.lastIndex() })
    return ms
  }
}

const appendSafely = (ms: MemoryStorage, entries: ReadonlyArray<Entry>): void => {
  if (entries.length === 0) return
  if (entries[0]!.index > ms.lastIndex() + 1) return // a gap: the torn tail lost its predecessor
  ms.append(entries)
}

const applyCompact = (ms: MemoryStorage, snap: Snapshot, compactTo: number): void => {
  const cur = ms.snapshot()?.metadata.index ?? 0
  if (snap.metadata.index > cur && snap.metadata.index <= ms.lastIndex()) {
    ms.createSnapshot(snap.metadata.index, snap.metadata.confState, snap.data)
  }
  if (compactTo > ms.firstIndex() - 1 && compactTo <= ms.lastIndex()) ms.compact(compactTo)
}

const groupLogOf = (group: GroupId, ms: MemoryStorage): GroupLog => ({
  group,
  storage: ms,
  snapshot: () => ms.snapshot() ?? { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) },
  hardState: () => ms.hardState(),
  lastIndex: () => ms.lastIndex(),
  firstIndex: () => ms.firstIndex(),
  entries: (lo, hi) => (lo >= hi ? [] : ms.entries(Math.max(lo, ms.firstIndex()), Math.min(hi, ms.lastIndex() + 1), Number.MAX_SAFE_INTEGER))
})

/** A log store over `disk` (a fresh one when omitted). */
export const makeMemory = (disk: MemoryDisk = new MemoryDisk()): Effect.Effect<RaftLogStoreShape> =>
  Effect.sync(() => {
    const open = new Map<GroupId, MemoryStorage>()

    const storageOf = (group: GroupId): Effect.Effect<MemoryStorage, RaftLogStoreError> => {
      const ms = open.get(group)
      return ms === undefined
        ? Effect.fail(new RaftLogStoreError({ group, reason: "group not open" }))
        : Effect.succeed(ms)
    }

    const waitSync = Effect.suspend(() =>
      disk.syncDelayMs > 0 ? Effect.sleep(disk.syncDelayMs) : Effect.void
    ).pipe(Effect.andThen(Effect.sync(() => disk.sync())))

    const persist = (batch: ReadonlyArray<PersistItem>): Effect.Effect<void, RaftLogStoreError> =>
      Effect.suspend(() => {
        let wrote = false
        for (const item of batch) {
          const ms = open.get(item.group)
          if (ms === undefined) return Effect.fail(new RaftLogStoreError({ group: item.group, reason: "group not open" }))
          try {
            if (item.snapshot != null && !isEmptySnapshot(item.snapshot)) {
              ms.applySnapshot(item.snapshot)
              disk.write(item.group, { kind: "snapshot", snapshot: item.snapshot })
              disk.snapshotsSaved++
              wrote = true
            }
            if (item.entries !== undefined && item.entries.length > 0) {
              ms.append(item.entries)
              disk.write(item.group, { kind: "entries", entries: item.entries })
              disk.entriesAppended += item.entries.length
              wrote = true
            }
            if (item.hardState != null) {
              ms.setHardState(item.hardState)
              disk.write(item.group, { kind: "hardState", hardState: item.hardState })
              wrote = true
            }
          } catch (cause) {
            return Effect.fail(new RaftLogStoreError({ group: item.group, reason: "write rejected", cause }))
          }
        }
        disk.persistCalls++
        return wrote ? waitSync : Effect.void
      })

    const shape: RaftLogStoreShape = {
      open: (group, bootstrap) =>
        Effect.sync(() => {
          let ms = open.get(group)
          if (ms === undefined) {
            ms = disk.recover(group)
            if (ms === undefined) {
              ms = new MemoryStorage({ voters: [...bootstrap.voters], learners: [...bootstrap.learners] })
              disk.write(group, { kind: "bootstrap", confState: bootstrap })
            }
            open.set(group, ms)
          }
          return groupLogOf(group, ms)
        }),
      groups: Effect.sync(() => [...disk.groups.keys()]),
      persist,
      append: (group, entries) => persist([{ group, entries }]),
      saveHardState: (group, hardState) => persist([{ group, hardState }]),
      compact: (group, index, confState, data, keepEntries = 0) =>
        Effect.flatMap(storageOf(group), (ms) =>
          Effect.suspend(() => {
            try {
              const snap = ms.createSnapshot(index, confState, data)
              const compactTo = Math.max(0, Math.min(index - keepEntries, ms.lastIndex()))
              if (compactTo > ms.firstIndex() - 1) ms.compact(compactTo)
              disk.write(group, { kind: "compact", snapshot: snap, compactTo })
              disk.snapshotsSaved++
              return Effect.as(waitSync, snap)
            } catch (cause) {
              return Effect.fail(new RaftLogStoreError({ group, reason: "compaction rejected", cause }))
            }
          })
        ),
      drop: (group) =>
        Effect.sync(() => {
          open.delete(group)
          disk.groups.delete(group)
        }),
      stats: Effect.sync(() => ({
        syncs: disk.syncs,
        persistCalls: disk.persistCalls,
        entriesAppended: disk.entriesAppended,
        snapshotsSaved: disk.snapshotsSaved
      }))
    }
    return shape
  })

export const layerMemory = (disk?: MemoryDisk): Layer.Layer<RaftLogStore> => Layer.effect(RaftLogStore, makeMemory(disk))
