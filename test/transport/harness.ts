/**
 * Test harness: the same client interface over a real TCP socket (node
 * layer) and over the memory layer, so scenarios run against both.
 */
import * as Net from "node:net"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { FrameDecoder } from "../../src/transport/FrameDecoder.js"
import { KafkaTransport, layerMemory, layerNode, MemoryKafkaTransport } from "../../src/transport/KafkaTransport.js"
import type { KafkaTransportService } from "../../src/transport/KafkaTransport.js"
import * as TransportConfig from "../../src/transport/TransportConfig.js"

export interface TestClient {
  /** Sends frames (size prefixes added). */
  readonly send: (...frames: ReadonlyArray<Uint8Array | string>) => Effect.Effect<void>
  /** Sends raw bytes. */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void>
  /** Next response frame; fails with "closed" when the connection closed and nothing is left. */
  readonly receive: Effect.Effect<Buffer, "closed">
  /** Half-close (no more requests). */
  readonly endInput: Effect.Effect<void>
  /** Completes when the connection is closed by the server (or the client). */
  readonly closed: Effect.Effect<void>
}

export type Kind = "node" | "memory"

export interface Harness {
  readonly kind: Kind
  readonly transport: KafkaTransportService
  readonly connect: Effect.Effect<TestClient, unknown, Scope.Scope>
}

const toBuf = (f: Uint8Array | string): Buffer =>
  typeof f === "string" ? Buffer.from(f) : Buffer.from(f.buffer, f.byteOffset, f.length)

const frameBytes = (frames: ReadonlyArray<Uint8Array | string>): Buffer => {
  const bufs = frames.map(toBuf)
  const out = Buffer.allocUnsafe(bufs.reduce((n, b) => n + 4 + b.length, 0))
  let pos = 0
  for (const b of bufs) {
    out.writeInt32BE(b.length, pos)
    b.copy(out, pos + 4)
    pos += 4 + b.length
  }
  return out
}

/** A raw TCP client with a response frame decoder. */
export class TcpClient {
  readonly decoder = new FrameDecoder(0x7fffffff)
  readonly frames: Array<Buffer> = []
  private waiters: Array<() => void> = []
  isClosed = false

  constructor(readonly socket: Net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.decoder.push(chunk)
      let f: Buffer | undefined
      while ((f = this.decoder.next()) !== undefined) this.frames.push(Buffer.from(f))
      this.wake()
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      this.isClosed = true
      this.wake()
    })
  }

  private wake() {
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w()
  }

  /** Waits until `cond` holds (re-checked on every data/close event). */
  waitFor(cond: () => boolean): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      const check = () => {
        if (cond()) resume(Effect.void)
        else this.waiters.push(check)
      }
      check()
    })
  }

  static connect(port: number): Effect.Effect<TcpClient, Error, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.async<TcpClient, Error>((resume) => {
        const socket = Net.connect({ host: "127.0.0.1", port })
        socket.setNoDelay(true)
        const client = new TcpClient(socket)
        socket.once("connect", () => resume(Effect.succeed(client)))
        socket.once("error", (e) => resume(Effect.fail(e)))
      }),
      (c) => Effect.sync(() => c.socket.destroy())
    )
  }

  asTestClient(): TestClient {
    return {
      send: (...frames) => Effect.sync(() => void this.socket.write(frameBytes(frames))),
      write: (bytes) => Effect.sync(() => void this.socket.write(bytes)),
      receive: Effect.flatMap(
        this.waitFor(() => this.frames.length > 0 || this.isClosed),
        () => (this.frames.length > 0 ? Effect.succeed(this.frames.shift()!) : Effect.fail("closed" as const))
      ),
      endInput: Effect.sync(() => void this.socket.end()),
      closed: this.waitFor(() => this.isClosed)
    }
  }
}

export const configLayer = (overrides: Partial<TransportConfig.TransportConfigShape> = {}) =>
  TransportConfig.layer({ host: "127.0.0.1", port: 0, ...overrides })

/** Builds a transport of the given kind in the current scope (not yet serving). */
export const makeHarness = (
  kind: Kind,
  overrides: Partial<TransportConfig.TransportConfigShape> = {},
  memoryOptions: { highWaterMark?: number } = {}
): Effect.Effect<Harness, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (kind === "node") {
      const ctx = yield* Layer.build(layerNode.pipe(Layer.provide(configLayer(overrides))))
      const transport = Context.get(ctx, KafkaTransport)
      return {
        kind,
        transport,
        connect: Effect.gen(function*() {
          const { port } = yield* transport.address
          const c = yield* TcpClient.connect(port)
          return c.asTestClient()
        })
      }
    }
    const ctx = yield* Layer.build(layerMemory(memoryOptions).pipe(Layer.provide(configLayer(overrides))))
    const transport = Context.get(ctx, KafkaTransport)
    const memory = Context.get(ctx, MemoryKafkaTransport)
    return {
      kind,
      transport,
      connect: Effect.map(memory.connect, (c): TestClient => ({
        send: (...frames) => Effect.orDie(c.write(frameBytes(frames))),
        write: (bytes) => Effect.orDie(c.write(bytes)),
        receive: Effect.mapError(c.receive, () => "closed" as const),
        endInput: c.endInput,
        closed: c.closed
      }))
    }
  })

/** Polls `cond` every 5 ms (live clock) until it holds or `ms` pass. */
export const eventually = (cond: () => Effect.Effect<boolean>, ms = 5000): Effect.Effect<void, Error> =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!(yield* cond())) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error("condition not reached in time"))
      yield* Effect.sleep(5)
    }
  })
