/**
 * The engine-harness simulation (clusterSim.ts on `makeRaftTestCluster`) over
 * many seeds, split into shards: each `cluster-seeds-<k>.test.ts` file runs one
 * shard so that vitest spreads the seeds over its workers.
 *
 * Environment (see simulation.test.ts and docs/raft-testing.md):
 *   RAFT_SIM_SEED=<n>            run only seed n (in shard 1)
 *   RAFT_SIM_CLUSTER_SEEDS=<n>   seeds over all shards (default 500)
 *   RAFT_SIM_FIRST=<n>           first seed (default 1)
 *   RAFT_SIM_KEEP_GOING=1        run every seed and list all failures
 */
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { runClusterSeed } from "./clusterSim.js"

export const CLUSTER_SHARDS = 4

const env = (name: string): number | undefined => {
  const v = process.env[name]
  return v === undefined || v === "" ? undefined : Number(v)
}

/** Seeds of shard `shard` (1-based): every CLUSTER_SHARDS-th seed from the first. */
export const shardSeeds = (shard: number): Array<number> => {
  const only = env("RAFT_SIM_SEED")
  if (only !== undefined) return shard === 1 ? [only] : []
  const first = env("RAFT_SIM_FIRST") ?? 1
  const count = env("RAFT_SIM_CLUSTER_SEEDS") ?? 500
  const seeds: Array<number> = []
  for (let i = shard - 1; i < count; i += CLUSTER_SHARDS) seeds.push(first + i)
  return seeds
}

export const clusterSeedSuite = (shard: number): void => {
  const seeds = shardSeeds(shard)
  const keepGoing = process.env["RAFT_SIM_KEEP_GOING"] !== undefined
  describe(`raft simulation on makeRaftTestCluster, shard ${shard}/${CLUSTER_SHARDS} (RaftEngine nodes, 5 nodes, clients, linearizability)`, () => {
    it.skipIf(seeds.length === 0)(`keeps Raft's safety properties and a linearizable history (${seeds.length} seeds)`, async () => {
      let ok = 0
      let crashes = 0
      let partitions = 0
      let reads = 0
      let unknown = 0
      const failures: Array<string> = []
      for (const seed of seeds) {
        const r = await Effect.runPromise(Effect.either(runClusterSeed(seed)))
        if (Either.isLeft(r)) {
          console.error(`raft cluster simulation FAILED at seed ${seed} (RAFT_SIM_SEED=${seed})`)
          if (keepGoing) {
            failures.push(r.left.message.split("\n")[0]!)
            continue
          }
          throw r.left
        }
        ok += r.right.ok
        crashes += r.right.crashes
        partitions += r.right.partitions
        reads += r.right.reads
        unknown += r.right.unknown
      }
      if (failures.length > 0) throw new Error(`${failures.length} of ${seeds.length} seeds failed:\n${failures.join("\n")}`)
      if (seeds.length >= 20) {
        // the runs exercise what they claim to: acknowledged operations, reads,
        // crashes, partitions and operations with an unknown outcome
        expect(ok).toBeGreaterThan(seeds.length * 5)
        expect(reads).toBeGreaterThan(seeds.length)
        expect(crashes).toBeGreaterThan(seeds.length / 4)
        expect(partitions).toBeGreaterThan(seeds.length / 4)
        expect(unknown).toBeGreaterThan(0)
      }
    }, 600_000)
  })
}
