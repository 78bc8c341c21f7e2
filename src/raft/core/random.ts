/**
 * Injected randomness for the Raft core. The core never calls `Math.random`;
 * it draws election-timeout jitter from a `RandomSource`, so a seed fully
 * determines a simulation run.
 */

/** A source of uniformly distributed integers. */
export interface RandomSource {
  /** An integer in `[0, n)`; `n` is a positive safe integer. */
  nextInt(n: number): number
}

/**
 * mulberry32: a tiny 32-bit-state PRNG. Not cryptographic; plenty for timeout
 * jitter and for driving seeded simulations.
 */
export class Mulberry32 implements RandomSource {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  /** A float in `[0, 1)`. */
  nextFloat(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n)
  }
}

/** A seeded `RandomSource`. */
export const seededRandom = (seed: number): Mulberry32 => new Mulberry32(seed)
