/**
 * Storage engine micro-benchmark: append MB/s with fsync policy never/batch,
 * group commit efficiency, read MB/s (disk and memory tier).
 *
 *   npx tsx bench/storage.ts [totalMB=256]
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { FsyncPolicy, WalSync, instrument, nodeFileIO, type AppendEntry } from "../src/storage/index.js"
import * as LogStoreM from "../src/storage/LogStore.js"
import { LogCore, defaultLogConfig, type LogConfig } from "../src/storage/SegmentedLog.js"
import * as SC from "../src/storage/StorageConfig.js"
import { createRequire } from "node:module"

const require = createRequire(import.meta.url)

const totalMB = Number(process.argv[2] ?? 256)
const root = fs.mkdtempSync(path.join(os.tmpdir(), "chronik-bench-"))
const mb = (bytes: number, ms: number) => (bytes / 1024 / 1024 / (ms / 1000)).toFixed(0)

const payload = (size: number) => {
  const b = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) b[i] = (i * 13) & 0xff
  return b
}

const openLog = async (name: string, policy: FsyncPolicy, over: Partial<LogConfig> = {}) => {
  const { io, stats } = instrument(nodeFileIO)
  const sync = new WalSync(io, policy)
  const log = LogCore.open(io, sync, name, path.join(root, name), { ...defaultLogConfig, memoryTierBytes: 0, ...over }, Date.now())
  await log.syncAll()
  log.markOpened()
  return { log, stats, sync }
}

const appendRun = async (label: string, policy: FsyncPolicy, entrySize: number, perBatch: number, durable: boolean, inflight = 1) => {
  const { log, stats, sync } = await openLog(label.replace(/\W+/g, "_"), policy)
  const p = payload(entrySize)
  const batches = Math.floor((totalMB * 1024 * 1024) / (entrySize * perBatch))
  let key = 0
  let done = 0
  const t0 = performance.now()
  const worker = async () => {
    while (done < batches) {
      done++
      const es: Array<AppendEntry> = []
      for (let i = 0; i < perBatch; i++) {
        es.push({ firstKey: key, lastKey: key + 9, term: 1, maxTimestamp: Date.now(), type: 0, payload: p })
        key += 10
      }
      const r = log.append(es, Date.now())
      if (durable) await log.awaitDurable(r.lastKey)
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker))
  const ms = performance.now() - t0
  const bytes = batches * perBatch * entrySize
  const fsyncs = stats.fdatasyncs
  console.log(
    `${label.padEnd(58)} ${mb(bytes, ms).padStart(6)} MB/s  ${((batches / ms) * 1000).toFixed(0).padStart(7)} batches/s  fdatasyncs=${fsyncs}${durable ? ` (${(batches / Math.max(1, fsyncs)).toFixed(1)} appends/fsync)` : ""}`
  )
  await log.close()
  sync.close()
  return log
}

const readRun = async (label: string, tier: number) => {
  const { log, sync } = await openLog(`read_${tier}`, FsyncPolicy.never, { memoryTierBytes: tier })
  const p = payload(16 * 1024)
  const n = Math.floor((totalMB * 1024 * 1024) / p.length)
  for (let i = 0; i < n; i++) log.append([{ firstKey: i, lastKey: i, term: 1, maxTimestamp: i, type: 0, payload: p }], 0)
  for (const maxBytes of [64 * 1024, 1024 * 1024, 64 * 1024, 1024 * 1024]) {
    const from = tier > 0 ? Math.max(0, n - Math.floor(tier / p.length) + 2) : 0
    let k = from
    let bytes = 0
    let reads = 0
    let fromMemory = 0
    const t0 = performance.now()
    while (k < n) {
      const r = log.read(k, maxBytes)
      bytes += r.bytes
      reads++
      if (r.fromMemory) fromMemory++
      k = r.nextFetchKey
    }
    const ms = performance.now() - t0
    console.log(`${(label + ` maxBytes=${maxBytes / 1024}KiB`).padEnd(58)} ${mb(bytes, ms).padStart(6)} MB/s  ${((reads / ms) * 1000).toFixed(0).padStart(7)} reads/s  memory=${fromMemory}/${reads}`)
  }
  await log.close()
  sync.close()
}

const effectRun = async () => {
  const layer = LogStoreM.layer.pipe(Layer.provide(SC.layer({ dataDir: path.join(root, "store"), memoryTierBytes: 0 })))
  const p = payload(16 * 1024)
  const batches = Math.floor((totalMB * 1024 * 1024) / (p.length * 4))
  const program = Effect.gen(function*() {
    const store = yield* LogStoreM.LogStore
    const log = yield* store.open("bench-0")
    const t0 = performance.now()
    yield* Effect.forEach(
      Array.from({ length: batches }, (_, i) => i),
      (i) => {
        const es = [0, 1, 2, 3].map((j) => ({ firstKey: i * 4 + j, lastKey: i * 4 + j, term: 1, maxTimestamp: 0, type: 0, payload: p }))
        return log.append(es)
      },
      { discard: true }
    )
    const ms = performance.now() - t0
    console.log(`${"Effect LogStore append 4x16KiB/batch, never waiting".padEnd(58)} ${mb(batches * 4 * p.length, ms).padStart(6)} MB/s`)
    const t1 = performance.now()
    const n2 = 2000
    yield* Effect.forEach(
      Array.from({ length: n2 }, (_, i) => i),
      (i) => log.appendDurable([{ firstKey: batches * 4 + i, lastKey: batches * 4 + i, term: 1, maxTimestamp: 0, type: 0, payload: p.subarray(0, 1024) }]),
      { concurrency: 64, discard: true }
    )
    const ms2 = performance.now() - t1
    const st = yield* store.syncStats
    console.log(`${"Effect LogStore appendDurable 1KiB, 64 in flight (batch)".padEnd(58)} ${((n2 / ms2) * 1000).toFixed(0).padStart(6)} appends/s  passes=${st.passes} fdatasyncs=${st.fdatasyncs}`)
  })
  await Effect.runPromise(program.pipe(Effect.provide(layer)))
}

/** Raw node:fs and CPU baselines measured in the same process, to read the numbers against. */
const baselines = () => {
  const { crc32c } = require("@node-rs/crc32") as typeof import("@node-rs/crc32")
  const b16 = payload(16 * 1024)
  const file = path.join(root, "raw.bin")
  const fd = fs.openSync(file, "w+")
  const n = Math.floor((totalMB * 1024 * 1024) / b16.length)
  let t = performance.now()
  for (let i = 0; i < n; i++) fs.writeSync(fd, b16, 0, b16.length, i * b16.length)
  console.log(`${"baseline: raw fs.writeSync 16KiB".padEnd(58)} ${mb(n * b16.length, performance.now() - t).padStart(6)} MB/s`)
  const big = Buffer.allocUnsafe(1 << 20)
  t = performance.now()
  let got = 0
  for (let i = 0; i * big.length < n * b16.length; i++) got += fs.readSync(fd, big, 0, big.length, i * big.length)
  console.log(`${"baseline: raw fs.readSync 1MiB".padEnd(58)} ${mb(got, performance.now() - t).padStart(6)} MB/s`)
  fs.closeSync(fd)
  fs.unlinkSync(file)
  t = performance.now()
  for (let i = 0; i < 128; i++) crc32c(big)
  console.log(`${"baseline: crc32c 1MiB".padEnd(58)} ${mb(128 << 20, performance.now() - t).padStart(6)} MB/s`)
  t = performance.now()
  for (let i = 0; i < 128; i++) Buffer.allocUnsafe(1 << 20).set(big)
  console.log(`${"baseline: alloc + memcpy 1MiB".padEnd(58)} ${mb(128 << 20, performance.now() - t).padStart(6)} MB/s`)
}

const main = async () => {
  console.log(`storage bench: ${totalMB} MiB per run in ${root} (node ${process.version}, ${os.cpus().length} cpus, load ${os.loadavg()[0]!.toFixed(1)})`)
  baselines()
  await appendRun("append 16KiB x1/batch, policy never", FsyncPolicy.never, 16 * 1024, 1, false)
  await appendRun("append 1KiB x64/batch, policy never", FsyncPolicy.never, 1024, 64, false)
  await appendRun("append 64KiB x4/batch, policy never", FsyncPolicy.never, 64 * 1024, 4, false)
  await appendRun("append 256B x1/batch, policy never", FsyncPolicy.never, 256, 1, false)
  await appendRun("append 16KiB x1/batch, batch, acks=all, 1 in flight", FsyncPolicy.batch, 16 * 1024, 1, true, 1)
  await appendRun("append 16KiB x1/batch, batch, acks=all, 64 in flight", FsyncPolicy.batch, 16 * 1024, 1, true, 64)
  await appendRun("append 64KiB x4/batch, batch, acks=all, 16 in flight", FsyncPolicy.batch, 64 * 1024, 4, true, 16)
  await readRun("read from disk (page cache), tier off", 0)
  await readRun("read from memory tier (64MiB)", 64 * 1024 * 1024)
  await effectRun()
}

main()
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(() => fs.rmSync(root, { recursive: true, force: true }))
