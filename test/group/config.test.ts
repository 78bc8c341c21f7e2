import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { GroupCoordinatorConfig, defaultConfig, layerConfigFromEnv } from "../../src/group/GroupCoordinator.js"

describe("GroupCoordinatorConfig", () => {
  it.effect("reads CHRONIK_GROUP_* variables over the defaults and rejects inconsistent values", () =>
    Effect.gen(function* () {
      const c = yield* Effect.provide(
        GroupCoordinatorConfig,
        layerConfigFromEnv({ CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS: "0", CHRONIK_GROUP_OFFSETS_RETENTION_MS: "60000" })
      )
      expect(c).toEqual({ ...defaultConfig, initialRebalanceDelayMs: 0, offsetsRetentionMs: 60000 })
      const bad = yield* Effect.exit(
        Effect.provide(GroupCoordinatorConfig, layerConfigFromEnv({ CHRONIK_GROUP_MIN_SESSION_TIMEOUT_MS: "9", CHRONIK_GROUP_MAX_SESSION_TIMEOUT_MS: "8" }))
      )
      expect(Exit.isFailure(bad)).toBe(true)
    })
  )
})
