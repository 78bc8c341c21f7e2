import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import * as BrokerConfig from "../../src/config/BrokerConfig.js"

const load = (env: Record<string, string>) =>
  Effect.runSync(Effect.either(Effect.withConfigProvider(BrokerConfig.load, BrokerConfig.envProvider(env))))

describe("BrokerConfig", () => {
  it("uses Kafka-like defaults: localhost:9092, ./data, batch fsync, auto-create on", () => {
    const c = Either.getOrThrow(load({}))
    expect(c).toMatchObject({ kafkaHost: "127.0.0.1", kafkaPort: 9092, dataDir: "./data", autoCreateTopics: true, advertisedPort: 9092 })
    expect(c.walFsync).toEqual({ _tag: "batch" })
    expect(c.walJournalFileBytes).toBe(0)
    expect(Either.getOrThrow(load({ CHRONIK_WAL_JOURNAL_FILE_BYTES: "67108864" })).walJournalFileBytes).toBe(67108864)
    expect(c.walBackgroundSyncMs).toBe(5)
    expect(Either.getOrThrow(load({ CHRONIK_WAL_BACKGROUND_SYNC_MS: "0" })).walBackgroundSyncMs).toBe(0)
    expect(c.walAsyncWrites).toBe(false)
    expect(Either.getOrThrow(load({ CHRONIK_WAL_ASYNC_WRITES: "true" })).walAsyncWrites).toBe(true)
  })

  it("reads CHRONIK_* variables in CONSTANT_CASE", () => {
    const c = Either.getOrThrow(
      load({ CHRONIK_KAFKA_PORT: "19092", CHRONIK_WAL_FSYNC: "interval:25", CHRONIK_AUTO_CREATE_TOPICS: "false", CHRONIK_ADVERTISED_HOST: "kafka.local" })
    )
    expect(c).toMatchObject({ kafkaPort: 19092, autoCreateTopics: false, advertisedHost: "kafka.local", advertisedPort: 19092 })
    expect(c.walFsync).toEqual({ _tag: "interval", ms: 25 })
  })

  it.each([
    [{ CHRONIK_KAFKA_HOST: "0.0.0.0" }, "needs an advertised address"],
    [{ CHRONIK_WAL_FSYNC: "sometimes" }, "walFsync (CHRONIK_WAL_FSYNC)"],
    [{ CHRONIK_KAFKA_PORT: "70000" }, "kafkaPort (CHRONIK_KAFKA_PORT)"],
    [{ CHRONIK_KAFKA_PORT: "abc" }, "CHRONIK_KAFKA_PORT"],
    [{ CHRONIK_NUM_PARTITIONS: "0" }, "numPartitions (CHRONIK_NUM_PARTITIONS)"],
    [{ CHRONIK_LOG_SEGMENT_BYTES: "3" }, "logSegmentBytes"],
    [{ CHRONIK_WAL_JOURNAL_FILE_BYTES: "1000" }, "walJournalFileBytes (CHRONIK_WAL_JOURNAL_FILE_BYTES)"],
    [{ CHRONIK_WAL_JOURNAL_FILE_BYTES: "-1" }, "walJournalFileBytes (CHRONIK_WAL_JOURNAL_FILE_BYTES)"],
    [{ CHRONIK_WAL_BACKGROUND_SYNC_MS: "-1" }, "walBackgroundSyncMs (CHRONIK_WAL_BACKGROUND_SYNC_MS)"],
    [{ CHRONIK_WAL_BACKGROUND_SYNC_MS: "1001" }, "walBackgroundSyncMs (CHRONIK_WAL_BACKGROUND_SYNC_MS)"],
    [{ CHRONIK_DATA_DIR: " " }, "dataDir"]
  ])("rejects %j with a message naming the setting", (env, needle) => {
    const r = load(env)
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) expect(r.left.message).toContain(needle)
  })

  it("reports every problem at once", () => {
    const r = load({ CHRONIK_KAFKA_HOST: "0.0.0.0", CHRONIK_NUM_PARTITIONS: "0" })
    expect(Either.isLeft(r) && r.left.message.split("\n  - ").length).toBe(3)
  })
})
