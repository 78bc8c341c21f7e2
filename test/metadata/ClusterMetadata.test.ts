import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as ClusterMetadata from "../../src/metadata/ClusterMetadata.js"
import { MetadataLog, makeMemory } from "../../src/metadata/MetadataLog.js"
import type { MetadataRecord } from "../../src/metadata/MetadataRecord.js"
import { effectiveConfig } from "../../src/metadata/TopicConfig.js"
import { ErrorCode } from "../../src/protocol/errorCodes.js"
import * as BrokerConfig from "../../src/config/BrokerConfig.js"

const options = { brokers: [1], defaultPartitions: 3, defaultReplicationFactor: 1 }

/** A metadata service over a shared in-memory log, so a test can "restart" it. */
const withService = <A, E>(
  records: Array<MetadataRecord>,
  f: (m: ClusterMetadata.ClusterMetadataShape) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const log = yield* makeMemory(records)
    const appendAndKeep = {
      ...log,
      append: (rs: ReadonlyArray<MetadataRecord>) => Effect.tap(log.append(rs), () => Effect.sync(() => records.push(...rs)))
    }
    const m = yield* ClusterMetadata.make(options).pipe(Effect.provide(Layer.succeed(MetadataLog, appendAndKeep)))
    return yield* f(m)
  })

const create = (name: string, extra: Partial<ClusterMetadata.CreateTopicRequest> = {}) => ({
  name,
  numPartitions: -1,
  replicationFactor: -1,
  configs: [],
  validateOnly: false,
  ...extra
})

describe("ClusterMetadata", () => {
  it.effect("creates topics with defaults, ids and replicas, and rejects duplicates", () =>
    withService([], (m) =>
      Effect.gen(function* () {
        const t = yield* m.createTopic(create("orders"))
        expect(t.replicas).toEqual([[1], [1], [1]])
        expect(t.topicId).toMatch(/^[A-Za-z0-9_-]{22}$/)
        expect(m.current().topicsById.get(t.topicId)?.name).toBe("orders")
        const dup = yield* Effect.flip(m.createTopic(create("orders")))
        expect(dup._tag).toBe("TopicAlreadyExists")
        expect(dup.errorCode).toBe(ErrorCode.TOPIC_ALREADY_EXISTS)
      })
    ))

  it.effect("validates names, counts, replication factor and configs like Kafka", () =>
    withService([], (m) =>
      Effect.gen(function* () {
        const errors = yield* Effect.all(
          [
            m.createTopic(create("bad/name")),
            m.createTopic(create("")),
            m.createTopic(create("x".repeat(250))),
            m.createTopic(create("zero", { numPartitions: 0 })),
            m.createTopic(create("rf3", { replicationFactor: 3 })),
            m.createTopic(create("compact", { configs: [{ name: "cleanup.policy", value: "compact" }] })),
            m.createTopic(create("unknowncfg", { configs: [{ name: "no.such.config", value: "1" }] })),
            m.createTopic(create("badretention", { configs: [{ name: "retention.ms", value: "soon" }] }))
          ].map(Effect.flip)
        )
        expect(errors.map((e) => e.errorCode)).toEqual([
          ErrorCode.INVALID_TOPIC_EXCEPTION,
          ErrorCode.INVALID_TOPIC_EXCEPTION,
          ErrorCode.INVALID_TOPIC_EXCEPTION,
          ErrorCode.INVALID_PARTITIONS,
          ErrorCode.INVALID_REPLICATION_FACTOR,
          ErrorCode.INVALID_CONFIG,
          ErrorCode.INVALID_CONFIG,
          ErrorCode.INVALID_CONFIG
        ])
        expect(errors[5]!.message).toContain("compact")
        expect(m.current().topics.size).toBe(0)
      })
    ))

  it.effect("validateOnly changes nothing", () =>
    withService([], (m) =>
      Effect.gen(function* () {
        const t = yield* m.createTopic(create("dry", { validateOnly: true, numPartitions: 5 }))
        expect(t.replicas.length).toBe(5)
        expect(m.current().topics.has("dry")).toBe(false)
      })
    ))

  it.effect("grows partitions, alters configs, deletes, and notifies listeners before returning", () =>
    withService([], (m) =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        yield* m.addListener((prev, next) =>
          Effect.sync(() => seen.push(`${prev.topics.get("t")?.replicas.length ?? 0}->${next.topics.get("t")?.replicas.length ?? 0}`))
        )
        yield* m.createTopic(create("t", { numPartitions: 2 }))
        expect(seen).toEqual(["0->2"])
        const shrink = yield* Effect.flip(m.createPartitions("t", 1, null, false))
        expect(shrink.errorCode).toBe(ErrorCode.INVALID_PARTITIONS)
        const grown = yield* m.createPartitions("t", 4, null, false)
        expect(grown.replicas.length).toBe(4)
        expect(seen).toEqual(["0->2", "2->4"])
        yield* m.alterTopicConfigs("t", [{ op: "set", name: "retention.ms", value: "1000" }], false, false)
        yield* m.alterTopicConfigs("t", [{ op: "set", name: "segment.bytes", value: "4096" }], false, false)
        expect(Object.fromEntries(m.current().topics.get("t")!.configs)).toEqual({ "retention.ms": "1000", "segment.bytes": "4096" })
        yield* m.alterTopicConfigs("t", [{ op: "set", name: "segment.bytes", value: "8192" }], true, false)
        expect(Object.fromEntries(m.current().topics.get("t")!.configs)).toEqual({ "segment.bytes": "8192" })
        yield* m.deleteTopic("t")
        expect(m.current().topics.has("t")).toBe(false)
        const again = yield* Effect.flip(m.deleteTopic("t"))
        expect(again.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      })
    ))

  it.effect("a restart replays the log to the same state, cluster id and producer ids", () =>
    Effect.gen(function* () {
      const records: Array<MetadataRecord> = []
      const before = yield* withService(records, (m) =>
        Effect.gen(function* () {
          yield* m.createTopic(create("a", { configs: [{ name: "retention.ms", value: "5" }] }))
          yield* m.createTopic(create("b", { numPartitions: 1 }))
          yield* m.deleteTopic("b")
          const pid = yield* m.allocateProducerIds(1000)
          return { state: m.current(), clusterId: m.clusterId, pid }
        })
      )
      const after = yield* withService(records, (m) =>
        Effect.gen(function* () {
          const pid = yield* m.allocateProducerIds(1000)
          return { state: m.current(), clusterId: m.clusterId, pid }
        })
      )
      expect(after.clusterId).toBe(before.clusterId)
      expect([...after.state.topics.keys()]).toEqual(["a"])
      expect(after.state.topics.get("a")!.topicId).toBe(before.state.topics.get("a")!.topicId)
      expect(after.pid).toBe(before.pid + 1000n)
    }))

  it.effect("effective config falls back to broker defaults", () =>
    Effect.gen(function* () {
      const broker = yield* BrokerConfig.BrokerConfig.pipe(Effect.provide(BrokerConfig.layer({ logRetentionMs: 1234 })))
      const eff = effectiveConfig(new Map([["message.timestamp.type", "LogAppendTime"]]), broker)
      expect(eff.retentionMs).toBe(1234)
      expect(eff.logAppendTime).toBe(true)
      expect(eff.maxMessageBytes).toBe(broker.messageMaxBytes)
    }))
})
