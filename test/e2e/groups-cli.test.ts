/** Consumer lag through `chronik-server groups describe`, against a broker process. */
import { spawn } from "node:child_process"
import { resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { describeGroupLag } from "../../src/cli/GroupsCli.js"
import { encodeBatch } from "../../src/protocol/recordBatch.js"
import { type BrokerProcess, startBroker } from "../support/broker.js"
import { connectRaw } from "../support/rawClient.js"

const root = resolve(import.meta.dirname, "../..")

describe("groups describe (consumer lag)", () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    broker = await startBroker()
    const client = await connectRaw(broker.port)
    await client.request(3, 12, { topics: [{ name: "lagged" }], allowAutoTopicCreation: true })
    await client.request(0, 9, {
      acks: -1,
      timeoutMs: 5000,
      topicData: [
        {
          name: "lagged",
          partitionData: [{ index: 0, records: encodeBatch({ records: Array.from({ length: 10 }, (_, i) => ({ key: null, value: Buffer.from(`m${i}`) })) }) }]
        }
      ]
    })
    // A simple consumer (no generation, no member) commits offset 4.
    const commit = await client.request(8, 8, {
      groupId: "lag-group",
      generationIdOrMemberEpoch: -1,
      memberId: "",
      topics: [{ name: "lagged", partitions: [{ partitionIndex: 0, committedOffset: 4n, committedMetadata: null }] }]
    })
    expect(commit.topics[0]!.partitions[0]!.errorCode).toBe(0)
    client.close()
  })
  afterAll(async () => {
    await broker.cleanup()
  })

  it("computes committed offset, log end offset and lag per partition", async () => {
    const client = await connectRaw(broker.port)
    const lag = await describeGroupLag(client, "lag-group")
    client.close()
    expect(lag.state).toBe("Empty")
    expect(lag.rows).toEqual([{ topic: "lagged", partition: 0, committedOffset: 4n, logEndOffset: 10n, lag: 6n }])
  })

  it("prints the lag table from the command line", async () => {
    const out = await new Promise<{ code: number | null; text: string }>((res) => {
      const p = spawn(process.execPath, ["--import", "tsx", "layers/main.ts", "groups", "describe", "lag-group", "--bootstrap", broker.bootstrap], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"]
      })
      let text = ""
      p.stdout.on("data", (d: Buffer) => (text += d.toString()))
      p.stderr.on("data", (d: Buffer) => (text += d.toString()))
      p.once("exit", (code) => res({ code, text }))
    })
    expect(out.code).toBe(0)
    expect(out.text).toContain("LOG-END-OFFSET")
    expect(out.text).toMatch(/lag-group\s+lagged\s+0\s+4\s+10\s+6/)
  })
})
