/**
 * @internal In-memory listener: client connections whose "socket" is a pair
 * of in-process buffers, driving the same {@link Connection} engine as
 * node:net (same framing, pipelining, ordering, pausing, idle timeout).
 *
 * Client-to-server bytes are delivered in a microtask (never re-entrantly),
 * and only while the server side is not paused; server-to-client bytes are
 * decoded into response frames at once, and `write` reports backpressure when
 * the client has more than `highWaterMark` unread bytes.
 */
import { Deferred, Effect, Exit, FiberId } from "effect"
import type { BoundAddress, MemoryConnection } from "../KafkaTransport.js"
import { FrameDecoder } from "../FrameDecoder.js"
import { TransportConnectionClosed, TransportNotServing } from "../errors.js"
import type { Connection, Sink } from "./connection.js"
import type { Listener, Server } from "./server.js"

export class MemoryClient implements MemoryConnection {
  /** Server-side connection (set right after construction). */
  conn!: Connection
  private readonly inbound: Array<Buffer> = []
  private inboundBytes = 0
  private serverPaused = false
  private deliverScheduled = false
  private inputEnded = false
  private readonly frames: Array<Buffer> = []
  private framesHead = 0
  private readonly decoder = new FrameDecoder(0x7fffffff)
  private unreadBytes = 0
  private needDrain = false
  private isClosed = false
  private waiters: Array<(effect: Effect.Effect<Buffer, TransportConnectionClosed>) => void> = []
  private readonly closedSignal = Deferred.unsafeMake<void>(FiberId.none)

  get id(): number {
    return this.conn.id
  }

  // ---- the server's Sink --------------------------------------------------

  readonly sink: Sink

  constructor(private readonly highWaterMark: number) {
    const self = this
    this.sink = {
      write: (data) => this.deliverToClient(data),
      cork: () => {},
      uncork: () => {},
      pause: () => {
        this.serverPaused = true
      },
      resume: () => {
        this.serverPaused = false
        this.scheduleDeliver()
      },
      end: () => this.serverClose(),
      destroy: () => this.serverClose(),
      get writableLength() {
        return self.unreadBytes
      }
    }
  }

  private deliverToClient(data: Buffer): boolean {
    if (this.isClosed) return false
    this.unreadBytes += data.length
    this.decoder.push(data)
    let frame: Buffer | undefined
    while ((frame = this.decoder.next()) !== undefined) {
      const waiter = this.waiters.shift()
      if (waiter !== undefined) {
        this.consumed(frame)
        waiter(Effect.succeed(frame))
      } else {
        this.frames.push(frame)
      }
    }
    if (this.unreadBytes >= this.highWaterMark) {
      this.needDrain = true
      return false
    }
    return true
  }

  private consumed(frame: Buffer): void {
    this.unreadBytes -= 4 + frame.length
    if (this.needDrain && this.unreadBytes < this.highWaterMark / 2) {
      this.needDrain = false
      queueMicrotask(() => this.conn.onDrain())
    }
  }

  private serverClose(): void {
    if (this.isClosed) return
    this.markClosed()
    queueMicrotask(() => this.conn.onClosed())
  }

  private markClosed(): void {
    this.isClosed = true
    this.inbound.length = 0
    this.inboundBytes = 0
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w(Effect.fail(new TransportConnectionClosed({ connectionId: this.id })))
    Deferred.unsafeDone(this.closedSignal, Exit.void)
  }

  private scheduleDeliver(): void {
    if (this.deliverScheduled || this.isClosed) return
    this.deliverScheduled = true
    queueMicrotask(this.deliver)
  }

  private readonly deliver = (): void => {
    this.deliverScheduled = false
    while (!this.serverPaused && !this.isClosed && this.inbound.length > 0) {
      const chunk = this.inbound.shift()!
      this.inboundBytes -= chunk.length
      this.conn.onData(chunk)
    }
    if (this.inputEnded && this.inbound.length === 0 && !this.isClosed) {
      this.conn.onRemoteEnd()
    }
  }

  // ---- the client API -----------------------------------------------------

  readonly write = (bytes: Uint8Array): Effect.Effect<void, TransportConnectionClosed> =>
    Effect.suspend(() => {
      if (this.isClosed || this.inputEnded) return Effect.fail(new TransportConnectionClosed({ connectionId: this.id }))
      if (bytes.length > 0) {
        const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
        this.inbound.push(buf)
        this.inboundBytes += buf.length
        if (!this.serverPaused) this.scheduleDeliver()
      }
      return Effect.void
    })

  readonly send = (frame: Uint8Array): Effect.Effect<void, TransportConnectionClosed> => {
    const out = Buffer.allocUnsafe(4 + frame.length)
    out.writeInt32BE(frame.length, 0)
    out.set(frame, 4)
    return this.write(out)
  }

  readonly receive: Effect.Effect<Buffer, TransportConnectionClosed> = Effect.async((resume) => {
    if (this.framesHead < this.frames.length) {
      const frame = this.frames[this.framesHead]!
      this.frames[this.framesHead] = undefined as unknown as Buffer
      this.framesHead++
      if (this.framesHead === this.frames.length) {
        this.frames.length = 0
        this.framesHead = 0
      }
      this.consumed(frame)
      return resume(Effect.succeed(frame))
    }
    if (this.isClosed) return resume(Effect.fail(new TransportConnectionClosed({ connectionId: this.id })))
    const waiter = (effect: Effect.Effect<Buffer, TransportConnectionClosed>) => resume(effect)
    this.waiters.push(waiter)
    return Effect.sync(() => {
      const i = this.waiters.indexOf(waiter)
      if (i >= 0) this.waiters.splice(i, 1)
    })
  })

  readonly endInput: Effect.Effect<void> = Effect.sync(() => {
    if (this.isClosed || this.inputEnded) return
    this.inputEnded = true
    this.scheduleDeliver()
  })

  readonly close: Effect.Effect<void> = Effect.sync(() => {
    if (this.isClosed) return
    this.markClosed()
    queueMicrotask(() => this.conn.onClosed())
  })

  get closed(): Effect.Effect<void> {
    return Deferred.await(this.closedSignal)
  }

  readonly stats = Effect.sync(() => ({
    unsentBytes: this.inboundBytes,
    unreadBytes: this.unreadBytes,
    unreadResponses: this.frames.length - this.framesHead,
    closed: this.isClosed
  }))
}

/** The memory "listener" of one serve call. */
export class MemoryHub {
  server: Server | undefined
  private nextPort = 40000

  listen(server: Server, address: BoundAddress): Effect.Effect<Listener> {
    return Effect.sync(() => {
      this.server = server
      const stopAccepting = () => {
        if (this.server === server) this.server = undefined
      }
      return { address, stopAccepting, awaitClosed: Effect.sync(stopAccepting) }
    })
  }

  connect(highWaterMark: number): Effect.Effect<MemoryClient, TransportNotServing> {
    return Effect.suspend(() => {
      const server = this.server
      if (server === undefined) return Effect.fail(new TransportNotServing())
      const client = new MemoryClient(highWaterMark)
      const conn = server.accept(client.sink, "memory", this.nextPort++)
      if (conn === undefined) return Effect.fail(new TransportNotServing())
      client.conn = conn
      return Effect.succeed(client)
    })
  }
}
