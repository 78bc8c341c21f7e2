/** The data-dir format marker (`<dataDir>/chronik-format`): see LogStore.checkDataDirFormat. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { FORMAT_VERSION, MemoryFileIO, StorageConfig as SC, nodeFileIO, type FileIO } from "../../src/storage/index.js"
import * as LogStoreM from "../../src/storage/LogStore.js"
import { LogStore } from "../../src/storage/LogStore.js"
import { entry, rmDir, tmpDir } from "./helpers.js"

/** A LogStore layer over `io` with its data in `dataDir`. */
const storeOn = (io: FileIO, dataDir: string) =>
  LogStoreM.layerFileIO.pipe(
    Layer.provide(Layer.merge(Layer.succeed(LogStoreM.StorageFileIO, io), SC.layer({ dataDir })))
  )

/** Opens the store, writes one entry to log `t-0` (or just reads it back), returns nextKey. */
const useLog = (append: boolean) =>
  Effect.gen(function*() {
    const log = yield* (yield* LogStore).open("t-0")
    if (append) yield* log.appendDurable([entry(0, 3)])
    const ids = yield* (yield* LogStore).listOnDisk
    return { next: yield* log.nextKey, ids }
  })

const backends: Array<[string, () => { io: FileIO; dataDir: string; cleanup: () => void }]> = [
  ["memory", () => ({ io: new MemoryFileIO(), dataDir: "/data", cleanup: () => undefined })],
  ["node", () => {
    const d = tmpDir()
    return { io: nodeFileIO, dataDir: path.join(d, "data"), cleanup: () => rmDir(d) }
  }]
]

describe.each(backends)("data-dir format marker (%s)", (_name, mk) => {
  it.effect("a new data dir gets the marker; a matching dir opens; the marker is not listed as a log", () =>
    Effect.gen(function*() {
      const { io, dataDir, cleanup } = mk()
      yield* Effect.gen(function*() {
        const first = yield* useLog(true).pipe(Effect.provide(storeOn(io, dataDir)))
        expect(first.next).toBe(3)
        expect(first.ids).toEqual(["t-0"])
        const marker = io.readFile(path.join(dataDir, LogStoreM.FORMAT_FILE))
        expect(marker?.toString("utf8").trim()).toBe(String(FORMAT_VERSION))
        expect(FORMAT_VERSION).toBe(2)
        // reopening the same dir works and sees the data
        const again = yield* useLog(false).pipe(Effect.provide(storeOn(io, dataDir)))
        expect(again.next).toBe(3)
      }).pipe(Effect.ensuring(Effect.sync(cleanup)))
    }))

  it.effect("a dir with logs but no marker (older format) is refused with a clear message, and nothing is touched", () =>
    Effect.gen(function*() {
      const { io, dataDir, cleanup } = mk()
      yield* Effect.gen(function*() {
        yield* useLog(true).pipe(Effect.provide(storeOn(io, dataDir)))
        const markerPath = path.join(dataDir, LogStoreM.FORMAT_FILE)
        io.unlink(markerPath)
        const logDir = path.join(dataDir, "t-0")
        const before = io.readdir(logDir).map((f) => [f, io.readFile(path.join(logDir, f))?.length]).sort()
        const err = yield* useLog(false).pipe(Effect.provide(storeOn(io, dataDir)), Effect.flip)
        expect(err._tag).toBe("StorageError")
        expect(err.message).toMatch(/written by an older Chronik log format/)
        expect(err.message).toMatch(/must be emptied or moved/)
        expect(err.message).toContain(dataDir)
        // refused before any log was opened: no marker written, segments untouched
        expect(io.readFile(markerPath)).toBeUndefined()
        expect(io.readdir(logDir).map((f) => [f, io.readFile(path.join(logDir, f))?.length]).sort()).toEqual(before)
        // a marker with another value is refused too
        io.writeFileDurable(markerPath, Buffer.from("1\n"))
        const err1 = yield* useLog(false).pipe(Effect.provide(storeOn(io, dataDir)), Effect.flip)
        expect(err1.message).toMatch(/older Chronik log format/)
        io.writeFileDurable(markerPath, Buffer.from("3\n"))
        const err3 = yield* useLog(false).pipe(Effect.provide(storeOn(io, dataDir)), Effect.flip)
        expect(err3.message).toMatch(/newer Chronik log format/)
        // emptying the dir makes it usable again
        io.rmrf(logDir)
        const fresh = yield* useLog(true).pipe(Effect.provide(storeOn(io, dataDir)))
        expect(fresh.next).toBe(3)
        expect(io.readFile(markerPath)?.toString("utf8").trim()).toBe("2")
      }).pipe(Effect.ensuring(Effect.sync(cleanup)))
    }))

  it.effect("other entries (dot dirs, plain files) do not count as logs", () =>
    Effect.gen(function*() {
      const { io, dataDir, cleanup } = mk()
      yield* Effect.gen(function*() {
        io.mkdirp(path.join(dataDir, ".raft-meta", "g"))
        io.writeFileDurable(path.join(dataDir, "notes.txt"), Buffer.from("x"))
        const r = yield* useLog(true).pipe(Effect.provide(storeOn(io, dataDir)))
        expect(r.next).toBe(3)
        expect(io.readFile(path.join(dataDir, LogStoreM.FORMAT_FILE))?.toString("utf8").trim()).toBe("2")
      }).pipe(Effect.ensuring(Effect.sync(cleanup)))
    }))
})

describe("data-dir format marker (node files)", () => {
  it("is a small durable file containing 2", async () => {
    const d = tmpDir()
    try {
      const dataDir = path.join(d, "data")
      await Effect.runPromise(useLog(true).pipe(Effect.provide(storeOn(nodeFileIO, dataDir))))
      expect(fs.readFileSync(path.join(dataDir, "chronik-format"), "utf8")).toBe("2\n")
      expect(fs.existsSync(path.join(dataDir, "chronik-format.tmp"))).toBe(false)
    } finally {
      rmDir(d)
    }
  })
})
