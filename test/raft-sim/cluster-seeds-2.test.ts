// Shard 2 of the engine-harness simulation seeds (see clusterSeeds.ts).
import { clusterSeedSuite } from "./clusterSeeds.js"

clusterSeedSuite(2)
