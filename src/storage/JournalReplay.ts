/**
 * Replays the node journal (see `Journal`) into the segment files, before
 * any log opens: every record from the checkpoint position on, in order,
 * up to the first record that is torn, from an older use of a reused file,
 * or missing. The logs then recover from their files as usual (CRC checks,
 * torn tails, indexes), the files now holding everything the journal made
 * durable.
 *
 * Rules that keep replay from bringing back what was removed:
 * - a record for a file that does not exist is skipped, unless a record
 *   replayed before it removed that file or its directory (the file was
 *   then created again after the removal). A file whose data was ever
 *   acknowledged exists: the pass that acknowledged it also fsynced its
 *   directory.
 * - `Delete` and `DeleteDir` are applied as recorded.
 *
 * Replay is idempotent (a crash during it replays the same records again).
 */
import { crc32c } from "@node-rs/crc32"
import * as path from "node:path"
import type { Fd, FileIO } from "./FileIO.js"
import {
  FILE_HEADER,
  JOURNAL_CHECKPOINT,
  JOURNAL_DIR,
  RECORD_HEADER,
  RecordKind,
  Journal,
  decodeFileHeader,
  parseJournalFileName,
  type JournalOptions,
  type JournalPosition
} from "./Journal.js"

export interface ReplayReport {
  /** Records applied (Write, Truncate, Delete, DeleteDir). */
  readonly records: number
  readonly bytes: number
  /** Records for files that no longer exist. */
  readonly skipped: number
  readonly files: number
  /** Why the scan stopped. */
  readonly end: string
  /** The writer starts here: a generation newer than every file's. */
  readonly start: JournalPosition
}

export const readJournalCheckpoint = (io: FileIO, root: string): JournalPosition | undefined => {
  const raw = io.readFile(path.join(root, JOURNAL_DIR, JOURNAL_CHECKPOINT))
  if (raw === undefined) return undefined
  try {
    const p = JSON.parse(raw.toString("utf8")) as JournalPosition
    if (Number.isSafeInteger(p.gen) && p.gen >= 1 && Number.isSafeInteger(p.offset) && p.offset >= FILE_HEADER) return p
  } catch {
    // fall through
  }
  throw new Error(`${path.join(root, JOURNAL_DIR, JOURNAL_CHECKPOINT)} is not a journal checkpoint`)
}

/** Apply the journal under `root` (if any) and make the result durable. */
export const replayJournal = async (io: FileIO, root: string): Promise<ReplayReport> => {
  const dir = path.join(root, JOURNAL_DIR)
  const byGen = new Map<number, string>()
  let maxGen = 0
  for (const f of io.readdir(dir)) {
    if (parseJournalFileName(f) === undefined) continue
    const file = path.join(dir, f)
    const fd = io.open(file)
    const head = Buffer.alloc(FILE_HEADER)
    const n = io.read(fd, head, 0, FILE_HEADER, 0)
    io.close(fd)
    const gen = n === FILE_HEADER ? decodeFileHeader(head) : undefined
    if (gen === undefined) continue
    byGen.set(gen, file)
    if (gen > maxGen) maxGen = gen
  }
  const cp = readJournalCheckpoint(io, root)
  const start = { gen: Math.max(maxGen, cp?.gen ?? 0) + 1, offset: FILE_HEADER }
  if (cp === undefined) {
    return { records: 0, bytes: 0, skipped: 0, files: byGen.size, end: "no checkpoint", start }
  }

  const open = new Map<string, Fd>()
  const removed = new Set<string>()
  const removedDirs: Array<string> = []
  const touchedDirs = new Set<string>()
  let records = 0
  let bytes = 0
  let skipped = 0
  const wasRemoved = (file: string): boolean =>
    removed.has(file) || removedDirs.some((d) => file.startsWith(d + path.sep))
  const fdFor = (file: string, create: boolean): Fd | undefined => {
    let fd = open.get(file)
    if (fd !== undefined) return fd
    if (!io.exists(file)) {
      if (!create || !wasRemoved(file)) return undefined
      io.mkdirp(path.dirname(file))
      touchedDirs.add(path.dirname(file))
    }
    fd = io.open(file)
    open.set(file, fd)
    return fd
  }
  const closeUnder = (prefix: string, exact: boolean): void => {
    for (const [f, fd] of open) {
      if (exact ? f === prefix : f.startsWith(prefix + path.sep)) {
        io.close(fd)
        open.delete(f)
      }
    }
  }

  let end = "end of journal"
  let gen = cp.gen
  let offset = cp.offset
  try {
    scan: for (;;) {
      const file = byGen.get(gen)
      if (file === undefined) {
        end = `no file of generation ${gen}`
        break
      }
      const buf = io.readFile(file) ?? Buffer.alloc(0)
      let at = offset
      for (;;) {
        if (at + RECORD_HEADER > buf.length) {
          end = `end of ${path.basename(file)} at ${at}`
          break scan
        }
        const len = buf.readUInt32LE(at)
        if (len < RECORD_HEADER || at + len > buf.length || buf.readUInt32LE(at + 8) !== gen) {
          end = `${path.basename(file)} at ${at}: no record of generation ${gen}`
          break scan
        }
        if (crc32c(buf.subarray(at + 8, at + len)) !== buf.readUInt32LE(at + 4)) {
          end = `${path.basename(file)} at ${at}: CRC mismatch (torn write)`
          break scan
        }
        const kind = buf[at + 12]!
        const pathLen = buf.readUInt16LE(at + 14)
        const position = buf.readDoubleLE(at + 16)
        if (kind === RecordKind.End) {
          gen++
          offset = FILE_HEADER
          continue scan
        }
        if (RECORD_HEADER + pathLen > len || !Number.isSafeInteger(position) || position < 0) {
          end = `${path.basename(file)} at ${at}: malformed record`
          break scan
        }
        const target = path.join(root, buf.toString("utf8", at + RECORD_HEADER, at + RECORD_HEADER + pathLen))
        const payload = buf.subarray(at + RECORD_HEADER + pathLen, at + len)
        at += len
        switch (kind) {
          case RecordKind.Write: {
            const fd = fdFor(target, true)
            if (fd === undefined) {
              skipped++
              break
            }
            io.write(fd, payload, position)
            records++
            bytes += payload.length
            break
          }
          case RecordKind.Truncate: {
            const fd = fdFor(target, false)
            if (fd === undefined) {
              skipped++
              break
            }
            if (io.size(fd) > position) io.truncate(fd, position)
            records++
            break
          }
          case RecordKind.Delete:
          case RecordKind.DeleteDir: {
            const single = kind === RecordKind.Delete
            closeUnder(target, single)
            if (single) {
              io.unlink(target)
              removed.add(target)
            } else {
              io.rmrf(target)
              removedDirs.push(target)
            }
            touchedDirs.add(path.dirname(target))
            records++
            break
          }
          default:
            end = `${path.basename(file)} at ${at - len}: unknown record kind ${kind}`
            break scan
        }
      }
    }
    await Promise.all([...open.values()].map((fd) => io.fdatasync(fd)))
    await Promise.all([...touchedDirs].filter((d) => io.exists(d)).map((d) => io.fsyncDir(d)))
  } finally {
    for (const fd of open.values()) io.close(fd)
  }
  return { records, bytes, skipped, files: byGen.size, end, start }
}

/**
 * Replays whatever journal `root` holds, then (with `options`) starts a
 * journal there, or (without) removes the old one: its records are in the
 * segment files now.
 */
export const openJournal = async (
  io: FileIO,
  root: string,
  options: Omit<JournalOptions, "root" | "start"> | undefined
): Promise<{ readonly journal: Journal | undefined; readonly replay: ReplayReport }> => {
  const replay = await replayJournal(io, root)
  const dir = path.join(root, JOURNAL_DIR)
  if (options === undefined) {
    if (io.exists(dir)) {
      io.rmrf(dir)
      await io.fsyncDir(root)
    }
    return { journal: undefined, replay }
  }
  io.mkdirp(dir)
  // from here on no file of an older generation is replayed: they are all free
  io.writeFileDurable(path.join(dir, JOURNAL_CHECKPOINT), Buffer.from(JSON.stringify(replay.start)))
  return { journal: new Journal(io, { ...options, root, start: replay.start }), replay }
}
