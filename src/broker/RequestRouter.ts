/**
 * RequestRouter: turns a request frame into a response frame.
 *
 * It decodes the header, finds the handler for the API key, checks the
 * version against what the handler supports, decodes the body, runs the
 * handler (one Effect per request), and encodes the response with the right
 * header version. Kafka's rules for bad input:
 *
 * - ApiVersions at a version we do not know: a v0 response with
 *   UNSUPPORTED_VERSION and our version ranges, so the client retries (KIP-511).
 * - Any other API at an unsupported version, an unknown API key, or a body
 *   that cannot be parsed: the connection is closed (Kafka closes it too);
 *   other connections are unaffected.
 * - A handler defect: logged, and only that connection is closed.
 *
 * The router advertises exactly the handlers it was given, so ApiVersions
 * can never claim an API that has no handler.
 */
import { Context, Effect, Exit, Layer } from "effect"
import { type ConnectionContext, ReleasingResponse, type ResponseFrame, responseChunks } from "../transport/KafkaTransport.js"
import { ErrorCode } from "../protocol/errorCodes.js"
import { KafkaDecodeError } from "../protocol/errors.js"
import { type ApiKey, decodeRequest, decodeRequestHeader, encodeResponse } from "../protocol/messages.js"

/** What a handler knows about the request it serves. */
export interface RequestContext {
  readonly apiKey: number
  readonly apiVersion: number
  readonly correlationId: number
  readonly clientId: string | null
  readonly connection: ConnectionContext
}

/**
 * A response frame (header and body) a handler encoded itself, as chunks the
 * transport writes in order without copying them together (Fetch: the
 * record batches straight from the log).
 */
export class EncodedResponse {
  constructor(
    readonly chunks: ReadonlyArray<Buffer>,
    /** Runs once the transport no longer needs the chunks (see `ReleasingResponse`). */
    readonly release?: () => void
  ) {}
}

/**
 * A handler for one API. `handle` returns the response body, an
 * {@link EncodedResponse}, or null for no response (Produce acks=0).
 */
export interface ApiHandler {
  readonly apiKey: number
  readonly name: string
  readonly minVersion: number
  readonly maxVersion: number
  // The body types are the generated message types of this API; the router is generic over them.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly handle: (ctx: RequestContext, body: any) => Effect.Effect<unknown | null>
}

/** Builds an ApiHandler with the request and response types of its API checked. */
export const defineHandler = <Req, Res>(spec: {
  readonly apiKey: number
  readonly name: string
  readonly minVersion: number
  readonly maxVersion: number
  readonly handle: (ctx: RequestContext, body: Req) => Effect.Effect<Res | EncodedResponse | null>
}): ApiHandler => spec

export interface ApiRange {
  readonly apiKey: number
  readonly minVersion: number
  readonly maxVersion: number
}

export interface RequestRouterShape {
  /** The transport's request handler: a self-encoded response stays a list of chunks. */
  readonly routeToWire: (conn: ConnectionContext, frame: Buffer) => Effect.Effect<ResponseFrame | null>
  /** As `routeToWire`, with the response in one buffer (tests and tools). */
  readonly route: (conn: ConnectionContext, frame: Buffer) => Effect.Effect<Buffer | null>
  /** The API ranges this broker advertises in ApiVersions. */
  readonly apis: ReadonlyArray<ApiRange>
}

export class RequestRouter extends Context.Tag("chronik/RequestRouter")<RequestRouter, RequestRouterShape>() {}

export const API_VERSIONS_KEY = 18

/** A v0 ApiVersions response body: the error plus our ranges (KIP-511 fallback). */
export const apiVersionsFallback = (apis: ReadonlyArray<ApiRange>) => ({
  errorCode: ErrorCode.UNSUPPORTED_VERSION,
  apiKeys: apis.map((a) => ({ apiKey: a.apiKey, minVersion: a.minVersion, maxVersion: a.maxVersion })),
  throttleTimeMs: 0
})

export const make = (handlers: ReadonlyArray<ApiHandler>): RequestRouterShape => {
  const table: Array<ApiHandler | undefined> = []
  for (const h of handlers) {
    if (table[h.apiKey] !== undefined) throw new Error(`two handlers for api key ${h.apiKey}`)
    table[h.apiKey] = h
  }
  const apis: ReadonlyArray<ApiRange> = [...handlers]
    .sort((a, b) => a.apiKey - b.apiKey)
    .map((h) => ({ apiKey: h.apiKey, minVersion: h.minVersion, maxVersion: h.maxVersion }))

  const closeWith = (conn: ConnectionContext, reason: string) => conn.close(reason)

  const routeToWire = (conn: ConnectionContext, frame: Buffer): Effect.Effect<ResponseFrame | null> => {
    let header: ReturnType<typeof decodeRequestHeader>
    try {
      header = decodeRequestHeader(frame)
    } catch (e) {
      return Effect.as(closeWith(conn, `unparsable request header: ${describe(e)}`), null)
    }
    const { apiKey, apiVersion, correlationId } = header
    const handler = table[apiKey]
    if (handler === undefined) {
      return Effect.as(closeWith(conn, `unknown or unsupported api key ${apiKey} (correlation id ${correlationId})`), null)
    }
    if (apiVersion < handler.minVersion || apiVersion > handler.maxVersion) {
      if (apiKey === API_VERSIONS_KEY) {
        return Effect.succeed(encodeResponse(API_VERSIONS_KEY, 0, correlationId, apiVersionsFallback(apis)))
      }
      return Effect.as(
        closeWith(
          conn,
          `unsupported version ${apiVersion} of ${handler.name} (supported ${handler.minVersion}-${handler.maxVersion})`
        ),
        null
      )
    }
    let request: ReturnType<typeof decodeRequest>
    try {
      request = decodeRequest(frame)
    } catch (e) {
      if (apiKey === API_VERSIONS_KEY) {
        // KIP-511: an ApiVersions request we cannot parse still gets our ranges.
        return Effect.succeed(
          encodeResponse(API_VERSIONS_KEY, 0, correlationId, { ...apiVersionsFallback(apis), errorCode: ErrorCode.INVALID_REQUEST })
        )
      }
      return Effect.as(closeWith(conn, `cannot parse ${handler.name} v${apiVersion}: ${describe(e)}`), null)
    }
    const ctx: RequestContext = {
      apiKey,
      apiVersion,
      correlationId,
      clientId: request.clientId,
      connection: conn
    }
    const toWire = (body: unknown): ResponseFrame | null =>
      body === null
        ? null
        : body instanceof EncodedResponse
          ? body.release === undefined ? body.chunks : new ReleasingResponse(body.chunks, body.release)
          : encodeResponse(apiKey as ApiKey, apiVersion, correlationId, body as never)
    const handled = handler.handle(ctx, request.body)
    // A handler that answered synchronously (`Effect.succeed`, an Exit): encode now and
    // return an Exit too, so the transport runs no fiber for this request.
    if (Exit.isExit(handled) && Exit.isSuccess(handled)) {
      try {
        return Exit.succeed(toWire(handled.value))
      } catch {
        // an encoding defect takes the logged path below
      }
    }
    return handled.pipe(
      Effect.flatMap((body) => Effect.sync(() => toWire(body))),
      Effect.catchAllCause((cause) =>
        Effect.as(
          Effect.zipRight(
            Effect.logError(`${handler.name} v${apiVersion} failed (correlation id ${correlationId})`, cause),
            conn.close(`${handler.name} handler failed`)
          ),
          null
        )
      )
    )
  }

  const route = (conn: ConnectionContext, frame: Buffer): Effect.Effect<Buffer | null> =>
    Effect.map(routeToWire(conn, frame), (r) => {
      if (r === null || Buffer.isBuffer(r)) return r
      const one = Buffer.concat(responseChunks(r))
      if (r instanceof ReleasingResponse) r.release()
      return one
    })

  return { route, routeToWire, apis }
}

const describe = (e: unknown): string => (e instanceof KafkaDecodeError ? e.message : String(e))

/**
 * The router over handlers built by `makeHandlers`, which receives the
 * router's own advertised list (read lazily, at request time) for ApiVersions.
 */
export const layer = <E, R>(
  makeHandlers: (apis: () => ReadonlyArray<ApiRange>) => Effect.Effect<ReadonlyArray<ApiHandler>, E, R>
): Layer.Layer<RequestRouter, E, R> =>
  Layer.effect(
    RequestRouter,
    Effect.suspend(() => {
      let apis: ReadonlyArray<ApiRange> = []
      return Effect.map(makeHandlers(() => apis), (handlers) => {
        const router = make(handlers)
        apis = router.apis
        return router
      })
    })
  )
