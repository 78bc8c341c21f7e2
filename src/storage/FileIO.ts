/**
 * The small file-system surface the storage engine uses. Everything the log
 * does to disk goes through this interface so tests can count fsyncs, inject
 * I/O faults (ENOSPC, EIO, short writes) and simulate crashes that lose
 * unsynced data.
 *
 * Writes, reads and truncation are synchronous (page-cache speed, one call per
 * batch); only `fdatasync`/`fsyncDir` are asynchronous (libuv thread pool),
 * because they can take milliseconds. See docs/storage.md for the measurements
 * behind that choice.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export type Fd = number

export interface FileIO {
  readonly kind: string
  mkdirp(dir: string): void
  /** Entry names in a directory, [] if it does not exist. */
  readdir(dir: string): ReadonlyArray<string>
  exists(p: string): boolean
  /** Remove a file; no error if it is missing. */
  unlink(p: string): void
  /** Remove a directory tree; no error if it is missing. */
  rmrf(dir: string): void
  /** Whole file, or undefined if missing. */
  readFile(p: string): Buffer | undefined
  /** Replace a small file atomically and durably (tmp + fsync + rename + dir fsync). */
  writeFileDurable(p: string, data: Uint8Array): void
  /** Open (creating if missing) for read and write. */
  open(p: string): Fd
  size(fd: Fd): number
  /** Write all of `data` at `position`; throws on error (possibly after a partial write). */
  write(fd: Fd, data: Uint8Array, position: number): void
  /** Vectored write of all `data` at `position` (one syscall when possible). */
  writev(fd: Fd, data: ReadonlyArray<Uint8Array>, position: number): void
  read(fd: Fd, into: Uint8Array, offset: number, length: number, position: number): number
  truncate(fd: Fd, length: number): void
  fdatasync(fd: Fd): Promise<void>
  fsyncDir(dir: string): Promise<void>
  close(fd: Fd): void
  /**
   * Vectored write of `data` at `position` off the calling thread; `done`
   * gets the bytes written (possibly fewer than asked) or the error. Only
   * `withAsyncWrites` (AsyncWriteFileIO.ts) calls it, one write per file at a time.
   */
  writevAsync?(fd: Fd, data: ReadonlyArray<Uint8Array>, position: number, done: (error: Error | null, written: number) => void): void
  /**
   * Present when writes complete after `write`/`writev` return (`withAsyncWrites`):
   * calls `done` once every write made so far on the file of `fd` has completed,
   * with the error if one failed. Without it, a write is complete when it returns.
   */
  whenWritten?(fd: Fd, done: (error?: unknown) => void): void
}

// ---------------------------------------------------------------------------
// node:fs implementation

const ignoreENOENT = (f: () => void): void => {
  try {
    f()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
  }
}

export const nodeFileIO: FileIO = {
  kind: "node",
  mkdirp: (dir) => {
    fs.mkdirSync(dir, { recursive: true })
  },
  readdir: (dir) => {
    try {
      return fs.readdirSync(dir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return []
      throw e
    }
  },
  exists: (p) => fs.existsSync(p),
  unlink: (p) => ignoreENOENT(() => fs.unlinkSync(p)),
  rmrf: (dir) => fs.rmSync(dir, { recursive: true, force: true }),
  readFile: (p) => {
    try {
      return fs.readFileSync(p)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
      throw e
    }
  },
  writeFileDurable: (p, data) => {
    const tmp = p + ".tmp"
    const fd = fs.openSync(tmp, "w")
    try {
      let off = 0
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, off)
      fs.fdatasyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, p)
    const dfd = fs.openSync(path.dirname(p), "r")
    try {
      fs.fsyncSync(dfd)
    } finally {
      fs.closeSync(dfd)
    }
  },
  open: (p) => fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644),
  size: (fd) => fs.fstatSync(fd).size,
  write: (fd, data, position) => {
    let off = 0
    while (off < data.length) {
      off += fs.writeSync(fd, data, off, data.length - off, position + off)
    }
  },
  writev: (fd, data, position) => {
    let total = 0
    for (const d of data) total += d.length
    let n = fs.writevSync(fd, data as Array<Uint8Array>, position)
    if (n >= total) return
    // short vectored write: finish the rest with plain writes
    let skip = n
    for (const d of data) {
      if (skip >= d.length) {
        skip -= d.length
        continue
      }
      const part = d.subarray(skip)
      skip = 0
      let off = 0
      while (off < part.length) off += fs.writeSync(fd, part, off, part.length - off, position + n + off)
      n += part.length
    }
  },
  read: (fd, into, offset, length, position) => {
    let got = 0
    while (got < length) {
      const n = fs.readSync(fd, into, offset + got, length - got, position + got)
      if (n === 0) break
      got += n
    }
    return got
  },
  truncate: (fd, length) => fs.ftruncateSync(fd, length),
  fdatasync: (fd) =>
    new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
  fsyncDir: (dir) =>
    new Promise<void>((resolve, reject) => {
      fs.open(dir, "r", (err, fd) => {
        if (err) return reject(err)
        fs.fsync(fd, (err2) => {
          fs.close(fd, () => (err2 ? reject(err2) : resolve()))
        })
      })
    }),
  close: (fd) => fs.closeSync(fd),
  writevAsync: (fd, data, position, done) =>
    fs.writev(fd, data as Array<Uint8Array>, position, (error, written) => done(error, written))
}

// ---------------------------------------------------------------------------
// In-memory implementation with a crash model

/** An Error carrying an errno `code`, as node:fs throws them (for the in-memory and wrapping FileIOs). */
export const errno = (code: string, msg: string): NodeJS.ErrnoException => {
  const e = new Error(`${code}: ${msg}`) as NodeJS.ErrnoException
  e.code = code
  return e
}

class MemFile {
  data: Buffer = Buffer.alloc(0)
  size = 0
  /** Lowest position changed since the last sync (Infinity: none), so a sync copies only what changed. */
  changedFrom = Infinity
  private durableData: Buffer = Buffer.alloc(0)
  private durableSize = 0
  /** Contents as of the last fdatasync. */
  get durable(): Buffer {
    return this.durableData.subarray(0, this.durableSize)
  }
  set durable(b: Buffer) {
    this.durableData = b
    this.durableSize = b.length
    this.changedFrom = Infinity
  }
  changed(from: number): void {
    if (from < this.changedFrom) this.changedFrom = from
  }
  /** fdatasync: the durable contents become the current ones. */
  sync(): void {
    if (this.changedFrom === Infinity && this.durableSize === this.size) return
    if (this.durableData.length < this.size) {
      const next = Buffer.alloc(Math.max(this.size, this.durableData.length * 2, 4096))
      this.durableData.copy(next, 0, 0, this.durableSize)
      this.durableData = next
    }
    const from = Math.min(this.changedFrom, this.durableSize, this.size)
    this.data.copy(this.durableData, from, from, this.size)
    this.durableSize = this.size
    this.changedFrom = Infinity
  }
  ensure(n: number): void {
    if (n <= this.data.length) return
    const next = Buffer.alloc(Math.max(n, this.data.length * 2, 4096))
    this.data.copy(next, 0, 0, this.size)
    this.data = next
  }
  contents(): Buffer {
    return this.data.subarray(0, this.size)
  }
}

/**
 * A file system in a Map. Directory operations are immediately durable; file
 * contents are durable only up to the last `fdatasync`. `crash()` returns the
 * file system a restarted node would see.
 */
export class MemoryFileIO implements FileIO {
  readonly kind = "memory"
  private files = new Map<string, MemFile>()
  private dirs = new Set<string>()
  private fds = new Map<number, MemFile>()
  private nextFd = 3

  mkdirp(dir: string): void {
    let d = path.resolve(dir)
    while (!this.dirs.has(d)) {
      this.dirs.add(d)
      const parent = path.dirname(d)
      if (parent === d) break
      d = parent
    }
  }
  readdir(dir: string): ReadonlyArray<string> {
    const d = path.resolve(dir)
    const out = new Set<string>()
    const prefix = d.endsWith(path.sep) ? d : d + path.sep
    for (const p of [...this.files.keys(), ...this.dirs]) {
      if (p.startsWith(prefix)) out.add(p.slice(prefix.length).split(path.sep)[0]!)
    }
    return [...out]
  }
  exists(p: string): boolean {
    const r = path.resolve(p)
    return this.files.has(r) || this.dirs.has(r)
  }
  unlink(p: string): void {
    this.files.delete(path.resolve(p))
  }
  rmrf(dir: string): void {
    const d = path.resolve(dir)
    const prefix = d + path.sep
    for (const p of [...this.files.keys()]) if (p === d || p.startsWith(prefix)) this.files.delete(p)
    for (const p of [...this.dirs]) if (p === d || p.startsWith(prefix)) this.dirs.delete(p)
  }
  readFile(p: string): Buffer | undefined {
    const f = this.files.get(path.resolve(p))
    return f ? Buffer.from(f.contents()) : undefined
  }
  writeFileDurable(p: string, data: Uint8Array): void {
    const f = new MemFile()
    f.ensure(data.length)
    f.data.set(data, 0)
    f.size = data.length
    f.durable = Buffer.from(f.contents())
    this.files.set(path.resolve(p), f)
  }
  open(p: string): Fd {
    const r = path.resolve(p)
    if (!this.dirs.has(path.dirname(r))) throw errno("ENOENT", `no directory for ${p}`)
    let f = this.files.get(r)
    if (!f) {
      f = new MemFile()
      this.files.set(r, f)
    }
    const fd = this.nextFd++
    this.fds.set(fd, f)
    return fd
  }
  private file(fd: Fd): MemFile {
    const f = this.fds.get(fd)
    if (!f) throw errno("EBADF", `bad fd ${fd}`)
    return f
  }
  size(fd: Fd): number {
    return this.file(fd).size
  }
  write(fd: Fd, data: Uint8Array, position: number): void {
    this.writeFile(this.file(fd), data, position)
  }
  private writeFile(f: MemFile, data: Uint8Array, position: number): void {
    f.ensure(position + data.length)
    if (position > f.size) f.data.fill(0, f.size, position)
    f.changed(Math.min(position, f.size))
    f.data.set(data, position)
    f.size = Math.max(f.size, position + data.length)
  }
  writev(fd: Fd, data: ReadonlyArray<Uint8Array>, position: number): void {
    let at = position
    for (const d of data) {
      this.write(fd, d, at)
      at += d.length
    }
  }
  read(fd: Fd, into: Uint8Array, offset: number, length: number, position: number): number {
    const f = this.file(fd)
    const n = Math.max(0, Math.min(length, f.size - position))
    if (n > 0) into.set(f.data.subarray(position, position + n), offset)
    return n
  }
  truncate(fd: Fd, length: number): void {
    const f = this.file(fd)
    if (length > f.size) {
      f.ensure(length)
      f.data.fill(0, f.size, length)
    }
    f.changed(Math.min(length, f.size))
    f.size = length
  }
  fdatasync(fd: Fd): Promise<void> {
    try {
      this.file(fd).sync()
      return Promise.resolve()
    } catch (e) {
      return Promise.reject(e)
    }
  }
  fsyncDir(_dir: string): Promise<void> {
    return Promise.resolve()
  }
  close(fd: Fd): void {
    this.file(fd)
    this.fds.delete(fd)
  }

  /** Asynchronous writes started and not yet completed, oldest first (see `holdWrites`). */
  private held: Array<{ readonly complete: (code?: string) => void }> | undefined

  /**
   * `writevAsync` completes on a later turn (setImmediate) by default. After
   * `holdWrites()` each one waits until a test completes it with `completeWrite`
   * (in any order); `releaseWrites()` completes the held ones and returns to the default.
   */
  holdWrites(): void {
    this.held ??= []
  }
  get heldWrites(): number {
    return this.held?.length ?? 0
  }
  /** Completes the `i`-th held write (oldest first): it lands, or fails with errno `code` and writes nothing. */
  completeWrite(i = 0, code?: string): void {
    const w = this.held?.[i]
    if (w === undefined) throw new Error(`no held write ${i}`)
    this.held!.splice(i, 1)
    w.complete(code)
  }
  releaseWrites(): void {
    const held = this.held ?? []
    this.held = undefined
    for (const w of held) w.complete()
  }
  writevAsync(fd: Fd, data: ReadonlyArray<Uint8Array>, position: number, done: (error: Error | null, written: number) => void): void {
    const f = this.file(fd)
    // like the pool thread, the completion reads the buffers when it runs, not now
    const complete = (code?: string): void => {
      if (code !== undefined) return done(errno(code, "held write failed"), 0)
      let at = position
      for (const d of data) {
        this.writeFile(f, d, at)
        at += d.length
      }
      done(null, at - position)
    }
    if (this.held !== undefined) this.held.push({ complete })
    else setImmediate(() => complete())
  }

  /**
   * The file system after a power loss. Each file keeps its durable contents;
   * with `tear`, a file that had unsynced writes may keep a prefix of them
   * followed by garbage, chosen by `random` (a [0,1) generator).
   */
  crash(options: { readonly tear?: boolean; readonly random?: () => number } = {}): MemoryFileIO {
    const rnd = options.random ?? Math.random
    const next = new MemoryFileIO()
    for (const d of this.dirs) next.dirs.add(d)
    for (const [p, f] of this.files) {
      const nf = new MemFile()
      let content: Buffer = f.durable
      if (options.tear && !f.contents().equals(f.durable)) {
        const cur = f.contents()
        // keep the durable prefix, then part of what was written after it
        const common = Math.min(cur.length, f.durable.length)
        let same = 0
        while (same < common && cur[same] === f.durable[same]) same++
        const keep = same + Math.floor(rnd() * (cur.length - same + 1))
        const garbage = Math.floor(rnd() * 16)
        content = Buffer.concat([
          cur.subarray(0, keep),
          Buffer.from(Array.from({ length: garbage }, () => Math.floor(rnd() * 256)))
        ])
        if (content.length < f.durable.length) content = Buffer.from(f.durable)
      }
      nf.ensure(content.length)
      content.copy(nf.data)
      nf.size = content.length
      nf.durable = Buffer.from(content)
      next.files.set(p, nf)
    }
    return next
  }
  /** Total bytes of all files (for tests). */
  fileSize(p: string): number | undefined {
    return this.files.get(path.resolve(p))?.size
  }
  /** Direct mutation of a file (tests: flip bytes, tear a tail). */
  mutate(p: string, f: (contents: Buffer) => Buffer): void {
    const r = path.resolve(p)
    const file = this.files.get(r)
    if (!file) throw errno("ENOENT", p)
    const next = f(Buffer.from(file.contents()))
    const nf = new MemFile()
    nf.ensure(next.length)
    next.copy(nf.data)
    nf.size = next.length
    nf.durable = Buffer.from(next)
    this.files.set(r, nf)
  }
}

// ---------------------------------------------------------------------------
// Instrumentation and fault injection

export interface FileIOStats {
  writes: number
  bytesWritten: number
  reads: number
  fdatasyncs: number
  dirSyncs: number
}

export interface FaultPlan {
  /** Return an errno code to fail this write (after writing `partial` bytes), or undefined. */
  write?: ((file: string, position: number, length: number) => { code: string; partial?: number } | undefined) | undefined
  /** Return an errno code to fail this fdatasync. */
  fdatasync?: ((file: string) => string | undefined) | undefined
  truncate?: ((file: string) => string | undefined) | undefined
  read?: ((file: string) => string | undefined) | undefined
}

/** Wrap a FileIO to count calls and inject faults. `plan` is read on every call, so tests can change it. */
export const instrument = (
  inner: FileIO,
  plan: FaultPlan = {}
): { readonly io: FileIO; readonly stats: FileIOStats; readonly plan: FaultPlan } => {
  const stats: FileIOStats = { writes: 0, bytesWritten: 0, reads: 0, fdatasyncs: 0, dirSyncs: 0 }
  const paths = new Map<Fd, string>()
  const io: FileIO = {
    kind: `instrumented(${inner.kind})`,
    mkdirp: (d) => inner.mkdirp(d),
    readdir: (d) => inner.readdir(d),
    exists: (p) => inner.exists(p),
    unlink: (p) => inner.unlink(p),
    rmrf: (d) => inner.rmrf(d),
    readFile: (p) => inner.readFile(p),
    writeFileDurable: (p, d) => inner.writeFileDurable(p, d),
    open: (p) => {
      const fd = inner.open(p)
      paths.set(fd, p)
      return fd
    },
    size: (fd) => inner.size(fd),
    write: (fd, data, position) => {
      const f = plan.write?.(paths.get(fd) ?? "?", position, data.length)
      if (f) {
        const partial = Math.min(f.partial ?? 0, data.length)
        if (partial > 0) inner.write(fd, data.subarray(0, partial), position)
        throw errno(f.code, `injected write fault on ${paths.get(fd)}`)
      }
      stats.writes++
      stats.bytesWritten += data.length
      inner.write(fd, data, position)
    },
    writev: (fd, data, position) => {
      let length = 0
      for (const d of data) length += d.length
      const f = plan.write?.(paths.get(fd) ?? "?", position, length)
      if (f) {
        const partial = Math.min(f.partial ?? 0, length)
        if (partial > 0) inner.write(fd, Buffer.concat(data as Array<Uint8Array>).subarray(0, partial), position)
        throw errno(f.code, `injected write fault on ${paths.get(fd)}`)
      }
      stats.writes++
      stats.bytesWritten += length
      inner.writev(fd, data, position)
    },
    read: (fd, into, offset, length, position) => {
      const code = plan.read?.(paths.get(fd) ?? "?")
      if (code) throw errno(code, `injected read fault on ${paths.get(fd)}`)
      stats.reads++
      return inner.read(fd, into, offset, length, position)
    },
    truncate: (fd, length) => {
      const code = plan.truncate?.(paths.get(fd) ?? "?")
      if (code) throw errno(code, `injected truncate fault on ${paths.get(fd)}`)
      inner.truncate(fd, length)
    },
    fdatasync: (fd) => {
      const code = plan.fdatasync?.(paths.get(fd) ?? "?")
      if (code) return Promise.reject(errno(code, `injected fdatasync fault on ${paths.get(fd)}`))
      stats.fdatasyncs++
      return inner.fdatasync(fd)
    },
    fsyncDir: (d) => {
      stats.dirSyncs++
      return inner.fsyncDir(d)
    },
    close: (fd) => {
      paths.delete(fd)
      inner.close(fd)
    }
  }
  const innerAsync = inner.writevAsync?.bind(inner)
  if (innerAsync !== undefined) {
    // the fault is reported when the write completes, as the pool thread would report it
    io.writevAsync = (fd, data, position, done) => {
      let length = 0
      for (const d of data) length += d.length
      const f = plan.write?.(paths.get(fd) ?? "?", position, length)
      if (f) {
        const partial = Math.min(f.partial ?? 0, length)
        const fault = errno(f.code, `injected write fault on ${paths.get(fd)}`)
        if (partial === 0) return setImmediate(() => done(fault, 0))
        const part = Buffer.concat(data as Array<Uint8Array>).subarray(0, partial)
        // the partial bytes land, then the rest fails
        return innerAsync(fd, [part], position, (error) => done(error ?? fault, 0))
      }
      stats.writes++
      stats.bytesWritten += length
      innerAsync(fd, data, position, done)
    }
  }
  return { io, stats, plan }
}
