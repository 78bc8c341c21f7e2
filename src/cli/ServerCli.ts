/**
 * The `chronik-server` command line.
 *
 * Every flag falls back to a `CHRONIK_*` environment variable and then to the
 * default in BrokerConfig (precedence: flag, env, default). The command only
 * parses and validates; what runs is passed in by `layers/main.ts`, because
 * `src/` never imports the layer compositions.
 */
import { Command, Options } from "@effect/cli"
import { Config, Effect, Either, Option } from "effect"
import * as BrokerConfig from "../config/BrokerConfig.js"
import { groupsCommand } from "./GroupsCli.js"

const d = BrokerConfig.defaults

const int = (flag: string, key: string, fallback: number, description: string) =>
  Options.integer(flag).pipe(
    Options.withFallbackConfig(Config.integer(key)),
    Options.withDefault(fallback),
    Options.withDescription(`${description} [env CHRONIK_${constant(key)}, default ${fallback}]`)
  )

const str = (flag: string, key: string, fallback: string, description: string) =>
  Options.text(flag).pipe(
    Options.withFallbackConfig(Config.string(key)),
    Options.withDefault(fallback),
    Options.withDescription(`${description} [env CHRONIK_${constant(key)}, default ${fallback}]`)
  )

/** A true/false flag; `--flag true` rather than a bare switch, so every flag of `standalone` takes a value. */
const bool = (flag: string, key: string, fallback: boolean, description: string) =>
  Options.choice(flag, ["true", "false"]).pipe(
    Options.withFallbackConfig(Config.literal("true", "false")(key)),
    Options.withDefault(fallback ? "true" : "false"),
    Options.withDescription(`${description} [env CHRONIK_${constant(key)}, default ${fallback}]`)
  )

const constant = (camel: string): string => camel.replace(/([A-Z])/g, "_$1").toUpperCase()

export const options = {
  nodeId: int("node-id", "nodeId", d.nodeId, "Id of this node"),
  kafkaHost: str("kafka-host", "kafkaHost", d.kafkaHost, "Address the Kafka listener binds to"),
  kafkaPort: int("kafka-port", "kafkaPort", d.kafkaPort, "Port of the Kafka listener (0 picks a free port)"),
  advertisedHost: Options.text("advertised-host").pipe(
    Options.withFallbackConfig(Config.string("advertisedHost")),
    Options.optional,
    Options.withDescription(
      "Host clients are told to connect to; required when --kafka-host is a wildcard [env CHRONIK_ADVERTISED_HOST, default the listener host]"
    )
  ),
  advertisedPort: Options.integer("advertised-port").pipe(
    Options.withFallbackConfig(Config.integer("advertisedPort")),
    Options.optional,
    Options.withDescription("Port clients are told to connect to [env CHRONIK_ADVERTISED_PORT, default the listener port]")
  ),
  dataDir: str("data-dir", "dataDir", d.dataDir, "Directory for logs and metadata"),
  autoCreateTopics: bool("auto-create-topics", "autoCreateTopics", d.autoCreateTopics, "Create unknown topics on Metadata and Produce"),
  numPartitions: int("num-partitions", "numPartitions", d.numPartitions, "Partitions of an auto-created topic"),
  walFsync: str("wal-fsync", "walFsync", d.walFsync, "fsync policy: batch | interval:<ms> | never"),
  walJournalFileBytes: int(
    "wal-journal-file-bytes",
    "walJournalFileBytes",
    d.walJournalFileBytes,
    "With a size (e.g. 67108864), a group commit fdatasyncs one node journal file of that size instead of every partition's segment; pays with many partitions (0: no journal)"
  ),
  walBackgroundSyncMs: int(
    "wal-background-sync-ms",
    "walBackgroundSyncMs",
    d.walBackgroundSyncMs,
    "With batch, a sync that no reply waits for (the commit of acks=0/1 records) may wait this long to cover more writes; such records reach consumers up to this much later (0: sync at once, max 1000)"
  ),
  walAsyncWrites: bool(
    "wal-async-writes",
    "walAsyncWrites",
    d.walAsyncWrites,
    "Write segments on the libuv thread pool instead of the event loop; acks=0/1 replies wait for their write (docs/async-segment-writes.md)"
  ),
  logSegmentBytes: int("log-segment-bytes", "logSegmentBytes", d.logSegmentBytes, "Default segment.bytes"),
  logSegmentMs: int("log-segment-ms", "logSegmentMs", d.logSegmentMs, "Default segment.ms"),
  logRetentionMs: int("log-retention-ms", "logRetentionMs", d.logRetentionMs, "Default retention.ms (-1: forever)"),
  logRetentionBytes: int("log-retention-bytes", "logRetentionBytes", d.logRetentionBytes, "Default retention.bytes (-1: unlimited)"),
  logRetentionCheckIntervalMs: int(
    "log-retention-check-interval-ms",
    "logRetentionCheckIntervalMs",
    d.logRetentionCheckIntervalMs,
    "How often retention runs"
  ),
  messageMaxBytes: int("message-max-bytes", "messageMaxBytes", d.messageMaxBytes, "Default max.message.bytes (largest batch)"),
  socketRequestMaxBytes: int(
    "socket-request-max-bytes",
    "socketRequestMaxBytes",
    d.socketRequestMaxBytes,
    "Largest request frame; a larger one closes the connection"
  ),
  connectionsMaxIdleMs: int("connections-max-idle-ms", "connectionsMaxIdleMs", d.connectionsMaxIdleMs, "Idle connection timeout"),
  memoryTierBytes: int("memory-tier-bytes", "memoryTierBytes", d.memoryTierBytes, "Memory for the hot read tier of recent data, shared by all partitions (bytes)")
}

/** Builds the validated config from parsed options; fails with a message meant for a person. */
type Parsed = { readonly [K in keyof typeof options]: (typeof options)[K] extends Options.Options<infer A> ? A : never }

export const toConfig = (
  parsed: Parsed
): Effect.Effect<BrokerConfig.BrokerConfigShape, BrokerConfig.InvalidConfig> =>
  Either.match(
    BrokerConfig.validate({
      ...parsed,
      advertisedHost: Option.getOrUndefined(parsed.advertisedHost),
      advertisedPort: Option.getOrUndefined(parsed.advertisedPort),
      autoCreateTopics: parsed.autoCreateTopics === "true",
      walAsyncWrites: parsed.walAsyncWrites === "true"
    }),
    { onLeft: Effect.fail, onRight: Effect.succeed }
  )

/** The flags of `standalone`, each of which takes a value (`--flag value` or `--flag=value`). */
const standaloneFlags: ReadonlySet<string> = new Set(Object.keys(options).map((key) => `--${constant(key).toLowerCase().replaceAll("_", "-")}`))

/**
 * `chronik-server [flags] standalone [flags]`: @effect/cli reads a
 * subcommand's flags only after its name, so flags of `standalone` written
 * before it are moved after it. `args` is the command line without the node
 * executable and script; anything else (an unknown flag before the
 * subcommand, another subcommand) is left as it is for the parser to judge.
 */
export const withFlagsAfterSubcommand = (args: ReadonlyArray<string>): Array<string> => {
  let i = 0
  while (i < args.length) {
    const arg = args[i]!
    if (arg === "standalone") return [arg, ...args.slice(0, i), ...args.slice(i + 1)]
    const eq = arg.indexOf("=")
    if (!standaloneFlags.has(eq === -1 ? arg : arg.slice(0, eq))) break
    i += eq === -1 ? 2 : 1
  }
  return [...args]
}

/**
 * The command tree. `runStandalone` receives the validated config and runs
 * until interrupted (SIGINT/SIGTERM interrupt it, which closes every scope).
 */
export const makeCommand = <R>(
  runStandalone: (config: BrokerConfig.BrokerConfigShape) => Effect.Effect<void, unknown, R>
) => {
  const standalone = Command.make("standalone", options, (parsed) =>
    Effect.flatMap(toConfig(parsed), runStandalone)
  ).pipe(
    Command.withDescription(
      "Run a single-node broker that leads every partition, with its data in --data-dir (its flags may also come before `standalone`)"
    )
  )
  return Command.make("chronik-server").pipe(
    Command.withDescription("Chronik: a Kafka-compatible streaming broker"),
    Command.withSubcommands([standalone, groupsCommand])
  )
}
