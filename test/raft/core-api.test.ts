/** The Ready/advance contract, codecs of the stable types, and the seeded PRNG. */
import { describe, expect, it } from "vitest"
import {
  decodeConfChange,
  encodeConfChange,
  entryTypeFromCode,
  EntryTypeCode,
  messageTypes,
  MemoryStorage,
  RaftCore,
  seededRandom
} from "../../src/raft/core/index.js"
import { hdr, ofType, solo } from "./helpers.js"
import { enc } from "./network.js"

describe("Ready / advance", () => {
  it("reports soft and hard state changes once, with mustSync for term/vote/entries", () => {
    const s = solo(1, [1, 2, 3])
    expect(s.core.hasReady()).toBe(false)
    s.core.campaign()
    const rd = s.ready()
    expect(rd.softState).toEqual({ leader: null, role: "Candidate" })
    expect(rd.hardState).toEqual({ term: 1, vote: 1, commit: 0 })
    expect(rd.mustSync).toBe(true)
    expect(ofType(rd.messages, "MsgVote")).toHaveLength(2)
    expect(s.core.hasReady()).toBe(false)
    s.core.step({ type: "MsgVoteResp", ...hdr(2, 1, 1), reject: false })
    const rd2 = s.ready()
    expect(rd2.softState).toEqual({ leader: 1, role: "Leader" })
    expect(rd2.hardState).toBeNull()
    expect(rd2.entries.map((e) => e.type)).toEqual(["Noop"])
    expect(rd2.mustSync).toBe(true)
  })

  it("a commit-only change does not require an fsync", () => {
    const s = solo(2, [1, 2, 3])
    s.core.step({ type: "MsgApp", ...hdr(1, 2, 1), index: 0, logTerm: 0, entries: [{ index: 1, term: 1, type: "Noop", data: new Uint8Array(0) }], commit: 0 })
    s.ready()
    s.core.step({ type: "MsgHeartbeat", ...hdr(1, 2, 1), commit: 1, context: 0 })
    const rd = s.ready()
    expect(rd.hardState).toEqual({ term: 1, vote: null, commit: 1 })
    expect(rd.mustSync).toBe(false)
    expect(rd.committedEntries).toHaveLength(1)
  })

  it("ready() twice without advance() is an error", () => {
    const s = solo(1, [1, 2, 3])
    s.core.campaign()
    s.core.ready()
    expect(s.core.hasReady()).toBe(false)
    expect(() => s.core.ready()).toThrow()
  })

  it("the leader counts its own entries for commit only after they are persisted", () => {
    const storage = MemoryStorage.make([1])
    const core = new RaftCore({ id: 1, storage, random: seededRandom(1) })
    core.campaign()
    expect(core.role).toBe("Leader")
    expect(core.committed).toBe(0)
    const rd = core.ready()
    storage.append(rd.entries)
    core.advance(rd)
    expect(core.committed).toBe(1)
    const rd2 = core.ready()
    expect(rd2.committedEntries.map((e) => e.index)).toEqual([1])
  })

  it("durability by notice: the leader counts its own entries for commit only up to what durableTo reported", () => {
    const storage = MemoryStorage.make([1])
    const core = new RaftCore({ id: 1, storage, random: seededRandom(1), durabilityByNotice: true })
    core.campaign()
    const rd = core.ready()
    storage.append(rd.entries)
    core.advance(rd)
    // persisted (stable) but not reported durable: not committed
    expect(core.committed).toBe(0)
    // a notice naming another term than the entry's is ignored
    core.durableTo(1, 7)
    expect(core.committed).toBe(0)
    core.durableTo(1, 1)
    expect(core.committed).toBe(1)
    const rd2 = core.ready()
    expect(rd2.committedEntries.map((e) => e.index)).toEqual([1])
    core.advance(rd2)
    // a notice that comes before advance() marked the entry stable counts from advance()
    expect(core.propose([enc("a")])._tag).toBe("Right")
    core.durableTo(2, 1)
    expect(core.committed).toBe(1)
    const rd3 = core.ready()
    storage.append(rd3.entries)
    core.advance(rd3)
    expect(core.committed).toBe(2)
  })

  it("without durability by notice, durableTo changes nothing and advance() counts what it persisted", () => {
    const storage = MemoryStorage.make([1])
    const core = new RaftCore({ id: 1, storage, random: seededRandom(1) })
    core.campaign()
    const rd = core.ready()
    core.durableTo(1, 1)
    expect(core.committed).toBe(0)
    storage.append(rd.entries)
    core.advance(rd)
    expect(core.committed).toBe(1)
  })

  it("ignores messages for another group or node", () => {
    const s = solo(1, [1, 2, 3])
    s.core.step({ type: "MsgApp", group: "other", from: 2, to: 1, term: 5, index: 0, logTerm: 0, entries: [], commit: 0 })
    s.core.step({ type: "MsgApp", group: "g", from: 2, to: 3, term: 5, index: 0, logTerm: 0, entries: [], commit: 0 })
    expect(s.core.term).toBe(0)
  })

  it("starts from a snapshot: applied and committed at the snapshot index", () => {
    const storage = MemoryStorage.make([1, 2, 3])
    storage.applySnapshot({ metadata: { index: 10, term: 2, confState: { voters: [1, 2, 3], learners: [] } }, data: enc("s") })
    storage.setHardState({ term: 2, vote: null, commit: 10 })
    const core = new RaftCore({ id: 1, storage, random: seededRandom(1) })
    expect(core.applied).toBe(10)
    expect(core.committed).toBe(10)
    expect(core.lastIndex).toBe(10)
    expect(core.hasReady()).toBe(false)
  })

  it("rejects invalid timing configuration", () => {
    expect(() => new RaftCore({ id: 1, storage: MemoryStorage.make([1]), random: seededRandom(1), electionTick: 1, heartbeatTick: 1 })).toThrow()
    expect(
      () => new RaftCore({ id: 1, storage: MemoryStorage.make([1]), random: seededRandom(1), readOnlyOption: "LeaseBased", checkQuorum: false })
    ).toThrow()
  })
})

describe("stable type codecs", () => {
  it("ConfChange entries round-trip with and without the resulting membership", () => {
    const a = encodeConfChange({ type: "PromoteLearner", nodeId: 7 })
    expect(decodeConfChange(a)).toEqual({ change: { type: "PromoteLearner", nodeId: 7 }, confState: null })
    const cs = { voters: [0, 1, 7], learners: [9] }
    const b = encodeConfChange({ type: "AddLearner", nodeId: 9 }, cs)
    expect(decodeConfChange(b)).toEqual({ change: { type: "AddLearner", nodeId: 9 }, confState: cs })
    expect(decodeConfChange(b.subarray(0, b.length - 1))).toBeUndefined()
    expect(decodeConfChange(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]))).toBeUndefined()
  })

  it("entry type and message type codes are stable", () => {
    expect(EntryTypeCode).toEqual({ Normal: 0, ConfChange: 1, Noop: 2 })
    expect(entryTypeFromCode(2)).toBe("Noop")
    expect(entryTypeFromCode(3)).toBeUndefined()
    expect(messageTypes.indexOf("MsgApp")).toBe(0)
    expect(messageTypes.indexOf("MsgProp")).toBe(14)
  })
})

describe("seeded randomness", () => {
  it("mulberry32 is deterministic per seed and within bounds", () => {
    const a = seededRandom(123)
    const b = seededRandom(123)
    const xs = Array.from({ length: 1000 }, () => a.nextInt(10))
    expect(Array.from({ length: 1000 }, () => b.nextInt(10))).toEqual(xs)
    expect(xs.every((x) => x >= 0 && x < 10)).toBe(true)
    expect(new Set(xs).size).toBe(10)
    expect(seededRandom(124).nextInt(1 << 30)).not.toBe(seededRandom(123).nextInt(1 << 30))
  })
})
