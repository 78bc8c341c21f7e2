/**
 * Deterministic Raft simulation with clients and a linearizability check.
 *
 * Two drivers, same checks:
 * - coreSim.ts: 5 pure `RaftCore`s in a discrete-event world (fsync delay and
 *   lost unsynced writes, drop/duplicate/delay-reorder, partitions, one-way
 *   cuts, pauses, clock skew, crashes), 4 clients. Cheap: 500 seeds by default.
 * - clusterSim.ts: the real `RaftEngine` nodes of `makeRaftTestCluster`
 *   (memory transport, memory disks, virtual clocks), 3 clients as fibers.
 *   About 0.1-0.25 s per seed here; 500 seeds by default, run in four shards
 *   (cluster-seeds-<k>.test.ts, clusterSeeds.ts) so vitest spreads them over
 *   its workers.
 *
 * Checked after every step: at most one leader per term, committed logs agree
 * (prefixes of each other), every acknowledged write is committed at its
 * index, commit never goes back (within a node's life). At the end: every
 * node holds every acknowledged write, no write reported as failed was
 * committed, and the client history is linearizable (test/support/linearizability.ts).
 *
 * A failure names its seed. Environment:
 *   RAFT_SIM_SEED=<n>            run only seed n (both drivers)
 *   RAFT_SIM_SEEDS=<n>           pure-core seeds (default 500)
 *   RAFT_SIM_CLUSTER_SEEDS=<n>   test-cluster seeds over all shards (default 500)
 *   RAFT_SIM_FIRST=<n>           first seed (default 1), to explore new seeds
 */
import { describe, expect, it } from "vitest"
import { MemoryDisk } from "../../src/raft/RaftLogStore.js"
import { runCoreSeed } from "./coreSim.js"

const env = (name: string): number | undefined => {
  const v = process.env[name]
  return v === undefined || v === "" ? undefined : Number(v)
}
const only = env("RAFT_SIM_SEED")
const first = env("RAFT_SIM_FIRST") ?? 1
const seedsOf = (count: number): Array<number> =>
  only !== undefined ? [only] : Array.from({ length: count }, (_, i) => first + i)

describe("raft simulation on the pure core (5 nodes, clients, linearizability)", () => {
  const seeds = seedsOf(env("RAFT_SIM_SEEDS") ?? 500)

  it(`keeps Raft's safety properties and a linearizable history (${seeds.length} seeds)`, async () => {
    const totals = { acknowledged: 0, readsOk: 0, unknown: 0, crashes: 0, partitions: 0, leaders: 0, committed: 0, unknownChecks: 0 }
    for (const seed of seeds) {
      // let the worker's event loop breathe (vitest RPC) during long runs
      if (seed % 20 === 0) await new Promise((resolve) => setImmediate(resolve))
      let s
      try {
        s = runCoreSeed(seed)
      } catch (e) {
        console.error(`raft core simulation FAILED at seed ${seed} (RAFT_SIM_SEED=${seed})`)
        throw e
      }
      totals.acknowledged += s.acknowledged
      totals.readsOk += s.readsOk
      totals.unknown += s.unknown
      totals.crashes += s.crashes
      totals.partitions += s.partitions
      totals.leaders += s.leaders
      totals.committed += s.committed
      if (s.check.verdict === "unknown") totals.unknownChecks++
    }
    if (only === undefined && seeds.length > 0) {
      // the runs exercise what they claim to
      expect(totals.acknowledged).toBeGreaterThan(seeds.length * 10)
      expect(totals.readsOk).toBeGreaterThan(seeds.length * 3)
      expect(totals.unknown).toBeGreaterThan(0)
      expect(totals.crashes).toBeGreaterThan(seeds.length / 2)
      expect(totals.partitions).toBeGreaterThan(seeds.length / 2)
      expect(totals.leaders).toBeGreaterThan(seeds.length * 1.5)
      // the checker reached a verdict on (almost) every history
      expect(totals.unknownChecks).toBeLessThanOrEqual(seeds.length / 100)
    }
  }, 300_000)

  it("is deterministic for a seed", () => {
    const a = runCoreSeed(7)
    const b = runCoreSeed(7)
    expect({ ...a, check: a.check.verdict }).toEqual({ ...b, check: b.check.verdict })
  })

  it("catches injected bugs (the checks are not vacuous)", () => {
    const caught = (bug: "stale-follower-read" | "ack-before-commit"): { seed: number; message: string } | undefined => {
      for (let seed = 1; seed <= 60; seed++) {
        try {
          runCoreSeed(seed, { bug })
        } catch (e) {
          return { seed, message: (e as Error).message }
        }
      }
      return undefined
    }
    // reads served from a follower's local state without ReadIndex: stale reads
    const stale = caught("stale-follower-read")
    expect(stale?.message).toContain("not linearizable")
    // acknowledging a write when the leader appended it, before commit
    const early = caught("ack-before-commit")
    expect(early?.message).toMatch(/acknowledged write|not linearizable/)
  })
})

describe("raft simulation on makeRaftTestCluster: the crash model", () => {
  it("crash model: a crash that loses unsynced writes keeps every synced record", () => {
    // The simulation's "lost unsynced writes" relies on this: a node only
    // acknowledges (votes, MsgAppResp) what is synced, so synced records must survive.
    const disk = new MemoryDisk()
    disk.write("kv", { kind: "bootstrap", confState: { voters: [1, 2, 3], learners: [] } })
    disk.write("kv", { kind: "hardState", hardState: { term: 2, vote: 3, commit: 0 } })
    disk.write("kv", { kind: "entries", entries: [{ index: 1, term: 2, type: "Normal", data: new Uint8Array([1]) }] })
    disk.sync()
    disk.write("kv", { kind: "entries", entries: [{ index: 2, term: 2, type: "Normal", data: new Uint8Array([2]) }] })
    disk.crash({ loseUnsynced: true })
    const ms = disk.recover("kv")
    expect(ms?.hardState()).toEqual({ term: 2, vote: 3, commit: 0 })
    expect(ms?.lastIndex()).toBe(1)
  })
})
