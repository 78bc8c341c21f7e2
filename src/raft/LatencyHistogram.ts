/**
 * A fixed-bucket latency histogram for engine figures (commit and persist
 * latency). Cumulative bucket counts with Prometheus-style upper bounds, so a
 * metrics layer can publish them as a histogram without re-bucketing.
 */

/** Upper bounds in milliseconds; the last bucket is +Inf. */
export const LATENCY_BUCKETS_MS: ReadonlyArray<number> = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

export interface LatencySnapshot {
  readonly count: number
  readonly sumMs: number
  readonly maxMs: number
  /** Cumulative counts: `counts[i]` observations <= `LATENCY_BUCKETS_MS[i]`; the last entry is +Inf (= count). */
  readonly cumulative: ReadonlyArray<number>
}

export class LatencyHistogram {
  private readonly counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
  private count = 0
  private sum = 0
  private max = 0

  record(ms: number): void {
    const v = ms < 0 ? 0 : ms
    let i = 0
    while (i < LATENCY_BUCKETS_MS.length && v > LATENCY_BUCKETS_MS[i]!) i++
    this.counts[i]!++
    this.count++
    this.sum += v
    if (v > this.max) this.max = v
  }

  snapshot(): LatencySnapshot {
    const cumulative: Array<number> = []
    let acc = 0
    for (const c of this.counts) {
      acc += c
      cumulative.push(acc)
    }
    return { count: this.count, sumMs: this.sum, maxMs: this.max, cumulative }
  }
}
