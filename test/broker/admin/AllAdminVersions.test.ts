/**
 * Each admin API answers a valid request without error at every version its
 * handler advertises (the response encodes at that version and decodes).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { apiEntry } from "../../../src/protocol/messages.js"
import { type AdminBroker, batch, startAdminBroker } from "./adminBroker.js"

let broker: AdminBroker

const create = (name: string, partitions = 1) => ({ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] })

/** A valid request per API and version (each may create what it needs first), and the error codes of its response. */
const cases: Record<number, { range: [number, number]; run: (v: number) => Promise<Array<number>> }> = {
  19: {
    range: [0, 7],
    run: async (v) => {
      const r = await broker.request(19, v, {
        topics: [{ ...create(`av-ct-${v}`), configs: [{ name: "retention.ms", value: "1000" }] }],
        timeoutMs: 1000,
        validateOnly: false
      })
      return r.topics.map((t) => t.errorCode)
    }
  },
  20: {
    range: [0, 6],
    run: async (v) => {
      const c = await broker.request(19, 7, { topics: [create(`av-dt-${v}`)], timeoutMs: 1000 })
      const r = await broker.request(
        20,
        v,
        v >= 6
          ? { topics: [{ topicId: c.topics[0]!.topicId! }], timeoutMs: 1000 }
          : { topicNames: [`av-dt-${v}`], timeoutMs: 1000 }
      )
      return [...c.topics.map((t) => t.errorCode), ...r.responses.map((t) => t.errorCode)]
    }
  },
  37: {
    range: [0, 3],
    run: async (v) => {
      const c = await broker.request(19, 7, { topics: [create(`av-cp-${v}`)], timeoutMs: 1000 })
      const r = await broker.request(37, v, { topics: [{ name: `av-cp-${v}`, count: 2, assignments: null }], timeoutMs: 1000, validateOnly: false })
      return [...c.topics.map((t) => t.errorCode), ...r.results.map((t) => t.errorCode)]
    }
  },
  32: {
    range: [0, 4],
    run: async (v) => {
      const r = await broker.request(32, v, {
        resources: [
          { resourceType: 2, resourceName: "av-base", configurationKeys: null },
          { resourceType: 4, resourceName: String(broker.nodeId), configurationKeys: null }
        ],
        includeSynonyms: v >= 1,
        includeDocumentation: v >= 3
      })
      expect(r.results.every((x) => x.configs.length > 0)).toBe(true)
      return r.results.map((x) => x.errorCode)
    }
  },
  33: {
    range: [0, 2],
    run: async (v) => {
      const r = await broker.request(33, v, {
        resources: [{ resourceType: 2, resourceName: "av-base", configs: [{ name: "retention.ms", value: String(1000 + v) }] }],
        validateOnly: false
      })
      return r.responses.map((x) => x.errorCode)
    }
  },
  44: {
    range: [0, 1],
    run: async (v) => {
      const r = await broker.request(44, v, {
        resources: [{ resourceType: 2, resourceName: "av-base", configs: [{ name: "segment.ms", configOperation: 0, value: String(5000 + v) }] }],
        validateOnly: false
      })
      return r.responses.map((x) => x.errorCode)
    }
  },
  60: {
    range: [0, 1],
    run: async (v) => {
      const r = await broker.request(60, v, { includeClusterAuthorizedOperations: true, endpointType: 1 })
      expect(r.brokers).toHaveLength(1)
      return [r.errorCode]
    }
  },
  21: {
    range: [0, 2],
    run: async (v) => {
      await broker.request(0, 9, { acks: -1, timeoutMs: 5000, topicData: [{ name: "av-base", partitionData: [{ index: 0, records: batch(1) }] }] })
      const r = await broker.request(21, v, { topics: [{ name: "av-base", partitions: [{ partitionIndex: 0, offset: -1n }] }], timeoutMs: 1000 })
      return r.topics.flatMap((t) => t.partitions.map((p) => p.errorCode))
    }
  }
}

describe("admin APIs at every advertised version", () => {
  beforeAll(async () => {
    broker = await startAdminBroker()
    const c = await broker.request(19, 7, { topics: [create("av-base")], timeoutMs: 1000 })
    expect(c.topics[0]!.errorCode).toBe(0)
  })
  afterAll(async () => {
    await broker.close()
  })

  it("the handlers advertise the spec's full version ranges", () => {
    for (const [key, c] of Object.entries(cases)) {
      const spec = apiEntry(Number(key))!
      expect([spec.requestMinVersion, spec.requestMaxVersion], `api ${key} spec`).toEqual(c.range)
      const a = broker.apis.find((x) => x.apiKey === Number(key))
      expect(a && [a.minVersion, a.maxVersion], `api ${key} advertised`).toEqual(c.range)
    }
  })

  for (const [key, c] of Object.entries(cases)) {
    it(`api ${key} v${c.range[0]}-v${c.range[1]}`, async () => {
      for (let v = c.range[0]; v <= c.range[1]; v++) {
        const errors = await c.run(v)
        expect(errors.length, `api ${key} v${v}`).toBeGreaterThan(0)
        expect(errors, `api ${key} v${v} (closed: ${broker.closedConnections.at(-1)})`).toEqual(errors.map(() => 0))
      }
    })
  }
})
