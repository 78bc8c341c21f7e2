/**
 * One RaftEngine (node 1) over the memory transport, for the engine API
 * tests (`per-group-store.test.ts`, `propose-now.test.ts`): its default log
 * store is the one given, and the helpers let the driver run on Effect's
 * scheduler (no time passes) until a condition holds.
 */
import { Context, Effect, Layer } from "effect"
import type { Entry, GroupId } from "../../src/raft/core/types.js"
import { MemoryNetwork } from "../../src/raft/MemoryNetwork.js"
import type { RaftEngineConfig, RaftEngineShape, StateMachine } from "../../src/raft/RaftEngine.js"
import * as RaftEngine from "../../src/raft/RaftEngine.js"
import type { RaftLogStoreShape } from "../../src/raft/RaftLogStore.js"
import * as RaftLogStore from "../../src/raft/RaftLogStore.js"
import * as RaftTransport from "../../src/raft/RaftTransport.js"

const enc = new TextEncoder()
const dec = new TextDecoder()

/** Records what a group applies (payloads as text, and their indexes) and how many snapshots it took. */
export class RecordingStateMachine implements StateMachine {
  readonly applied: Array<string> = []
  readonly indexes: Array<number> = []
  snapshots = 0
  apply(entry: Entry) {
    this.applied.push(dec.decode(entry.data))
    this.indexes.push(entry.index)
    return entry.index
  }
  snapshot(): Uint8Array {
    this.snapshots++
    return enc.encode(JSON.stringify(this.applied))
  }
  restore(data: Uint8Array): void {
    this.applied.length = 0
    if (data.length > 0) this.applied.push(...(JSON.parse(dec.decode(data)) as Array<string>))
  }
}

/** One engine (node 1) whose default log store is `store`. */
export const engineOn = (store: RaftLogStoreShape, config: Partial<RaftEngineConfig> = {}) =>
  Effect.gen(function* () {
    const network = yield* MemoryNetwork.make({ seed: 1 })
    const ctx = yield* Layer.build(
      RaftEngine.layer({ nodeId: 1, tickMs: 10, electionTicks: 10, seed: 1, ...config }).pipe(
        Layer.provide(Layer.merge(RaftTransport.layerMemory(network, 1), Layer.succeed(RaftLogStore.RaftLogStore, store)))
      )
    )
    return Context.get(ctx, RaftEngine.RaftEngine)
  })

/** Lets the driver run (scheduler turns, no time) until `pred` holds. */
export const until = (what: string, pred: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 10_000; i++) {
      if (pred()) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`gave up waiting for: ${what}`)
  })

/** Waits until `group` leads and has applied and committed all of its log. */
export const settled = (engine: RaftEngineShape, group: GroupId) =>
  Effect.gen(function* () {
    for (let i = 0; i < 10_000; i++) {
      const f = yield* engine.figures(group)
      if (f.role === "Leader" && f.appliedIndex === f.lastIndex && f.commitIndex === f.lastIndex) return f
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`group ${group} did not settle`)
  })
