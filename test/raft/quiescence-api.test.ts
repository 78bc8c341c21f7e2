/**
 * The core's small API for drivers that quiesce idle groups (stop ticking
 * them): `quiescible(isLive)` and `resumeTicking(electionElapsed, recentActive?)`,
 * and the driver messages the core ignores.
 */
import { describe, expect, it } from "vitest"
import type { NodeId } from "../../src/raft/core/index.js"
import { isDriverMessage, messageTypes } from "../../src/raft/core/index.js"
import { hdr, ofType, solo } from "./helpers.js"
import { Network } from "./network.js"

const allLive = (): boolean => true

/** A 3-voter group with node 1 elected and everything delivered. */
const idleGroup = (electionTick = 10) => {
  const net = new Network({ voters: [1, 2, 3], core: { preVote: true, checkQuorum: true, electionTick } })
  net.campaign(1)
  expect(net.core(1).role).toBe("Leader")
  net.tickAll(1) // one heartbeat round: followers are recently active and know the commit
  return net
}

describe("RaftCore.quiescible", () => {
  it("is true only for a leader of a fully idle group", () => {
    const net = idleGroup()
    expect(net.core(1).quiescible(allLive)).toBe(true)
    expect(net.core(2).quiescible(allLive)).toBe(false) // followers never are
    // an uncommitted proposal
    net.core(1).propose(new TextEncoder().encode("x"))
    expect(net.core(1).quiescible(allLive)).toBe(false)
    net.flush()
    expect(net.core(1).quiescible(allLive)).toBe(true)
    // a ReadIndex round in progress
    net.core(1).readIndex("r1")
    expect(net.core(1).quiescible(allLive)).toBe(false)
    net.flush()
    expect(net.core(1).quiescible(allLive)).toBe(true)
  })

  it("is false while a follower lags, a transfer or a config change is pending, or before the no-op commits", () => {
    const net = idleGroup()
    net.cut(1, 3)
    net.propose(1, "only-on-2")
    expect(net.core(1).committed).toBe(net.core(1).lastIndex)
    expect(net.core(1).quiescible(allLive)).toBe(false) // 3 is behind
    // ... unless the driver says 3 is down: 1 and 2 are a caught-up quorum
    expect(net.core(1).quiescible((id) => id !== 3)).toBe(true)
    // but not without a live quorum
    expect(net.core(1).quiescible((id) => id === 1)).toBe(false)
    net.heal()
    net.tickAll(1)
    expect(net.core(1).quiescible(allLive)).toBe(true)
    // a leadership transfer to a lagging target is in progress
    net.cut(1, 3)
    net.propose(1, "again")
    net.core(1).transferLeader(3)
    expect(net.core(1).quiescible((id) => id !== 3)).toBe(false)
    net.heal()
    net.tickAll(3)
    // the transfer completed: 3 leads an idle group now
    expect(net.leader()).toBe(3)
    expect(net.core(1).quiescible(allLive)).toBe(false)
    expect(net.core(3).quiescible(allLive)).toBe(true)
    // a fresh leader whose no-op is not yet committed
    const s = solo(1, [1, 2, 3], { checkQuorum: true })
    s.core.campaign()
    s.msgs()
    s.core.step({ type: "MsgVoteResp", ...hdr(2, 1, 1), reject: false })
    s.msgs()
    expect(s.core.role).toBe("Leader")
    expect(s.core.committed).toBeLessThan(s.core.lastIndex)
    expect(s.core.quiescible(allLive)).toBe(false)
    // and a pending membership change
    s.core.step({ type: "MsgAppResp", ...hdr(2, 1, 1), index: 1, reject: false, rejectHint: 0, logTerm: 0 })
    s.core.step({ type: "MsgHeartbeatResp", ...hdr(2, 1, 1), context: 0 })
    s.core.step({ type: "MsgAppResp", ...hdr(3, 1, 1), index: 1, reject: false, rejectHint: 0, logTerm: 0 })
    s.core.step({ type: "MsgHeartbeatResp", ...hdr(3, 1, 1), context: 0 })
    s.msgs()
    expect(s.core.quiescible(allLive)).toBe(true)
    expect(s.core.proposeConfChange({ type: "AddLearner", nodeId: 4 })._tag).toBe("Right")
    s.msgs()
    expect(s.core.quiescible((id) => id !== 4)).toBe(false)
  })

  it("requires followers to be recently active (reset by check-quorum every election timeout)", () => {
    const net = idleGroup(10)
    // drop all heartbeat responses: after the next check-quorum boundary no follower is recently active
    net.dropType("MsgHeartbeatResp")
    for (let i = 0; i < 10; i++) net.tickAll(1)
    expect(net.core(1).role).toBe("Leader") // check-quorum passed on the old flags
    expect(net.core(1).quiescible(allLive)).toBe(false)
    net.allowType("MsgHeartbeatResp")
    net.tickAll(1)
    expect(net.core(1).quiescible(allLive)).toBe(true)
  })
})

describe("RaftCore.resumeTicking", () => {
  it("a follower resumed with electionElapsed 0 keeps its lease and waits a full randomized timeout", () => {
    const net = idleGroup(10)
    const f = net.core(2)
    // the driver stopped ticking 2 for a long time; resuming with 0 means "the leader is known alive"
    f.resumeTicking(0)
    net.isolate(1)
    // a pre-vote from 3 within the lease is ignored
    const mark = net.sent.length
    f.step({ type: "MsgPreVote", ...hdr(3, 2, f.term + 1), index: f.lastIndex, logTerm: f.log.term(f.lastIndex)!, transfer: false })
    net.processReady(2)
    expect(ofType(net.sent.slice(mark), "MsgPreVoteResp")).toHaveLength(0)
    // no campaign before electionTick ticks
    for (let i = 0; i < 9; i++) net.tick(2)
    expect(f.role).toBe("Follower")
  })

  it("a follower resumed with electionElapsed = electionTick has no lease and campaigns within one more timeout", () => {
    const net = idleGroup(10)
    const f = net.core(2)
    net.isolate(1)
    f.resumeTicking(10)
    // no lease: a pre-vote is answered (granted: 3's log is as up to date)
    const mark = net.sent.length
    f.step({ type: "MsgPreVote", ...hdr(3, 2, f.term + 1), index: f.lastIndex, logTerm: f.log.term(f.lastIndex)!, transfer: false })
    net.processReady(2)
    const resp = ofType(net.sent.slice(mark), "MsgPreVoteResp").filter((m) => m.from === 2 && m.to === 3)
    expect(resp).toHaveLength(1)
    expect(resp[0]!.reject).toBe(false)
    // the randomized timeout is in [10, 20): campaigning starts within 10 more ticks
    let ticks = 0
    while (f.role === "Follower" && ticks < 20) {
      net.tick(2)
      ticks++
    }
    expect(f.role).toBe("PreCandidate")
    expect(ticks).toBeLessThanOrEqual(10)
  })

  it("a leader resumed restarts check-quorum with the driver's view of its members", () => {
    const net = idleGroup(10)
    const l = net.core(1)
    net.isolate(1)
    // the driver knows both peers are down: the next check-quorum (one election timeout on) steps down
    l.resumeTicking(0, () => false)
    for (let i = 0; i < 9; i++) net.tick(1)
    expect(l.role).toBe("Leader")
    net.tick(1)
    expect(l.role).toBe("Follower")

    // peers live: no spurious step-down at the first check, even with no responses yet
    const net2 = idleGroup(10)
    const l2 = net2.core(1)
    l2.resumeTicking(0, (id: NodeId) => id === 2 || id === 3)
    net2.isolate(1)
    for (let i = 0; i < 10; i++) net2.tick(1)
    expect(l2.role).toBe("Leader")
    // ...but the check after that uses real responses only
    for (let i = 0; i < 10; i++) net2.tick(1)
    expect(l2.role).toBe("Follower")
  })
})

describe("driver messages", () => {
  it("have stable codes after the Raft messages and are ignored by the core", () => {
    expect(messageTypes.indexOf("MsgProp")).toBe(14)
    expect(messageTypes.slice(15)).toEqual(["MsgQuiesce", "MsgWake", "MsgLiveness"])
    const net = idleGroup()
    const f = net.core(2)
    const before = { term: f.term, leader: f.leader, commit: f.committed }
    const higher = f.term + 5
    for (const m of [
      { type: "MsgQuiesce" as const, ...hdr(1, 2, higher), index: 99, logTerm: 9 },
      { type: "MsgWake" as const, ...hdr(3, 2, higher) },
      { type: "MsgLiveness" as const, ...hdr(3, 2, higher), group: "g", epoch: 1 }
    ]) {
      expect(isDriverMessage(m)).toBe(true)
      f.step(m)
    }
    expect({ term: f.term, leader: f.leader, commit: f.committed }).toEqual(before)
    expect(f.hasReady()).toBe(false)
  })
})
