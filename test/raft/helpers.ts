/** Single-core helpers: drive one RaftCore by hand and inspect what it emits. */
import { MemoryStorage, RaftCore, seededRandom } from "../../src/raft/core/index.js"
import type { Entry, Message, NodeId, Ready } from "../../src/raft/core/index.js"
import type { CoreOptions } from "./network.js"
import { enc } from "./network.js"

export const G = "g"

export interface Solo {
  readonly core: RaftCore
  readonly storage: MemoryStorage
  /** Process the pending Ready: persist, advance; returns it. */
  ready(): Ready
  /** Process all pending Readies and return their messages. */
  msgs(): Array<Message>
}

export const solo = (
  id: NodeId,
  voters: ReadonlyArray<NodeId>,
  opts: CoreOptions & { storage?: MemoryStorage; seed?: number } = {}
): Solo => {
  const { storage: given, seed, ...rest } = opts
  const storage = given ?? MemoryStorage.make(voters)
  const core = new RaftCore({
    checkQuorum: false,
    preVote: false,
    ...rest,
    group: G,
    id,
    storage,
    random: seededRandom(seed ?? id)
  })
  const ready = (): Ready => {
    const rd = core.ready()
    if (rd.snapshot !== null) storage.applySnapshot(rd.snapshot)
    storage.append(rd.entries)
    if (rd.hardState !== null) storage.setHardState(rd.hardState)
    core.advance(rd)
    return rd
  }
  const msgs = (): Array<Message> => {
    const out: Array<Message> = []
    while (core.hasReady()) out.push(...ready().messages)
    return out
  }
  return { core, storage, ready, msgs }
}

export const entry = (index: number, term: number, data = ""): Entry => ({ index, term, type: "Normal", data: enc(data) })

/** A header for a hand-built message to `to` in group G. */
export const hdr = (from: NodeId, to: NodeId, term: number) => ({ group: G, from, to, term })

export const ofType = <T extends Message["type"]>(ms: ReadonlyArray<Message>, t: T): Array<Extract<Message, { type: T }>> =>
  ms.filter((m): m is Extract<Message, { type: T }> => m.type === t)
