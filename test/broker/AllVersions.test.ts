/**
 * Every API the broker advertises answers a valid request at every version it
 * advertises: the response encodes (no field the version lacks), decodes, and
 * carries no error. This is what "advertise only what works at every
 * version" means for the codec side of each handler.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { encodeBatch } from "../../src/protocol/recordBatch.js"
import type { RequestInputTypes } from "../../src/protocol/messages.js"
import { type InProcessBroker, startInProcessBroker } from "../support/inProcessBroker.js"

let broker: InProcessBroker
let topicId = ""

const records = () =>
  encodeBatch({ baseOffset: 0n, compression: 0, records: [{ key: Buffer.from("k"), value: Buffer.from("v") }] })

/** A valid request body per API key and version, and how to find errors in its response. */
const requests: Record<number, (v: number) => { body: unknown; errors: (r: any) => Array<number> }> = {
  18: (v) => ({
    body: v >= 3 ? { clientSoftwareName: "chronik-test", clientSoftwareVersion: "1.0" } : {},
    errors: (r) => [r.errorCode]
  }),
  3: (v) => ({
    body: { topics: v >= 10 ? [{ name: "every", topicId: "AAAAAAAAAAAAAAAAAAAAAA" }] : [{ name: "every" }], allowAutoTopicCreation: true },
    errors: (r) => r.topics.flatMap((t: any) => [t.errorCode, ...t.partitions.map((p: any) => p.errorCode)])
  }),
  0: () => ({
    body: { acks: -1, timeoutMs: 5000, topicData: [{ name: "every", partitionData: [{ index: 0, records: records() }] }] },
    errors: (r) => r.responses.flatMap((t: any) => t.partitionResponses.map((p: any) => p.errorCode))
  }),
  1: (v) => ({
    body: {
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [v >= 13 ? { topicId, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] } : { topic: "every", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }]
    },
    errors: (r) => [r.errorCode, ...r.responses.flatMap((t: any) => t.partitions.map((p: any) => p.errorCode))]
  }),
  2: () => ({
    body: { replicaId: -1, topics: [{ name: "every", partitions: [{ partitionIndex: 0, timestamp: -1n }] }] },
    errors: (r) => r.topics.flatMap((t: any) => t.partitions.map((p: any) => p.errorCode))
  }),
  23: () => ({
    body: { topics: [{ topic: "every", partitions: [{ partition: 0, leaderEpoch: 0 }] }] },
    errors: (r) => r.topics.flatMap((t: any) => t.partitions.map((p: any) => p.errorCode))
  }),
  22: () => ({ body: { transactionalId: null, transactionTimeoutMs: 60_000 }, errors: (r) => [r.errorCode] })
}

describe("every advertised API at every advertised version", () => {
  let advertised: Array<{ apiKey: number; minVersion: number; maxVersion: number }> = []
  beforeAll(async () => {
    broker = await startInProcessBroker()
    const md = await broker.request(3, 12, { topics: [{ name: "every" }], allowAutoTopicCreation: true })
    topicId = md!.topics[0]!.topicId
    const av = await broker.request(18, 3, { clientSoftwareName: "chronik-test", clientSoftwareVersion: "1.0" })
    advertised = av!.apiKeys
  })
  afterAll(async () => {
    await broker.close()
  })

  it("has a request for every advertised API in this test", () => {
    const missing = advertised.map((a) => a.apiKey).filter((k) => requests[k] === undefined && !covered.has(k))
    expect(missing).toEqual([])
  })

  for (const apiKey of Object.keys(requests).map(Number)) {
    it(`api ${apiKey}`, async () => {
      const range = advertised.find((a) => a.apiKey === apiKey)
      expect(range, `api ${apiKey} is advertised`).toBeDefined()
      for (let v = range!.minVersion; v <= range!.maxVersion; v++) {
        const { body, errors } = requests[apiKey]!(v)
        const response = await broker.request(apiKey as 0, v, body as RequestInputTypes[0])
        expect(response, `api ${apiKey} v${v} answered (closed: ${broker.closedConnections.at(-1)})`).not.toBeNull()
        expect(errors(response), `api ${apiKey} v${v} errors`).toEqual(errors(response).map(() => 0))
      }
    })
  }
})

/** APIs whose every-version coverage lives in their own test files (admin, groups). */
const covered = new Set<number>([8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 21, 32, 33, 37, 42, 44, 47, 60])
