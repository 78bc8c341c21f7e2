import { describe, expect, it } from "@effect/vitest"
import { StorageError, instrument } from "../../src/storage/index.js"
import { entries, entry, openCore, payloadFor, readAll, useFileBackends } from "./helpers.js"

const { backends } = useFileBackends()

const catchErr = (f: () => unknown): unknown => {
  try {
    f()
  } catch (e) {
    return e
  }
  throw new Error("expected an error")
}

describe.each(backends)("I/O faults (%s)", (_n, mk) => {
  it("a failed write (ENOSPC) is a StorageError and leaves the log usable", async () => {
    const { io: base, dir } = mk()
    const { io, plan } = instrument(base)
    const { log } = await openCore(io, dir)
    log.append(entries(0, 10, 1, 100), 0)
    await log.awaitDurable(9)
    plan.write = (file) => (file.endsWith(".log") ? { code: "ENOSPC" } : undefined)
    const e = catchErr(() => log.append([entry(10, 1, 100)], 0))
    expect(e).toBeInstanceOf(StorageError)
    expect((e as StorageError).code).toBe("ENOSPC")
    expect(log.nextKey).toBe(10)
    plan.write = undefined
    log.append([entry(10, 1, 100)], 0)
    await log.awaitDurable(10)
    expect(readAll(log).map((x) => x.firstKey)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    await log.close()
    const { log: l2 } = await openCore(base, dir)
    expect(l2.nextKey).toBe(11)
    await l2.close()
  })

  it("a short write followed by an error is undone: no partial frame stays", async () => {
    const { io: base, dir } = mk()
    const { io, plan } = instrument(base)
    const { log } = await openCore(io, dir)
    log.append(entries(0, 5, 1, 100), 0)
    await log.awaitDurable(4)
    plan.write = (file) => (file.endsWith(".log") ? { code: "EIO", partial: 150 } : undefined)
    const e = catchErr(() => log.append([entry(5, 1, 400), entry(6, 1, 400)], 0))
    expect((e as StorageError).code).toBe("EIO")
    plan.write = undefined
    log.append([entry(5, 1, 30)], 0)
    await log.awaitDurable(5)
    log.abandon() // crash
    const { log: l2 } = await openCore(base, dir)
    expect(l2.recovery.truncatedBytes).toBe(0)
    expect(readAll(l2).map((x) => x.payload.length)).toEqual([100, 100, 100, 100, 100, 30])
    await l2.close()
  })

  it("when the undo also fails the log refuses writes; durable data survives a reopen", async () => {
    const { io: base, dir } = mk()
    const { io, plan } = instrument(base)
    const { log } = await openCore(io, dir)
    log.append(entries(0, 5, 1, 100), 0)
    await log.awaitDurable(4)
    plan.write = () => ({ code: "EIO", partial: 60 })
    plan.truncate = () => "EIO"
    expect(catchErr(() => log.append([entry(5, 1, 400)], 0))).toBeInstanceOf(StorageError)
    plan.write = undefined
    plan.truncate = undefined
    expect(catchErr(() => log.append([entry(5, 1, 10)], 0))).toBeInstanceOf(StorageError)
    expect(readAll(log).length).toBe(5) // reads still work
    log.abandon()
    const { log: l2 } = await openCore(base, dir)
    expect(l2.recovery.truncatedBytes).toBe(60)
    expect(readAll(l2).map((x) => x.payload.equals(payloadFor(x.firstKey, 100)))).toEqual([true, true, true, true, true])
    await l2.close()
  })

  it("a failed fdatasync fails the durability wait and stops further writes", async () => {
    const { io: base, dir } = mk()
    const { io, plan } = instrument(base)
    const { log } = await openCore(io, dir)
    log.append(entries(0, 5, 1, 100), 0)
    await log.awaitDurable(4)
    log.append([entry(5)], 0)
    plan.fdatasync = () => "EIO"
    const err = await log.awaitDurable(5).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(StorageError)
    expect((err as StorageError).code).toBe("EIO")
    expect(catchErr(() => log.append([entry(6)], 0))).toBeInstanceOf(StorageError)
    plan.fdatasync = undefined
    log.abandon()
    const { log: l2 } = await openCore(base, dir)
    expect(l2.nextKey).toBeGreaterThanOrEqual(5)
    expect(readAll(l2).slice(0, 5).map((x) => x.firstKey)).toEqual([0, 1, 2, 3, 4])
    await l2.close()
  })

  it("a failed vectored write (large payloads) is undone too", async () => {
    const { io: base, dir } = mk()
    const { io, plan } = instrument(base)
    const { log } = await openCore(io, dir, { segmentBytes: 1 << 20 })
    log.append([entry(0, 1, 10_000)], 0)
    await log.awaitDurable(0)
    plan.write = () => ({ code: "ENOSPC", partial: 7_000 })
    expect(catchErr(() => log.append([entry(1, 1, 8_000), entry(2, 1, 8_000)], 0))).toBeInstanceOf(StorageError)
    plan.write = undefined
    log.append([entry(1, 1, 6_000), entry(2, 1, 5_000)], 0)
    await log.awaitDurable(2)
    log.abandon()
    const { log: l2 } = await openCore(base, dir, { segmentBytes: 1 << 20 })
    expect(l2.recovery.truncatedBytes).toBe(0)
    expect(readAll(l2).map((x) => [x.payload.length, x.payload.equals(payloadFor(x.firstKey, x.payload.length))])).toEqual([[10_000, true], [6_000, true], [5_000, true]])
    await l2.close()
  })

  it("a failed read is a StorageError", async () => {
    const { io: base, dir } = mk()
    const { io, plan } = instrument(base)
    const { log } = await openCore(io, dir)
    log.append(entries(0, 5, 1, 100), 0)
    plan.read = () => "EIO"
    expect(catchErr(() => log.read(0, 10))).toBeInstanceOf(StorageError)
    plan.read = undefined
    expect(log.read(0, 10).entries.length).toBe(1)
    await log.close()
  })
})
