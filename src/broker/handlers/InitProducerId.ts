/**
 * InitProducerId (key 22), v0-v5, for idempotent producers.
 *
 * Without a transactional id Kafka always hands out a fresh producer id with
 * epoch 0 (a KIP-360 epoch-bump request from an idempotent producer gets a
 * new id too). Ids come from durably reserved blocks in the metadata log, so
 * a restart never reuses one. Transactions are not supported: a request with
 * a transactional id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients
 * treat as fatal with a clear message instead of retrying forever.
 */
import { Effect } from "effect"
import { ClusterMetadata } from "../../metadata/ClusterMetadata.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { InitProducerIdRequest, InitProducerIdResponseInput } from "../../protocol/messages.js"
import { defineHandler } from "../RequestRouter.js"

const BLOCK = 1000

export const make = Effect.gen(function* () {
  const metadata = yield* ClusterMetadata
  const lock = yield* Effect.makeSemaphore(1)
  let next = 0n
  let end = 0n

  const nextProducerId = lock.withPermits(1)(
    Effect.gen(function* () {
      if (next >= end) {
        next = yield* metadata.allocateProducerIds(BLOCK)
        end = next + BigInt(BLOCK)
      }
      return next++
    })
  )

  return defineHandler<InitProducerIdRequest, InitProducerIdResponseInput>({
    apiKey: 22,
    name: "InitProducerId",
    minVersion: 0,
    maxVersion: 5,
    handle: (_ctx, req) => {
      if (req.transactionalId !== null) {
        return Effect.succeed({
          throttleTimeMs: 0,
          errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
          producerId: -1n,
          producerEpoch: -1
        })
      }
      return Effect.match(nextProducerId, {
        onFailure: (e) => ({ throttleTimeMs: 0, errorCode: e.errorCode, producerId: -1n, producerEpoch: -1 }),
        onSuccess: (producerId) => ({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId, producerEpoch: 0 })
      })
    }
  })
})
