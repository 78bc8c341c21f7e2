/**
 * The extensions beyond the basic paper rules, in the style of etcd's
 * raft_test.go: pre-vote, check-quorum, snapshots (chunked InstallSnapshot)
 * and compaction, leadership transfer, learners and membership changes,
 * ReadIndex, proposal batching and flow control.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { MemoryStorage, StorageRangeError } from "../../src/raft/core/index.js"
import type { Message, NodeId, RaftError } from "../../src/raft/core/index.js"
import { entry, hdr, ofType, solo } from "./helpers.js"
import { enc, Network } from "./network.js"

const elect = (net: Network, id: NodeId): void => {
  net.campaign(id)
  expect(net.core(id).role).toBe("Leader")
}

const leftTag = <A>(e: Either.Either<A, RaftError>): string | undefined => (Either.isLeft(e) ? e.left._tag : undefined)

const all = (net: Network): Array<NodeId> => [...net.nodes.keys()]

describe("pre-vote", () => {
  it("a partitioned node does not inflate its term, and rejoining does not disturb the leader", () => {
    const net = new Network({ voters: [1, 2, 3], core: { preVote: true, checkQuorum: true } })
    elect(net, 1)
    const term = net.core(1).term
    net.isolate(3)
    for (let i = 0; i < 100; i++) {
      net.tick(3)
      net.dropQueued()
    }
    expect(net.core(3).term).toBe(term)
    expect(net.core(3).role).toBe("PreCandidate")
    net.heal()
    net.tickAll(30)
    expect(net.leader()).toBe(1)
    expect(net.core(1).term).toBe(term)
    expect(net.core(3).leader).toBe(1)
    expect(net.core(3).role).toBe("Follower")
  })

  it("pre-vote alone (no check-quorum) rejects a rejoining node whose log is behind", () => {
    const net = new Network({ voters: [1, 2, 3], core: { preVote: true, checkQuorum: false } })
    elect(net, 1)
    net.isolate(3)
    net.propose(1, "while-3-is-away")
    for (let i = 0; i < 50; i++) {
      net.tick(3)
      net.dropQueued()
    }
    net.heal()
    net.core(3).campaign()
    net.flush()
    expect(net.leader()).toBe(1)
    expect(net.core(1).term).toBe(1)
  })

  it("without pre-vote a rejoining node forces a new election (the problem pre-vote solves)", () => {
    const net = new Network({ voters: [1, 2, 3], core: { preVote: false, checkQuorum: false } })
    elect(net, 1)
    net.isolate(3)
    for (let i = 0; i < 50; i++) {
      net.tick(3)
      net.dropQueued()
    }
    const inflated = net.core(3).term
    expect(inflated).toBeGreaterThan(2)
    net.heal()
    net.tickAll(40)
    // the leader of term 1 was deposed by the inflated term
    expect(net.core(1).term).toBeGreaterThanOrEqual(inflated)
    expect(net.core(net.leader()!).term).toBeGreaterThanOrEqual(inflated)
  })

  it("a pre-candidate wins and then campaigns for real", () => {
    const net = new Network({ voters: [1, 2, 3], core: { preVote: true, checkQuorum: true } })
    net.campaign(2)
    expect(net.leader()).toBe(2)
    expect(net.core(2).term).toBe(1)
    expect(ofType(net.sent, "MsgPreVote")).toHaveLength(2)
    expect(ofType(net.sent, "MsgPreVoteResp").every((m) => !m.reject && m.term === 1)).toBe(true)
  })
})

describe("check-quorum", () => {
  it("a leader that cannot reach a quorum steps down after an election timeout", () => {
    const net = new Network({ voters: [1, 2, 3], core: { checkQuorum: true, electionTick: 10 } })
    elect(net, 1)
    net.isolate(1)
    for (let i = 0; i < 9; i++) net.tick(1)
    expect(net.core(1).role).toBe("Leader")
    for (let i = 0; i < 11; i++) net.tick(1)
    expect(net.core(1).role).toBe("Follower")
    expect(net.core(1).leader).toBeNull()
  })

  it("a leader with a quorum stays", () => {
    const net = new Network({ voters: [1, 2, 3], core: { checkQuorum: true } })
    elect(net, 1)
    net.isolate(3)
    net.tickAll(50)
    expect(net.leader()).toBe(1)
    expect(net.core(1).term).toBe(1)
  })

  it("followers in a leader lease ignore a vote request", () => {
    const net = new Network({ voters: [1, 2, 3], core: { checkQuorum: true, preVote: false } })
    elect(net, 1)
    net.tickAll(2)
    // 3 campaigns on its own (e.g. clock skew); 2 still hears the leader and ignores it.
    net.core(3).campaign()
    net.processReady(3)
    const votes = net.queue.filter((m) => m.type === "MsgVote")
    expect(votes).toHaveLength(2)
    for (const m of votes) net.deliver(m)
    net.dropQueued()
    // neither the follower nor the leader reacts: no term change, no vote
    expect(net.core(2).term).toBe(1)
    expect(net.core(2).vote).toBe(1)
    expect(net.core(1).role).toBe("Leader")
    expect(ofType(net.sent, "MsgVoteResp").filter((m) => m.to === 3)).toHaveLength(0)
  })
})

describe("replication flow control", () => {
  const replicatingLeader = (opts: Parameters<typeof solo>[2]) => {
    const s = solo(1, [1, 2], opts)
    s.core.campaign()
    s.core.step({ type: "MsgVoteResp", ...hdr(2, 1, 1), reject: false })
    s.msgs()
    s.core.step({ type: "MsgAppResp", ...hdr(2, 1, 1), index: 1, reject: false, rejectHint: 0, logTerm: 0 })
    s.msgs()
    expect(s.core.status().progress.get(2)!.state).toBe("Replicate")
    return s
  }

  it("a batch of proposals goes out as one MsgApp when it fits", () => {
    const s = replicatingLeader({})
    const res = Either.getOrThrow(s.core.propose(Array.from({ length: 100 }, (_, i) => enc(`p${i}`))))
    expect(res.lastIndex - res.firstIndex).toBe(99)
    const apps = ofType(s.msgs(), "MsgApp")
    expect(apps).toHaveLength(1)
    expect(apps[0]!.entries).toHaveLength(100)
  })

  it("pipelines several MsgApps up to the in-flight count limit, capped by maxSizePerMsg", () => {
    const s = replicatingLeader({ maxSizePerMsg: 100, maxInflightMsgs: 3 })
    s.core.propose(Array.from({ length: 20 }, () => new Uint8Array(60)))
    const apps = ofType(s.msgs(), "MsgApp")
    // each message holds one entry (60 + header > 100/2), three in flight
    expect(apps).toHaveLength(3)
    expect(apps.map((m) => m.index)).toEqual([1, 2, 3])
    expect(s.core.status().progress.get(2)!.inflight).toBe(3)
    // an ack frees window slots and more is sent at once
    s.core.step({ type: "MsgAppResp", ...hdr(2, 1, 1), index: 3, reject: false, rejectHint: 0, logTerm: 0 })
    expect(ofType(s.msgs(), "MsgApp").map((m) => m.index)).toEqual([4, 5])
  })

  it("the in-flight byte limit pauses replication", () => {
    const s = replicatingLeader({ maxSizePerMsg: 1, maxInflightMsgs: 100, maxInflightBytes: 250 })
    s.core.propose(Array.from({ length: 10 }, () => new Uint8Array(100)))
    const apps = ofType(s.msgs(), "MsgApp")
    expect(apps).toHaveLength(3) // 124 + 124 >= 250 only after the 3rd
  })

  it("a rejection in Replicate state falls back to probing", () => {
    const s = replicatingLeader({})
    s.core.propose(enc("a"))
    s.core.propose(enc("b"))
    expect(ofType(s.msgs(), "MsgApp").map((m) => m.index)).toEqual([1, 2])
    // the first append was lost: the follower rejects the second one
    s.core.step({ type: "MsgAppResp", ...hdr(2, 1, 1), index: 2, reject: true, rejectHint: 1, logTerm: 1 })
    expect(s.core.status().progress.get(2)!.state).toBe("Probe")
  })

  it("reportUnreachable moves a replicating follower to probe", () => {
    const s = replicatingLeader({})
    s.core.reportUnreachable(2)
    expect(s.core.status().progress.get(2)!.state).toBe("Probe")
  })

  it("drops proposals beyond the uncommitted-bytes limit", () => {
    const s = replicatingLeader({ maxUncommittedEntriesSize: 1000 })
    expect(Either.isRight(s.core.propose(new Uint8Array(600)))).toBe(true)
    expect(leftTag(s.core.propose(new Uint8Array(600)))).toBe("ProposalDropped")
  })

  it("recovers from a lost append via heartbeat responses", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    net.dropType("MsgApp")
    net.core(1).propose(enc("lost"))
    net.flush()
    net.allowType("MsgApp")
    expect(net.core(2).lastIndex).toBe(1)
    net.tickAll(3)
    expect(net.node(2).state).toEqual(["lost"])
    expect(net.node(3).state).toEqual(["lost"])
  })
})

describe("proposals", () => {
  it("a follower answers NotLeader with the known leader", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    const res = net.core(2).propose(enc("x"))
    expect(Either.isLeft(res)).toBe(true)
    if (Either.isLeft(res) && res.left._tag === "NotLeader") {
      expect(res.left.leaderId).toBe(1)
      expect(res.left.term).toBe(1)
    } else throw new Error("expected NotLeader")
  })

  it("with forwardProposals a follower forwards to the leader", () => {
    const net = new Network({ voters: [1, 2, 3], core: { forwardProposals: true } })
    elect(net, 1)
    const res = Either.getOrThrow(net.core(2).propose([enc("a"), enc("b")]))
    expect(res.forwardedTo).toBe(1)
    net.flush()
    for (const id of all(net)) expect(net.node(id).state).toEqual(["a", "b"])
  })

  it("a single-voter group commits after its own persistence", () => {
    const net = new Network({ voters: [1] })
    net.campaign(1)
    expect(net.core(1).role).toBe("Leader")
    net.propose(1, ["a", "b"])
    expect(net.node(1).state).toEqual(["a", "b"])
    expect(net.node(1).appliedEntries.map((e) => e.type)).toEqual(["Noop", "Normal", "Normal"])
  })

  it("a restarted node keeps term, vote and log and re-applies committed entries", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    net.propose(1, ["a", "b"])
    net.restart(2)
    expect(net.core(2).term).toBe(1)
    expect(net.core(2).lastIndex).toBe(3)
    net.processReady(2)
    expect(net.node(2).state).toEqual(["a", "b"])
    net.propose(1, "c")
    expect(net.node(2).state).toEqual(["a", "b", "c"])
  })
})

describe("snapshots and compaction", () => {
  it("a follower behind the compacted log catches up through a chunked InstallSnapshot", () => {
    const net = new Network({ voters: [1, 2, 3], core: { maxSnapshotChunkBytes: 16 } })
    elect(net, 1)
    net.isolate(3)
    for (let i = 0; i < 20; i++) net.propose(1, `v${i}`)
    const snap = net.compact(1)!
    net.compact(2)
    expect(net.node(1).storage.firstIndex()).toBe(snap.metadata.index + 1)
    net.heal()
    net.tickAll(3)
    const chunks = ofType(net.sent, "MsgSnap").filter((m) => m.to === 3)
    expect(chunks.length).toBeGreaterThan(5)
    expect(chunks[0]!.offset).toBe(0)
    expect(chunks.filter((m) => m.done)).toHaveLength(1)
    expect(chunks.at(-1)!.offset + chunks.at(-1)!.data.length).toBe(chunks.at(-1)!.totalBytes)
    expect(net.node(3).snapshotsInstalled).toBe(1)
    expect(net.node(3).state).toEqual(net.node(1).state)
    expect(net.node(3).storage.firstIndex()).toBe(snap.metadata.index + 1)
    expect(net.core(1).status().progress.get(3)!.state).toBe("Replicate")
    net.propose(1, "after")
    expect(net.node(3).state.at(-1)).toBe("after")
    expect(net.node(3).state).toEqual(net.node(1).state)
  })

  it("lost snapshot chunks are resent", () => {
    const net = new Network({ voters: [1, 2, 3], core: { maxSnapshotChunkBytes: 8 } })
    elect(net, 1)
    net.isolate(3)
    for (let i = 0; i < 10; i++) net.propose(1, `v${i}`)
    net.compact(1)
    net.heal()
    let n = 0
    net.filter = (m) => !(m.type === "MsgSnap" && n++ % 3 === 1)
    net.tickAll(200)
    expect(net.node(3).snapshotsInstalled).toBe(1)
    expect(net.node(3).state).toEqual(net.node(1).state)
  })

  it("a restarted follower with a partial transfer starts over", () => {
    const s = solo(3, [1, 2, 3])
    const md = { index: 5, term: 1, confState: { voters: [1, 2, 3], learners: [] } }
    const data = enc(JSON.stringify(["a", "b"]))
    s.core.step({ type: "MsgSnap", ...hdr(1, 3, 1), snapshot: md, offset: 4, totalBytes: data.length, data: data.subarray(4, 8), done: false })
    const r = ofType(s.msgs(), "MsgSnapResp")[0]!
    expect(r.reject).toBe(true)
    expect(r.offset).toBe(0)
    s.core.step({ type: "MsgSnap", ...hdr(1, 3, 1), snapshot: md, offset: 0, totalBytes: data.length, data: data.subarray(0, 4), done: false })
    expect(ofType(s.msgs(), "MsgSnapResp")[0]!.offset).toBe(4)
    s.core.step({ type: "MsgSnap", ...hdr(1, 3, 1), snapshot: md, offset: 4, totalBytes: data.length, data: data.subarray(4), done: true })
    const rd = s.ready()
    expect(rd.snapshot!.metadata.index).toBe(5)
    expect(rd.snapshot!.data).toEqual(data)
    expect(ofType(rd.messages, "MsgAppResp")[0]!.index).toBe(5)
    expect(s.core.committed).toBe(5)
  })

  it("a stale snapshot is answered with the follower's commit index", () => {
    const s = solo(3, [1, 2, 3])
    s.core.step({ type: "MsgApp", ...hdr(1, 3, 1), index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1), entry(3, 1)], commit: 3 })
    s.msgs()
    const md = { index: 2, term: 1, confState: { voters: [1, 2, 3], learners: [] } }
    s.core.step({ type: "MsgSnap", ...hdr(1, 3, 1), snapshot: md, offset: 0, totalBytes: 0, data: new Uint8Array(0), done: true })
    const r = ofType(s.msgs(), "MsgAppResp")[0]!
    expect(r.index).toBe(3)
  })

  it("MemoryStorage compaction keeps terms and bounds", () => {
    const st = MemoryStorage.make([1])
    st.append([entry(1, 1, "a"), entry(2, 1, "bb"), entry(3, 2, "ccc"), entry(4, 2, "d")])
    st.compact(2)
    expect(st.firstIndex()).toBe(3)
    expect(st.lastIndex()).toBe(4)
    expect(st.term(2)).toBe(1)
    expect(() => st.term(1)).toThrow(StorageRangeError)
    expect(() => st.entries(2, 4, 1000)).toThrow(StorageRangeError)
    expect(st.entries(3, 5, 1).map((e) => e.index)).toEqual([3])
    expect(st.entries(3, 5, 1000).map((e) => e.index)).toEqual([3, 4])
    // appending over a conflict truncates
    st.append([entry(4, 3, "x"), entry(5, 3, "y")])
    expect(st.allEntries().map((e) => [e.index, e.term])).toEqual([
      [3, 2],
      [4, 3],
      [5, 3]
    ])
  })
})

describe("leadership transfer", () => {
  it("transfers to an up-to-date follower with TimeoutNow", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    expect(Either.isRight(net.core(1).transferLeader(2))).toBe(true)
    net.flush()
    expect(ofType(net.sent, "MsgTimeoutNow")).toHaveLength(1)
    expect(net.leader()).toBe(2)
    expect(net.core(2).term).toBe(2)
    expect(net.core(1).role).toBe("Follower")
  })

  it("transfers to a lagging follower after catching it up", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    net.isolate(3)
    for (let i = 0; i < 5; i++) net.propose(1, `x${i}`)
    net.heal()
    net.core(1).transferLeader(3)
    net.flush()
    expect(net.leader()).toBe(3)
    net.propose(3, "from-3")
    for (const id of all(net)) expect(net.node(id).state).toEqual(["x0", "x1", "x2", "x3", "x4", "from-3"])
  })

  it("rejects proposals and duplicate requests while in progress, and aborts after an election timeout", () => {
    const net = new Network({ voters: [1, 2, 3], core: { electionTick: 10 } })
    elect(net, 1)
    net.isolate(3)
    net.propose(1, "x")
    expect(Either.isRight(net.core(1).transferLeader(3))).toBe(true)
    expect(leftTag(net.core(1).propose(enc("y")))).toBe("LeadershipTransferInProgress")
    expect(leftTag(net.core(1).transferLeader(3))).toBe("LeadershipTransferInProgress")
    for (let i = 0; i < 10; i++) net.tickAll(1)
    expect(net.leader()).toBe(1)
    expect(net.core(1).status().leadTransferee).toBeNull()
    expect(Either.isRight(net.core(1).propose(enc("y")))).toBe(true)
  })

  it("works with check-quorum leases (the transfer flag bypasses them)", () => {
    const net = new Network({ voters: [1, 2, 3], core: { checkQuorum: true, preVote: true } })
    elect(net, 1)
    net.tickAll(2)
    net.core(1).transferLeader(2)
    net.flush()
    expect(net.leader()).toBe(2)
  })

  it("a follower forwards the request to the leader", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    expect(Either.isRight(net.core(3).transferLeader(3))).toBe(true)
    net.flush()
    expect(net.leader()).toBe(3)
  })

  it("refuses a learner as transferee", () => {
    const net = new Network({ voters: [1, 2], learners: [3] })
    elect(net, 1)
    expect(leftTag(net.core(1).transferLeader(3))).toBe("ProposalDropped")
  })
})

describe("membership changes through learners", () => {
  it("adds a learner, catches it up, promotes it, then removes a voter", () => {
    const net = new Network({ voters: [1, 2, 3], spare: [4] })
    elect(net, 1)
    net.propose(1, ["a", "b"])
    const add = net.core(1).proposeConfChange({ type: "AddLearner", nodeId: 4 })
    expect(Either.isRight(add)).toBe(true)
    // a second change while the first is pending is refused
    const second = net.core(1).proposeConfChange({ type: "PromoteLearner", nodeId: 4 })
    expect(leftTag(second)).toBe("ConfigChangeInProgress")
    net.flush()
    net.tickAll(2)
    expect(net.core(1).confState()).toEqual({ voters: [1, 2, 3], learners: [4] })
    expect(net.core(4).confState()).toEqual({ voters: [1, 2, 3], learners: [4] })
    expect(net.node(4).state).toEqual(["a", "b"])

    // a learner never campaigns and its ack does not count for commit
    net.isolate(2)
    net.isolate(3)
    for (let i = 0; i < 50; i++) net.tick(4)
    expect(net.core(4).role).toBe("Follower")
    expect(net.core(4).term).toBe(1)
    net.core(1).propose(enc("not-yet"))
    net.flush()
    expect(net.core(4).lastIndex).toBe(net.core(1).lastIndex)
    expect(net.node(1).state).toEqual(["a", "b"])
    net.heal()
    net.tickAll(2)
    expect(net.node(1).state).toEqual(["a", "b", "not-yet"])

    // promote 4
    Either.getOrThrow(net.core(1).proposeConfChange({ type: "PromoteLearner", nodeId: 4 }))
    net.flush()
    net.tickAll(1)
    expect(net.core(1).confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] })
    // with 4 voters a quorum is 3: 1 and 4 alone cannot commit
    net.isolate(2)
    net.isolate(3)
    net.core(1).propose(enc("needs-3"))
    net.flush()
    expect(net.node(1).state).not.toContain("needs-3")
    net.heal()
    net.tickAll(2)
    expect(net.node(4).state).toContain("needs-3")

    // remove 3
    Either.getOrThrow(net.core(1).proposeConfChange({ type: "RemoveNode", nodeId: 3 }))
    net.flush()
    net.tickAll(1)
    expect(net.core(1).confState()).toEqual({ voters: [1, 2, 4], learners: [] })
    expect(net.core(1).status().progress.has(3)).toBe(false)
    net.isolate(3)
    net.propose(1, "without-3")
    expect(net.node(4).state.at(-1)).toBe("without-3")
    expect(net.node(2).state.at(-1)).toBe("without-3")
  })

  it("a new leader refuses conf changes until earlier entries are applied", () => {
    const s = solo(1, [1, 2, 3])
    s.core.campaign()
    s.core.step({ type: "MsgVoteResp", ...hdr(2, 1, 1), reject: false })
    // the no-op at index 1 is not applied yet
    expect(leftTag(s.core.proposeConfChange({ type: "AddLearner", nodeId: 4 }))).toBe("ConfigChangeInProgress")
  })

  it("rejects invalid changes", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    net.tickAll(1)
    expect(leftTag(net.core(1).proposeConfChange({ type: "PromoteLearner", nodeId: 9 }))).toBe("ProposalDropped")
    expect(leftTag(net.core(1).proposeConfChange({ type: "RemoveNode", nodeId: 9 }))).toBe("ProposalDropped")
    expect(leftTag(net.core(1).proposeConfChange({ type: "AddVoter", nodeId: 2 }))).toBe("ProposalDropped")
    expect(leftTag(net.core(2).proposeConfChange({ type: "AddLearner", nodeId: 9 }))).toBe("NotLeader")
  })

  it("a leader that removes itself steps down and the rest elect a new leader", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    net.tickAll(1)
    Either.getOrThrow(net.core(1).proposeConfChange({ type: "RemoveNode", nodeId: 1 }))
    net.flush()
    expect(net.core(1).role).toBe("Follower")
    expect(net.core(2).confState().voters).toEqual([2, 3])
    net.isolate(1)
    net.tickAll(40)
    const l = net.leader()
    expect(l === 2 || l === 3).toBe(true)
    net.propose(l!, "after")
    expect(net.node(2).state).toEqual(["after"])
  })
})

describe("ReadIndex", () => {
  it("the leader confirms leadership with a heartbeat round before answering", () => {
    const s = solo(1, [1, 2, 3])
    s.core.campaign()
    s.core.step({ type: "MsgVoteResp", ...hdr(2, 1, 1), reject: false })
    s.msgs()
    s.core.step({ type: "MsgAppResp", ...hdr(2, 1, 1), index: 1, reject: false, rejectHint: 0, logTerm: 0 })
    s.msgs()
    expect(s.core.committed).toBe(1)
    s.core.readIndex("r1")
    const rd = s.ready()
    expect(rd.readStates).toEqual([])
    const hbs = ofType(rd.messages, "MsgHeartbeat")
    expect(hbs).toHaveLength(2)
    const ctx = hbs[0]!.context
    expect(ctx).toBeGreaterThan(0)
    s.core.step({ type: "MsgHeartbeatResp", ...hdr(3, 1, 1), context: ctx })
    expect(s.ready().readStates).toEqual([{ index: 1, context: "r1" }])
  })

  it("reads on an isolated leader never complete", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    net.isolate(1)
    net.core(1).readIndex("stale?")
    net.tickAll(5)
    expect(net.node(1).readStates).toEqual([])
  })

  it("a follower's read is forwarded and answered with the leader's commit index", () => {
    const net = new Network({ voters: [1, 2, 3] })
    elect(net, 1)
    net.propose(1, ["a", "b"])
    Either.getOrThrow(net.core(3).readIndex("f1"))
    net.flush()
    expect(net.node(3).readStates).toEqual([{ index: 3, context: "f1" }])
  })

  it("a new leader answers only after committing an entry of its term", () => {
    const net = new Network({ voters: [1, 2, 3] })
    net.dropType("MsgApp")
    net.campaign(1)
    net.core(1).readIndex("early")
    net.flush()
    expect(net.node(1).readStates).toEqual([])
    net.allowType("MsgApp")
    net.tickAll(2)
    expect(net.node(1).readStates).toEqual([{ index: 1, context: "early" }])
  })

  it("LeaseBased reads answer at once (opt-in)", () => {
    const net = new Network({ voters: [1, 2, 3], core: { readOnlyOption: "LeaseBased", checkQuorum: true } })
    elect(net, 1)
    const before = net.sent.length
    net.core(1).readIndex("lease")
    net.processReady(1)
    expect(net.node(1).readStates).toEqual([{ index: 1, context: "lease" }])
    expect(net.sent.slice(before).filter((m: Message) => m.type === "MsgHeartbeat")).toHaveLength(0)
  })

  it("without a known leader a read fails with NotLeader", () => {
    const s = solo(1, [1, 2, 3])
    expect(leftTag(s.core.readIndex("x"))).toBe("NotLeader")
  })
})
