/**
 * Recording TCP proxy for the Kafka wire protocol: client -> proxy -> upstream broker.
 *
 * Bytes are forwarded untouched in both directions. On the side, every request frame
 * (the bytes after the 4-byte size prefix) is recorded, tagged with the apiKey /
 * apiVersion / correlationId / clientId read from its request header, and paired with
 * the response frame carrying the same correlation id on the same connection.
 *
 * Library use (see record.ts):
 *   const proxy = await CaptureProxy.start({ targetHost, targetPort })
 *   proxy.setTag("kafkajs")      // requests seen from now on are tagged "kafkajs"
 *   ...drive a client at 127.0.0.1:proxy.port...
 *   const exchanges = proxy.take("kafkajs")
 *   await proxy.close()
 *
 * CLI use (ad-hoc captures):
 *   tsx scripts/golden/capture-proxy.ts --target 127.0.0.1:9092 [--listen 19092] --out /tmp/cap
 *   (writes <seq>-<ApiName>-v<ver>.req.bin / .resp.bin plus index.json on SIGINT/SIGTERM)
 *
 * For the proxy to see all traffic the broker must advertise the proxy's address
 * (advertised.listeners=PLAINTEXT://127.0.0.1:<proxyPort>), otherwise clients follow
 * Metadata to the broker's real port.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"

/** Kafka API key -> name (Apache Kafka message definitions). */
export const API_NAMES: Readonly<Record<number, string>> = {
  0: "Produce",
  1: "Fetch",
  2: "ListOffsets",
  3: "Metadata",
  4: "LeaderAndIsr",
  5: "StopReplica",
  6: "UpdateMetadata",
  7: "ControlledShutdown",
  8: "OffsetCommit",
  9: "OffsetFetch",
  10: "FindCoordinator",
  11: "JoinGroup",
  12: "Heartbeat",
  13: "LeaveGroup",
  14: "SyncGroup",
  15: "DescribeGroups",
  16: "ListGroups",
  17: "SaslHandshake",
  18: "ApiVersions",
  19: "CreateTopics",
  20: "DeleteTopics",
  21: "DeleteRecords",
  22: "InitProducerId",
  23: "OffsetForLeaderEpoch",
  24: "AddPartitionsToTxn",
  25: "AddOffsetsToTxn",
  26: "EndTxn",
  27: "WriteTxnMarkers",
  28: "TxnOffsetCommit",
  29: "DescribeAcls",
  30: "CreateAcls",
  31: "DeleteAcls",
  32: "DescribeConfigs",
  33: "AlterConfigs",
  34: "AlterReplicaLogDirs",
  35: "DescribeLogDirs",
  36: "SaslAuthenticate",
  37: "CreatePartitions",
  38: "CreateDelegationToken",
  39: "RenewDelegationToken",
  40: "ExpireDelegationToken",
  41: "DescribeDelegationToken",
  42: "DeleteGroups",
  43: "ElectLeaders",
  44: "IncrementalAlterConfigs",
  45: "AlterPartitionReassignments",
  46: "ListPartitionReassignments",
  47: "OffsetDelete",
  48: "DescribeClientQuotas",
  49: "AlterClientQuotas",
  50: "DescribeUserScramCredentials",
  51: "AlterUserScramCredentials",
  55: "DescribeQuorum",
  56: "AlterPartition",
  57: "UpdateFeatures",
  60: "DescribeCluster",
  61: "DescribeProducers",
  64: "UnregisterBroker",
  65: "DescribeTransactions",
  66: "ListTransactions",
  67: "AllocateProducerIds",
  68: "ConsumerGroupHeartbeat",
  69: "ConsumerGroupDescribe",
  71: "GetTelemetrySubscriptions",
  72: "PushTelemetry",
  74: "ListConfigResources",
  75: "DescribeTopicPartitions",
  76: "ShareGroupHeartbeat",
  77: "ShareGroupDescribe",
  78: "ShareFetch",
  79: "ShareAcknowledge"
}

export const apiName = (apiKey: number): string => API_NAMES[apiKey] ?? `Api${apiKey}`

export interface CapturedExchange {
  /** Global capture order (request arrival), starting at 0. */
  readonly seq: number
  /** Proxy connection number, starting at 0. */
  readonly connId: number
  /** Tag active when the request arrived (null when untagged). */
  readonly tag: string | null
  readonly apiKey: number
  readonly apiVersion: number
  readonly correlationId: number
  readonly clientId: string | null
  /** Request frame without the 4-byte size prefix. */
  readonly request: Buffer
  /** Matching response frame without the size prefix; null if none arrived (e.g. acks=0). */
  response: Buffer | null
  readonly requestAtMs: number
  responseAtMs: number | null
}

export interface CaptureProxyOptions {
  readonly targetHost: string
  readonly targetPort: number
  /** 0 (default) picks a free port. */
  readonly listenPort?: number
  readonly listenHost?: string
}

/** Incremental splitter of a stream into size-prefixed Kafka frames. */
class FrameReader {
  private chunks: Array<Buffer> = []
  private buffered = 0

  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    while (this.buffered >= 4) {
      const head = this.peek(4)
      const size = head.readInt32BE(0)
      if (size < 0) throw new Error(`negative frame size ${size}`)
      if (this.buffered < 4 + size) return
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
      onFrame(Buffer.from(all.subarray(4, 4 + size)))
      const rest = all.subarray(4 + size)
      this.chunks = rest.length > 0 ? [rest] : []
      this.buffered = rest.length
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!
    return Buffer.concat(this.chunks).subarray(0, n)
  }
}

/** Reads apiKey, apiVersion, correlationId and clientId from a request frame. */
export const parseRequestHeader = (
  frame: Buffer
): { apiKey: number; apiVersion: number; correlationId: number; clientId: string | null } => {
  const apiKey = frame.readInt16BE(0)
  const apiVersion = frame.readInt16BE(2)
  const correlationId = frame.readInt32BE(4)
  let clientId: string | null = null
  // Every request header version >= 1 carries a nullable int16-length client id
  // (also in flexible header v2, where it is *not* compact).
  if (frame.length >= 10) {
    const len = frame.readInt16BE(8)
    if (len >= 0 && 10 + len <= frame.length) clientId = frame.toString("utf8", 10, 10 + len)
  }
  return { apiKey, apiVersion, correlationId, clientId }
}

export class CaptureProxy {
  private readonly server: net.Server
  private readonly sockets = new Set<net.Socket>()
  private readonly exchanges: Array<CapturedExchange> = []
  private tag: string | null = null
  private nextSeq = 0
  private nextConn = 0
  /** Frames that could not be parsed or matched (diagnostics). */
  readonly anomalies: Array<string> = []

  private constructor(server: net.Server, private readonly opts: CaptureProxyOptions) {
    this.server = server
  }

  static start(opts: CaptureProxyOptions): Promise<CaptureProxy> {
    const server = net.createServer()
    const proxy = new CaptureProxy(server, opts)
    server.on("connection", (s) => proxy.onConnection(s))
    return new Promise((resolve, reject) => {
      server.once("error", reject)
      server.listen(opts.listenPort ?? 0, opts.listenHost ?? "127.0.0.1", () => {
        server.off("error", reject)
        resolve(proxy)
      })
    })
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port
  }

  /** Number of requests captured so far (usable as a window marker). */
  get seq(): number {
    return this.nextSeq
  }

  setTag(tag: string | null): void {
    this.tag = tag
  }

  /** All exchanges captured so far (optionally only those with `tag`), in request order. */
  all(tag?: string | null): ReadonlyArray<CapturedExchange> {
    return tag === undefined ? [...this.exchanges] : this.exchanges.filter((e) => e.tag === tag)
  }

  /** Removes and returns the exchanges with `tag`. */
  take(tag: string | null): Array<CapturedExchange> {
    const out: Array<CapturedExchange> = []
    for (let i = 0; i < this.exchanges.length; ) {
      if (this.exchanges[i]!.tag === tag) out.push(...this.exchanges.splice(i, 1))
      else i++
    }
    return out
  }

  get openConnections(): number {
    return this.sockets.size
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private onConnection(client: net.Socket): void {
    const connId = this.nextConn++
    const upstream = net.connect({ host: this.opts.targetHost, port: this.opts.targetPort })
    this.sockets.add(client)
    this.sockets.add(upstream)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const pending = new Map<number, CapturedExchange>()
    const reqReader = new FrameReader()
    const respReader = new FrameReader()
    let broken = false

    const onRequest = (frame: Buffer): void => {
      if (frame.length < 8) {
        this.anomalies.push(`conn ${connId}: short request frame (${frame.length} bytes)`)
        return
      }
      const h = parseRequestHeader(frame)
      const ex: CapturedExchange = {
        seq: this.nextSeq++,
        connId,
        tag: this.tag,
        ...h,
        request: frame,
        response: null,
        requestAtMs: Date.now(),
        responseAtMs: null
      }
      this.exchanges.push(ex)
      pending.set(h.correlationId, ex)
    }
    const onResponse = (frame: Buffer): void => {
      if (frame.length < 4) {
        this.anomalies.push(`conn ${connId}: short response frame (${frame.length} bytes)`)
        return
      }
      const corr = frame.readInt32BE(0)
      const ex = pending.get(corr)
      if (ex === undefined) {
        this.anomalies.push(`conn ${connId}: response with unknown correlation id ${corr}`)
        return
      }
      pending.delete(corr)
      ex.response = frame
      ex.responseAtMs = Date.now()
    }

    client.on("data", (chunk: Buffer) => {
      upstream.write(chunk)
      if (broken) return
      try {
        reqReader.push(chunk, onRequest)
      } catch (e) {
        broken = true
        this.anomalies.push(`conn ${connId}: request stream unparsable: ${String(e)}`)
      }
    })
    upstream.on("data", (chunk: Buffer) => {
      client.write(chunk)
      if (broken) return
      try {
        respReader.push(chunk, onResponse)
      } catch (e) {
        broken = true
        this.anomalies.push(`conn ${connId}: response stream unparsable: ${String(e)}`)
      }
    })
    const teardown = (): void => {
      client.destroy()
      upstream.destroy()
      this.sockets.delete(client)
      this.sockets.delete(upstream)
    }
    client.on("end", () => upstream.end())
    upstream.on("end", () => client.end())
    client.on("close", teardown)
    upstream.on("close", teardown)
    client.on("error", teardown)
    upstream.on("error", teardown)
  }
}

/** Writes exchanges as <seq>-<ApiName>-v<ver>.req.bin/.resp.bin plus index.json. */
export const writeRawCapture = (dir: string, exchanges: ReadonlyArray<CapturedExchange>): void => {
  fs.mkdirSync(dir, { recursive: true })
  const index = exchanges.map((e, i) => {
    const base = `${String(i).padStart(4, "0")}-${apiName(e.apiKey)}-v${e.apiVersion}`
    fs.writeFileSync(path.join(dir, `${base}.req.bin`), e.request)
    if (e.response) fs.writeFileSync(path.join(dir, `${base}.resp.bin`), e.response)
    return {
      request: `${base}.req.bin`,
      response: e.response ? `${base}.resp.bin` : null,
      connId: e.connId,
      tag: e.tag,
      apiKey: e.apiKey,
      apiVersion: e.apiVersion,
      correlationId: e.correlationId,
      clientId: e.clientId
    }
  })
  fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify(index, null, 2) + "\n")
}

const main = async (): Promise<void> => {
  const args = process.argv.slice(2)
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name)
    return i >= 0 ? args[i + 1] : undefined
  }
  const target = opt("--target")
  const out = opt("--out")
  if (!target || !out) {
    console.error("usage: capture-proxy.ts --target host:port --out <dir> [--listen <port>]")
    process.exit(2)
  }
  const [host, port] = target.split(":")
  const proxy = await CaptureProxy.start({
    targetHost: host!,
    targetPort: Number(port),
    listenPort: Number(opt("--listen") ?? 0)
  })
  console.log(`capture proxy on 127.0.0.1:${proxy.port} -> ${target}; Ctrl-C to write ${out}`)
  const stop = async (): Promise<void> => {
    writeRawCapture(out, proxy.all())
    for (const a of proxy.anomalies) console.error(a)
    await proxy.close()
    console.log(`wrote ${proxy.all().length} exchanges to ${out}`)
    process.exit(0)
  }
  process.on("SIGINT", () => void stop())
  process.on("SIGTERM", () => void stop())
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  void main()
}
