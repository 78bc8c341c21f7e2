/**
 * Replays the consumer-group part of real client sessions captured against
 * Apache Kafka (test/fixtures/golden/<client>: kafkajs, @platformatic/kafka,
 * kcat/librdkafka) through our handlers, and compares our responses with
 * Kafka's, field by field.
 *
 * Member ids differ (each coordinator makes its own), so a Kafka-assigned id
 * seen in a request is replaced by the id we assigned, and our ids are
 * mapped back before comparing. FindCoordinator's node is ours, so its
 * node id, host and port are not compared.
 */
import { readFileSync } from "node:fs"
import { join as joinPath } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import * as RequestRouter from "../../src/broker/RequestRouter.js"
import { makeHandlersWith } from "../../src/group/handlers.js"
import { decodeRequest, decodeResponse, encodeRequest, type ApiKey } from "../../src/protocol/messages.js"
import type { ConnectionContext } from "../../src/transport/KafkaTransport.js"
import { coordinator } from "./helpers.js"

const GROUP_APIS = new Set(["FindCoordinator", "JoinGroup", "SyncGroup", "Heartbeat", "OffsetFetch", "OffsetCommit", "LeaveGroup"])

interface ManifestEntry {
  readonly seq: number
  readonly api: string
  readonly apiKey: number
  readonly apiVersion: number
  readonly request: string
  readonly response: string
}

const conn: ConnectionContext = {
  id: 1,
  remoteAddress: "127.0.0.1",
  remotePort: 40000,
  close: () => Effect.void,
  closed: Effect.never,
  isOpen: () => true
}

/** Replaces every string found in `map` (deeply; Buffers and bigints untouched). */
const substitute = (x: unknown, map: ReadonlyMap<string, string>): unknown => {
  if (typeof x === "string") return map.get(x) ?? x
  if (Buffer.isBuffer(x) || x === null || typeof x !== "object") return x
  if (Array.isArray(x)) return x.map((v) => substitute(v, map))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(x)) out[k] = substitute(v, map)
  return out
}

const normalizeFindCoordinator = (body: Record<string, unknown>): Record<string, unknown> => {
  const strip = (o: Record<string, unknown>): Record<string, unknown> => ({ ...o, nodeId: 0, host: "", port: 0, errorMessage: null })
  const out = strip(body)
  if (Array.isArray(body.coordinators)) out.coordinators = body.coordinators.map((c: Record<string, unknown>) => strip(c))
  return out
}

const dir = (client: string) => joinPath(import.meta.dirname, "..", "fixtures", "golden", client)

describe("golden consumer-group sessions replayed against our coordinator", () => {
  for (const client of ["kafkajs", "platformatic", "kcat"]) {
    it.scoped(`${client}: every group API response matches Kafka's`, () =>
      Effect.gen(function* () {
        const manifest = JSON.parse(readFileSync(joinPath(dir(client), "manifest.json"), "utf8")) as {
          files: ReadonlyArray<ManifestEntry>
        }
        const entries = manifest.files.filter((f) => GROUP_APIS.has(f.api)).sort((a, b) => a.seq - b.seq)
        expect(entries.length).toBeGreaterThan(5)
        const gc = yield* coordinator({ initialRebalanceDelayMs: 0 })
        const router = RequestRouter.make(makeHandlersWith(gc, { node: { nodeId: 1, host: "h", port: 1 }, partitionExists: () => true }))
        const kafkaToOurs = new Map<string, string>()
        const oursToKafka = new Map<string, string>()
        let pendingOurs: string | null = null
        let compared = 0
        for (const e of entries) {
          const reqFrame = readFileSync(joinPath(dir(client), e.request))
          const kafkaResp = decodeResponse(e.apiKey as ApiKey, e.apiVersion, readFileSync(joinPath(dir(client), e.response)))
          const req = decodeRequest(reqFrame)
          // A Kafka member id we have not seen (its MEMBER_ID_REQUIRED answer is not in the capture):
          // it is the member we asked to rejoin.
          const reqMember = (req.body as { memberId?: unknown }).memberId
          if (typeof reqMember === "string" && reqMember !== "" && !kafkaToOurs.has(reqMember) && pendingOurs !== null) {
            kafkaToOurs.set(reqMember, pendingOurs)
            oursToKafka.set(pendingOurs, reqMember)
            pendingOurs = null
          }
          const body = substitute(req.body, kafkaToOurs)
          const frame = encodeRequest(req.apiKey, req.apiVersion, req.correlationId, req.clientId, body as never)
          const fiber = yield* Effect.fork(router.route(conn, frame))
          yield* TestClock.adjust(0)
          const out = yield* Fiber.join(fiber)
          expect(out, `${e.request}: no response`).not.toBeNull()
          const ours = decodeResponse(e.apiKey as ApiKey, e.apiVersion, out!)
          expect(ours.correlationId).toBe(kafkaResp.correlationId)
          const kafkaBody = kafkaResp.body as unknown as Record<string, unknown>
          const ourBody = ours.body as unknown as Record<string, unknown>
          if (e.api === "JoinGroup") {
            const km = kafkaBody.memberId as string
            const om = ourBody.memberId as string
            if (km !== "" && om !== "") {
              kafkaToOurs.set(km, om)
              oursToKafka.set(om, km)
            } else if (om !== "") {
              pendingOurs = om
            }
          }
          if (kafkaBody.errorCode === 15 || kafkaBody.errorCode === 16) {
            // Kafka answered COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR while it was still creating and
            // loading __consumer_offsets (kafkajs retried); our coordinator is available at once.
            expect([0, 79]).toContain(ourBody.errorCode)
            continue
          }
          let mine = substitute(ourBody, oursToKafka) as Record<string, unknown>
          let theirs = kafkaBody
          if (e.api === "FindCoordinator") {
            mine = normalizeFindCoordinator(mine)
            theirs = normalizeFindCoordinator(theirs)
          }
          expect(mine, `${client} ${e.request}`).toEqual(theirs)
          compared++
        }
        expect(compared).toBeGreaterThanOrEqual(entries.length - 2)
      })
    )
  }
})
