/**
 * Facade over the generated codecs: request/response frames with their
 * headers. A "frame" here is the bytes after the 4-byte size prefix.
 *
 * - Request header version: v2 for flexible request versions, v1 otherwise,
 *   v0 only for ControlledShutdown v0.
 * - Response header version: v1 for flexible versions, v0 otherwise, and
 *   always v0 for ApiVersions (clients parse the ApiVersions response header
 *   before they know what the broker supports; KIP-511).
 * - Trailing bytes after a request or response body are tolerated, as Kafka's
 *   own broker does (it parses the body and ignores what is left); the count is
 *   reported in `trailingBytes` so callers can log or reject them.
 *
 * All functions throw {@link KafkaDecodeError} / {@link KafkaEncodeError}.
 */
import { KafkaDecodeError, KafkaEncodeError } from "./errors.js"
import {
  apiEntry,
  type ApiEntry,
  type ApiKey,
  type RequestInputTypes,
  type RequestTypes,
  type ResponseInputTypes,
  type ResponseTypes
} from "./generated/index.js"
import { RequestHeaderCodec, type RequestHeader, type RequestHeaderInput } from "./generated/RequestHeader.js"
import { ResponseHeaderCodec, type ResponseHeader, type ResponseHeaderInput } from "./generated/ResponseHeader.js"
import * as W from "./wire.js"

export type * from "./generated/index.js"
export { API_TABLE, APIS, ApiKey, MESSAGES, apiEntry } from "./generated/index.js"
export type { RequestHeader, ResponseHeader }

const API_VERSIONS = 18
const CONTROLLED_SHUTDOWN = 7

const isFlexible = (entry: ApiEntry | undefined, apiVersion: number): boolean =>
  entry !== undefined && entry.firstFlexibleVersion >= 0 && apiVersion >= entry.firstFlexibleVersion

/**
 * Request header version for an API version: 2 when flexible, 1 otherwise, 0 for
 * ControlledShutdown v0. Defined for any version (also unsupported ones, so the
 * header of an ApiVersions request from a newer client can still be parsed);
 * 1 for an unknown API key.
 */
export const requestHeaderVersion = (apiKey: number, apiVersion: number): number => {
  if (apiKey === CONTROLLED_SHUTDOWN && apiVersion === 0) return 0
  return isFlexible(apiEntry(apiKey), apiVersion) ? 2 : 1
}

/** Response header version: 1 when flexible, 0 otherwise; always 0 for ApiVersions. */
export const responseHeaderVersion = (apiKey: number, apiVersion: number): number => {
  if (apiKey === API_VERSIONS) return 0
  return isFlexible(apiEntry(apiKey), apiVersion) ? 1 : 0
}

export interface DecodedRequestHeader {
  readonly apiKey: number
  readonly apiVersion: number
  readonly correlationId: number
  readonly clientId: string | null
  readonly headerVersion: number
  /** The full header, including its tagged fields (v2). */
  readonly header: RequestHeader
  /** Offset of the request body in the frame. */
  readonly bodyOffset: number
}

/**
 * Decodes only the request header, for any API key and version (an unknown key is
 * read as header v1), so a router can still answer UNSUPPORTED_VERSION with the
 * right correlation id.
 */
export const decodeRequestHeader = (frame: Buffer): DecodedRequestHeader => {
  if (frame.length < 4) {
    throw new KafkaDecodeError({ api: "RequestHeader", version: -1, field: "requestApiKey", offset: 0, reason: `frame of ${frame.length} bytes is too short` })
  }
  const apiKey = frame.readInt16BE(0)
  const apiVersion = frame.readInt16BE(2)
  const headerVersion = requestHeaderVersion(apiKey, apiVersion)
  const c = W.cursor(frame)
  const header = RequestHeaderCodec.decode(headerVersion, c)
  return { apiKey, apiVersion, correlationId: header.correlationId, clientId: header.clientId, headerVersion, header, bodyOffset: c.pos }
}

export interface DecodedRequestOf<K extends ApiKey> {
  readonly apiKey: K
  readonly apiVersion: number
  readonly correlationId: number
  readonly clientId: string | null
  readonly header: RequestHeader
  readonly body: RequestTypes[K]
  /** Bytes left in the frame after the body (tolerated, see the module doc). */
  readonly trailingBytes: number
}

/** A decoded request, discriminated on `apiKey`. */
export type DecodedRequest = { [K in ApiKey]: DecodedRequestOf<K> }[ApiKey]

/** Decodes a whole request frame. Unknown API key or unsupported version: KafkaDecodeError. */
export const decodeRequest = (frame: Buffer): DecodedRequest => {
  const h = decodeRequestHeader(frame)
  const entry = apiEntry(h.apiKey)
  if (entry === undefined) {
    throw new KafkaDecodeError({ api: "RequestHeader", version: h.headerVersion, field: "requestApiKey", offset: 0, reason: `unknown API key ${h.apiKey}` })
  }
  if (h.apiVersion < entry.requestMinVersion || h.apiVersion > entry.requestMaxVersion) {
    throw new KafkaDecodeError({
      api: entry.request.name,
      version: h.apiVersion,
      field: "requestApiVersion",
      offset: 2,
      reason: `unsupported version (valid ${entry.requestMinVersion}-${entry.requestMaxVersion})`
    })
  }
  const c = W.cursor(frame, h.bodyOffset)
  const body = entry.request.decode(h.apiVersion, c)
  return {
    apiKey: entry.apiKey,
    apiVersion: h.apiVersion,
    correlationId: h.correlationId,
    clientId: h.clientId,
    header: h.header,
    body,
    trailingBytes: frame.length - c.pos
  } as DecodedRequest
}

const entryFor = (apiKey: number, apiVersion: number, what: "request" | "response"): ApiEntry => {
  const entry = apiEntry(apiKey)
  if (entry === undefined) {
    throw new KafkaEncodeError({ api: what === "request" ? "RequestHeader" : "ResponseHeader", version: -1, field: "apiKey", reason: `unknown API key ${apiKey}` })
  }
  const lo = what === "request" ? entry.requestMinVersion : entry.responseMinVersion
  const hi = what === "request" ? entry.requestMaxVersion : entry.responseMaxVersion
  if (apiVersion < lo || apiVersion > hi) {
    throw new KafkaEncodeError({ api: entry[what].name, version: apiVersion, field: "", reason: `unsupported version (valid ${lo}-${hi})` })
  }
  return entry
}

/** Size both parts, allocate once, write both. Errors carry the part's name and version. */
const encodeTwo = <H, B>(
  hName: string,
  hv: number,
  header: H,
  hSize: (v: number, x: H, L: Array<number>) => number,
  hWrite: (v: number, x: H, w: W.Writer) => void,
  bName: string,
  bv: number,
  body: B,
  bSize: (v: number, x: B, L: Array<number>) => number,
  bWrite: (v: number, x: B, w: W.Writer) => void
): Buffer => {
  const lens: Array<number> = []
  let hn: number
  let bn: number
  try {
    hn = hSize(hv, header, lens)
  } catch (e) {
    throw W.encodeCtx(e, hName, hv)
  }
  try {
    bn = bSize(bv, body, lens)
  } catch (e) {
    throw W.encodeCtx(e, bName, bv)
  }
  const w: W.Writer = { buf: Buffer.allocUnsafe(hn + bn), pos: 0, lens, li: 0 }
  try {
    hWrite(hv, header, w)
  } catch (e) {
    throw W.encodeCtx(e, hName, hv)
  }
  try {
    bWrite(bv, body, w)
  } catch (e) {
    throw W.encodeCtx(e, bName, bv)
  }
  if (w.pos !== hn + bn) {
    throw new KafkaEncodeError({ api: bName, version: bv, field: "", reason: `internal error: wrote ${w.pos} bytes, sized ${hn + bn}` })
  }
  return w.buf
}

/** Encodes a request frame (header + body, no size prefix). */
export const encodeRequest = <K extends ApiKey>(
  apiKey: K,
  apiVersion: number,
  correlationId: number,
  clientId: string | null,
  body: RequestInputTypes[K],
  headerTaggedFields?: ReadonlyArray<W.TaggedField>
): Buffer => {
  const entry = entryFor(apiKey, apiVersion, "request")
  const hv = requestHeaderVersion(apiKey, apiVersion)
  const header: RequestHeaderInput =
    headerTaggedFields === undefined
      ? { requestApiKey: apiKey, requestApiVersion: apiVersion, correlationId, clientId }
      : { requestApiKey: apiKey, requestApiVersion: apiVersion, correlationId, clientId, _unknownTaggedFields: headerTaggedFields }
  const codec = entry.request
  return encodeTwo(
    "RequestHeader",
    hv,
    header,
    RequestHeaderCodec.size,
    RequestHeaderCodec.write,
    codec.name,
    apiVersion,
    body as RequestInputTypes[ApiKey],
    (v, x, L) => codec.size(v, x, L),
    (v, x, w) => codec.write(v, x, w)
  )
}

/** Encodes a response frame (header + body, no size prefix) with the right response header version. */
export const encodeResponse = <K extends ApiKey>(apiKey: K, apiVersion: number, correlationId: number, body: ResponseInputTypes[K]): Buffer => {
  const entry = entryFor(apiKey, apiVersion, "response")
  const hv = responseHeaderVersion(apiKey, apiVersion)
  const header: ResponseHeaderInput = { correlationId }
  const codec = entry.response
  return encodeTwo(
    "ResponseHeader",
    hv,
    header,
    ResponseHeaderCodec.size,
    ResponseHeaderCodec.write,
    codec.name,
    apiVersion,
    body as ResponseInputTypes[ApiKey],
    (v, x, L) => codec.size(v, x, L),
    (v, x, w) => codec.write(v, x, w)
  )
}

export interface DecodedResponse<K extends ApiKey> {
  readonly correlationId: number
  readonly header: ResponseHeader
  readonly body: ResponseTypes[K]
  readonly trailingBytes: number
}

/** Decodes a response frame (no size prefix) for a known API key and version. */
export const decodeResponse = <K extends ApiKey>(apiKey: K, apiVersion: number, frame: Buffer): DecodedResponse<K> => {
  const entry = apiEntry(apiKey)
  if (entry === undefined) {
    throw new KafkaDecodeError({ api: "ResponseHeader", version: -1, field: "apiKey", offset: 0, reason: `unknown API key ${apiKey}` })
  }
  const c = W.cursor(frame)
  const header = ResponseHeaderCodec.decode(responseHeaderVersion(apiKey, apiVersion), c)
  if (apiVersion < entry.responseMinVersion || apiVersion > entry.responseMaxVersion) {
    throw new KafkaDecodeError({ api: entry.response.name, version: apiVersion, field: "", offset: c.pos, reason: "unsupported version" })
  }
  const body = entry.response.decode(apiVersion, c) as ResponseTypes[K]
  return { correlationId: header.correlationId, header, body, trailingBytes: frame.length - c.pos }
}
