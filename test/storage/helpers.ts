import { afterEach } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { AppendEntry, FileIO } from "../../src/storage/index.js"
import { MemoryFileIO, nodeFileIO } from "../../src/storage/FileIO.js"
import { FsyncPolicy, WalSync } from "../../src/storage/index.js"
import { LogCore, defaultLogConfig, type LogConfig } from "../../src/storage/SegmentedLog.js"

/** Deterministic payload for a key range. */
export const payloadFor = (firstKey: number, size: number): Buffer => {
  const b = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) b[i] = (firstKey * 31 + i * 7) & 0xff
  return b
}

export const entry = (
  firstKey: number,
  count = 1,
  size = 100,
  opts: { term?: number; ts?: number; type?: number } = {}
): AppendEntry => ({
  firstKey,
  lastKey: firstKey + count - 1,
  term: opts.term ?? 1,
  maxTimestamp: opts.ts ?? 1_000_000 + firstKey,
  type: opts.type ?? 0,
  payload: payloadFor(firstKey, size)
})

/** Contiguous entries starting at `from`. */
export const entries = (from: number, n: number, count = 1, size = 100): Array<AppendEntry> => {
  const out: Array<AppendEntry> = []
  let k = from
  for (let i = 0; i < n; i++) {
    out.push(entry(k, count, size))
    k += count
  }
  return out
}

export const tmpDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "chronik-storage-"))
export const rmDir = (d: string): void => fs.rmSync(d, { recursive: true, force: true })

export const testConfig = (over: Partial<LogConfig> = {}): LogConfig => ({
  ...defaultLogConfig,
  segmentBytes: 64 * 1024,
  indexIntervalBytes: 512,
  memoryTierBytes: 0,
  ...over
})

export interface Opened {
  readonly log: LogCore
  readonly sync: WalSync
}

export const openCore = async (
  io: FileIO,
  dir: string,
  config: Partial<LogConfig> = {},
  opts: { policy?: FsyncPolicy; now?: number; sync?: WalSync } = {}
): Promise<Opened> => {
  const sync = opts.sync ?? new WalSync(io, opts.policy ?? FsyncPolicy.batch)
  const log = LogCore.open(io, sync, "test", dir, testConfig(config), opts.now ?? 0)
  await log.syncAll()
  log.markOpened()
  return { log, sync }
}

/** Read everything from `from` to the end, in pages. */
export const readAll = (log: LogCore, from = log.logStartKey, page = 10_000): Array<{ firstKey: number; lastKey: number; payload: Buffer; term: number; maxTimestamp: number; type: number; index: number }> => {
  const out = []
  let k = from
  while (k < log.nextKey) {
    const r = log.read(k, page)
    if (r.entries.length === 0) break
    for (const e of r.entries) out.push({ ...e, payload: Buffer.from(e.payload) })
    k = r.nextFetchKey
  }
  return out
}

/**
 * The two file-system backends the log tests run against (in memory, and
 * node:fs in a temp dir), with the temp dirs (and any pushed on `dirs`)
 * removed after each test. Call at the top level of a test file.
 */
export const useFileBackends = () => {
  const dirs: Array<string> = []
  afterEach(() => {
    while (dirs.length) rmDir(dirs.pop()!)
  })
  const backends: Array<[string, () => { io: FileIO; dir: string }]> = [
    ["memory", () => ({ io: new MemoryFileIO(), dir: "/mem/log" })],
    ["node", () => {
      const d = tmpDir()
      dirs.push(d)
      return { io: nodeFileIO, dir: path.join(d, "log") }
    }]
  ]
  return { dirs, backends }
}

/**
 * `mem` whose fdatasync, while `hold` is on, waits until the test releases it
 * (each held call is a function in `held`; it then syncs what is written by
 * then, as the kernel does).
 */
export const holdingFdatasync = (mem: MemoryFileIO) => {
  const state = { hold: false, held: [] as Array<() => void> }
  const io = new Proxy(mem, {
    get(target, key) {
      if (key === "fdatasync") {
        return (fd: number) =>
          state.hold
            ? new Promise<void>((resolve, reject) => state.held.push(() => target.fdatasync(fd).then(resolve, reject)))
            : target.fdatasync(fd)
      }
      const v = Reflect.get(target, key, target)
      return typeof v === "function" ? v.bind(target) : v
    }
  }) as MemoryFileIO
  return { io, state }
}
