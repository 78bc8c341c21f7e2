/**
 * An in-process standalone broker for handler tests: the real core layers
 * (file storage in a temp dir, metadata, replicas, router) without sockets.
 * `request` encodes a request with the generated codec, routes it, and
 * decodes the response, so tests exercise exactly the wire path.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Layer, ManagedRuntime } from "effect"
import * as Standalone from "../../layers/Standalone.js"
import { type ApiRange, RequestRouter } from "../../src/broker/RequestRouter.js"
import { ClusterMetadata } from "../../src/metadata/ClusterMetadata.js"
import * as BrokerConfig from "../../src/config/BrokerConfig.js"
import {
  type ApiKey,
  type RequestInputTypes,
  type ResponseTypes,
  decodeResponse,
  encodeRequest
} from "../../src/protocol/messages.js"
import { type GroupFigures, RaftEngine } from "../../src/raft/RaftEngine.js"
import type { FileIO } from "../../src/storage/FileIO.js"
import type { ConnectionContext } from "../../src/transport/KafkaTransport.js"

export interface InProcessBroker {
  readonly dataDir: string
  readonly nodeId: number
  readonly clusterId: () => Promise<string>
  /** The API ranges the router advertises. */
  readonly apis: ReadonlyArray<ApiRange>
  /** Sends one request; resolves with the decoded response body, or null when the broker sent none. */
  readonly request: <K extends ApiKey>(apiKey: K, apiVersion: number, body: RequestInputTypes[K]) => Promise<ResponseTypes[K] | null>
  /** Routes a raw request frame (no size prefix); resolves with the raw response frame or null. */
  readonly raw: (frame: Buffer) => Promise<Buffer | null>
  /** Closes the runtime (graceful) and removes the data dir unless `keepData`. */
  readonly close: (keepData?: boolean) => Promise<void>
  /** Connections the router asked to close, with reasons. */
  readonly closedConnections: Array<string>
  /** The node's Raft groups (one per partition). */
  readonly raftGroups: () => Promise<ReadonlyArray<GroupFigures>>
}

export const startInProcessBroker = async (
  overrides: Partial<BrokerConfig.BrokerConfigInput> = {},
  dataDir: string = mkdtempSync(join(tmpdir(), "chronik-inproc-")),
  options: { readonly fileIO?: FileIO } = {}
): Promise<InProcessBroker> => {
  const config = Either.getOrThrowWith(
    BrokerConfig.validate({
      ...(await Effect.runPromise(Effect.withConfigProvider(BrokerConfig.configInput, BrokerConfig.envProvider({})))),
      dataDir,
      kafkaPort: 0,
      logRetentionCheckIntervalMs: 3_600_000,
      ...overrides
    }),
    (e) => new Error(e.message)
  )
  const runtime = ManagedRuntime.make(Standalone.core(config, options).pipe(Layer.orDie))
  const router = await runtime.runPromise(RequestRouter)
  const closedConnections: Array<string> = []
  let correlationId = 0
  const connection: ConnectionContext = {
    id: 1,
    remoteAddress: "127.0.0.1",
    remotePort: 1,
    close: (reason) => Effect.sync(() => void closedConnections.push(reason)),
    closed: Effect.never,
    isOpen: () => true
  }
  return {
    dataDir,
    nodeId: config.nodeId,
    clusterId: () => runtime.runPromise(Effect.map(ClusterMetadata, (m) => m.clusterId)),
    apis: router.apis,
    closedConnections,
    request: async (apiKey, apiVersion, body) => {
      const id = ++correlationId
      const frame = encodeRequest(apiKey, apiVersion, id, "in-process-test", body)
      const response = await runtime.runPromise(router.route(connection, frame))
      if (response === null) return null
      const decoded = decodeResponse(apiKey, apiVersion, response)
      if (decoded.correlationId !== id) throw new Error(`correlation id ${decoded.correlationId} != ${id}`)
      return decoded.body
    },
    raw: (frame) => runtime.runPromise(router.route(connection, frame)),
    raftGroups: () => runtime.runPromise(Effect.flatMap(RaftEngine, (e) => e.allFigures)),
    close: async (keepData = false) => {
      await runtime.dispose()
      if (!keepData) rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
