/**
 * The rules of the Raft paper (§5), one by one, in the style of etcd's
 * raft_paper_test.go. Single cores are driven by hand; a small network is
 * used where several nodes must interact.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { MemoryStorage } from "../../src/raft/core/index.js"
import type { Message, NodeId } from "../../src/raft/core/index.js"
import { entry, hdr, ofType, solo } from "./helpers.js"
import type { Solo } from "./helpers.js"
import { dec, enc, Network, storageWithTerms } from "./network.js"

/** Make node 1 the leader of [1..n] by hand (vote from 2..quorum), then commit its no-op. */
const soloLeader = (n: number, opts: Parameters<typeof solo>[2] = {}): Solo => {
  const voters = Array.from({ length: n }, (_, i) => i + 1)
  const s = solo(1, voters, opts)
  s.core.campaign()
  s.msgs()
  for (let id = 2; id <= Math.floor(n / 2) + 1; id++) {
    s.core.step({ type: "MsgVoteResp", ...hdr(id, 1, s.core.term), reject: false })
  }
  expect(s.core.role).toBe("Leader")
  return s
}

const commitNoop = (s: Solo, n: number): void => {
  s.msgs()
  const li = s.core.lastIndex
  for (let id = 2; id <= n; id++) {
    s.core.step({ type: "MsgAppResp", ...hdr(id, 1, s.core.term), index: li, reject: false, rejectHint: 0, logTerm: 0 })
  }
  s.msgs()
  expect(s.core.committed).toBe(li)
}

const app = (from: NodeId, to: NodeId, term: number, index: number, logTerm: number, entries: ReturnType<typeof entry>[], commit: number): Message => ({
  type: "MsgApp",
  ...hdr(from, to, term),
  index,
  logTerm,
  entries,
  commit
})

describe("§5.1 terms", () => {
  for (const role of ["Follower", "Candidate", "Leader"] as const) {
    it(`a ${role} seeing a higher term adopts it and becomes follower`, () => {
      const s = role === "Leader" ? soloLeader(3) : solo(1, [1, 2, 3])
      if (role === "Candidate") s.core.campaign()
      expect(s.core.role).toBe(role)
      s.core.step(app(2, 1, 5, 0, 0, [], 0))
      expect(s.core.term).toBe(5)
      expect(s.core.role).toBe("Follower")
      expect(s.core.leader).toBe(2)
    })
  }

  it("a vote request with a higher term makes a leader step down without a leader", () => {
    const s = soloLeader(3)
    s.core.step({ type: "MsgVote", ...hdr(3, 1, 9), index: 100, logTerm: 100, transfer: false })
    expect(s.core.role).toBe("Follower")
    expect(s.core.term).toBe(9)
    expect(s.core.vote).toBe(3)
  })

  it("messages with a stale term are ignored", () => {
    const storage = MemoryStorage.make([1, 2, 3])
    storage.setHardState({ term: 2, vote: null, commit: 0 })
    const s = solo(1, [1, 2, 3], { storage })
    s.msgs()
    s.core.step(app(2, 1, 1, 0, 0, [entry(1, 1, "x")], 1))
    expect(s.core.term).toBe(2)
    expect(s.core.lastIndex).toBe(0)
    expect(s.core.leader).toBeNull()
    expect(s.msgs()).toEqual([])
  })

  it("with pre-vote/check-quorum a stale leader is told the new term", () => {
    const storage = MemoryStorage.make([1, 2, 3])
    storage.setHardState({ term: 2, vote: null, commit: 0 })
    const s = solo(1, [1, 2, 3], { storage, preVote: true })
    s.msgs()
    s.core.step({ type: "MsgHeartbeat", ...hdr(2, 1, 1), commit: 0, context: 0 })
    const out = s.msgs()
    expect(out).toHaveLength(1)
    expect(out[0]!.type).toBe("MsgAppResp")
    expect(out[0]!.term).toBe(2)
  })

  it("nodes start as followers", () => {
    const s = solo(1, [1, 2, 3])
    expect(s.core.role).toBe("Follower")
    expect(s.core.term).toBe(0)
  })
})

describe("§5.2 leader election", () => {
  it("the leader broadcasts heartbeats every heartbeat tick", () => {
    const s = soloLeader(3, { heartbeatTick: 1 })
    commitNoop(s, 3)
    s.core.tick()
    const hb = ofType(s.msgs(), "MsgHeartbeat")
    expect(hb.map((m) => m.to).sort()).toEqual([2, 3])
    for (const m of hb) {
      expect(m.term).toBe(1)
      expect(m.commit).toBe(1)
    }
  })

  for (const role of ["Follower", "Candidate"] as const) {
    it(`a ${role} that hears nothing starts an election`, () => {
      const s = solo(1, [1, 2, 3], { electionTick: 10 })
      if (role === "Candidate") s.core.campaign()
      const term0 = s.core.term
      s.msgs()
      for (let i = 0; i < 20; i++) s.core.tick()
      expect(s.core.role).toBe("Candidate")
      expect(s.core.term).toBe(term0 + 1)
      expect(s.core.vote).toBe(1)
      const votes = ofType(s.msgs(), "MsgVote")
      expect(votes.map((m) => m.to).sort()).toEqual([2, 3])
      for (const v of votes) {
        expect(v.term).toBe(term0 + 1)
        expect(v.index).toBe(0)
        expect(v.logTerm).toBe(0)
      }
    })
  }

  const rounds: Array<[number, Record<number, boolean>, string]> = [
    [1, {}, "Leader"],
    [3, { 2: true, 3: true }, "Leader"],
    [3, { 2: true }, "Leader"],
    [5, { 2: true, 3: true, 4: true, 5: true }, "Leader"],
    [5, { 2: true, 3: true, 4: true }, "Leader"],
    [5, { 2: true, 3: true }, "Leader"],
    [3, { 2: false, 3: false }, "Follower"],
    [5, { 2: false, 3: false, 4: false, 5: false }, "Follower"],
    [5, { 2: true, 3: false, 4: false, 5: false }, "Follower"],
    [3, {}, "Candidate"],
    [5, { 2: true }, "Candidate"],
    [5, { 2: false, 3: false }, "Candidate"],
    [5, {}, "Candidate"]
  ]
  for (const [size, votes, want] of rounds) {
    it(`election in one round: ${size} nodes, votes ${JSON.stringify(votes)} -> ${want}`, () => {
      const voters = Array.from({ length: size }, (_, i) => i + 1)
      const s = solo(1, voters)
      s.core.campaign()
      for (const [id, granted] of Object.entries(votes)) {
        s.core.step({ type: "MsgVoteResp", ...hdr(Number(id), 1, 1), reject: !granted })
      }
      expect(s.core.role).toBe(want)
      expect(s.core.term).toBe(1)
    })
  }

  const followerVotes: Array<[NodeId | null, NodeId, boolean]> = [
    [null, 2, false],
    [null, 3, false],
    [2, 2, false],
    [3, 3, false],
    [2, 3, true],
    [3, 2, true]
  ]
  for (const [vote, candidate, reject] of followerVotes) {
    it(`a follower votes at most once per term (voted ${vote}, candidate ${candidate})`, () => {
      const storage = MemoryStorage.make([1, 2, 3])
      storage.setHardState({ term: 1, vote, commit: 0 })
      const s = solo(1, [1, 2, 3], { storage })
      s.core.step({ type: "MsgVote", ...hdr(candidate, 1, 1), index: 0, logTerm: 0, transfer: false })
      const resp = ofType(s.msgs(), "MsgVoteResp")
      expect(resp).toHaveLength(1)
      expect(resp[0]!.reject).toBe(reject)
      expect(resp[0]!.to).toBe(candidate)
      if (!reject) expect(s.storage.hardState().vote).toBe(candidate)
    })
  }

  it("a candidate falls back to follower on AppendEntries from a leader of its term", () => {
    const s = solo(1, [1, 2, 3])
    s.core.campaign()
    expect(s.core.role).toBe("Candidate")
    s.core.step(app(2, 1, 1, 0, 0, [], 0))
    expect(s.core.role).toBe("Follower")
    expect(s.core.leader).toBe(2)
    expect(s.core.term).toBe(1)
    // and it acknowledges the append
    expect(ofType(s.msgs(), "MsgAppResp")[0]!.reject).toBe(false)
  })

  it("election timeouts are randomized in [et, 2et) and spread over the range", () => {
    const seen = new Set<number>()
    for (let seed = 1; seed <= 200; seed++) {
      const s = solo(1, [1, 2, 3], { electionTick: 10, seed })
      let ticks = 0
      while (s.core.role === "Follower") {
        s.core.tick()
        ticks++
      }
      expect(ticks).toBeGreaterThanOrEqual(10)
      expect(ticks).toBeLessThan(20)
      seen.add(ticks)
    }
    expect(seen.size).toBe(10)
  })

  it("a split vote is resolved by randomized timeouts", () => {
    const net = new Network({ voters: [1, 2, 3, 4], seed: 42, core: { preVote: false, checkQuorum: false } })
    // 3 only hears from 1, 4 only from 2: both candidates get 2 of 4 votes.
    net.filter = (m) => !((m.to === 3 && m.from === 2) || (m.to === 4 && m.from === 1) || (m.from === 3 && m.to === 2) || (m.from === 4 && m.to === 1))
    net.core(1).campaign()
    net.core(2).campaign()
    net.flush()
    expect(net.leaders()).toEqual([])
    expect(net.core(1).term).toBe(1)
    expect(net.core(2).term).toBe(1)
    net.heal()
    let ticks = 0
    while (net.leader() === undefined && ticks < 200) {
      net.tickAll(1)
      ticks++
    }
    expect(net.leaders()).toHaveLength(1)
    expect(ticks).toBeLessThan(60)
  })
})

describe("§5.3 log replication", () => {
  it("the leader replicates a proposal with the right consistency-check fields", () => {
    const s = soloLeader(3)
    commitNoop(s, 3)
    const res = s.core.propose(enc("some data"))
    expect(Either.isRight(res)).toBe(true)
    const apps = ofType(s.msgs(), "MsgApp")
    expect(apps.map((m) => m.to).sort()).toEqual([2, 3])
    for (const m of apps) {
      expect(m.index).toBe(1)
      expect(m.logTerm).toBe(1)
      expect(m.commit).toBe(1)
      expect(m.entries.map((e) => [e.index, e.term, dec(e.data)])).toEqual([[2, 1, "some data"]])
    }
  })

  it("the leader commits an entry once a majority has it and tells followers", () => {
    const s = soloLeader(3)
    commitNoop(s, 3)
    s.core.propose(enc("x"))
    s.msgs()
    expect(s.core.committed).toBe(1)
    s.core.step({ type: "MsgAppResp", ...hdr(2, 1, 1), index: 2, reject: false, rejectHint: 0, logTerm: 0 })
    expect(s.core.committed).toBe(2)
    const rd = s.ready()
    expect(rd.committedEntries.map((e) => dec(e.data))).toEqual(["x"])
    const apps = ofType(rd.messages, "MsgApp")
    expect(apps.every((m) => m.commit === 2)).toBe(true)
  })

  const acks: Array<[number, ReadonlyArray<NodeId>, boolean]> = [
    [1, [], true],
    [3, [], false],
    [3, [2], true],
    [3, [2, 3], true],
    [5, [], false],
    [5, [2], false],
    [5, [2, 3], true],
    [5, [2, 3, 4], true],
    [5, [2, 3, 4, 5], true]
  ]
  for (const [size, acceptors, committed] of acks) {
    it(`commit needs a majority: ${size} nodes, acks from ${JSON.stringify(acceptors)} -> ${committed}`, () => {
      const s = soloLeader(size)
      commitNoop(s, size)
      const { lastIndex } = Either.getOrThrow(s.core.propose(enc("p")))
      s.msgs()
      for (const id of acceptors) {
        s.core.step({ type: "MsgAppResp", ...hdr(id, 1, 1), index: lastIndex, reject: false, rejectHint: 0, logTerm: 0 })
      }
      s.msgs()
      expect(s.core.committed === lastIndex).toBe(committed)
    })
  }

  it("committing a current-term entry commits all preceding entries", () => {
    const storage = storageWithTerms([1, 2, 3], [1, 2], 2)
    const s = solo(1, [1, 2, 3], { storage })
    s.core.campaign()
    s.core.step({ type: "MsgVoteResp", ...hdr(2, 1, 3), reject: false })
    expect(s.core.role).toBe("Leader")
    const { lastIndex } = Either.getOrThrow(s.core.propose(enc("some data")))
    s.msgs()
    s.core.step({ type: "MsgAppResp", ...hdr(2, 1, 3), index: lastIndex, reject: false, rejectHint: 0, logTerm: 0 })
    const rd = s.ready()
    expect(rd.committedEntries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 3]
    ])
  })

  it("a follower applies what the leader says is committed", () => {
    const s = solo(1, [1, 2, 3])
    s.core.step(app(2, 1, 1, 0, 0, [entry(1, 1, "a"), entry(2, 1, "b")], 1))
    const rd = s.ready()
    expect(rd.entries).toHaveLength(2)
    expect(rd.committedEntries.map((e) => dec(e.data))).toEqual(["a"])
    expect(ofType(rd.messages, "MsgAppResp")[0]!.index).toBe(2)
  })

  const checks: Array<[string, number, number, number, boolean, number, number, number]> = [
    // name, logTerm, index, commit, reject, respIndex, hintIndex, hintTerm
    ["below commit", 0, 0, 1, false, 1, 0, 0],
    ["matches entry 1", 1, 1, 1, false, 1, 0, 0],
    ["matches entry 2", 2, 2, 2, false, 2, 0, 0],
    ["term mismatch at 2", 1, 2, 2, true, 2, 1, 1],
    ["beyond the log", 3, 3, 3, true, 3, 2, 2]
  ]
  for (const [name, logTerm, index, commit, reject, respIndex, hintIndex, hintTerm] of checks) {
    it(`the follower's consistency check: ${name}`, () => {
      const storage = storageWithTerms([1, 2, 3], [1, 2], 2)
      storage.setHardState({ term: 2, vote: null, commit: 1 })
      const s = solo(1, [1, 2, 3], { storage })
      s.core.step(app(2, 1, 2, index, logTerm, [], commit))
      const r = ofType(s.msgs(), "MsgAppResp")[0]!
      expect(r.reject).toBe(reject)
      expect(r.index).toBe(respIndex)
      if (reject) {
        expect(r.rejectHint).toBe(hintIndex)
        expect(r.logTerm).toBe(hintTerm)
      }
    })
  }

  const appends: Array<[number, number, Array<[number, number]>, Array<[number, number]>]> = [
    [2, 2, [[3, 3]], [[1, 1], [2, 2], [3, 3]]],
    [1, 1, [[2, 3], [3, 4]], [[1, 1], [2, 3], [3, 4]]],
    [0, 0, [[1, 1]], [[1, 1], [2, 2]]],
    [0, 0, [[1, 3]], [[1, 3]]]
  ]
  for (const [index, logTerm, ents, want] of appends) {
    it(`the follower deletes conflicting entries and appends new ones: after ${index}@${logTerm} ${JSON.stringify(ents)}`, () => {
      const storage = storageWithTerms([1, 2, 3], [1, 2], 2)
      const s = solo(1, [1, 2, 3], { storage })
      s.core.step(app(2, 1, 2, index, logTerm, ents.map(([i, t]) => entry(i, t)), 0))
      s.msgs()
      expect(s.core.log.allEntries().map((e) => [e.index, e.term])).toEqual(want)
      expect(s.storage.allEntries().map((e) => [e.index, e.term])).toEqual(want)
    })
  }

  // Figure 7: the leader's log for term 8 and the possible follower logs (a)-(f).
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
  const followers: Record<string, Array<number>> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]
  }
  for (const [name, terms] of Object.entries(followers)) {
    it(`Figure 7 (${name}): the leader brings the follower's log in line with its own`, () => {
      const storages = new Map([
        [1, storageWithTerms([1, 2, 3], leaderLog, 7)],
        [2, storageWithTerms([1, 2, 3], terms, 7)],
        // A third node with an empty log: (d)'s log is more up to date than the leader's.
        [3, storageWithTerms([1, 2, 3], [], 7)]
      ])
      const net = new Network({ voters: [1, 2, 3], storages, core: { preVote: false, checkQuorum: false } })
      net.campaign(1)
      expect(net.core(1).role).toBe("Leader")
      expect(net.core(1).term).toBe(8)
      net.propose(1, "new")
      const l = net.core(1).log.allEntries().map((e) => [e.index, e.term, dec(e.data)])
      const f = net.core(2).log.allEntries().map((e) => [e.index, e.term, dec(e.data)])
      expect(f).toEqual(l)
      expect(net.core(2).committed).toBe(net.core(1).committed)
      expect(net.core(1).committed).toBe(12)
    })
  }

  it("fast backtracking needs few round trips for a long divergent log", () => {
    const leader = [1, ...Array.from({ length: 50 }, () => 2)]
    const follower = [1, ...Array.from({ length: 100 }, () => 3)]
    const storages = new Map([
      [1, storageWithTerms([1, 2, 3], leader, 4)],
      [2, storageWithTerms([1, 2, 3], follower, 4)],
      [3, storageWithTerms([1, 2, 3], [1], 4)]
    ])
    const net = new Network({ voters: [1, 2, 3], storages, core: { preVote: false, checkQuorum: false } })
    net.campaign(1)
    const rejects = ofType(net.sent, "MsgAppResp").filter((m) => m.from === 2 && m.reject)
    expect(rejects.length).toBeLessThanOrEqual(2)
    expect(net.logTerms(2)).toEqual(net.logTerms(1))
  })
})

describe("§5.4 safety", () => {
  const voterCases: Array<[Array<number>, number, number, boolean]> = [
    // follower log terms, candidate last logTerm, candidate last index, reject
    [[1], 1, 1, false],
    [[1], 1, 2, false],
    [[1, 1], 1, 1, true],
    [[1], 2, 1, false],
    [[1], 2, 2, false],
    [[1, 1], 2, 1, false],
    [[2], 1, 1, true],
    [[2], 1, 2, true],
    [[2, 1], 1, 1, true]
  ]
  for (const [terms, logTerm, index, reject] of voterCases) {
    it(`a voter rejects a less up-to-date candidate: log ${JSON.stringify(terms)} vs ${index}@${logTerm} -> ${reject ? "reject" : "grant"}`, () => {
      const storage = storageWithTerms([1, 2, 3], terms, 2)
      const s = solo(1, [1, 2, 3], { storage })
      s.core.step({ type: "MsgVote", ...hdr(2, 1, 3), index, logTerm, transfer: false })
      const r = ofType(s.msgs(), "MsgVoteResp")[0]!
      expect(r.reject).toBe(reject)
      expect(r.term).toBe(3)
    })
  }

  for (const [index, wcommit] of [
    [1, 0],
    [2, 0],
    [3, 3]
  ] as const) {
    it(`the leader commits by counting only entries of its own term (ack ${index})`, () => {
      const storage = storageWithTerms([1, 2, 3], [1, 2], 2)
      const s = solo(1, [1, 2, 3], { storage })
      s.core.campaign()
      s.core.step({ type: "MsgVoteResp", ...hdr(2, 1, 3), reject: false })
      s.msgs()
      s.core.step({ type: "MsgAppResp", ...hdr(2, 1, 3), index, reject: false, rejectHint: 0, logTerm: 0 })
      expect(s.core.committed).toBe(wcommit)
    })
  }

  /**
   * Figure 8: an entry of an older term that sits on a majority is not
   * committed by counting; a later leader may overwrite it. It becomes
   * committed only once an entry of the current term is.
   */
  const figure8Prefix = (): Network => {
    const net = new Network({
      voters: [1, 2, 3, 4, 5],
      core: { preVote: false, checkQuorum: false, maxSizePerMsg: 1 }
    })
    net.campaign(1)
    expect(net.core(1).term).toBe(1)
    expect(net.core(5).committed).toBe(1)
    // (a) S1 replicates "a" (index 2, term 1) only to S2.
    net.partition([1, 2])
    net.propose(1, "a")
    expect(net.core(2).lastIndex).toBe(2)
    // (b) S1 crashes; S5 is elected in term 2 by S3, S4 (and itself) and appends at index 2 alone.
    net.heal()
    net.isolate(1)
    net.isolate(2)
    net.dropType("MsgApp")
    net.campaign(5)
    expect(net.core(5).role).toBe("Leader")
    expect(net.core(5).term).toBe(2)
    net.isolate(5)
    net.propose(5, "b")
    expect(net.core(5).log.term(2)).toBe(2)
    // (c) S5 crashes; S1 restarts, is elected in term 3 and replicates index 2 (term 1) to S3,
    // but not its own term-3 entry (index 3).
    net.heal()
    net.restart(1)
    net.isolate(5)
    net.cut(1, 4)
    // Entries from index 3 never reach a node that already holds index 2 from term 1.
    net.filter = (m) => !(m.type === "MsgApp" && m.entries.some((e) => e.index >= 3) && net.core(m.to).log.term(2) === 1)
    net.campaign(1) // term 2: S3 already voted for S5 in term 2
    expect(net.core(1).role).toBe("Candidate")
    net.campaign(1)
    expect(net.core(1).role).toBe("Leader")
    expect(net.core(1).term).toBe(3)
    expect(net.core(3).log.term(2)).toBe(1)
    return net
  }

  it("Figure 8 (c)->(d): an older-term entry on a majority is not committed and may be overwritten", () => {
    const net = figure8Prefix()
    // S1, S2, S3 hold index 2 from term 1: a majority, yet not committed.
    expect(net.core(1).committed).toBe(1)
    // (d) S1 crashes, S5 comes back and wins term 4 with S2, S3, S4, overwriting index 2.
    net.heal()
    net.isolate(1)
    net.restart(5)
    net.campaign(5) // term 3: S2 and S3 already voted for S1
    net.campaign(5)
    expect(net.core(5).role).toBe("Leader")
    expect(net.core(5).term).toBe(4)
    net.propose(5, "c")
    for (const id of [2, 3, 4, 5]) {
      expect(net.core(id).log.term(2)).toBe(2)
      expect(net.node(id).state).toEqual(["b", "c"])
    }
    expect(net.node(1).state).toEqual([])
  })

  it("Figure 8 (c)->(e): once a current-term entry commits, the older entry is committed with it", () => {
    const net = figure8Prefix()
    net.filter = null
    net.core(1).tick() // heartbeat: followers report progress, the leader resends index 3
    net.flush()
    expect(net.core(1).committed).toBeGreaterThanOrEqual(3)
    expect(net.node(1).state).toEqual(["a"])
    // S5 can no longer win: S2 and S3 have a more up-to-date log.
    net.heal()
    net.isolate(1)
    net.restart(5)
    for (let i = 0; i < 3; i++) net.campaign(5)
    expect(net.core(5).role).not.toBe("Leader")
    expect(net.core(2).log.term(2)).toBe(1)
  })

  it("the leader never overwrites or deletes its own entries", () => {
    const s = soloLeader(3)
    commitNoop(s, 3)
    s.core.propose(enc("mine"))
    s.msgs()
    const before = s.core.log.allEntries().map((e) => [e.index, e.term])
    // A conflicting append claiming the same term is ignored by a leader.
    s.core.step(app(2, 1, 1, 1, 1, [entry(2, 1, "other")], 1))
    s.msgs()
    expect(s.core.log.allEntries().map((e) => [e.index, e.term])).toEqual(before)
    expect(dec(s.core.log.allEntries()[1]!.data)).toBe("mine")
  })
})
