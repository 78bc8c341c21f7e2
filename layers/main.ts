#!/usr/bin/env node
/**
 * The `chronik-server` entry point: parses the command line and runs the
 * composition it names until SIGINT/SIGTERM, which shut down gracefully
 * (in-flight requests finish, logs are synced and closed).
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { makeCommand, withFlagsAfterSubcommand } from "../src/cli/ServerCli.js"
import { envProvider } from "../src/config/BrokerConfig.js"
import { FsyncPolicy } from "../src/storage/WalSync.js"
import * as Standalone from "./Standalone.js"
import { Command, ValidationError } from "@effect/cli"

const command = makeCommand((config) =>
  Effect.gen(function* () {
    yield* Effect.logInfo(
      `Chronik standalone node ${config.nodeId}: Kafka on ${config.kafkaHost}:${config.kafkaPort} (advertised ${config.advertisedHost}:${config.advertisedPort}), data in ${config.dataDir}` +
        ` (fsync ${FsyncPolicy.format(config.walFsync)}, segment writes ${config.walAsyncWrites ? "on the libuv pool" : "on the event loop"})`
    )
    return yield* Layer.launch(Standalone.layer(config))
  })
)

const cli = Command.run(command, { name: "chronik-server", version: "0.1.0" })

// `chronik-server --kafka-port 9092 standalone` is read as `chronik-server standalone --kafka-port 9092`
cli([...process.argv.slice(0, 2), ...withFlagsAfterSubcommand(process.argv.slice(2))]).pipe(
  Effect.withConfigProvider(envProvider()),
  Effect.provide(NodeContext.layer),
  // A clear message and a non-zero exit, never a stack trace; @effect/cli prints its own usage errors.
  Effect.tapError((e) =>
    ValidationError.isValidationError(e)
      ? Effect.void
      : Effect.sync(() => console.error(`chronik-server: ${e instanceof Error || (typeof e === "object" && e !== null && "message" in e) ? (e as { message: string }).message : String(e)}`))
  ),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
