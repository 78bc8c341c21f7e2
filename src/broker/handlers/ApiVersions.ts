/**
 * ApiVersions (key 18), v0-v4. Lists exactly the handlers the router has.
 * An unknown version gets a v0 answer from the router itself (KIP-511).
 */
import { Effect } from "effect"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { ApiVersionsRequest, ApiVersionsResponseInput } from "../../protocol/messages.js"
import { type ApiRange, defineHandler } from "../RequestRouter.js"

const softwarePattern = /^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/

/** `apis` is read at request time because the router is built from the list this handler is in. */
export const make = (apis: () => ReadonlyArray<ApiRange>) =>
  defineHandler<ApiVersionsRequest, ApiVersionsResponseInput>({
    apiKey: 18,
    name: "ApiVersions",
    minVersion: 0,
    maxVersion: 4,
    handle: (ctx, req) =>
      Effect.sync(() => {
        const apiKeys = apis().map((a) => ({ apiKey: a.apiKey, minVersion: a.minVersion, maxVersion: a.maxVersion }))
        // v3+ clients name themselves; Kafka rejects names that do not match its pattern.
        const invalid =
          ctx.apiVersion >= 3 &&
          (!softwarePattern.test(req.clientSoftwareName) || !softwarePattern.test(req.clientSoftwareVersion))
        return {
          errorCode: invalid ? ErrorCode.INVALID_REQUEST : ErrorCode.NONE,
          apiKeys,
          throttleTimeMs: 0
        }
      })
  })
