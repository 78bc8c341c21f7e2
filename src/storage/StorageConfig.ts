/**
 * Storage configuration. In code: `StorageConfig` (nested camelCase); from
 * the environment through `config` (keys under `storage`, e.g. with a
 * constant-case env provider: CHRONIK_STORAGE_DATA_DIR, CHRONIK_STORAGE_FSYNC_POLICY...).
 */
import { Config, ConfigError, Context, Either, Layer } from "effect"
import { defaultLogConfig } from "./SegmentedLog.js"
import { FsyncPolicy } from "./WalSync.js"

export interface StorageConfigShape {
  /** Root directory; each log gets a subdirectory. */
  readonly dataDir: string
  readonly fsyncPolicy: FsyncPolicy
  readonly segmentBytes: number
  readonly segmentMs: number
  readonly indexIntervalBytes: number
  /**
   * Memory tier budget of the node (bytes), divided evenly among the open logs
   * that do not set their own; 0 disables it.
   */
  readonly memoryTierBytes: number
  /**
   * Size of a node journal file (docs/node-log.md). With a policy that syncs,
   * a group commit then fdatasyncs the journal alone; 0 (the default) turns it off.
   */
  readonly journalFileBytes: number
  /**
   * Under `batch`, how long a sync pass no reply waits for may wait (ms) so
   * that it covers more writes (WalSync background requests); 0: at once.
   */
  readonly backgroundSyncDelayMs: number
  /**
   * Log segment writes go to the libuv pool (`withAsyncWrites`) instead of
   * blocking the event loop; `LogCore.onWritten` tells when they are done.
   */
  readonly asyncWrites: boolean
}

export const defaults: Omit<StorageConfigShape, "dataDir"> = {
  fsyncPolicy: FsyncPolicy.batch,
  segmentBytes: defaultLogConfig.segmentBytes,
  segmentMs: defaultLogConfig.segmentMs,
  indexIntervalBytes: defaultLogConfig.indexIntervalBytes,
  memoryTierBytes: 32 * 1024 * 1024,
  journalFileBytes: 0,
  backgroundSyncDelayMs: 0,
  asyncWrites: false
}

const fsyncPolicyConfig = Config.string("fsyncPolicy").pipe(
  Config.withDescription("fsync policy: batch (group commit, default) | interval:<ms> | never"),
  Config.mapOrFail((s) => {
    const p = FsyncPolicy.parse(s)
    return p
      ? Either.right(p)
      : Either.left(ConfigError.InvalidData([], `invalid fsync policy "${s}" (batch | interval:<ms> | never)`))
  }),
  Config.withDefault(defaults.fsyncPolicy)
)

/** `Config` description of the storage settings, with defaults. */
export const config: Config.Config<StorageConfigShape> = Config.all({
  dataDir: Config.string("dataDir").pipe(
    Config.withDescription("directory holding the log directories"),
    Config.withDefault("./data")
  ),
  fsyncPolicy: fsyncPolicyConfig,
  segmentBytes: Config.integer("segmentBytes").pipe(
    Config.withDescription("roll a segment at this size (segment.bytes)"),
    Config.withDefault(defaults.segmentBytes)
  ),
  segmentMs: Config.integer("segmentMs").pipe(
    Config.withDescription("roll a segment at this age (segment.ms)"),
    Config.withDefault(defaults.segmentMs)
  ),
  indexIntervalBytes: Config.integer("indexIntervalBytes").pipe(
    Config.withDescription("bytes between sparse index entries (index.interval.bytes)"),
    Config.withDefault(defaults.indexIntervalBytes)
  ),
  memoryTierBytes: Config.integer("memoryTierBytes").pipe(
    Config.withDescription("in-memory cache of recent entries per log, bytes"),
    Config.withDefault(defaults.memoryTierBytes)
  ),
  journalFileBytes: Config.integer("journalFileBytes").pipe(
    Config.withDescription("size of a node journal file, bytes (0, the default: no journal)"),
    Config.withDefault(defaults.journalFileBytes)
  ),
  backgroundSyncDelayMs: Config.integer("backgroundSyncDelayMs").pipe(
    Config.withDescription("under batch, how long a sync no reply waits for may wait, ms (0, the default: at once)"),
    Config.withDefault(defaults.backgroundSyncDelayMs)
  ),
  asyncWrites: Config.boolean("asyncWrites").pipe(
    Config.withDescription("write log segments on the libuv pool instead of the event loop (false, the default: synchronous)"),
    Config.withDefault(defaults.asyncWrites)
  )
}).pipe(Config.nested("storage"))

export class StorageConfig extends Context.Tag("chronik/StorageConfig")<StorageConfig, StorageConfigShape>() {}

/** A StorageConfig from explicit values (defaults for the rest). */
export const layer = (c: Partial<StorageConfigShape> & { readonly dataDir: string }): Layer.Layer<StorageConfig> =>
  Layer.succeed(StorageConfig, { ...defaults, ...c })

/** A StorageConfig read from the ambient ConfigProvider. */
export const layerFromEnv: Layer.Layer<StorageConfig, ConfigError.ConfigError> = Layer.effect(
  StorageConfig,
  config
)
