/**
 * Configuration of the Kafka data-plane listener.
 *
 * Keys are camelCase under `transport` in code (`transport.maxRequestBytes`)
 * and `CHRONIK_TRANSPORT_*` in the environment (`CHRONIK_TRANSPORT_MAX_REQUEST_BYTES`)
 * when read through {@link layerFromEnv}.
 */
import { Config, ConfigProvider, Context, Effect, Layer } from "effect"
import type { ConfigError } from "effect/ConfigError"

export interface TransportConfigShape {
  /** Interface to bind. */
  readonly host: string
  /** TCP port; 0 picks a free ephemeral port (tests). */
  readonly port: number
  /** Largest accepted request frame (Kafka `socket.request.max.bytes`). Larger or negative sizes close the connection. */
  readonly maxRequestBytes: number
  /** Pipelined requests per connection being handled or awaiting their in-order write; reading pauses at the bound. */
  readonly maxInFlightPerConnection: number
  /** A connection with no traffic and nothing in flight for this long is closed (Kafka `connections.max.idle.ms`); 0 disables. */
  readonly idleTimeoutMs: number
  /** Upper bound, in wall-clock time, on a graceful shutdown waiting for in-flight requests and their writes. */
  readonly shutdownTimeoutMs: number
  /** Listen backlog. */
  readonly backlog: number
}

export const defaults: TransportConfigShape = {
  host: "127.0.0.1",
  port: 9092,
  maxRequestBytes: 104_857_600,
  maxInFlightPerConnection: 100,
  idleTimeoutMs: 600_000,
  shutdownTimeoutMs: 30_000,
  backlog: 511
}

export class TransportConfig extends Context.Tag("chronik/TransportConfig")<TransportConfig, TransportConfigShape>() {}

const positiveInt = (name: string, description: string, fallback: number, min: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `must be an integer >= ${min}`, validation: (n) => n >= min }),
    Config.withDescription(description),
    Config.withDefault(fallback)
  )

/** The transport settings as a `Config`, nested under `transport`. */
export const config: Config.Config<TransportConfigShape> = Config.nested(
  Config.all({
    host: Config.string("host").pipe(
      Config.withDescription("Interface the Kafka listener binds to"),
      Config.withDefault(defaults.host)
    ),
    port: Config.port("port").pipe(
      Config.withDescription("Kafka listener TCP port (0 = ephemeral)"),
      Config.orElse(() => Config.integer("port").pipe(Config.validate({ message: "must be 0", validation: (n) => n === 0 }))),
      Config.withDefault(defaults.port)
    ),
    maxRequestBytes: positiveInt(
      "maxRequestBytes",
      "Largest accepted request frame in bytes (socket.request.max.bytes)",
      defaults.maxRequestBytes,
      0
    ),
    maxInFlightPerConnection: positiveInt(
      "maxInFlightPerConnection",
      "Pipelined requests in flight per connection before reading pauses",
      defaults.maxInFlightPerConnection,
      1
    ),
    idleTimeoutMs: positiveInt(
      "idleTimeoutMs",
      "Close connections idle for this many ms (connections.max.idle.ms); 0 disables",
      defaults.idleTimeoutMs,
      0
    ),
    shutdownTimeoutMs: positiveInt(
      "shutdownTimeoutMs",
      "Bound on graceful shutdown waiting for in-flight requests",
      defaults.shutdownTimeoutMs,
      0
    ),
    backlog: positiveInt("backlog", "Listen backlog", defaults.backlog, 1)
  }),
  "transport"
)

/** A config layer from explicit values, defaults for the rest. */
export const layer = (overrides: Partial<TransportConfigShape> = {}): Layer.Layer<TransportConfig> =>
  Layer.succeed(TransportConfig, { ...defaults, ...overrides })

/** Reads {@link config} (or a given `Config`) from the ambient `ConfigProvider`. */
export const layerConfig = (
  cfg: Config.Config<TransportConfigShape> = config
): Layer.Layer<TransportConfig, ConfigError> => Layer.effect(TransportConfig, cfg)

/** Reads {@link config} from `CHRONIK_TRANSPORT_*` environment variables. */
export const layerFromEnv: Layer.Layer<TransportConfig, ConfigError> = Layer.effect(
  TransportConfig,
  Effect.withConfigProvider(
    config,
    ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase, ConfigProvider.nested("CHRONIK"))
  )
)
