/**
 * @internal The per-connection engine shared by the node:net and the memory
 * transports. Plain callbacks, no Effect on the hot path except the one fiber
 * per request that runs the handler.
 *
 * - Bytes go into a {@link FrameDecoder}; complete frames are dispatched while
 *   fewer than `maxInFlight` requests are pending and the sink is not
 *   backpressured. Otherwise the frames stay in the decoder and reading pauses.
 * - Each request takes a slot in a FIFO; the handler runs in its own fiber
 *   (started synchronously: a handler that completes synchronously never
 *   leaves this call stack). Completed slots at the head of the FIFO are
 *   written together: one copy into one buffer when small, else corked writes
 *   (a response given as chunks is written chunk by chunk, uncopied).
 * - A `false` from `write` pauses reading until the sink drains.
 */
import { Cause, Deferred, Effect, Exit, Fiber, FiberId } from "effect"
import type { Clock, Runtime } from "effect"
import {
  type ConnectionContext,
  type ConnectionInfo,
  ReleasingResponse,
  type RequestHandler,
  type ResponseFrame,
  responseChunks,
  responseFrameSize
} from "../KafkaTransport.js"
import { FrameDecoder, InvalidFrameSize } from "../FrameDecoder.js"
import type { TransportCounters } from "../TransportMetrics.js"
import type { TransportConfigShape } from "../TransportConfig.js"

/** What the connection engine needs from a socket. `net.Socket` is adapted to it. */
export interface Sink {
  /**
   * Queues bytes; false means the peer is slow and the caller should stop
   * producing until `onDrain`. `onFlushed`, if given, runs once the sink no
   * longer references `data` (a sink that keeps it never calls it).
   */
  write(data: Buffer, onFlushed?: () => void): boolean
  cork(): void
  uncork(): void
  pause(): void
  resume(): void
  /** Flushes queued bytes, then closes. */
  end(): void
  /** Closes now, dropping queued bytes. */
  destroy(): void
  /** Bytes queued and not yet handed to the peer. */
  readonly writableLength: number
}

/** Per-server state the connections share. */
export interface ServerContext {
  readonly config: TransportConfigShape
  readonly counters: TransportCounters
  readonly handler: RequestHandler
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  readonly clock: Clock.Clock
  readonly runtime: Runtime.Runtime<never>
  readonly onConnectionClosed: (conn: Connection) => void
}

interface Slot {
  done: boolean
  response: ResponseFrame | null
  /** Byte length of `response`. */
  size: number
  fiber: Fiber.RuntimeFiber<ResponseFrame | null> | undefined
}

/** Copies a response (one buffer or chunks) into `out` at `pos`; its buffers are released after. */
const copyResponse = (r: ResponseFrame, out: Buffer, pos: number): void => {
  if (Buffer.isBuffer(r)) {
    r.copy(out, pos)
    return
  }
  for (const b of responseChunks(r)) {
    b.copy(out, pos)
    pos += b.length
  }
  if (r instanceof ReleasingResponse) r.release()
}

/** Responses totalling at most this many bytes are copied into one buffer per flush. */
const COALESCE_BYTES = 64 * 1024
/**
 * Frames already read keep being dispatched while the sink is backpressured
 * as long as fewer than this many response bytes are queued in it; reading
 * from the peer pauses as soon as `write` returns false either way.
 */
export const MAX_QUEUED_RESPONSE_BYTES = 1024 * 1024
/** A response at most this large is copied together with its size prefix. */
const SMALL_RESPONSE = 4 * 1024

const idleLoop = Effect.fnUntraced(function*(conn: Connection, idleMs: number) {
  while (true) {
    const now = conn.server.clock.unsafeCurrentTimeMillis()
    const idleFor = now - conn.lastActivity
    if (conn.inFlight === 0 && idleFor >= idleMs) {
      conn.idleTimeout()
      return
    }
    yield* Effect.sleep(conn.inFlight > 0 ? idleMs : Math.max(1, idleMs - idleFor))
  }
})

export class Connection {
  readonly context: ConnectionContext
  readonly decoder: FrameDecoder
  /** Clock millis of the last bytes read or written. */
  lastActivity: number
  bytesIn = 0
  bytesOut = 0
  requests = 0

  private readonly slots: Array<Slot | undefined> = []
  private head = 0
  private pending = 0
  private readPaused = false
  private writeBlocked = false
  private driving = false
  private redrive = false
  private driveScheduled = false
  /** Stop reading and dispatching; close once everything in flight is written. */
  private closing = false
  /** Peer finished sending: handle what arrived, then close. */
  private remoteEnded = false
  private ending = false
  private isClosed = false
  private readonly closedSignal: Deferred.Deferred<void>
  private idleFiber: Fiber.RuntimeFiber<void> | undefined
  private readonly maxInFlight: number

  constructor(
    readonly id: number,
    readonly server: ServerContext,
    readonly sink: Sink,
    readonly remoteAddress: string,
    readonly remotePort: number
  ) {
    this.decoder = new FrameDecoder(server.config.maxRequestBytes)
    this.maxInFlight = Math.max(1, server.config.maxInFlightPerConnection)
    this.lastActivity = server.clock.unsafeCurrentTimeMillis()
    this.closedSignal = Deferred.unsafeMake<void>(FiberId.none)
    const self = this
    this.context = {
      id,
      remoteAddress,
      remotePort,
      close: (reason) => Effect.sync(() => self.closeWithReason(reason)),
      closed: Deferred.await(this.closedSignal),
      isOpen: () => !self.isClosed
    }
    server.counters.connectionsOpened++
    if (server.config.idleTimeoutMs > 0) {
      this.idleFiber = server.runFork(idleLoop(this, server.config.idleTimeoutMs))
    }
  }

  /** Requests being handled or awaiting their in-order write. */
  get inFlight(): number {
    return this.pending
  }

  get closedAwait(): Effect.Effect<void> {
    return Deferred.await(this.closedSignal)
  }

  get open(): boolean {
    return !this.isClosed
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      inFlight: this.pending,
      readPaused: this.readPaused,
      writeBlocked: this.writeBlocked,
      bufferedRequestBytes: this.decoder.buffered,
      queuedResponseBytes: this.isClosed ? 0 : this.sink.writableLength,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      requests: this.requests,
      closing: this.closing || this.remoteEnded
    }
  }

  // ---- events from the sink ----------------------------------------------

  onData(chunk: Buffer): void {
    if (this.isClosed || this.closing || this.remoteEnded) return
    const n = chunk.length
    this.bytesIn += n
    this.server.counters.bytesIn += n
    this.lastActivity = this.server.clock.unsafeCurrentTimeMillis()
    this.decoder.push(chunk)
    this.drive()
  }

  onDrain(): void {
    if (this.isClosed) return
    this.writeBlocked = false
    this.drive()
  }

  /** The peer half-closed: answer what was received, then close. */
  onRemoteEnd(): void {
    if (this.isClosed) return
    this.remoteEnded = true
    this.drive()
  }

  /** The sink is gone (peer reset, error, or our own destroy). */
  onClosed(): void {
    this.cleanup()
  }

  // ---- control -----------------------------------------------------------

  /** Graceful: stop reading, finish and write what is in flight, then close. */
  beginShutdown(): void {
    if (this.isClosed || this.closing) return
    this.closing = true
    this.decoder.clear()
    this.drive()
  }

  idleTimeout(): void {
    if (this.isClosed) return
    this.idleFiber = undefined
    this.server.counters.idleTimeouts++
    this.log(Effect.logDebug("closing idle connection"))
    this.destroy()
  }

  closeWithReason(reason: string): void {
    if (this.isClosed) return
    this.log(Effect.logWarning(`closing connection: ${reason}`))
    this.destroy()
  }

  destroy(): void {
    if (this.isClosed) return
    this.sink.destroy()
    this.cleanup()
  }

  // ---- engine -------------------------------------------------------------

  private readonly driveTask = (): void => {
    this.driveScheduled = false
    this.drive()
  }

  private scheduleDrive(): void {
    if (this.driving) {
      this.redrive = true
    } else if (!this.driveScheduled) {
      this.driveScheduled = true
      queueMicrotask(this.driveTask)
    }
  }

  private drive(): void {
    if (this.isClosed) return
    if (this.driving) {
      this.redrive = true
      return
    }
    this.driving = true
    try {
      let flushed: number
      do {
        this.redrive = false
        if (!this.closing) {
          while (this.canDispatch()) {
            let frame: Buffer | undefined
            try {
              frame = this.decoder.next()
            } catch (e) {
              this.framingError(e)
              return
            }
            if (frame === undefined) break
            this.dispatch(frame)
            if (this.isClosed) return
          }
        }
        flushed = this.flush()
        if (this.isClosed) return
      } while (this.redrive || (flushed > 0 && this.decoder.buffered >= 4 && this.canDispatch()))

      if (this.pending === 0 && (this.closing || (this.remoteEnded && !this.decoderHasFrame()))) {
        this.finish()
        return
      }
      const shouldPause = this.closing || this.remoteEnded || this.writeBlocked || this.pending >= this.maxInFlight
      if (shouldPause !== this.readPaused) {
        this.readPaused = shouldPause
        if (shouldPause) {
          this.server.counters.readPauses++
          this.sink.pause()
        } else {
          this.sink.resume()
        }
      }
    } finally {
      this.driving = false
    }
  }

  private canDispatch(): boolean {
    return this.pending < this.maxInFlight &&
      (!this.writeBlocked || this.sink.writableLength < MAX_QUEUED_RESPONSE_BYTES)
  }

  private decoderHasFrame(): boolean {
    try {
      return this.decoder.hasFrame()
    } catch {
      return false
    }
  }

  private dispatch(frame: Buffer): void {
    const slot: Slot = { done: false, response: null, size: 0, fiber: undefined }
    this.slots.push(slot)
    this.pending++
    this.requests++
    const counters = this.server.counters
    counters.requests++
    counters.requestsInFlight++
    let fiber: Fiber.RuntimeFiber<ResponseFrame | null>
    try {
      const effect = this.server.handler(this.context, frame)
      // `Effect.succeed(x)` / `Effect.die(x)` are already exits: no fiber needed.
      if (Exit.isExit(effect)) {
        this.complete(slot, effect as Exit.Exit<ResponseFrame | null>)
        return
      }
      fiber = this.server.runFork(effect)
    } catch (e) {
      this.handlerDefect(Cause.die(e))
      return
    }
    const exit = fiber.unsafePoll()
    if (exit !== null) {
      this.complete(slot, exit)
    } else {
      slot.fiber = fiber
      fiber.addObserver((exit) => {
        if (this.isClosed) return
        if (this.complete(slot, exit)) this.scheduleDrive()
      })
    }
  }

  private complete(slot: Slot, exit: Exit.Exit<ResponseFrame | null>): boolean {
    slot.fiber = undefined
    if (exit._tag === "Success") {
      slot.done = true
      slot.response = exit.value
      slot.size = exit.value === null ? 0 : responseFrameSize(exit.value)
      return true
    }
    this.handlerDefect(exit.cause)
    return false
  }

  /** Writes the responses completed at the head of the FIFO. Returns how many slots were released. */
  private flush(): number {
    const slots = this.slots
    const start = this.head
    let end = start
    let total = 0
    let count = 0
    while (end < slots.length && slots[end]!.done) {
      const slot = slots[end]!
      if (slot.response !== null) {
        total += 4 + slot.size
        count++
      }
      end++
    }
    const released = end - start
    if (released === 0) return 0
    if (count > 0) {
      let ok: boolean
      if (total <= COALESCE_BYTES) {
        const out = Buffer.allocUnsafe(total)
        let pos = 0
        for (let i = start; i < end; i++) {
          const { response: r, size } = slots[i]!
          if (r === null) continue
          out.writeInt32BE(size, pos)
          copyResponse(r, out, pos + 4)
          pos += 4 + size
        }
        ok = this.sink.write(out)
      } else {
        this.sink.cork()
        ok = true
        for (let i = start; i < end; i++) {
          const { response: r, size } = slots[i]!
          if (r === null) continue
          if (size <= SMALL_RESPONSE) {
            const out = Buffer.allocUnsafe(4 + size)
            out.writeInt32BE(size, 0)
            copyResponse(r, out, 4)
            ok = this.sink.write(out) && ok
          } else {
            const header = Buffer.allocUnsafe(4)
            header.writeInt32BE(size, 0)
            this.sink.write(header)
            const chunks = responseChunks(r)
            const last = chunks.length - 1
            const onFlushed = r instanceof ReleasingResponse ? r.release : undefined
            for (let c = 0; c <= last; c++) ok = this.sink.write(chunks[c]!, c === last ? onFlushed : undefined) && ok
            if (last < 0) onFlushed?.()
          }
        }
        this.sink.uncork()
      }
      this.bytesOut += total
      const counters = this.server.counters
      counters.bytesOut += total
      counters.responses += count
      this.lastActivity = this.server.clock.unsafeCurrentTimeMillis()
      if (!ok && !this.writeBlocked) {
        this.writeBlocked = true
        counters.writeBackpressure++
      }
    }
    for (let i = start; i < end; i++) slots[i] = undefined
    if (end === slots.length) {
      slots.length = 0
      this.head = 0
    } else if (end >= 1024) {
      slots.splice(0, end)
      this.head = 0
    } else {
      this.head = end
    }
    this.pending -= released
    this.server.counters.requestsInFlight -= released
    return released
  }

  private finish(): void {
    if (this.ending) return
    this.ending = true
    this.sink.end()
  }

  private framingError(e: unknown): void {
    this.server.counters.framingErrors++
    const reason = e instanceof InvalidFrameSize ? e.message : String(e)
    this.log(Effect.logWarning(`closing connection: ${reason}`))
    this.destroy()
  }

  private handlerDefect(cause: Cause.Cause<unknown>): void {
    if (this.isClosed) return
    this.server.counters.handlerDefects++
    this.log(Effect.logError("request handler failed; closing connection", cause))
    this.destroy()
  }

  private log(effect: Effect.Effect<void>): void {
    this.server.runFork(
      Effect.annotateLogs(effect, {
        connectionId: this.id,
        remote: `${this.remoteAddress}:${this.remotePort}`
      })
    )
  }

  private cleanup(): void {
    if (this.isClosed) return
    this.isClosed = true
    const slots = this.slots
    for (let i = this.head; i < slots.length; i++) {
      const fiber = slots[i]?.fiber
      if (fiber !== undefined) fiber.unsafeInterruptAsFork(FiberId.none)
    }
    slots.length = 0
    this.head = 0
    this.server.counters.requestsInFlight -= this.pending
    this.pending = 0
    this.decoder.clear()
    if (this.idleFiber !== undefined) {
      this.idleFiber.unsafeInterruptAsFork(FiberId.none)
      this.idleFiber = undefined
    }
    this.server.counters.connectionsClosed++
    Deferred.unsafeDone(this.closedSignal, Exit.void)
    this.server.onConnectionClosed(this)
  }
}
