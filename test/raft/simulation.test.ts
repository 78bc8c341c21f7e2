/**
 * Deterministic simulation: seeded runs of a 3- or 5-node group (plus a spare node
 * that may join) with message drop, duplication, reordering and delay,
 * partitions, crashes that lose unpersisted state, uneven ticking (clock
 * skew), compaction, leadership transfers, membership changes and reads.
 *
 * After every step:
 * - at most one leader per term;
 * - committed entries agree across nodes (same index -> same term and data);
 * - commit never goes backwards (also across restarts);
 * - a new leader holds every committed entry (leader completeness);
 * - a leader only appends to its log (leader append-only).
 * At the end the network heals and every node must converge on one state
 * containing every acknowledged proposal exactly once.
 *
 * A failure names the seed; rerun one with RAFT_SEED=<n>.
 */
import { describe, expect, it } from "vitest"
import { runSeed } from "./sim.js"

describe("deterministic simulation", () => {
  const only = process.env["RAFT_SEED"]
  // RAFT_SEEDS / RAFT_STEPS widen the search locally (defaults: 200 seeds x 1500 steps).
  const count = Number(process.env["RAFT_SEEDS"] ?? 200)
  const steps = Number(process.env["RAFT_STEPS"] ?? 1500)
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => i + 1)

  it(`keeps the safety invariants and converges (${seeds.length} seeds)`, () => {
    let commits = 0
    let reads = 0
    let snapshots = 0
    let joined = 0
    for (const seed of seeds) {
      const sim = runSeed(seed, steps)
      const leader = sim.net.core(sim.net.leader()!)
      commits += leader.committed
      reads += sim.stats.readsServed
      snapshots += sim.stats.snapshotsInstalled
      for (const h of sim.net.nodes.values()) snapshots += h.snapshotsInstalled
      if (leader.confState().voters.includes(6) || leader.confState().learners.includes(6)) joined++
    }
    // the runs exercise what they claim to
    if (only === undefined) {
      expect(commits).toBeGreaterThan(seeds.length * 10)
      expect(reads).toBeGreaterThan(seeds.length / 2)
      expect(snapshots).toBeGreaterThan(seeds.length / 2)
      expect(joined).toBeGreaterThan(seeds.length / 10)
    }
  }, 600_000)

  it("is deterministic for a seed", () => {
    const a = runSeed(7, 800)
    const b = runSeed(7, 800)
    expect(a.net.sent.length).toBe(b.net.sent.length)
    expect(a.net.node(1).state).toEqual(b.net.node(1).state)
  })
})
