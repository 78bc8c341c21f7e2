/**
 * `LogStore`: the node's registry of segmented logs (Kafka partitions, Raft
 * logs, internal logs), all sharing one group-commit `WalSync`.
 *
 * Layers:
 *  - `layer`          files under StorageConfig.dataDir (node:fs)
 *  - `layerFileIO`    same, with the FileIO taken from `StorageFileIO` (fault injection, crash simulation)
 *  - `layerMemory`    the same engine over an in-memory file system (tests)
 */
import { Context, Effect, Layer, Scope } from "effect"
import * as path from "node:path"
import { LogNotFound, StorageError, WalCorrupt, toStorageError } from "./errors.js"
import { withAsyncWrites } from "./AsyncWriteFileIO.js"
import { MemoryFileIO, nodeFileIO, type FileIO } from "./FileIO.js"
import { FORMAT_VERSION } from "./Frame.js"
import { openJournal } from "./JournalReplay.js"
import { open as openLog, type LogConfig, type SegmentedLog } from "./SegmentedLog.js"
import { StorageConfig, defaults, type StorageConfigShape } from "./StorageConfig.js"
import { WalSync, type WalSyncStats } from "./WalSync.js"

export interface LogStoreService {
  /** Open (creating or recovering) a log; returns the open handle if it is already open. */
  readonly open: (id: string, config?: Partial<LogConfig>) => Effect.Effect<SegmentedLog, StorageError | WalCorrupt>
  readonly get: (id: string) => Effect.Effect<SegmentedLog, LogNotFound>
  /** Close the log and remove its directory (open or not). */
  readonly delete: (id: string) => Effect.Effect<void, StorageError | LogNotFound>
  /** Close one log (synced); it can be opened again. */
  readonly close: (id: string) => Effect.Effect<void, StorageError | LogNotFound>
  /** Ids of open logs. */
  readonly list: Effect.Effect<ReadonlyArray<string>>
  /** Ids of logs present on disk (open or not). */
  readonly listOnDisk: Effect.Effect<ReadonlyArray<string>, StorageError>
  /** Run a group-commit pass now and wait for it. */
  readonly flush: Effect.Effect<void>
  readonly syncStats: Effect.Effect<WalSyncStats>
}

export class LogStore extends Context.Tag("chronik/LogStore")<LogStore, LogStoreService>() {}

/** The FileIO the storage layers use; replace it to inject faults. */
export class StorageFileIO extends Context.Tag("chronik/StorageFileIO")<StorageFileIO, FileIO>() {}

export const layerNodeFileIO: Layer.Layer<StorageFileIO> = Layer.succeed(StorageFileIO, nodeFileIO)
export const layerMemoryFileIO: Layer.Layer<StorageFileIO> = Layer.sync(StorageFileIO, () => new MemoryFileIO())

/** Kafka partition log id: `topic-partition` (topic names are [a-zA-Z0-9._-]). */
export const partitionLogId = (topic: string, partition: number): string => `${topic}-${partition}`

/** Directory name for a log id: safe characters kept, others %XX-escaped (UTF-8). */
export const encodeLogId = (id: string): string =>
  Array.from(Buffer.from(id, "utf8"))
    .map((b) => {
      const c = String.fromCharCode(b)
      return /[A-Za-z0-9._-]/.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0")
    })
    .join("")
    .replace(/^\.+/, (m) => m.replace(/\./g, "%2E"))

export const decodeLogId = (dir: string): string => decodeURIComponent(dir)

/**
 * Name of the data-dir marker holding the on-disk log format version
 * (`FORMAT_VERSION`, "2"). Frames of format 1 fail the CRC of format 2 and
 * would be cut as torn tails, so a data dir whose logs were written by
 * another format is refused instead (no migration before 1.0).
 */
export const FORMAT_FILE = "chronik-format"

/** Free node journal files kept for reuse (more exist only while checkpoints lag behind a burst). */
const JOURNAL_KEEP_FILES = 4

/** Entries of the data dir that are log directories (hold a segment or a checkpoint). */
const logDirsOnDisk = (io: FileIO, dataDir: string): ReadonlyArray<string> =>
  io.readdir(dataDir).filter((d) => {
    if (d.startsWith(".") || d === FORMAT_FILE || d.endsWith(".tmp")) return false
    let files: ReadonlyArray<string>
    try {
      files = io.readdir(path.join(dataDir, d))
    } catch {
      return false // a plain file
    }
    return files.some((f) => f === "checkpoint.json" || /^\d{20}\.log$/.test(f))
  })

/**
 * Writes the format marker into a data dir holding no logs, and refuses a
 * data dir whose logs were written by another log format.
 */
export const checkDataDirFormat = (io: FileIO, dataDir: string): void => {
  const file = path.join(dataDir, FORMAT_FILE)
  const raw = io.readFile(file)
  const found = raw?.toString("utf8").trim()
  if (found === String(FORMAT_VERSION)) return
  const logs = logDirsOnDisk(io, dataDir)
  if (logs.length === 0) {
    io.writeFileDurable(file, Buffer.from(`${FORMAT_VERSION}\n`, "utf8"))
    return
  }
  const version = found === undefined ? undefined : Number(found)
  const newer = version !== undefined && Number.isSafeInteger(version) && version > FORMAT_VERSION
  const what = found === undefined ? `no ${FORMAT_FILE} marker` : `${FORMAT_FILE} says ${JSON.stringify(found)}`
  throw new StorageError({
    log: "*",
    op: "open",
    code: "EFORMAT",
    reason: newer
      ? `data dir ${dataDir} was written by a newer Chronik log format (${what}; this version writes format ${FORMAT_VERSION}): ` +
        `use a newer Chronik, or empty or move the data dir`
      : `data dir ${dataDir} was written by an older Chronik log format (${what}; this version needs format ${FORMAT_VERSION}): ` +
        `it must be emptied or moved away (there is no migration before 1.0); ${logs.length} log(s) found, e.g. ${logs[0]}`
  })
}

export const make: Effect.Effect<LogStoreService, StorageError, StorageConfig | StorageFileIO | Scope.Scope> = Effect
  .gen(function*() {
    const cfg = yield* StorageConfig
    const io = yield* StorageFileIO
    yield* Effect.try({ try: () => io.mkdirp(cfg.dataDir), catch: (e) => toStorageError("*", "mkdir", e) as StorageError })
    yield* Effect.try({
      try: () => checkDataDirFormat(io, cfg.dataDir),
      catch: (e) => (e instanceof StorageError ? e : (toStorageError("*", "format", e) as StorageError))
    })
    // replay the node journal before any log opens (also when it is now turned off)
    const journaling = cfg.fsyncPolicy._tag !== "never" && cfg.journalFileBytes > 0
    const { journal, replay } = yield* Effect.tryPromise({
      try: () =>
        openJournal(io, cfg.dataDir, journaling ? { fileBytes: cfg.journalFileBytes, keepFiles: JOURNAL_KEEP_FILES } : undefined),
      catch: (e) => toStorageError("*", "journal-replay", e) as StorageError
    })
    if (replay.records > 0 || replay.skipped > 0) {
      yield* Effect.logInfo(
        `node journal replayed: ${replay.records} records (${replay.bytes} bytes), ${replay.skipped} for removed files; ${replay.end}`
      )
    }
    // the journal keeps the FileIO it was opened with (synchronous writes); logs may write asynchronously
    const logIO = cfg.asyncWrites ? withAsyncWrites(io) : io
    const sync = new WalSync(logIO, cfg.fsyncPolicy, journal, cfg.backgroundSyncDelayMs)
    const logs = new Map<string, SegmentedLog>()
    const lock = yield* Effect.makeSemaphore(1)
    const serialized = lock.withPermits(1)

    /** Open logs sharing the node-wide memory tier budget (those that do not set their own). */
    const sharing = new Set<string>()
    const tierShare = (count: number): number => Math.floor(cfg.memoryTierBytes / Math.max(1, count))
    const rebalanceTiers = (): void => {
      const share = tierShare(sharing.size)
      for (const id of sharing) logs.get(id)?.core.setMemoryTierBytes(share)
    }

    const logConfig = (over?: Partial<LogConfig>): Partial<LogConfig> => ({
      segmentBytes: cfg.segmentBytes,
      segmentMs: cfg.segmentMs,
      indexIntervalBytes: cfg.indexIntervalBytes,
      memoryTierBytes: tierShare(sharing.size + 1),
      ...over
    })

    const open = (id: string, over?: Partial<LogConfig>) =>
      serialized(Effect.suspend(() => {
        const existing = logs.get(id)
        if (existing) return Effect.succeed(existing)
        return openLog({ io: logIO, sync, id, dir: path.join(cfg.dataDir, encodeLogId(id)), config: logConfig(over) }).pipe(
          Effect.tap((log) =>
            Effect.sync(() => {
              logs.set(id, log)
              if (over?.memoryTierBytes === undefined) {
                sharing.add(id)
                rebalanceTiers()
              }
            })
          )
        )
      })).pipe(Effect.withSpan("LogStore.open", { attributes: { log: id }, captureStackTrace: false }))

    const get = (id: string) =>
      Effect.suspend(() => {
        const l = logs.get(id)
        return l ? Effect.succeed(l) : Effect.fail(new LogNotFound({ log: id }))
      })

    const close = (id: string) =>
      serialized(Effect.suspend((): Effect.Effect<void, StorageError | LogNotFound> => {
        const l = logs.get(id)
        if (!l) return Effect.fail(new LogNotFound({ log: id }))
        logs.delete(id)
        if (sharing.delete(id)) rebalanceTiers()
        return l.close
      }))

    const del = (id: string) =>
      serialized(Effect.suspend((): Effect.Effect<void, StorageError | LogNotFound> => {
        const dir = path.join(cfg.dataDir, encodeLogId(id))
        const l = logs.get(id)
        logs.delete(id)
        if (sharing.delete(id)) rebalanceTiers()
        if (l) {
          return Effect.tryPromise({ try: () => l.core.destroy(), catch: (e) => toStorageError(id, "delete", e) as StorageError })
        }
        return Effect.try({
          try: () => {
            if (!logIO.exists(dir)) throw new LogNotFound({ log: id })
            journal?.deleteDir(dir)
            logIO.rmrf(dir)
          },
          catch: (e) => (e instanceof LogNotFound ? e : (toStorageError(id, "delete", e) as StorageError))
        })
      }))

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const all = [...logs.values()]
        logs.clear()
        yield* Effect.forEach(all, (l) => Effect.ignoreLogged(l.close), { concurrency: "unbounded", discard: true })
        sync.close()
        if (journal) {
          // no pass may still be syncing a journal file when it closes
          yield* Effect.promise(() => sync.idle())
          yield* Effect.ignoreLogged(Effect.tryPromise(() => journal.close()))
        }
      })
    )

    return LogStore.of({
      open,
      get,
      delete: del,
      close,
      list: Effect.sync(() => [...logs.keys()]),
      listOnDisk: Effect.try({
        try: () =>
          io.readdir(cfg.dataDir).filter((d) => !d.startsWith(".") && d !== FORMAT_FILE && !d.endsWith(".tmp")).map(
            decodeLogId
          ),
        catch: (e) => toStorageError("*", "readdir", e) as StorageError
      }),
      flush: Effect.promise(() => sync.flush()),
      syncStats: Effect.sync(() => ({ ...sync.stats }))
    })
  })

/** LogStore over the FileIO in `StorageFileIO` (inject faults with Layer.updateService). */
export const layerFileIO: Layer.Layer<LogStore, StorageError, StorageConfig | StorageFileIO> = Layer.scoped(LogStore, make)

/** LogStore over files under StorageConfig.dataDir. */
export const layer: Layer.Layer<LogStore, StorageError, StorageConfig> = layerFileIO.pipe(Layer.provide(layerNodeFileIO))

/** The same engine over an in-memory file system, with explicit settings. */
export const layerMemoryWith = (c: Partial<StorageConfigShape> = {}): Layer.Layer<LogStore, StorageError> =>
  layerFileIO.pipe(
    Layer.provide(
      Layer.merge(layerMemoryFileIO, Layer.succeed(StorageConfig, { ...defaults, dataDir: "/chronik-memory", ...c }))
    )
  )

/** In-memory LogStore with default settings (fsync policy batch). */
export const layerMemory: Layer.Layer<LogStore, StorageError> = layerMemoryWith()
