/**
 * DescribeConfigs (key 32), v0-v4, for TOPIC (2) and BROKER (4) resources.
 *
 * Follows Kafka's ConfigHelper:
 * - `configurationKeys` null or empty lists every config; unknown keys are
 *   left out silently.
 * - TOPIC: every topic config of the TopicConfig table with its effective
 *   value. An override is DYNAMIC_TOPIC_CONFIG; otherwise the source is the
 *   first synonym: the broker setting the default comes from
 *   (STATIC_BROKER_CONFIG when this broker was started with a value other
 *   than Chronik's built-in default, else DEFAULT_CONFIG). Topic configs are
 *   not read-only. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION with no
 *   message, an illegal name INVALID_TOPIC_EXCEPTION.
 * - BROKER "<our node id>": the broker settings under Kafka's broker config
 *   names, all read-only (nothing can be altered at runtime). The name ""
 *   describes the cluster-wide dynamic defaults, of which there are none.
 *   Any other id is INVALID_REQUEST, as Kafka answers it.
 * - v0 has no config source: `isDefault` says whether the value was set for
 *   this resource (a topic override / a non-default broker setting).
 * - v1+: synonyms when `includeSynonyms`; v3+: configType always, and the
 *   documentation when `includeDocumentation`.
 *
 * The config-description helpers here are shared with CreateTopics (v5+
 * returns the new topic's configs in the same form).
 */
import { Effect } from "effect"
import { BrokerConfig, type BrokerConfigShape, defaults as brokerDefaults } from "../../config/BrokerConfig.js"
import { ClusterMetadata, checkTopicName } from "../../metadata/ClusterMetadata.js"
import { METADATA_LOG_ID } from "../../metadata/MetadataLog.js"
import { type ConfigType as TopicConfigType, type TopicConfigDef, topicConfigDefs } from "../../metadata/TopicConfig.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { DescribeConfigsRequest, DescribeConfigsResponseInput } from "../../protocol/messages.js"
import { defineHandler } from "../RequestRouter.js"

/** Kafka's ConfigResource.Type ids. */
export const ResourceType = { UNKNOWN: 0, ANY: 1, TOPIC: 2, GROUP: 3, BROKER: 4, BROKER_LOGGER: 8, CLIENT_METRICS: 16 } as const

const resourceTypeNames = new Map<number, string>([
  [2, "TOPIC"],
  [3, "GROUP"],
  [4, "BROKER"],
  [8, "BROKER_LOGGER"],
  [16, "CLIENT_METRICS"]
])

/** The Kafka name of a resource type id ("UNKNOWN" for ids Kafka does not define). */
export const resourceTypeName = (id: number): string => resourceTypeNames.get(id) ?? "UNKNOWN"

/** DescribeConfigsResponse.ConfigSource ids. */
export const ConfigSource = {
  UNKNOWN: 0,
  DYNAMIC_TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
  DYNAMIC_BROKER_LOGGER_CONFIG: 6
} as const

/** DescribeConfigsResponse.ConfigType ids. */
export const ConfigTypeId = { UNKNOWN: 0, BOOLEAN: 1, STRING: 2, INT: 3, SHORT: 4, LONG: 5, DOUBLE: 6, LIST: 7, CLASS: 8, PASSWORD: 9 } as const

const typeIds: Record<TopicConfigType, number> = {
  boolean: ConfigTypeId.BOOLEAN,
  string: ConfigTypeId.STRING,
  int: ConfigTypeId.INT,
  long: ConfigTypeId.LONG,
  double: ConfigTypeId.DOUBLE,
  list: ConfigTypeId.LIST
}

export interface Synonym {
  readonly name: string
  readonly value: string | null
  readonly source: number
}

/** One described config, before it is shaped into a response of a given API. */
export interface DescribedConfig {
  readonly name: string
  readonly value: string | null
  readonly readOnly: boolean
  /** Whether the value was set for this resource (v0 `isDefault` is its negation). */
  readonly setHere: boolean
  readonly source: number
  readonly isSensitive: boolean
  /** All synonyms, most specific first; `source` is the first one's. */
  readonly synonyms: ReadonlyArray<Synonym>
  readonly configType: number
  readonly documentation: string
}

/** The broker config as it would be with Chronik's built-in defaults (identity and addresses kept). */
const baselineOf = (broker: BrokerConfigShape): BrokerConfigShape => ({
  ...broker,
  autoCreateTopics: brokerDefaults.autoCreateTopics,
  numPartitions: brokerDefaults.numPartitions,
  logSegmentBytes: brokerDefaults.logSegmentBytes,
  logSegmentMs: brokerDefaults.logSegmentMs,
  logRetentionMs: brokerDefaults.logRetentionMs,
  logRetentionBytes: brokerDefaults.logRetentionBytes,
  logRetentionCheckIntervalMs: brokerDefaults.logRetentionCheckIntervalMs,
  messageMaxBytes: brokerDefaults.messageMaxBytes,
  socketRequestMaxBytes: brokerDefaults.socketRequestMaxBytes,
  connectionsMaxIdleMs: brokerDefaults.connectionsMaxIdleMs,
  dataDir: brokerDefaults.dataDir
})

interface BrokerSettingDef {
  readonly name: string
  readonly type: TopicConfigType
  readonly value: (b: BrokerConfigShape) => string
  readonly documentation: string
  /** Settings Kafka has no default for (always given at startup). */
  readonly alwaysStatic?: boolean
}

const brokerSettingDefs: ReadonlyArray<BrokerSettingDef> = [
  { name: "node.id", type: "int", value: (b) => String(b.nodeId), documentation: "The node id of this broker", alwaysStatic: true },
  { name: "broker.id", type: "int", value: (b) => String(b.nodeId), documentation: "The broker id (same as node.id)", alwaysStatic: true },
  {
    name: "listeners",
    type: "string",
    value: (b) => `PLAINTEXT://${b.kafkaHost}:${b.kafkaPort}`,
    documentation: "The address the Kafka listener binds to",
    alwaysStatic: true
  },
  {
    name: "advertised.listeners",
    type: "string",
    value: (b) => `PLAINTEXT://${b.advertisedHost}:${b.advertisedPort}`,
    documentation: "The address clients are told to connect to",
    alwaysStatic: true
  },
  { name: "log.dirs", type: "string", value: (b) => b.dataDir, documentation: "The directory holding the broker's data" },
  {
    name: "auto.create.topics.enable",
    type: "boolean",
    value: (b) => String(b.autoCreateTopics),
    documentation: "Whether a Metadata request for an unknown topic creates it"
  },
  { name: "num.partitions", type: "int", value: (b) => String(b.numPartitions), documentation: "Default number of partitions of a new topic" },
  { name: "default.replication.factor", type: "int", value: () => "1", documentation: "Default replication factor of a new topic" },
  {
    name: "log.retention.check.interval.ms",
    type: "long",
    value: (b) => String(b.logRetentionCheckIntervalMs),
    documentation: "How often retention is enforced"
  },
  {
    name: "socket.request.max.bytes",
    type: "int",
    value: (b) => String(b.socketRequestMaxBytes),
    documentation: "Largest request the broker accepts"
  },
  {
    name: "connections.max.idle.ms",
    type: "long",
    value: (b) => String(b.connectionsMaxIdleMs),
    documentation: "Idle connections are closed after this many milliseconds"
  }
]

/** Every broker setting: the table above plus the broker synonyms of the topic configs (log.retention.ms, ...). */
const allBrokerSettings: ReadonlyArray<BrokerSettingDef> = (() => {
  const out = [...brokerSettingDefs]
  const seen = new Set(out.map((d) => d.name))
  for (const def of topicConfigDefs.values()) {
    if (def.brokerSynonym === undefined || seen.has(def.brokerSynonym)) continue
    seen.add(def.brokerSynonym)
    out.push({ name: def.brokerSynonym, type: def.type, value: def.defaultValue, documentation: def.documentation })
  }
  return out
})()

const brokerSynonyms = (
  name: string,
  value: string,
  baselineValue: string,
  alwaysStatic: boolean
): ReadonlyArray<Synonym> => {
  if (alwaysStatic) return [{ name, value, source: ConfigSource.STATIC_BROKER_CONFIG }]
  if (value !== baselineValue) {
    return [
      { name, value, source: ConfigSource.STATIC_BROKER_CONFIG },
      { name, value: baselineValue, source: ConfigSource.DEFAULT_CONFIG }
    ]
  }
  return [{ name, value, source: ConfigSource.DEFAULT_CONFIG }]
}

/** The broker resource's configs (all read-only: this broker has no dynamic configs). */
export const describeBrokerConfigs = (broker: BrokerConfigShape): ReadonlyArray<DescribedConfig> => {
  const baseline = baselineOf(broker)
  return allBrokerSettings.map((d) => {
    const value = d.value(broker)
    const synonyms = brokerSynonyms(d.name, value, d.value(baseline), d.alwaysStatic === true)
    return {
      name: d.name,
      value,
      readOnly: true,
      setHere: synonyms[0]!.source !== ConfigSource.DEFAULT_CONFIG,
      source: synonyms[0]!.source,
      isSensitive: false,
      synonyms,
      configType: typeIds[d.type],
      documentation: d.documentation
    }
  })
}

/** One topic config given the topic's overrides. */
export const describeTopicConfig = (
  def: TopicConfigDef,
  overrides: ReadonlyMap<string, string>,
  broker: BrokerConfigShape
): DescribedConfig => {
  const override = overrides.get(def.name)
  const fallback = def.defaultValue(broker)
  const synonyms: Array<Synonym> = []
  if (override !== undefined) synonyms.push({ name: def.name, value: override, source: ConfigSource.DYNAMIC_TOPIC_CONFIG })
  if (def.brokerSynonym !== undefined) {
    synonyms.push(...brokerSynonyms(def.brokerSynonym, fallback, def.defaultValue(baselineOf(broker)), false))
  }
  return {
    name: def.name,
    value: override ?? fallback,
    readOnly: false,
    setHere: override !== undefined,
    source: synonyms[0]?.source ?? ConfigSource.DEFAULT_CONFIG,
    isSensitive: false,
    synonyms,
    configType: typeIds[def.type],
    documentation: def.documentation
  }
}

/** Every topic config of a topic, in table order. */
export const describeTopicConfigs = (
  overrides: ReadonlyMap<string, string>,
  broker: BrokerConfigShape
): ReadonlyArray<DescribedConfig> => [...topicConfigDefs.values()].map((d) => describeTopicConfig(d, overrides, broker))

type ResultOut = DescribeConfigsResponseInput["results"][number]
type ConfigOut = ResultOut["configs"][number]

/** Kafka's check of a BROKER resource name: "" (cluster defaults) or this node's id. */
export const parseBrokerId = (name: string): number | undefined =>
  /^[+-]?\d+$/.test(name) && Math.abs(Number(name)) <= 2 ** 31 ? Number(name) : undefined

export const make = Effect.gen(function* () {
  const broker = yield* BrokerConfig
  const metadata = yield* ClusterMetadata

  const shape = (c: DescribedConfig, v: number, includeSynonyms: boolean, includeDocs: boolean): ConfigOut => ({
    name: c.name,
    value: c.isSensitive ? null : c.value,
    readOnly: c.readOnly,
    // v0 only (not ignorable: later versions must leave it false)
    isDefault: v === 0 && !c.setHere,
    configSource: c.source,
    isSensitive: c.isSensitive,
    synonyms: v >= 1 && includeSynonyms ? c.synonyms : [],
    configType: c.configType,
    documentation: v >= 3 && includeDocs ? c.documentation : null
  })

  const failed = (resourceType: number, resourceName: string, errorCode: number, errorMessage: string | null): ResultOut => ({
    errorCode,
    errorMessage,
    resourceType,
    resourceName,
    configs: []
  })

  return defineHandler<DescribeConfigsRequest, DescribeConfigsResponseInput>({
    apiKey: 32,
    name: "DescribeConfigs",
    minVersion: 0,
    maxVersion: 4,
    handle: (ctx, req) =>
      Effect.sync(() => {
        const v = ctx.apiVersion
        const results = req.resources.map((r): ResultOut => {
          const keys = r.configurationKeys
          const wanted = (name: string) => keys === null || keys.length === 0 || keys.includes(name)
          const ok = (configs: ReadonlyArray<DescribedConfig>): ResultOut => ({
            errorCode: ErrorCode.NONE,
            errorMessage: null,
            resourceType: r.resourceType,
            resourceName: r.resourceName,
            configs: configs.filter((c) => wanted(c.name)).map((c) => shape(c, v, req.includeSynonyms, req.includeDocumentation))
          })
          switch (r.resourceType) {
            case ResourceType.TOPIC: {
              const topic = metadata.current().topics.get(r.resourceName)
              if (topic !== undefined) return ok(describeTopicConfigs(topic.configs, broker))
              const problem = r.resourceName === METADATA_LOG_ID ? undefined : checkTopicName(r.resourceName)
              return problem !== undefined
                ? failed(r.resourceType, r.resourceName, ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
                : failed(r.resourceType, r.resourceName, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null)
            }
            case ResourceType.BROKER: {
              if (r.resourceName === "") return ok([])
              const id = parseBrokerId(r.resourceName)
              if (id === undefined) {
                return failed(
                  r.resourceType,
                  r.resourceName,
                  ErrorCode.INVALID_REQUEST,
                  `Broker id must be an integer, but it is: ${r.resourceName}`
                )
              }
              if (id !== broker.nodeId) {
                return failed(
                  r.resourceType,
                  r.resourceName,
                  ErrorCode.INVALID_REQUEST,
                  `Unexpected broker id, expected ${broker.nodeId} or empty string, but received ${r.resourceName}`
                )
              }
              return ok(describeBrokerConfigs(broker))
            }
            default: {
              const typeName = resourceTypeName(r.resourceType)
              return failed(
                r.resourceType,
                r.resourceName,
                ErrorCode.INVALID_REQUEST,
                typeName === "UNKNOWN"
                  ? `Unsupported resource type: ${typeName}`
                  : `Resource type ${typeName} is not supported by this broker (only TOPIC and BROKER)`
              )
            }
          }
        })
        return { throttleTimeMs: 0, results }
      })
  })
})
