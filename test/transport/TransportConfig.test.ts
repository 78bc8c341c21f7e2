import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import * as TransportConfig from "../../src/transport/TransportConfig.js"

const read = (layer: Layer.Layer<TransportConfig.TransportConfig, unknown>) =>
  Effect.scoped(Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, TransportConfig.TransportConfig)))

describe("TransportConfig", () => {
  it.effect("defaults match Kafka's socket.request.max.bytes and connections.max.idle.ms", () =>
    Effect.gen(function*() {
      const c = yield* read(TransportConfig.layerConfig()).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
      )
      expect(c).toEqual(TransportConfig.defaults)
      expect(c.maxRequestBytes).toBe(104857600)
      expect(c.idleTimeoutMs).toBe(600000)
    }))

  it.effect("reads nested camelCase keys", () =>
    Effect.gen(function*() {
      const c = yield* read(TransportConfig.layerConfig()).pipe(
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["transport.port", "0"],
              ["transport.host", "0.0.0.0"],
              ["transport.maxInFlightPerConnection", "5"]
            ])
          )
        )
      )
      expect(c.port).toBe(0)
      expect(c.host).toBe("0.0.0.0")
      expect(c.maxInFlightPerConnection).toBe(5)
    }))

  it.effect("reads CHRONIK_TRANSPORT_* environment variables", () =>
    Effect.gen(function*() {
      process.env["CHRONIK_TRANSPORT_MAX_REQUEST_BYTES"] = "1234"
      process.env["CHRONIK_TRANSPORT_PORT"] = "19092"
      try {
        const c = yield* read(TransportConfig.layerFromEnv)
        expect(c.maxRequestBytes).toBe(1234)
        expect(c.port).toBe(19092)
      } finally {
        delete process.env["CHRONIK_TRANSPORT_MAX_REQUEST_BYTES"]
        delete process.env["CHRONIK_TRANSPORT_PORT"]
      }
    }))

  it.effect("rejects invalid values", () =>
    Effect.gen(function*() {
      const err = yield* Effect.flip(
        read(TransportConfig.layerConfig()).pipe(
          Effect.withConfigProvider(
            ConfigProvider.fromMap(new Map([["transport.maxInFlightPerConnection", "0"]]))
          )
        )
      )
      expect(String(err)).toMatch(/maxInFlightPerConnection/)
    }))
})
