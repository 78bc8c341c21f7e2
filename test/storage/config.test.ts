import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { StorageConfig as SC } from "../../src/storage/index.js"

const fromEnv = (env: Record<string, string>) =>
  Effect.gen(function*() {
    return yield* SC.StorageConfig
  }).pipe(
    Effect.provide(SC.layerFromEnv),
    Effect.withConfigProvider(
      ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }).pipe(
        ConfigProvider.nested("chronik"),
        ConfigProvider.constantCase
      )
    )
  )

describe("StorageConfig", () => {
  it.effect("reads CHRONIK_STORAGE_* with defaults", () =>
    Effect.gen(function*() {
      const c = yield* fromEnv({
        CHRONIK_STORAGE_DATA_DIR: "/var/chronik",
        CHRONIK_STORAGE_FSYNC_POLICY: "interval:50",
        CHRONIK_STORAGE_SEGMENT_BYTES: "1048576"
      })
      expect(c.dataDir).toBe("/var/chronik")
      expect(c.fsyncPolicy).toEqual({ _tag: "interval", ms: 50 })
      expect(c.segmentBytes).toBe(1048576)
      expect(c.indexIntervalBytes).toBe(4096)
      const d = yield* fromEnv({})
      expect(d.fsyncPolicy).toEqual({ _tag: "batch" })
      expect(d.dataDir).toBe("./data")
    }))

  it.effect("rejects an unknown fsync policy", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(fromEnv({ CHRONIK_STORAGE_FSYNC_POLICY: "sometimes" }))
      expect(Exit.isFailure(exit)).toBe(true)
    }))

  it("layer fills defaults", () => {
    const l = SC.layer({ dataDir: "/x", segmentMs: 5 })
    const c = Effect.runSync(Effect.provide(SC.StorageConfig, l))
    expect(c.segmentMs).toBe(5)
    expect(c.memoryTierBytes).toBe(32 * 1024 * 1024)
    void Layer
  })
})
