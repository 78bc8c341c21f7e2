/**
 * A minimal Kafka client over the broker's own codec: the admin CLI uses it,
 * and tests that need exact control of requests (reading a partition back
 * after a crash, hostile frames). Requests are pipelined; responses are
 * matched by correlation id.
 */
import { type Socket, connect as netConnect } from "node:net"
import { type ApiKey, type RequestInputTypes, type ResponseTypes, decodeResponse, encodeRequest } from "../protocol/messages.js"

export interface KafkaWireClient {
  readonly request: <K extends ApiKey>(apiKey: K, version: number, body: RequestInputTypes[K]) => Promise<ResponseTypes[K]>
  /** Writes bytes as they are (no framing), for hostile-input tests. */
  readonly writeRaw: (bytes: Buffer) => void
  readonly closed: Promise<void>
  readonly close: () => void
}

export const connect = (port: number, host = "127.0.0.1", clientId = "chronik-wire-client"): Promise<KafkaWireClient> =>
  new Promise((resolve, reject) => {
    const socket: Socket = netConnect({ host, port }, () => resolve(client))
    socket.once("error", reject)
    let correlationId = 0
    const pending = new Map<number, { apiKey: ApiKey; version: number; resolve: (b: any) => void; reject: (e: Error) => void }>()
    let buffered: Buffer = Buffer.alloc(0)
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      while (buffered.length >= 4) {
        const size = buffered.readInt32BE(0)
        if (buffered.length < 4 + size) break
        const frame = buffered.subarray(4, 4 + size)
        buffered = buffered.subarray(4 + size)
        const id = frame.readInt32BE(0)
        const p = pending.get(id)
        if (p === undefined) continue
        pending.delete(id)
        try {
          p.resolve(decodeResponse(p.apiKey, p.version, frame).body)
        } catch (e) {
          p.reject(e as Error)
        }
      }
    })
    const closed = new Promise<void>((res) =>
      socket.once("close", () => {
        for (const p of pending.values()) p.reject(new Error("connection closed"))
        pending.clear()
        res()
      })
    )
    const client: KafkaWireClient = {
      request: (apiKey, version, body) =>
        new Promise((res, rej) => {
          const id = ++correlationId
          const frame = encodeRequest(apiKey, version, id, clientId, body)
          const size = Buffer.alloc(4)
          size.writeInt32BE(frame.length)
          pending.set(id, { apiKey, version, resolve: res, reject: rej })
          socket.write(Buffer.concat([size, frame]))
        }),
      writeRaw: (bytes) => socket.write(bytes),
      closed,
      close: () => socket.destroy()
    }
  })

