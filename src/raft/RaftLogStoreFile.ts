/**
 * File-backed `RaftLogStore` on the storage engine (src/storage): each group's
 * entries live in a segmented log of the node-wide `LogStore` (key = Raft
 * index, term = Raft term, type = entry type code, payload = entry data), so
 * Raft reuses its CRC framing, torn-tail recovery and node-wide group-commit
 * fsync instead of a second WAL.
 *
 * Small per-group metadata lives in `<dataDir>/.raft-meta/<group>/`, each file
 * replaced atomically and durably (tmp + fsync + rename):
 * - `conf`: the bootstrap membership of a new group;
 * - `hardstate`: term, vote, commit — rewritten when term or vote changes
 *   (the commit index is not rewritten on every advance: it is not needed for
 *   safety and the leader re-sends it);
 * - `snapshot`: the latest snapshot (metadata + state-machine data).
 *
 * `persist` appends every group's entries (plain synchronous writes), then
 * waits for their durability together: the storage engine's `WalSync` covers
 * all dirty logs with one pass, so a Ready cycle of many groups costs one
 * round of fdatasync.
 */
import * as path from "node:path"
import { Effect, Either, Layer } from "effect"
import type { AppendEntry } from "../storage/Frame.js"
import { encodeLogId, LogStore, StorageFileIO } from "../storage/LogStore.js"
import type { SegmentedLog } from "../storage/SegmentedLog.js"
import { StorageConfig } from "../storage/StorageConfig.js"
import { MemoryStorage } from "./core/storage.js"
import type { ConfState, Entry, GroupId, HardState, Snapshot } from "./core/types.js"
import { EntryTypeCode, entryTypeFromCode, isEmptySnapshot } from "./core/types.js"
import {
  decodeHardState,
  decodeSnapshot,
  encodeHardState,
  encodeSnapshot,
  readConfState,
  Reader,
  writeConfState,
  Writer
} from "./messageCodec.js"
import type { GroupLog, PersistItem, RaftLogStoreShape } from "./RaftLogStore.js"
import { RaftLogStore, RaftLogStoreError } from "./RaftLogStore.js"

interface OpenGroup {
  readonly group: GroupId
  readonly log: SegmentedLog
  readonly ms: MemoryStorage
  readonly metaDir: string
  /** Last hard state written to disk. */
  written: HardState
}

const toAppend = (e: Entry): AppendEntry => ({
  firstKey: e.index,
  lastKey: e.index,
  term: e.term,
  maxTimestamp: 0,
  type: EntryTypeCode[e.type],
  payload: e.data
})

export const logIdOf = (group: GroupId): string => `raft~${group}`

export const makeFile: Effect.Effect<RaftLogStoreShape, never, LogStore | StorageFileIO | StorageConfig> = Effect.gen(
  function* () {
    const store = yield* LogStore
    const io = yield* StorageFileIO
    const cfg = yield* StorageConfig
    const metaRoot = path.join(cfg.dataDir, ".raft-meta")
    const open = new Map<GroupId, OpenGroup>()
    const stats = { syncs: 0, persistCalls: 0, entriesAppended: 0, snapshotsSaved: 0 }

    const fail = (group: GroupId, reason: string) => (cause: unknown) => new RaftLogStoreError({ group, reason, cause })

    const attempt = <A>(group: GroupId, reason: string, f: () => A): Effect.Effect<A, RaftLogStoreError> =>
      Effect.try({ try: f, catch: fail(group, reason) })

    const recover = (group: GroupId, bootstrap: ConfState) =>
      Effect.gen(function* () {
        const metaDir = path.join(metaRoot, encodeLogId(group))
        const log = yield* Effect.mapError(store.open(logIdOf(group), { initialKey: 1 }), fail(group, "open log"))
        return yield* attempt(group, "recover", () => {
          io.mkdirp(metaDir)
          const confFile = path.join(metaDir, "conf")
          let conf: ConfState
          const confBytes = io.readFile(confFile)
          if (confBytes === undefined) {
            conf = bootstrap
            const w = new Writer(32)
            writeConfState(w, bootstrap)
            io.writeFileDurable(confFile, w.finish())
          } else {
            conf = readConfState(new Reader(confBytes))
          }
          const ms = new MemoryStorage({ voters: [...conf.voters], learners: [...conf.learners] })
          const snapBytes = io.readFile(path.join(metaDir, "snapshot"))
          if (snapBytes !== undefined) {
            const snap = Either.getOrThrow(decodeSnapshot(Buffer.from(snapBytes)))
            if (!isEmptySnapshot(snap)) ms.applySnapshot(snap)
          }
          const core = log.core
          let from = Math.max(core.logStartKey, ms.lastIndex() + 1)
          if (from === ms.lastIndex() + 1) {
            while (from < core.nextKey) {
              const r = core.read(from, 4 * 1024 * 1024)
              if (r.entries.length === 0) break
              const batch: Array<Entry> = []
              for (const le of r.entries) {
                const type = entryTypeFromCode(le.type)
                if (type === undefined) throw new Error(`unknown entry type ${le.type} at ${le.firstKey}`)
                batch.push({ index: le.firstKey, term: le.term, type, data: Buffer.from(le.payload) })
              }
              ms.append(batch)
              from = r.nextFetchKey
            }
          }
          let hs: HardState = { term: 0, vote: null, commit: 0 }
          const hsBytes = io.readFile(path.join(metaDir, "hardstate"))
          if (hsBytes !== undefined) hs = Either.getOrThrow(decodeHardState(hsBytes))
          const commit = Math.min(Math.max(hs.commit, ms.firstIndex() - 1), ms.lastIndex())
          ms.setHardState({ ...hs, commit })
          const g: OpenGroup = { group, log, ms, metaDir, written: hs }
          return g
        })
      })

    const groupLog = (g: OpenGroup): GroupLog => ({
      group: g.group,
      storage: g.ms,
      snapshot: () =>
        g.ms.snapshot() ?? { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) },
      hardState: () => g.ms.hardState(),
      lastIndex: () => g.ms.lastIndex(),
      firstIndex: () => g.ms.firstIndex(),
      entries: (lo, hi) =>
        lo >= hi
          ? []
          : g.ms.entries(Math.max(lo, g.ms.firstIndex()), Math.min(hi, g.ms.lastIndex() + 1), Number.MAX_SAFE_INTEGER)
    })

    const get = (group: GroupId) =>
      Effect.suspend(() => {
        const g = open.get(group)
        return g === undefined ? Effect.fail(new RaftLogStoreError({ group, reason: "group not open" })) : Effect.succeed(g)
      })

    const writeSnapshotFile = (g: OpenGroup, snap: Snapshot): void => {
      io.writeFileDurable(path.join(g.metaDir, "snapshot"), encodeSnapshot(snap))
      stats.snapshotsSaved++
    }

    const persist = (batch: ReadonlyArray<PersistItem>): Effect.Effect<void, RaftLogStoreError> =>
      Effect.gen(function* () {
        stats.persistCalls++
        const waits: Array<Effect.Effect<void, RaftLogStoreError>> = []
        for (const item of batch) {
          const g = yield* get(item.group)
          yield* attempt(item.group, "write", () => {
            const core = g.log.core
            if (item.snapshot != null && !isEmptySnapshot(item.snapshot)) {
              writeSnapshotFile(g, item.snapshot)
              core.reset(item.snapshot.metadata.index + 1)
              g.ms.applySnapshot(item.snapshot)
            }
            const entries = item.entries ?? []
            if (entries.length > 0) {
              const first = entries[0]!.index
              if (first < core.nextKey) core.truncateAfter(first - 1)
              core.append(entries.map(toAppend), 0)
              g.ms.append(entries)
              stats.entriesAppended += entries.length
              const last = entries[entries.length - 1]!.index
              waits.push(Effect.mapError(g.log.awaitDurable(last), fail(item.group, "sync")))
            }
            const hs = item.hardState
            if (hs != null) {
              g.ms.setHardState(hs)
              if (hs.term !== g.written.term || hs.vote !== g.written.vote) {
                io.writeFileDurable(path.join(g.metaDir, "hardstate"), encodeHardState(hs))
                g.written = hs
              }
            }
          })
        }
        if (waits.length > 0) {
          stats.syncs++
          yield* Effect.all(waits, { concurrency: "unbounded", discard: true })
        }
      })

    const shape: RaftLogStoreShape = {
      open: (group, bootstrap) =>
        Effect.suspend(() => {
          const existing = open.get(group)
          if (existing !== undefined) return Effect.succeed(groupLog(existing))
          return Effect.map(recover(group, bootstrap), (g) => {
            open.set(group, g)
            return groupLog(g)
          })
        }),
      groups: Effect.map(Effect.orElseSucceed(store.listOnDisk, () => [] as ReadonlyArray<string>), (ids) =>
        ids.filter((id) => id.startsWith("raft~")).map((id) => id.slice(5))
      ),
      persist,
      append: (group, entries) => persist([{ group, entries }]),
      saveHardState: (group, hardState) =>
        Effect.flatMap(get(group), (g) =>
          attempt(group, "hard state", () => {
            g.ms.setHardState(hardState)
            io.writeFileDurable(path.join(g.metaDir, "hardstate"), encodeHardState(hardState))
            g.written = hardState
          })
        ),
      compact: (group, index, confState, data, keepEntries = 0) =>
        Effect.flatMap(get(group), (g) =>
          attempt(group, "compact", () => {
            const snap = g.ms.createSnapshot(index, confState, data)
            writeSnapshotFile(g, snap)
            const compactTo = Math.max(0, Math.min(index - keepEntries, g.ms.lastIndex()))
            if (compactTo > g.ms.firstIndex() - 1) {
              g.ms.compact(compactTo)
              g.log.core.deleteBefore(compactTo + 1)
            }
            return snap
          })
        ),
      drop: (group) =>
        Effect.gen(function* () {
          open.delete(group)
          yield* Effect.ignore(store.delete(logIdOf(group)))
          yield* attempt(group, "drop", () => io.rmrf(path.join(metaRoot, encodeLogId(group))))
        }),
      stats: Effect.sync(() => ({ ...stats }))
    }
    return shape
  }
)

/** File-backed store over the storage engine's `LogStore` (and its FileIO and config). */
export const layerFile: Layer.Layer<RaftLogStore, never, LogStore | StorageFileIO | StorageConfig> = Layer.effect(
  RaftLogStore,
  makeFile
)
