import { describe, expect, it } from "vitest"
import { MAX_SEQUENCE, ProducerStateTable, lastSequence } from "../../src/replication/ProducerState.js"

const batch = (producerId: bigint, epoch: number, seq: number, count: number) => ({
  producerId,
  producerEpoch: epoch,
  baseSequence: seq,
  lastOffsetDelta: count - 1,
  maxTimestamp: 1000n
})

/** Appends like a partition leader would: check, then record at the next offset. */
const appender = () => {
  const table = new ProducerStateTable()
  let next = 0n
  const append = (b: ReturnType<typeof batch>) => {
    const r = table.check(b)
    if (r._tag !== "Append") return r
    const base = next
    table.record(b, base)
    next += BigInt(b.lastOffsetDelta + 1)
    return { _tag: "Appended" as const, base }
  }
  return { table, append }
}

describe("ProducerStateTable", () => {
  it("acknowledges a retried batch with its original offsets within the 5-batch window", () => {
    const { append } = appender()
    expect(append(batch(7n, 0, 0, 3))).toEqual({ _tag: "Appended", base: 0n })
    expect(append(batch(7n, 0, 3, 2))).toEqual({ _tag: "Appended", base: 3n })
    const dup = append(batch(7n, 0, 0, 3))
    expect(dup).toMatchObject({ _tag: "Duplicate", firstOffset: 0n, lastOffset: 2n })
    expect(append(batch(7n, 0, 5, 1))).toEqual({ _tag: "Appended", base: 5n })
  })

  it("forgets duplicates older than five batches and then reports them out of order", () => {
    const { append } = appender()
    for (let i = 0; i < 6; i++) append(batch(1n, 0, i, 1))
    expect(append(batch(1n, 0, 0, 1))._tag).toBe("OutOfOrderSequence")
    expect(append(batch(1n, 0, 1, 1))).toMatchObject({ _tag: "Duplicate", firstOffset: 1n })
  })

  it("rejects gaps and reorders with OUT_OF_ORDER_SEQUENCE_NUMBER", () => {
    const { append } = appender()
    append(batch(1n, 0, 0, 1))
    expect(append(batch(1n, 0, 2, 1))._tag).toBe("OutOfOrderSequence")
  })

  it("fences older epochs and requires sequence 0 for a new epoch", () => {
    const { append } = appender()
    append(batch(1n, 3, 0, 2))
    expect(append(batch(1n, 2, 2, 1))._tag).toBe("InvalidProducerEpoch")
    expect(append(batch(1n, 4, 5, 1))._tag).toBe("OutOfOrderSequence")
    expect(append(batch(1n, 4, 0, 1))).toEqual({ _tag: "Appended", base: 2n })
  })

  it("accepts any first sequence from an unknown producer", () => {
    const { append } = appender()
    expect(append(batch(9n, 0, 42, 1))._tag).toBe("Appended")
    expect(append(batch(9n, 0, 43, 1))._tag).toBe("Appended")
  })

  it("wraps sequences at 2^31-1", () => {
    expect(lastSequence(MAX_SEQUENCE - 1, 3)).toBe(1)
    const { append, table } = appender()
    append(batch(5n, 0, MAX_SEQUENCE - 1, 2))
    expect(table.describe(5n)!.lastSequence).toBe(MAX_SEQUENCE)
    expect(append(batch(5n, 0, 0, 2))._tag).toBe("Appended")
    append(batch(6n, 0, MAX_SEQUENCE, 3))
    expect(table.describe(6n)!.lastSequence).toBe(1)
    expect(append(batch(6n, 0, 2, 1))._tag).toBe("Appended")
  })

  it("non-idempotent batches (producer id -1) are always appended", () => {
    const { append } = appender()
    expect(append(batch(-1n, -1, -1, 1))._tag).toBe("Appended")
    expect(append(batch(-1n, -1, -1, 1))._tag).toBe("Appended")
  })

  it("replaying the log rebuilds the same dedup state", () => {
    const { append } = appender()
    const history: Array<[ReturnType<typeof batch>, bigint]> = []
    let next = 0n
    for (let i = 0; i < 4; i++) {
      const b = batch(3n, 1, i * 2, 2)
      append(b)
      history.push([b, next])
      next += 2n
    }
    const rebuilt = new ProducerStateTable()
    for (const [b, base] of history) rebuilt.record(b, base)
    expect(rebuilt.check(batch(3n, 1, 4, 2))).toMatchObject({ _tag: "Duplicate", firstOffset: 4n })
    expect(rebuilt.check(batch(3n, 1, 8, 1))._tag).toBe("Append")
    rebuilt.truncateBefore(100n)
    expect(rebuilt.size).toBe(0)
  })
})
