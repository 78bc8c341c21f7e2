/**
 * RaftKvNode's client protocol under pipelining: many requests written on
 * one connection without waiting come back in request order, and the puts of
 * one event-loop turn share a Raft entry (node-side batching,
 * `BatchingKvStateMachine`). Plus the batch state machine on its own.
 */
import * as net from "node:net"
import { afterAll, describe, expect, it } from "vitest"
import { BatchingKvStateMachine, encodeKvBatch } from "../../layers/RaftKvNode.js"
import type { Entry } from "../../src/raft/core/types.js"
import { encodeKvCommand } from "../../src/raft/KvStateMachine.js"
import { ProcessCluster, type Reply, request, sleep } from "./cluster.js"

const entry = (index: number, data: Uint8Array): Entry => ({ index, term: 1, type: "Normal", data })

describe("BatchingKvStateMachine", () => {
  it("applies plain and batch entries in order, snapshots and restores", () => {
    const sm = new BatchingKvStateMachine()
    expect(sm.apply(entry(1, encodeKvCommand({ op: "put", key: "a", value: "1" })))).toEqual({
      ok: true,
      previous: null,
      index: 1
    })
    const results = sm.apply(
      entry(
        2,
        encodeKvBatch([
          { op: "put", key: "a", value: "2" },
          { op: "cas", key: "a", expected: "1", value: "x" },
          { op: "cas", key: "a", expected: "2", value: "3" },
          { op: "put", key: "b", value: "4" }
        ])
      )
    )
    expect(results).toEqual([
      { ok: true, previous: "1", index: 2 },
      { ok: false, previous: "2", index: 2 },
      { ok: true, previous: "2", index: 2 },
      { ok: true, previous: null, index: 2 }
    ])
    expect(sm.get("a")).toBe("3")
    const copy = new BatchingKvStateMachine()
    copy.restore(sm.snapshot())
    expect(copy.get("a")).toBe("3")
    expect(copy.get("b")).toBe("4")
    expect(copy.inner.appliedIndex).toBe(2)
  })
})

describe("RaftKvNode pipelined client connection, 3 processes", () => {
  let cluster: ProcessCluster | undefined
  afterAll(async () => {
    await cluster?.close()
  })

  it(
    "300 pipelined puts + a get + a bad request: replies in order, puts batched into fewer entries",
    async () => {
      const c = (cluster = await ProcessCluster.make({ size: 3, electionTimeoutMs: 1000, heartbeatMs: 100 }))
      await Promise.all([1, 2, 3].map((id) => c.start(id)))
      let leader: number | undefined
      const deadline = Date.now() + 30_000
      while (leader === undefined) {
        if (Date.now() > deadline) throw new Error("no leader")
        for (const id of [1, 2, 3]) {
          const s = await c.status(id)
          if (s?.role === "Leader") leader = s.id
        }
        if (leader === undefined) await sleep(100)
      }

      const N = 300
      const lines: Array<string> = []
      for (let i = 0; i < N; i++) lines.push(JSON.stringify({ op: "put", key: `k${i % 50}`, value: `v${i}` }))
      lines.push(JSON.stringify({ op: "get", key: "k49" }))
      lines.push("not json")
      const replies = await new Promise<Array<Reply>>((resolve, reject) => {
        const socket = net.connect(c.node(leader!).clientPort, "127.0.0.1")
        const timer = setTimeout(() => {
          socket.destroy()
          reject(new Error("pipelined replies timed out"))
        }, 20_000)
        let buf = ""
        const out: Array<Reply> = []
        socket.on("connect", () => socket.write(lines.join("\n") + "\n"))
        socket.on("error", reject)
        socket.on("data", (d: Buffer) => {
          buf += d.toString("utf8")
          let nl: number
          while ((nl = buf.indexOf("\n")) >= 0) {
            out.push(JSON.parse(buf.slice(0, nl)) as Reply)
            buf = buf.slice(nl + 1)
          }
          if (out.length === lines.length) {
            clearTimeout(timer)
            socket.destroy()
            resolve(out)
          }
        })
      })

      // Replies in request order: each put's `previous` is the value of the previous put to its key.
      for (let i = 0; i < N; i++) {
        const r = replies[i]!
        expect(r.ok, JSON.stringify(r)).toBe(true)
        const res = r.result as { index: number; previous: string | null }
        expect(res.previous).toBe(i < 50 ? null : `v${i - 50}`)
      }
      expect(replies[N]).toEqual({ ok: true, result: `v${N - 1}` })
      expect(replies[N + 1]!.ok).toBe(false)
      expect(replies[N + 1]!.error).toBe("BadRequest")

      const indexes = replies.slice(0, N).map((r) => (r.result as { index: number }).index)
      for (let i = 1; i < N; i++) expect(indexes[i]!).toBeGreaterThanOrEqual(indexes[i - 1]!)
      const entries = new Set(indexes).size
      console.log(`[raft-tcp] ${N} pipelined puts in ${entries} Raft entries`)
      expect(entries).toBeLessThan(N)

      // Every node applies the same state (the batch entries replicate like any other).
      const last = indexes[N - 1]!
      for (const id of [1, 2, 3]) {
        const until = Date.now() + 10_000
        for (;;) {
          const s = await c.status(id)
          if (s !== undefined && s.appliedIndex >= last) break
          if (Date.now() > until) throw new Error(`node ${id} did not apply index ${last}`)
          await sleep(50)
        }
      }
      const r = await request(c.node(leader).clientPort, { op: "get", key: "k0" })
      expect(r).toEqual({ ok: true, result: `v${N - 50}` })
    },
    60_000
  )
})
