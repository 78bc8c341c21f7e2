/**
 * Test-local in-process broker for the admin handlers: the standalone core
 * layers (as test/support/inProcessBroker.ts builds them) with a router made
 * of the admin handlers plus Produce, Fetch and Metadata, so these tests do
 * not depend on the handler registry.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Layer, ManagedRuntime } from "effect"
import * as Standalone from "../../../layers/Standalone.js"
import * as AlterConfigs from "../../../src/broker/handlers/AlterConfigs.js"
import * as CreatePartitions from "../../../src/broker/handlers/CreatePartitions.js"
import * as CreateTopics from "../../../src/broker/handlers/CreateTopics.js"
import * as DeleteRecords from "../../../src/broker/handlers/DeleteRecords.js"
import * as DeleteTopics from "../../../src/broker/handlers/DeleteTopics.js"
import * as DescribeCluster from "../../../src/broker/handlers/DescribeCluster.js"
import * as DescribeConfigs from "../../../src/broker/handlers/DescribeConfigs.js"
import * as Fetch from "../../../src/broker/handlers/Fetch.js"
import * as IncrementalAlterConfigs from "../../../src/broker/handlers/IncrementalAlterConfigs.js"
import * as Metadata from "../../../src/broker/handlers/Metadata.js"
import * as Produce from "../../../src/broker/handlers/Produce.js"
import * as RequestRouter from "../../../src/broker/RequestRouter.js"
import * as BrokerConfig from "../../../src/config/BrokerConfig.js"
import { ClusterMetadata } from "../../../src/metadata/ClusterMetadata.js"
import {
  type ApiKey,
  type RequestInputTypes,
  type ResponseTypes,
  decodeResponse,
  encodeRequest
} from "../../../src/protocol/messages.js"
import { encodeBatch } from "../../../src/protocol/recordBatch.js"
import type { ConnectionContext } from "../../../src/transport/KafkaTransport.js"

export interface AdminBroker {
  readonly dataDir: string
  readonly nodeId: number
  readonly request: <K extends ApiKey>(apiKey: K, apiVersion: number, body: RequestInputTypes[K]) => Promise<ResponseTypes[K]>
  readonly clusterId: () => Promise<string>
  /** The API ranges the test router advertises. */
  readonly apis: ReadonlyArray<RequestRouter.ApiRange>
  readonly closedConnections: Array<string>
  readonly close: () => Promise<void>
}

export const startAdminBroker = async (overrides: Partial<BrokerConfig.BrokerConfigInput> = {}): Promise<AdminBroker> => {
  const dataDir = mkdtempSync(join(tmpdir(), "chronik-admin-"))
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
  const runtime = ManagedRuntime.make(Standalone.core(config).pipe(Layer.orDie))
  const handlers = await runtime.runPromise(
    Effect.all([
      CreateTopics.make,
      DeleteTopics.make,
      CreatePartitions.make,
      DescribeConfigs.make,
      AlterConfigs.make,
      IncrementalAlterConfigs.make,
      DescribeCluster.make,
      DeleteRecords.make,
      Produce.make,
      Fetch.make,
      Metadata.make
    ])
  )
  const router = RequestRouter.make(handlers)
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
    closedConnections,
    request: async (apiKey, apiVersion, body) => {
      const id = ++correlationId
      const frame = encodeRequest(apiKey, apiVersion, id, "admin-test", body)
      const response = await runtime.runPromise(router.route(connection, frame))
      if (response === null) throw new Error(`no response (closed: ${closedConnections.join("; ")})`)
      const decoded = decodeResponse(apiKey, apiVersion, response)
      if (decoded.correlationId !== id) throw new Error(`correlation id ${decoded.correlationId} != ${id}`)
      return decoded.body
    },
    apis: router.apis,
    clusterId: () => runtime.runPromise(Effect.map(ClusterMetadata, (m) => m.clusterId)),
    close: async () => {
      await runtime.dispose()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

/** A record batch of `count` small records. */
export const batch = (count: number) =>
  encodeBatch({
    baseOffset: 0n,
    compression: 0,
    producerId: -1n,
    producerEpoch: -1,
    baseSequence: -1,
    baseTimestamp: BigInt(Date.now()),
    records: Array.from({ length: count }, (_, i) => ({
      offsetDelta: i,
      timestampDelta: 0n,
      key: null,
      value: Buffer.from(`v${i}`),
      headers: []
    }))
  })
