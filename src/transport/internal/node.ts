/**
 * @internal node:net listener feeding {@link Server} connections.
 */
import * as Net from "node:net"
import { Effect } from "effect"
import { TransportBindError } from "../errors.js"
import type { Sink } from "./connection.js"
import type { Listener, Server } from "./server.js"

const socketSink = (socket: Net.Socket): Sink => ({
  // The callback runs once the bytes are handed to the kernel (or the socket was destroyed).
  write: (data, onFlushed) => (onFlushed === undefined ? socket.write(data) : socket.write(data, () => onFlushed())),
  cork: () => socket.cork(),
  uncork: () => socket.uncork(),
  pause: () => socket.pause(),
  resume: () => socket.resume(),
  end: () => {
    // FIN after the queued responses; keep reading (and discarding) so the
    // peer's FIN is seen and the socket closes without a reset that could
    // drop responses still in the kernel's send queue.
    socket.end()
    socket.resume()
  },
  destroy: () => {
    socket.destroy()
  },
  get writableLength() {
    return socket.writableLength
  }
})

const attach = (server: Server, socket: Net.Socket): void => {
  socket.setNoDelay(true)
  const conn = server.accept(socketSink(socket), socket.remoteAddress ?? "unknown", socket.remotePort ?? 0)
  if (conn === undefined) {
    socket.destroy()
    return
  }
  socket.on("data", (chunk: Buffer) => conn.onData(chunk))
  socket.on("drain", () => conn.onDrain())
  socket.on("end", () => conn.onRemoteEnd())
  socket.on("error", () => {
    // 'close' follows; resets from clients are routine and not logged.
  })
  socket.on("close", () => conn.onClosed())
}

export const listen = (server: Server): Effect.Effect<Listener, TransportBindError> =>
  Effect.async<Listener, TransportBindError>((resume) => {
    const { backlog, host, port } = server.config
    const netServer = Net.createServer({ allowHalfOpen: true, noDelay: true })
    let stopped = false
    let fullyClosed = false
    let closeWaiters: Array<() => void> = []
    const stopAccepting = () => {
      if (stopped) return
      stopped = true
      // The callback runs once the listener and all its sockets are closed.
      netServer.close(() => {
        fullyClosed = true
        const ws = closeWaiters
        closeWaiters = []
        for (const w of ws) w()
      })
    }
    const onListenError = (err: Error) => {
      stopped = true
      fullyClosed = true
      resume(Effect.fail(new TransportBindError({ host, port, reason: err.message })))
    }
    netServer.once("error", onListenError)
    netServer.on("connection", (socket) => attach(server, socket))
    netServer.listen({ host, port, backlog }, () => {
      netServer.off("error", onListenError)
      netServer.on("error", (err) => {
        server.runFork(Effect.logError("Kafka listener error", err))
      })
      const info = netServer.address() as Net.AddressInfo
      resume(
        Effect.succeed({
          address: { host: info.address, port: info.port },
          stopAccepting,
          awaitClosed: Effect.async<void>((done) => {
            if (fullyClosed) return done(Effect.void)
            closeWaiters.push(() => done(Effect.void))
            stopAccepting()
          })
        })
      )
    })
    return Effect.sync(stopAccepting)
  })
