/**
 * PartitionRaftLogs: the Raft log store of the partition groups of a node,
 * each over the partition's own segmented log (docs/partition-raft.md). One
 * store for all of them (a partition registers its log before its group is
 * created), so that the engine persists every partition of a Ready cycle with
 * one call and one wait, without a fiber per partition. One write per
 * byte: a data entry's payload is the Kafka record batch, written once, as
 * the frame the Fetch path reads; the frame also carries the entry's Raft
 * index and term (the term is the Kafka leader epoch).
 *
 * Entry -> frame:
 * - Normal (a record batch with its base offset already assigned by the
 *   leader): keys = the batch's offsets [base, base + lastOffsetDelta],
 *   maxTimestamp from the batch, type 0;
 * - Noop (a new leader's first entry) and ConfChange: an empty key range at
 *   the log end (they take no Kafka offset), type = the entry type code.
 *
 * Writes:
 * - `writeNow`: the leader's synchronous write at propose time (the produce
 *   path answers acks=1 after it, without waiting for the engine);
 * - `persist`: the engine's Ready output: entries already written by
 *   `writeNow` (same index and term) are skipped, an entry whose index is held
 *   with another term truncates the log from there. For a leader's entries
 *   the engine does not wait (`waitForEntries: false`): it asks `onDurable`,
 *   which answers from the logs' group-commit sync (`onSynced`: one pass
 *   covers every partition), and counts the entries for commit then, so the
 *   engine's next cycles (and the next syncs) go on meanwhile. Otherwise
 *   `persist` waits for that sync itself. A partition whose log fails is
 *   reported alone (`GroupsFailed`, or a failed notice): the engine stops its
 *   group and the others go on.
 *
 * Hard state (term, vote) and membership live in a small file next to the
 * segments, replaced durably when the term or vote changes (the commit index
 * is not written: not needed for safety, and the leader re-derives it).
 *
 * Restart: the core's read cache (`MemoryStorage`) starts from a snapshot at
 * the log's last entry; everything the log holds after its recovery is
 * committed. That is true for a group with one voter (standalone), the only
 * kind this store opens for now: a follower of a multi-voter group could hold
 * entries a new leader overwrites, and needs the committed index persisted
 * and entries read back from the segments (clustering work).
 *
 * The partition's "state machine" is the log itself, so Raft snapshots carry
 * no data; compaction only trims the read cache.
 */
import { Effect } from "effect"
import { MemoryStorage } from "../raft/core/storage.js"
import type { ConfState, Entry, GroupId, HardState, Snapshot } from "../raft/core/types.js"
import { EntryTypeCode, isEmptySnapshot } from "../raft/core/types.js"
import { readConfState, readHardState, Reader, writeConfState, writeHardState, Writer } from "../raft/messageCodec.js"
import type { GroupLog, LogStoreStats, PersistItem, RaftLogStoreShape } from "../raft/RaftLogStore.js"
import { GroupsFailed, RaftLogStoreError } from "../raft/RaftLogStore.js"
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  CRC_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  RECORD_BATCH_OVERHEAD
} from "../protocol/recordBatch.js"
import type { LogError } from "../storage/errors.js"
import type { RaftFrame } from "./PartitionLog.js"

/** What the store needs from the partition log (see `PartitionLog.raft`). */
export interface PartitionRaftOps {
  /** Raft index of the last frame (0: none). */
  readonly lastIndex: () => number
  /** Term of that frame (0: none). */
  readonly lastIndexTerm: () => number
  readonly termAtIndex: (index: number) => number | undefined
  /** Drops every frame whose Raft index is above `index`. */
  readonly truncateAfterIndex: (index: number) => void
  /** Key the next keyed frame gets (the log end offset). */
  readonly nextKey: () => number
  /** Writes frames synchronously (to the OS, not yet durable); throws the LogError. */
  readonly append: (frames: ReadonlyArray<RaftFrame>) => void
  /**
   * Calls `done` once everything written so far is durable under the fsync
   * policy. `background`: nobody's reply waits for it, so its sync pass may wait
   * (the store's background sync delay).
   */
  readonly onSynced: (done: (error?: LogError) => void, background?: boolean) => void
  /** The raft state file (hard state + membership), undefined if absent. */
  readonly readState: () => Uint8Array | undefined
  /** Replaces the raft state file atomically and durably. */
  readonly writeState: (bytes: Uint8Array) => void
}

const STATE_VERSION = 1
const NO_DATA = new Uint8Array(0)

const encodeState = (hs: HardState, conf: ConfState): Uint8Array => {
  const w = new Writer(32)
  w.uvarint(STATE_VERSION)
  writeHardState(w, hs)
  writeConfState(w, conf)
  return w.finish()
}

const decodeState = (bytes: Uint8Array): { hardState: HardState; confState: ConfState } => {
  const r = new Reader(bytes)
  const version = r.uvarint()
  if (version !== STATE_VERSION) r.fail(`unknown raft state version ${version}`)
  const hardState = readHardState(r)
  const confState = readConfState(r)
  if (r.remaining() !== 0) r.fail("trailing bytes")
  return { hardState, confState }
}

/** Raft entry -> partition log frame. Throws on an entry that cannot be a partition entry. */
export const frameOf = (e: Entry, nextKey: number): RaftFrame => {
  if (e.type === "Normal") {
    const data = e.data
    if (data.length < RECORD_BATCH_OVERHEAD) throw new Error(`raft entry ${e.index}: a partition entry must be a record batch (${data.length} bytes)`)
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length)
    const base = b.readInt32BE(BASE_OFFSET_OFFSET) * 4294967296 + b.readUInt32BE(BASE_OFFSET_OFFSET + 4)
    if (base !== nextKey) throw new Error(`raft entry ${e.index}: batch base offset ${base}, log end offset ${nextKey}`)
    const lastOffsetDelta = b.readInt32BE(LAST_OFFSET_DELTA_OFFSET)
    const maxTimestamp = b.readInt32BE(MAX_TIMESTAMP_OFFSET) * 4294967296 + b.readUInt32BE(MAX_TIMESTAMP_OFFSET + 4)
    // the batch's own CRC (checked at produce) covers its bytes from the attributes on
    const payloadCrc = { from: ATTRIBUTES_OFFSET, crc: b.readUInt32BE(CRC_OFFSET) }
    return { firstKey: base, lastKey: base + lastOffsetDelta, term: e.term, maxTimestamp, index: e.index, type: 0, payload: b, payloadCrc }
  }
  return {
    firstKey: nextKey,
    lastKey: nextKey - 1,
    term: e.term,
    maxTimestamp: -1,
    index: e.index,
    type: EntryTypeCode[e.type],
    payload: e.data
  }
}

export interface PartitionGroupOptions {
  /**
   * The largest leader epoch in the log (batches written before the group
   * existed carry one): the group's term starts at least there, so that
   * leader epochs never go back.
   */
  readonly minTerm?: number
}

export interface PartitionRaftLogs extends RaftLogStoreShape {
  /** Synchronous leader write (the engine's `writeNow` hook). */
  readonly writeNow: (group: GroupId, entries: ReadonlyArray<Entry>) => void
  /** Makes `group`'s log known to the store; call before creating the group in the engine. */
  readonly register: (group: GroupId, ops: PartitionRaftOps, options?: PartitionGroupOptions) => void
  /** Forgets a group (after it left the engine). */
  readonly unregister: (group: GroupId) => void
}

/** One partition group's state in the store. */
class PartitionGroupLog {
  ms: MemoryStorage | undefined
  written: HardState = { term: 0, vote: null, commit: 0 }
  conf: ConfState = { voters: [], learners: [] }
  entriesAppended = 0

  constructor(
    readonly group: GroupId,
    readonly ops: PartitionRaftOps,
    readonly options: PartitionGroupOptions
  ) {}

  /** Writes the entries the log does not hold yet (same index and term = already written). */
  write(entries: ReadonlyArray<Entry>): void {
    const ops = this.ops
    let i = 0
    const last = ops.lastIndex()
    const lastTerm = ops.lastIndexTerm()
    // Skip what is already written; truncate at the first conflict. An entry of the
    // last entry's term at or below it is in the log (log matching: only that term's
    // leader made entries of that term), so the leader's common case reads nothing.
    while (i < entries.length && entries[i]!.index <= last) {
      const e = entries[i]!
      if (e.term !== lastTerm && ops.termAtIndex(e.index) !== e.term) {
        ops.truncateAfterIndex(e.index - 1)
        break
      }
      i++
    }
    if (i === entries.length) return
    const first = entries[i]!.index
    const expected = ops.lastIndex() + 1
    if (ops.lastIndex() > 0 && first !== expected) {
      throw new Error(`raft entry ${first} does not follow the log's last index ${expected - 1}`)
    }
    const frames: Array<RaftFrame> = []
    let nextKey = ops.nextKey()
    for (; i < entries.length; i++) {
      const f = frameOf(entries[i]!, nextKey)
      frames.push(f)
      nextKey = f.lastKey + 1
    }
    ops.append(frames)
    this.entriesAppended += frames.length
    // The log holds the batch now; the entry keeps only its header (what `apply` reads), so
    // that request buffers do not live on in the Raft log and the read cache until the entry
    // is applied and compacted: held across young-generation collections, they were promoted
    // and V8 ran a full mark-compact every ~100 ms for the external memory (docs/PERFORMANCE.md).
    for (let j = entries.length - frames.length; j < entries.length; j++) {
      const e = entries[j]!
      if (e.type === "Normal" && e.data.length > RECORD_BATCH_OVERHEAD) {
        ;(e as { data: Uint8Array }).data = Uint8Array.prototype.slice.call(e.data, 0, RECORD_BATCH_OVERHEAD)
      }
    }
  }

  open(bootstrap: ConfState): GroupLog {
    const ops = this.ops
    const bytes = ops.readState()
    let hs: HardState = { term: 0, vote: null, commit: 0 }
    if (bytes === undefined) {
      this.conf = bootstrap
      ops.writeState(encodeState(hs, bootstrap))
    } else {
      const s = decodeState(bytes)
      hs = s.hardState
      this.conf = s.confState
    }
    this.written = hs
    const conf = this.conf
    if (conf.voters.length !== 1 || conf.learners.length > 0) {
      throw new Error(
        `partition groups with more than one member are not supported yet (members ${[...conf.voters, ...conf.learners].join(",")})`
      )
    }
    const storage = new MemoryStorage(conf)
    const last = ops.lastIndex()
    const lastTerm = ops.lastIndexTerm()
    if (last > 0) storage.applySnapshot({ metadata: { index: last, term: lastTerm, confState: conf }, data: NO_DATA })
    // one voter: everything the recovered log holds is committed (it is all durable: recovery synced it)
    const term = Math.max(hs.term, lastTerm, this.options.minTerm ?? 0)
    storage.setHardState({ term, vote: hs.vote, commit: last })
    this.ms = storage
    return {
      group: this.group,
      storage,
      snapshot: () => storage.snapshot() ?? { metadata: { index: 0, term: 0, confState: conf }, data: NO_DATA },
      hardState: () => storage.hardState(),
      lastIndex: () => storage.lastIndex(),
      firstIndex: () => storage.firstIndex(),
      entries: (lo, hi) =>
        lo >= hi
          ? []
          : storage.entries(Math.max(lo, storage.firstIndex()), Math.min(hi, storage.lastIndex() + 1), Number.MAX_SAFE_INTEGER)
    }
  }

  storage(): MemoryStorage {
    if (this.ms === undefined) throw new Error(`group ${this.group} is not open`)
    return this.ms
  }

  saveHardState(hs: HardState): void {
    this.storage().setHardState(hs)
    if (hs.term !== this.written.term || hs.vote !== this.written.vote) {
      this.ops.writeState(encodeState(hs, this.conf))
      this.written = hs
    }
  }

  /** Writes one Ready item; true if entries were written (a sync is needed). */
  persist(item: PersistItem): boolean {
    const storage = this.storage()
    if (item.snapshot != null && !isEmptySnapshot(item.snapshot)) {
      throw new Error("installing a snapshot on a partition group is not supported yet (one-voter groups never receive one)")
    }
    // the term and vote are durable before entries of that term are
    if (item.hardState != null) this.saveHardState(item.hardState)
    const entries = item.entries ?? []
    if (entries.length === 0) return false
    this.write(entries)
    storage.append(entries)
    return true
  }
}

/** The store of a node's partition groups: pass it as each partition group's `logStore`. */
export const makePartitionRaftLogs = (): PartitionRaftLogs => {
  const groups = new Map<GroupId, PartitionGroupLog>()
  const stats = { syncs: 0, persistCalls: 0, entriesAppended: 0, snapshotsSaved: 0 }

  const reasonOf = (reason: string, cause: unknown) => `${reason}: ${cause instanceof Error ? cause.message : String(cause)}`
  const fail = (group: GroupId, reason: string) => (cause: unknown) =>
    new RaftLogStoreError({ group, reason: reasonOf(reason, cause), cause })

  const get = (group: GroupId): PartitionGroupLog => {
    const g = groups.get(group)
    if (g === undefined) throw new Error(`partition group ${group} is not registered with the store`)
    return g
  }

  /**
   * Writes every item (synchronously), then waits once for the syncs of all
   * the logs written: one callback per log, counted down, no fiber.
   */
  const persist = (batch: ReadonlyArray<PersistItem>): Effect.Effect<void, GroupsFailed> =>
    Effect.suspend(() => {
      stats.persistCalls++
      const failures = new Map<GroupId, string>()
      const toSync: Array<PartitionGroupLog> = []
      for (const item of batch) {
        try {
          const g = get(item.group)
          if (g.persist(item) && item.waitForEntries !== false) toSync.push(g)
        } catch (e) {
          failures.set(item.group, reasonOf("write", e))
        }
      }
      const done = () => (failures.size === 0 ? Effect.void : Effect.fail(new GroupsFailed({ failures })))
      if (toSync.length === 0) return done()
      stats.syncs++
      return Effect.async<void, GroupsFailed>((resume) => {
        let waiting = toSync.length
        for (const g of toSync) {
          g.ops.onSynced((e) => {
            if (e !== undefined) failures.set(g.group, reasonOf("sync", e))
            if (--waiting === 0) resume(done())
          })
        }
      })
    })

  const attempt = <A>(group: GroupId, reason: string, f: () => A): Effect.Effect<A, RaftLogStoreError> =>
    Effect.try({ try: f, catch: fail(group, reason) })

  return {
    register: (group, ops, options = {}) => {
      groups.set(group, new PartitionGroupLog(group, ops, options))
    },
    unregister: (group) => {
      groups.delete(group)
    },
    open: (group, bootstrap) => attempt(group, "open", () => get(group).open(bootstrap)),
    groups: Effect.sync(() => [...groups.keys()]),
    persist,
    writeNow: (group, entries) => get(group).write(entries),
    onDurable: (group, done) => {
      const g = groups.get(group)
      if (g === undefined) return done(new Error(`partition group ${group} is not registered with the store`))
      // a leader's commit notice: an acks=all produce waiting on it asks for its own sync at once
      // (`PartitionReplica.whenCommitted`), so this one may wait for the background delay
      g.ops.onSynced(done, true)
    },
    append: (group, entries) =>
      Effect.mapError(persist([{ group, entries }]), (e) => new RaftLogStoreError({ group, reason: e.message, cause: e })),
    saveHardState: (group, hs) => attempt(group, "hard state", () => get(group).saveHardState(hs)),
    compact: (group, index, confState, data, keepEntries = 0): Effect.Effect<Snapshot, RaftLogStoreError> =>
      attempt(group, "compact", () => {
        const storage = get(group).storage()
        // the partition's state is its log: the snapshot only marks how far the cache may be trimmed
        const snap = storage.createSnapshot(index, confState, data)
        stats.snapshotsSaved++
        const compactTo = Math.max(0, Math.min(index - keepEntries, storage.lastIndex()))
        if (compactTo > storage.firstIndex() - 1) storage.compact(compactTo)
        return snap
      }),
    drop: (group) =>
      Effect.sync(() => {
        groups.delete(group)
      }),
    stats: Effect.sync(() => {
      let appended = 0
      for (const g of groups.values()) appended += g.entriesAppended
      return { ...stats, entriesAppended: appended } satisfies LogStoreStats
    })
  }
}
