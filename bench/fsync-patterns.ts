/**
 * What a group-commit pass costs on this machine's disk, by file layout:
 * the same bytes per pass written to 8 files (one per partition, what the
 * broker does at 8 partitions) or to 1 file (one log per node), into files
 * that grow (appends: the file system allocates blocks and changes the size,
 * so fdatasync also writes metadata) or into files zero-filled and synced
 * beforehand (overwrites: fdatasync writes the data only). Each pass writes
 * its bytes synchronously, then fdatasyncs every file in parallel on the
 * libuv pool, as `WalSync` does.
 *
 *   npx tsx bench/fsync-patterns.ts            # prints JSON
 *
 * Figures: MB/s over the whole run, the fdatasync wait per pass (p50/p99 ms)
 * and the process's kernel CPU per 100 MB written. The file system and
 * whether it journals are in `fileSystem`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

type Layout = { readonly files: 1 | 8; readonly preZeroed: boolean }

export interface PassFigures {
  readonly MBps: number
  readonly syncP50Ms: number
  readonly syncP99Ms: number
  readonly kernelCpuSecPer100MB: number
}

const label = (l: Layout): string => `${l.files === 8 ? "8 files" : "1 file"}, ${l.preZeroed ? "pre-zeroed" : "appending"}`

const fdatasync = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())))

const quantile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!

const measure = async (dir: string, layout: Layout, passBytes: number, totalBytes: number): Promise<PassFigures> => {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const chunk = Buffer.alloc(16 * 1024, 7)
  const fds: Array<number> = []
  const positions: Array<number> = []
  const perFile = Math.ceil(totalBytes / layout.files) + (1 << 20)
  try {
    for (let i = 0; i < layout.files; i++) {
      const fd = fs.openSync(path.join(dir, `f${i}`), "w+")
      fds.push(fd)
      positions.push(0)
      if (layout.preZeroed) {
        const zeros = Buffer.alloc(1 << 20)
        for (let at = 0; at < perFile; at += zeros.length) fs.writeSync(fd, zeros, 0, zeros.length, at)
        fs.fdatasyncSync(fd)
      }
    }
    const waits: Array<number> = []
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    let written = 0
    while (written < totalBytes) {
      for (let k = 0; k < passBytes / chunk.length; k++) {
        const f = k % layout.files
        fs.writeSync(fds[f]!, chunk, 0, chunk.length, positions[f]!)
        positions[f] = positions[f]! + chunk.length
      }
      written += passBytes
      const s = performance.now()
      await Promise.all(fds.map(fdatasync))
      waits.push(performance.now() - s)
    }
    const seconds = (performance.now() - t0) / 1000
    const kernel = process.cpuUsage(cpu0).system / 1e6
    waits.sort((a, b) => a - b)
    const round = (x: number, d = 2) => Number(x.toFixed(d))
    return {
      MBps: round(written / 1e6 / seconds, 0),
      syncP50Ms: round(quantile(waits, 0.5)),
      syncP99Ms: round(quantile(waits, 0.99)),
      kernelCpuSecPer100MB: round((kernel * 100e6) / written)
    }
  } finally {
    for (const fd of fds) fs.closeSync(fd)
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** The mount holding `dir` and, for ext4, whether it has a journal. */
const fileSystem = (dir: string): string => {
  try {
    const mounts = fs
      .readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((p) => p.length > 3 && dir.startsWith(p[1]!))
      .sort((a, b) => b[1]!.length - a[1]!.length)
    const m = mounts[0]
    if (m === undefined) return "unknown"
    const [dev, mount, type] = m as [string, string, string]
    let journal = ""
    if (type === "ext4") {
      const task = path.join("/sys/fs/ext4", path.basename(dev), "journal_task")
      if (fs.existsSync(task)) journal = fs.readFileSync(task, "utf8").trim() === "<none>" ? ", no journal" : ", journaled"
    }
    return `${type} on ${dev} at ${mount}${journal}`
  } catch {
    return "unknown"
  }
}

export const run = async (options?: { readonly quick?: boolean }) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "chronik-fsync-"))
  const total = (options?.quick === true ? 32 : 100) * 1024 * 1024
  const layouts: ReadonlyArray<Layout> = [
    { files: 8, preZeroed: false },
    { files: 1, preZeroed: false },
    { files: 8, preZeroed: true },
    { files: 1, preZeroed: true }
  ]
  const byPass: Record<string, Record<string, PassFigures>> = {}
  try {
    for (const passKiB of [128, 640]) {
      const row: Record<string, PassFigures> = {}
      for (const l of layouts) row[label(l)] = await measure(path.join(root, "d"), l, passKiB * 1024, total)
      byPass[`${passKiB} KiB per pass`] = row
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
  return { fileSystem: fileSystem(root), threadPool: Number(process.env["UV_THREADPOOL_SIZE"] ?? 4), ...byPass }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)))
}
