import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope, TestClock } from "effect"
import type { Entry } from "../../src/raft/core/types.js"
import { encodeKvCommand, KvStateMachine } from "../../src/raft/KvStateMachine.js"
import { MemoryNetwork } from "../../src/raft/MemoryNetwork.js"
import * as RaftEngine from "../../src/raft/RaftEngine.js"
import type { CrashOptions, RaftLogStoreShape } from "../../src/raft/RaftLogStore.js"
import { MemoryDisk, RaftLogStore, layerMemory } from "../../src/raft/RaftLogStore.js"
import { layerFile } from "../../src/raft/RaftLogStoreFile.js"
import * as RaftTransport from "../../src/raft/RaftTransport.js"
import { MemoryFileIO } from "../../src/storage/FileIO.js"
import { layerFileIO, StorageFileIO } from "../../src/storage/LogStore.js"
import { defaults, StorageConfig } from "../../src/storage/StorageConfig.js"

const ents = (from: number, to: number, term: number, tag = ""): Array<Entry> =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    index: from + i,
    term,
    type: "Normal" as const,
    data: new TextEncoder().encode(`${tag}${from + i}`)
  }))

const conf = { voters: [1, 2, 3], learners: [] }

const fileLayer = (io: MemoryFileIO) =>
  layerFile.pipe(
    Layer.provide(layerFileIO),
    Layer.provide(Layer.merge(Layer.succeed(StorageFileIO, io), Layer.succeed(StorageConfig, { ...defaults, dataDir: "/data" })))
  )

/** Builds a store in its own scope (so it can be "crashed" by abandoning it). */
const build = (layer: Layer.Layer<RaftLogStore, unknown>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const ctx = yield* Layer.buildWithScope(layer, scope)
    return { store: Context.get(ctx, RaftLogStore), scope }
  })

const text = (e: Entry) => new TextDecoder().decode(e.data)

const contract = (name: string, fresh: () => Layer.Layer<RaftLogStore, unknown>, reopen: () => Layer.Layer<RaftLogStore, unknown>) =>
  describe(`RaftLogStore contract: ${name}`, () => {
    it.scoped("persists entries, overwrites conflicting suffixes, keeps hard state, recovers", () =>
      Effect.gen(function* () {
        const a = yield* build(fresh())
        const g = yield* a.store.open("g1", conf)
        expect(g.lastIndex()).toBe(0)
        yield* a.store.persist([{ group: "g1", entries: ents(1, 10, 1), hardState: { term: 1, vote: 2, commit: 0 } }])
        yield* a.store.persist([{ group: "g1", entries: ents(6, 8, 2, "x"), hardState: { term: 2, vote: 3, commit: 5 } }])
        expect(g.lastIndex()).toBe(8)
        expect(text(g.entries(6, 7)[0]!)).toBe("x6")
        yield* Scope.close(a.scope, Exit.void)

        const b = yield* build(reopen())
        const g2 = yield* b.store.open("g1", { voters: [9], learners: [] })
        expect(g2.lastIndex()).toBe(8)
        expect(g2.entries(1, 9).map(text)).toEqual(["1", "2", "3", "4", "5", "x6", "x7", "x8"])
        expect(g2.entries(1, 9).map((e) => e.term)).toEqual([1, 1, 1, 1, 1, 2, 2, 2])
        const hs = g2.hardState()
        expect(hs.term).toBe(2)
        expect(hs.vote).toBe(3)
        // the bootstrap membership of the first open is kept
        expect(g2.storage.initialState().confState.voters).toEqual([1, 2, 3])
        yield* Scope.close(b.scope, Exit.void)
      }))

    it.scoped("compaction and received snapshots survive a restart", () =>
      Effect.gen(function* () {
        const a = yield* build(fresh())
        const g = yield* a.store.open("g", conf)
        yield* a.store.persist([{ group: "g", entries: ents(1, 30, 1), hardState: { term: 1, vote: 1, commit: 30 } }])
        const snap = yield* a.store.compact("g", 20, conf, new TextEncoder().encode("state@20"), 5)
        expect(snap.metadata).toMatchObject({ index: 20, term: 1 })
        expect(g.firstIndex()).toBe(16)
        const h = yield* a.store.open("h", conf)
        yield* a.store.persist([
          {
            group: "h",
            snapshot: { metadata: { index: 100, term: 4, confState: conf }, data: new TextEncoder().encode("h@100") },
            entries: ents(101, 103, 4)
          }
        ])
        expect(h.firstIndex()).toBe(101)
        yield* Scope.close(a.scope, Exit.void)

        const b = yield* build(reopen())
        const g2 = yield* b.store.open("g", conf)
        expect(g2.snapshot().metadata.index).toBe(20)
        expect(new TextDecoder().decode(g2.snapshot().data)).toBe("state@20")
        expect(g2.lastIndex()).toBe(30)
        expect(g2.storage.term(20)).toBe(1)
        const h2 = yield* b.store.open("h", conf)
        expect(h2.snapshot().metadata.index).toBe(100)
        expect(h2.lastIndex()).toBe(103)
        expect(h2.firstIndex()).toBe(101)
        yield* Scope.close(b.scope, Exit.void)
      }))

    it.scoped("one persist covers many groups", () =>
      Effect.gen(function* () {
        const a = yield* build(fresh())
        const groups = Array.from({ length: 50 }, (_, i) => `g${i}`)
        for (const g of groups) yield* a.store.open(g, conf)
        const before = yield* a.store.stats
        yield* a.store.persist(groups.map((group, i) => ({ group, entries: ents(1, 3, 1, `${i}-`) })))
        const after = yield* a.store.stats
        expect(after.syncs - before.syncs).toBe(1)
        expect(after.entriesAppended - before.entriesAppended).toBe(150)
        yield* Scope.close(a.scope, Exit.void)
      }))
  })

// memory layer: one disk shared across "restarts"
let disk = new MemoryDisk()
contract(
  "memory",
  () => {
    disk = new MemoryDisk()
    return layerMemory(disk)
  },
  () => layerMemory(disk)
)

// file layer on the storage engine over an in-memory file system
let io = new MemoryFileIO()
contract(
  "file (storage engine)",
  () => {
    io = new MemoryFileIO()
    return fileLayer(io)
  },
  () => fileLayer(io)
)

describe("crash semantics", () => {
  it.scoped("memory disk: unsynced writes are lost or torn, synced ones survive", () =>
    Effect.gen(function* () {
      const d = new MemoryDisk({ syncDelayMs: 10 })
      const a = yield* build(layerMemory(d))
      yield* a.store.open("g", conf)
      const first = yield* Effect.fork(a.store.persist([{ group: "g", entries: ents(1, 5, 1) }]))
      yield* TestClock.adjust(10)
      yield* Fiber.join(first)
      expect(d.unsyncedCount()).toBe(0)
      // a second write still waiting for its sync when the node dies
      yield* Effect.fork(
        a.store.persist([{ group: "g", entries: ents(6, 8, 1), hardState: { term: 1, vote: 1, commit: 0 } }])
      )
      yield* TestClock.adjust(5)
      expect(d.unsyncedCount()).toBe(2)
      const recoverWith = (mode: CrashOptions) => {
        const copy = d.clone()
        copy.crash(mode)
        return copy.recover("g")!
      }
      expect(recoverWith({ loseUnsynced: true }).lastIndex()).toBe(5)
      const torn = recoverWith({ tornTail: true })
      expect(torn.lastIndex()).toBe(8) // the entries survived, the last record (hard state) was torn
      expect(torn.hardState().term).toBe(0)
      expect(recoverWith({}).hardState().vote).toBe(1) // the OS kept everything
    }))

  it.scoped("file store: a power loss keeps exactly what was synced", () =>
    Effect.gen(function* () {
      const fio = new MemoryFileIO()
      const a = yield* build(fileLayer(fio))
      yield* a.store.open("g", conf)
      yield* a.store.persist([{ group: "g", entries: ents(1, 20, 1), hardState: { term: 1, vote: 2, commit: 10 } }])
      // power loss with torn tails: only synced data is guaranteed
      const after = fio.crash({ tear: true, random: () => 0.5 })
      const b = yield* build(fileLayer(after))
      const g = yield* b.store.open("g", conf)
      expect(g.lastIndex()).toBe(20)
      expect(g.hardState()).toMatchObject({ term: 1, vote: 2 })
      yield* Scope.close(b.scope, Exit.void)
      yield* Scope.close(a.scope, Exit.void)
    }))
})

describe("engine over the file store", () => {
  it.scopedLive("a single-voter group commits, restarts from disk and rebuilds its state machine", () =>
    Effect.gen(function* () {
      const fio = new MemoryFileIO()
      const net = yield* MemoryNetwork.make({ seed: 1 })
      const startNode = Effect.gen(function* () {
        const scope = yield* Scope.make()
        const layer = RaftEngine.layer({ nodeId: 1, tickMs: 5, electionTicks: 4, seed: 1 }).pipe(
          Layer.provide(Layer.merge(RaftTransport.layerMemory(net, 1), fileLayer(fio)))
        )
        const ctx = yield* Layer.buildWithScope(layer, scope)
        const engine = Context.get(ctx, RaftEngine.RaftEngine)
        const sm = new KvStateMachine()
        yield* engine.createGroup("kv", { voters: [1], stateMachine: sm })
        return { scope, engine, sm }
      })
      const awaitLeader = (e: RaftEngine.RaftEngineShape) =>
        Effect.repeat(Effect.flatMap(e.figures("kv"), (f) => Effect.sleep(5).pipe(Effect.as(f.role))), {
          until: (r) => r === "Leader",
          times: 400
        })
      const n = yield* startNode
      yield* awaitLeader(n.engine)
      for (let i = 0; i < 30; i++) yield* n.engine.propose("kv", encodeKvCommand({ op: "put", key: `k${i % 3}`, value: `${i}` }))
      yield* Scope.close(n.scope, Exit.void)
      const m = yield* startNode
      yield* awaitLeader(m.engine)
      yield* m.engine.propose("kv", encodeKvCommand({ op: "put", key: "after", value: "restart" }))
      expect(m.sm.get("k0")).toBe("27")
      expect(m.sm.get("k2")).toBe("29")
      expect(m.sm.get("after")).toBe("restart")
      yield* Scope.close(m.scope, Exit.void)
    }), { timeout: 20_000 })
})

export type { RaftLogStoreShape }
