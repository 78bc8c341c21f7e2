/**
 * Segment writes off the event loop (docs/async-segment-writes.md).
 *
 * `withAsyncWrites(inner)` is a `FileIO` whose `write`/`writev` return at once
 * and hand the bytes to `inner.writevAsync` (the libuv pool for node:fs),
 * while every other call keeps its synchronous meaning, as if the write had
 * already happened:
 *
 * - Per file (inode: all fds opened on one path share the state until the
 *   path is unlinked or replaced), operations run in the order they were
 *   made, one at a time: writes, and truncations made while writes are
 *   pending (so a write never lands after a truncation that should cut it).
 *   Contiguous queued writes go out as one vectored write.
 * - `read` returns the file as it will be: the bytes on disk with every
 *   pending write and truncation applied over them; `size` likewise.
 * - `fdatasync` starts once the writes made before it have completed;
 *   `close` is deferred until then.
 * - A failed write fails the file: later writes, truncations and syncs on it
 *   throw (or reject with) that error; `whenWritten` reports it.
 * - `whenWritten(fd, cb)` calls back once every write made so far on the
 *   file has completed (with the error if one failed).
 *
 * Buffers handed to `write`/`writev` must not change until their write has
 * completed (`whenWritten`). An fd the inner FileIO opened itself (the node
 * journal shares the inner FileIO) passes through with synchronous writes.
 */
import * as path from "node:path"
import { errno, type Fd, type FileIO } from "./FileIO.js"

/** Most buffers in one vectored write (Linux IOV_MAX is 1024). */
const MAX_IOV = 1024
/** Most bytes in one vectored write built from queued writes. */
const MAX_COALESCED_BYTES = 8 * 1024 * 1024

type Op =
  | { readonly _tag: "write"; readonly seq: number; readonly fd: Fd; readonly position: number; readonly data: ReadonlyArray<Uint8Array>; readonly bytes: number }
  | { readonly _tag: "truncate"; readonly seq: number; readonly fd: Fd; readonly length: number }

interface Barrier {
  readonly seq: number
  readonly run: (error: unknown) => void
}

/** The pending operations of one file. */
class FileState {
  /** Operations not yet completed, in order; the first may be in flight. */
  readonly ops: Array<Op> = []
  /** How many operations at the head of `ops` are in flight (0 or more, one vectored write). */
  inFlight = 0
  /** Sequence number of the last operation made, and of the last completed. */
  seq = 0
  doneSeq = 0
  error: unknown = undefined
  barriers: Array<Barrier> = []
  /** @param size the file's size once every pending operation is done (all its writes and truncations come through here) */
  constructor(public size: number) {}
}

export interface AsyncWriteStats {
  /** Vectored writes issued to the inner FileIO, and the writes they carried. */
  issued: number
  coalesced: number
  /** Bytes queued and not yet written, across all files. */
  pendingBytes: number
}

export interface AsyncWriteFileIO extends FileIO {
  readonly stats: AsyncWriteStats
}

export const withAsyncWrites = (inner: FileIO): AsyncWriteFileIO => {
  const writevAsync = inner.writevAsync?.bind(inner)
  if (writevAsync === undefined) throw new Error(`FileIO ${inner.kind} has no asynchronous write`)
  const byPath = new Map<string, FileState>()
  const byFd = new Map<Fd, FileState>()
  /** fds whose close waits for their file's pending operations. */
  const closing = new Set<Fd>()
  /** fdatasync calls in flight per fd (a deferred close waits for them too). */
  const syncing = new Map<Fd, number>()
  const stats: AsyncWriteStats = { issued: 0, coalesced: 0, pendingBytes: 0 }

  const settle = (s: FileState): void => {
    if (s.barriers.length === 0) return
    const ready: Array<Barrier> = []
    const keep: Array<Barrier> = []
    for (const b of s.barriers) (b.seq <= s.doneSeq || s.error !== undefined ? ready : keep).push(b)
    s.barriers = keep
    for (const b of ready) b.run(s.error)
  }

  /** Runs `run` once every operation made so far on `s` is done (at once if none is pending). */
  const after = (s: FileState, run: (error: unknown) => void): void => {
    if (s.error !== undefined || s.ops.length === 0) return run(s.error)
    s.barriers.push({ seq: s.seq, run })
  }

  const fail = (s: FileState, error: unknown): void => {
    s.error = error
    for (const op of s.ops) if (op._tag === "write") stats.pendingBytes -= op.bytes
    s.ops.length = 0
    s.inFlight = 0
    s.doneSeq = s.seq
    settle(s)
    closeDeferred(s)
  }

  /** Starts the operations at the head of the queue (one vectored write, or truncations). */
  const pump = (s: FileState): void => {
    while (s.inFlight === 0 && s.ops.length > 0 && s.error === undefined) {
      const head = s.ops[0]!
      if (head._tag === "truncate") {
        try {
          inner.truncate(head.fd, head.length)
        } catch (e) {
          fail(s, e)
          return
        }
        s.ops.shift()
        s.doneSeq = head.seq
        continue
      }
      // coalesce the contiguous writes behind it on the same fd
      const iov: Array<Uint8Array> = [...head.data]
      let bytes = head.bytes
      let n = 1
      while (n < s.ops.length) {
        const next = s.ops[n]!
        if (
          next._tag !== "write" || next.fd !== head.fd || next.position !== head.position + bytes ||
          iov.length + next.data.length > MAX_IOV || bytes + next.bytes > MAX_COALESCED_BYTES
        ) break
        for (const d of next.data) iov.push(d)
        bytes += next.bytes
        n++
      }
      s.inFlight = n
      stats.issued++
      stats.coalesced += n
      writeAll(head.fd, iov, head.position, bytes, (error) => {
        if (s.error !== undefined) return
        if (error !== undefined) return fail(s, error)
        const done = s.ops.splice(0, n)
        stats.pendingBytes -= bytes
        s.inFlight = 0
        s.doneSeq = done[done.length - 1]!.seq
        pump(s)
        settle(s)
        if (s.ops.length === 0) closeDeferred(s)
      })
    }
  }

  /** One vectored write of `bytes` at `position`, continued after short writes. */
  const writeAll = (
    fd: Fd,
    iov: ReadonlyArray<Uint8Array>,
    position: number,
    bytes: number,
    done: (error?: unknown) => void
  ): void => {
    writevAsync(fd, iov, position, (error, written) => {
      if (error) return done(error)
      if (written >= bytes) return done()
      if (written <= 0) return done(errno("EIO", `no progress writing ${bytes} bytes at ${position}`))
      let skip = written
      const rest: Array<Uint8Array> = []
      for (const d of iov) {
        if (skip >= d.length) skip -= d.length
        else {
          rest.push(skip > 0 ? d.subarray(skip) : d)
          skip = 0
        }
      }
      writeAll(fd, rest, position + written, bytes - written, done)
    })
  }

  const closeDeferred = (s: FileState): void => {
    if (closing.size === 0) return
    for (const fd of [...closing]) {
      if (byFd.get(fd) !== s || syncing.has(fd) || (s.ops.length > 0 && s.error === undefined)) continue
      closing.delete(fd)
      byFd.delete(fd)
      try {
        inner.close(fd)
      } catch {
        // closing is best effort
      }
    }
  }

  const enqueueWrite = (fd: Fd, data: ReadonlyArray<Uint8Array>, position: number): void => {
    const s = byFd.get(fd)
    // an fd opened through the inner FileIO (the node journal's) keeps its synchronous writes
    if (s === undefined) return inner.writev(fd, data, position)
    if (s.error !== undefined) throw s.error
    let bytes = 0
    for (const d of data) bytes += d.length
    if (bytes === 0) return
    if (position + bytes > s.size) s.size = position + bytes
    s.ops.push({ _tag: "write", seq: ++s.seq, fd, position, data, bytes })
    stats.pendingBytes += bytes
    if (s.inFlight === 0) pump(s)
  }

  /** The paths under `dir` (or `dir` itself) no longer name the files their states belong to. */
  const forgetPaths = (p: string, tree: boolean): void => {
    const r = path.resolve(p)
    if (!tree) {
      byPath.delete(r)
      return
    }
    const prefix = r + path.sep
    for (const k of [...byPath.keys()]) if (k === r || k.startsWith(prefix)) byPath.delete(k)
  }

  const io: AsyncWriteFileIO = {
    kind: `async-writes(${inner.kind})`,
    stats,
    mkdirp: (d) => inner.mkdirp(d),
    readdir: (d) => inner.readdir(d),
    exists: (p) => inner.exists(p),
    unlink: (p) => {
      forgetPaths(p, false)
      inner.unlink(p)
    },
    rmrf: (d) => {
      forgetPaths(d, true)
      inner.rmrf(d)
    },
    readFile: (p) => {
      const s = byPath.get(path.resolve(p))
      if (s === undefined || s.ops.length === 0) return inner.readFile(p)
      // a file with pending writes: read it through an fd of its own, with them applied
      const fd = [...byFd.entries()].find(([, st]) => st === s)![0]
      const out = Buffer.alloc(s.size)
      const n = io.read(fd, out, 0, out.length, 0)
      return out.subarray(0, n)
    },
    writeFileDurable: (p, d) => {
      forgetPaths(p, false)
      inner.writeFileDurable(p, d)
    },
    open: (p) => {
      const fd = inner.open(p)
      const r = path.resolve(p)
      let s = byPath.get(r)
      if (s === undefined) {
        s = new FileState(inner.size(fd))
        byPath.set(r, s)
      }
      byFd.set(fd, s)
      return fd
    },
    size: (fd) => {
      const s = byFd.get(fd)
      return s !== undefined && s.error === undefined ? s.size : inner.size(fd)
    },
    write: (fd, data, position) => enqueueWrite(fd, [data], position),
    writev: (fd, data, position) => enqueueWrite(fd, data, position),
    read: (fd, into, offset, length, position) => {
      const s = byFd.get(fd)
      if (s === undefined || s.ops.length === 0) return inner.read(fd, into, offset, length, position)
      const got = inner.read(fd, into, offset, length, position)
      const n = Math.max(0, Math.min(length, s.size - position))
      if (got < n) into.fill(0, offset + got, offset + n)
      const end = position + n
      // replay the pending operations over the window, in order (the one in flight may be half on disk)
      for (const op of s.ops) {
        if (op._tag === "truncate") {
          if (op.length < end) into.fill(0, offset + Math.max(0, op.length - position), offset + n)
          continue
        }
        let at = op.position
        for (const d of op.data) {
          const from = Math.max(at, position)
          const to = Math.min(at + d.length, end)
          if (from < to) into.set(d.subarray(from - at, to - at), offset + (from - position))
          at += d.length
          if (at >= end) break
        }
      }
      return n
    },
    truncate: (fd, length) => {
      const s = byFd.get(fd)
      if (s === undefined) return inner.truncate(fd, length)
      if (s.error !== undefined) throw s.error
      if (s.ops.length === 0) {
        inner.truncate(fd, length)
        s.size = length
        return
      }
      s.size = length
      s.ops.push({ _tag: "truncate", seq: ++s.seq, fd, length })
    },
    fdatasync: (fd) => {
      const s = byFd.get(fd)
      if (s === undefined) return inner.fdatasync(fd)
      syncing.set(fd, (syncing.get(fd) ?? 0) + 1)
      return new Promise<void>((resolve, reject) =>
        after(s, (error) => {
          if (error !== undefined) return reject(error)
          inner.fdatasync(fd).then(resolve, reject)
        })
      ).finally(() => {
        const n = syncing.get(fd)! - 1
        if (n > 0) syncing.set(fd, n)
        else {
          syncing.delete(fd)
          closeDeferred(s)
        }
      })
    },
    fsyncDir: (d) => inner.fsyncDir(d),
    close: (fd) => {
      const s = byFd.get(fd)
      if (s === undefined) return inner.close(fd)
      if (closing.has(fd)) throw errno("EBADF", `fd ${fd} is closing`)
      if ((s.ops.length > 0 && s.error === undefined) || syncing.has(fd)) {
        closing.add(fd)
        return
      }
      byFd.delete(fd)
      inner.close(fd)
    },
    whenWritten: (fd, cb) => {
      const s = byFd.get(fd)
      if (s === undefined) return cb()
      after(s, (error) => cb(error))
    }
  }
  return io
}
