/**
 * Broker-wide configuration.
 *
 * One Tag holds the settings every subsystem derives its own config from
 * (`layers/` maps them onto TransportConfig, StorageConfig, ...). Values come
 * from CLI flags, then `CHRONIK_*` environment variables, then the defaults
 * below (see `src/cli/ServerCli.ts`). Names are camelCase in code and
 * CONSTANT_CASE with the `CHRONIK_` prefix in the environment.
 */
import { Config, ConfigError, ConfigProvider, Context, Data, Effect, Either, Layer } from "effect"
import { FsyncPolicy } from "../storage/WalSync.js"

export { FsyncPolicy }

export interface BrokerConfigShape {
  readonly nodeId: number
  /** Address the Kafka listener binds to. */
  readonly kafkaHost: string
  readonly kafkaPort: number
  /** Address clients are told to connect to (Metadata, FindCoordinator). */
  readonly advertisedHost: string
  readonly advertisedPort: number
  readonly dataDir: string
  readonly autoCreateTopics: boolean
  readonly numPartitions: number
  readonly walFsync: FsyncPolicy
  /** Size of a node journal file (docs/node-log.md); 0 (the default) writes no journal: every pass fdatasyncs the segments. */
  readonly walJournalFileBytes: number
  /**
   * Under `batch`, how long (ms) a sync pass that no reply waits for may wait to
   * cover more writes: the Raft commit of acks=0/1 records, which then reach
   * consumers up to this much later; 0 syncs at once.
   */
  readonly walBackgroundSyncMs: number
  /**
   * Segment writes go to the libuv pool instead of blocking the event loop
   * (docs/async-segment-writes.md); acks=0/1 replies wait for their write.
   */
  readonly walAsyncWrites: boolean
  readonly logSegmentBytes: number
  readonly logSegmentMs: number
  readonly logRetentionMs: number
  readonly logRetentionBytes: number
  readonly logRetentionCheckIntervalMs: number
  readonly messageMaxBytes: number
  readonly socketRequestMaxBytes: number
  readonly connectionsMaxIdleMs: number
  readonly memoryTierBytes: number
}

export class BrokerConfig extends Context.Tag("chronik/BrokerConfig")<BrokerConfig, BrokerConfigShape>() {}

/** A configuration value that cannot be used, with a message meant for a person. */
export class InvalidConfig extends Data.TaggedError("InvalidConfig")<{ readonly message: string }> {}

export const defaults = {
  nodeId: 1,
  kafkaHost: "127.0.0.1",
  kafkaPort: 9092,
  dataDir: "./data",
  autoCreateTopics: true,
  numPartitions: 1,
  walFsync: "batch",
  // off: on this machine it pays only with many partitions (docs/PERFORMANCE.md, session 7)
  walJournalFileBytes: 0,
  walBackgroundSyncMs: 5,
  walAsyncWrites: false,
  logSegmentBytes: 1024 * 1024 * 1024,
  logSegmentMs: 7 * 24 * 3600 * 1000,
  logRetentionMs: 7 * 24 * 3600 * 1000,
  logRetentionBytes: -1,
  logRetentionCheckIntervalMs: 5 * 60 * 1000,
  messageMaxBytes: 1048588,
  socketRequestMaxBytes: 104857600,
  connectionsMaxIdleMs: 600000,
  // 32 MiB: a larger tier made V8 run full mark-compacts under produce load (docs/storage.md "Memory tier")
  memoryTierBytes: 32 * 1024 * 1024
} as const

/** The raw settings as the CLI and environment supply them, before validation. */
export interface BrokerConfigInput extends Omit<BrokerConfigShape, "walFsync" | "advertisedHost" | "advertisedPort"> {
  readonly advertisedHost: string | undefined
  readonly advertisedPort: number | undefined
  readonly walFsync: string
}

const wildcardHosts = new Set(["0.0.0.0", "::", "[::]"])

/** Checks ranges and cross-field rules; every failure names the setting and its env variable. */
export const validate = (input: BrokerConfigInput): Either.Either<BrokerConfigShape, InvalidConfig> => {
  const problems: Array<string> = []
  const intIn = (name: string, env: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) {
      problems.push(`${name} (${env}) must be an integer in [${min}, ${max}], got ${v}`)
    }
  }
  intIn("nodeId", "CHRONIK_NODE_ID", input.nodeId, 0, 2 ** 31 - 1)
  intIn("kafkaPort", "CHRONIK_KAFKA_PORT", input.kafkaPort, 0, 65535)
  if (input.advertisedPort !== undefined) {
    intIn("advertisedPort", "CHRONIK_ADVERTISED_PORT", input.advertisedPort, 1, 65535)
  }
  intIn("numPartitions", "CHRONIK_NUM_PARTITIONS", input.numPartitions, 1, 100000)
  intIn("logSegmentBytes", "CHRONIK_LOG_SEGMENT_BYTES", input.logSegmentBytes, 14, 2 ** 31 - 1)
  intIn("logSegmentMs", "CHRONIK_LOG_SEGMENT_MS", input.logSegmentMs, 1, Number.MAX_SAFE_INTEGER)
  intIn("logRetentionMs", "CHRONIK_LOG_RETENTION_MS", input.logRetentionMs, -1, Number.MAX_SAFE_INTEGER)
  intIn("logRetentionBytes", "CHRONIK_LOG_RETENTION_BYTES", input.logRetentionBytes, -1, Number.MAX_SAFE_INTEGER)
  intIn(
    "logRetentionCheckIntervalMs",
    "CHRONIK_LOG_RETENTION_CHECK_INTERVAL_MS",
    input.logRetentionCheckIntervalMs,
    1,
    Number.MAX_SAFE_INTEGER
  )
  intIn("messageMaxBytes", "CHRONIK_MESSAGE_MAX_BYTES", input.messageMaxBytes, 0, 2 ** 31 - 1)
  intIn("socketRequestMaxBytes", "CHRONIK_SOCKET_REQUEST_MAX_BYTES", input.socketRequestMaxBytes, 1, 2 ** 31 - 1)
  intIn("connectionsMaxIdleMs", "CHRONIK_CONNECTIONS_MAX_IDLE_MS", input.connectionsMaxIdleMs, 1, 2 ** 31 - 1)
  intIn("memoryTierBytes", "CHRONIK_MEMORY_TIER_BYTES", input.memoryTierBytes, 0, Number.MAX_SAFE_INTEGER)
  intIn("walBackgroundSyncMs", "CHRONIK_WAL_BACKGROUND_SYNC_MS", input.walBackgroundSyncMs, 0, 1000)
  const journal = input.walJournalFileBytes
  if (journal !== 0 && (!Number.isInteger(journal) || journal < 65536 || journal > 2 ** 31 - 1)) {
    problems.push(
      `walJournalFileBytes (CHRONIK_WAL_JOURNAL_FILE_BYTES) must be 0 (no journal) or an integer in [65536, ${2 ** 31 - 1}], got ${journal}`
    )
  }
  if (input.dataDir.trim() === "") problems.push("dataDir (CHRONIK_DATA_DIR) must not be empty")
  if (input.kafkaHost.trim() === "") problems.push("kafkaHost (CHRONIK_KAFKA_HOST) must not be empty")
  const advertisedHost = input.advertisedHost ?? input.kafkaHost
  if (wildcardHosts.has(advertisedHost)) {
    problems.push(
      `listening on ${input.kafkaHost} needs an advertised address: set --advertised-host (CHRONIK_ADVERTISED_HOST) to a host clients can reach`
    )
  }
  const fsync = FsyncPolicy.parse(input.walFsync)
  if (fsync === undefined) {
    problems.push(`walFsync (CHRONIK_WAL_FSYNC) must be batch, never or interval:<ms>, got "${input.walFsync}"`)
  }
  if (problems.length > 0 || fsync === undefined) {
    return Either.left(new InvalidConfig({ message: `invalid configuration:\n  - ${problems.join("\n  - ")}` }))
  }
  return Either.right({
    nodeId: input.nodeId,
    kafkaHost: input.kafkaHost,
    kafkaPort: input.kafkaPort,
    advertisedHost,
    advertisedPort: input.advertisedPort ?? input.kafkaPort,
    dataDir: input.dataDir,
    autoCreateTopics: input.autoCreateTopics,
    numPartitions: input.numPartitions,
    walFsync: fsync,
    walJournalFileBytes: input.walJournalFileBytes,
    walBackgroundSyncMs: input.walBackgroundSyncMs,
    walAsyncWrites: input.walAsyncWrites,
    logSegmentBytes: input.logSegmentBytes,
    logSegmentMs: input.logSegmentMs,
    logRetentionMs: input.logRetentionMs,
    logRetentionBytes: input.logRetentionBytes,
    logRetentionCheckIntervalMs: input.logRetentionCheckIntervalMs,
    messageMaxBytes: input.messageMaxBytes,
    socketRequestMaxBytes: input.socketRequestMaxBytes,
    connectionsMaxIdleMs: input.connectionsMaxIdleMs,
    memoryTierBytes: input.memoryTierBytes
  })
}

/** Settings read from config (env) alone, each with its description and default. */
export const configInput: Config.Config<BrokerConfigInput> = Config.all({
  nodeId: Config.integer("nodeId").pipe(Config.withDefault(defaults.nodeId), Config.withDescription("Id of this node")),
  kafkaHost: Config.string("kafkaHost").pipe(Config.withDefault(defaults.kafkaHost)),
  kafkaPort: Config.integer("kafkaPort").pipe(Config.withDefault(defaults.kafkaPort)),
  advertisedHost: Config.string("advertisedHost").pipe(Config.option, Config.map((o) => o._tag === "Some" ? o.value : undefined)),
  advertisedPort: Config.integer("advertisedPort").pipe(Config.option, Config.map((o) => o._tag === "Some" ? o.value : undefined)),
  dataDir: Config.string("dataDir").pipe(Config.withDefault(defaults.dataDir)),
  autoCreateTopics: Config.boolean("autoCreateTopics").pipe(Config.withDefault(defaults.autoCreateTopics)),
  numPartitions: Config.integer("numPartitions").pipe(Config.withDefault(defaults.numPartitions)),
  walFsync: Config.string("walFsync").pipe(Config.withDefault(defaults.walFsync)),
  walJournalFileBytes: Config.integer("walJournalFileBytes").pipe(Config.withDefault(defaults.walJournalFileBytes)),
  walBackgroundSyncMs: Config.integer("walBackgroundSyncMs").pipe(Config.withDefault(defaults.walBackgroundSyncMs)),
  walAsyncWrites: Config.boolean("walAsyncWrites").pipe(Config.withDefault(defaults.walAsyncWrites)),
  logSegmentBytes: Config.integer("logSegmentBytes").pipe(Config.withDefault(defaults.logSegmentBytes)),
  logSegmentMs: Config.integer("logSegmentMs").pipe(Config.withDefault(defaults.logSegmentMs)),
  logRetentionMs: Config.integer("logRetentionMs").pipe(Config.withDefault(defaults.logRetentionMs)),
  logRetentionBytes: Config.integer("logRetentionBytes").pipe(Config.withDefault(defaults.logRetentionBytes)),
  logRetentionCheckIntervalMs: Config.integer("logRetentionCheckIntervalMs").pipe(
    Config.withDefault(defaults.logRetentionCheckIntervalMs)
  ),
  messageMaxBytes: Config.integer("messageMaxBytes").pipe(Config.withDefault(defaults.messageMaxBytes)),
  socketRequestMaxBytes: Config.integer("socketRequestMaxBytes").pipe(Config.withDefault(defaults.socketRequestMaxBytes)),
  connectionsMaxIdleMs: Config.integer("connectionsMaxIdleMs").pipe(Config.withDefault(defaults.connectionsMaxIdleMs)),
  memoryTierBytes: Config.integer("memoryTierBytes").pipe(Config.withDefault(defaults.memoryTierBytes))
})

/** The environment as `CHRONIK_*` CONSTANT_CASE variables. */
export const envProvider = (env: Record<string, string | undefined> = process.env): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(
    new Map(Object.entries(env).filter((kv): kv is [string, string] => kv[1] !== undefined)),
    { pathDelim: "_" }
  ).pipe(ConfigProvider.nested("CHRONIK"), ConfigProvider.constantCase)

const describeConfigError = (e: ConfigError.ConfigError): string =>
  `invalid configuration: ${String(e).replace(/CHRONIK\.([A-Z0-9_]+)/g, "CHRONIK_$1")}`

/** Reads and validates the config from the current ConfigProvider. */
export const load: Effect.Effect<BrokerConfigShape, InvalidConfig> = Effect.flatMap(
  Effect.mapError(configInput, (e) => new InvalidConfig({ message: describeConfigError(e) })),
  (input) => Either.match(validate(input), { onLeft: Effect.fail, onRight: Effect.succeed })
)

/** BrokerConfig from `CHRONIK_*` environment variables and defaults. */
export const layerFromEnv: Layer.Layer<BrokerConfig, InvalidConfig> = Layer.effect(
  BrokerConfig,
  Effect.withConfigProvider(load, envProvider())
)

/** BrokerConfig from explicit values (tests), validated the same way. */
export const layer = (overrides: Partial<BrokerConfigInput> = {}): Layer.Layer<BrokerConfig, InvalidConfig> =>
  Layer.effect(
    BrokerConfig,
    Effect.flatMap(
      Effect.withConfigProvider(
        Effect.mapError(configInput, (e) => new InvalidConfig({ message: describeConfigError(e) })),
        envProvider({})
      ),
      (base) => Either.match(validate({ ...base, ...overrides }), { onLeft: Effect.fail, onRight: Effect.succeed })
    )
  )
