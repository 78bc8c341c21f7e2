import { describe, expect, it } from "vitest"
import { pooledReadSize, ReadBufferPool } from "../../src/storage/ReadBufferPool.js"

describe("ReadBufferPool", () => {
  it("reuses a released buffer for a read of the same size class", () => {
    const pool = new ReadBufferPool(1 << 20)
    const a = pool.acquire(100_000)
    expect(a.length).toBe(100_000)
    expect(a.buffer.byteLength).toBe(128 * 1024)
    pool.release(a)
    expect(pool.idle).toBe(128 * 1024)
    const b = pool.acquire(70_000)
    expect(b.buffer).toBe(a.buffer)
    expect(pool.idle).toBe(0)
    expect(pool.stats).toEqual({ acquired: 2, reused: 1, released: 1 })
  })

  it("ignores a second release, buffers it did not hand out, and views of them", () => {
    const pool = new ReadBufferPool(1 << 20)
    const a = pool.acquire(10)
    pool.release(a.subarray(2, 5))
    pool.release(a)
    pool.release(Buffer.alloc(64 * 1024))
    expect(pool.stats.released).toBe(1)
    expect(pool.idle).toBe(64 * 1024)
    // two acquisitions never share a buffer while both are in use
    const x = pool.acquire(10)
    const y = pool.acquire(10)
    expect(x.buffer).not.toBe(y.buffer)
  })

  it("keeps at most maxIdleBytes of free buffers and does not pool very large reads", () => {
    const pool = new ReadBufferPool(256 * 1024)
    const bufs = Array.from({ length: 8 }, () => pool.acquire(64 * 1024))
    for (const b of bufs) pool.release(b)
    expect(pool.idle).toBe(256 * 1024)
    const huge = pool.acquire(32 * 1024 * 1024)
    expect(huge.length).toBe(32 * 1024 * 1024)
    pool.release(huge)
    expect(pool.idle).toBe(256 * 1024)
  })

  it("sizes reads down to a size class, never below what a frame needs", () => {
    // a Fetch of 8 MiB per partition plus index slack reads 8 MiB, not a 16 MiB buffer
    expect(pooledReadSize(8 * 1024 * 1024 + 4178, 0)).toBe(8 * 1024 * 1024)
    expect(pooledReadSize(1000, 0)).toBe(1000)
    expect(pooledReadSize(200_000, 0)).toBe(128 * 1024)
    expect(pooledReadSize(200_000, 300_000)).toBe(300_000)
    expect(pooledReadSize(64 * 1024 * 1024, 0)).toBe(16 * 1024 * 1024)
  })
})
