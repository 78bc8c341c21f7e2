/**
 * The command line: help text, clear errors with a non-zero exit for bad
 * configuration (flags and CHRONIK_* variables), and a graceful SIGTERM.
 */
import { spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { startBroker } from "../support/broker.js"
import { connectRaw, readPartition } from "../support/rawClient.js"
import { encodeBatch } from "../../src/protocol/recordBatch.js"

const root = resolve(import.meta.dirname, "../..")
/** Runs the CLI to completion without blocking the test worker. */
const run = (args: Array<string>, env: Record<string, string> = {}, entry = "layers/main.ts") =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((res) => {
    const p = spawn(process.execPath, ["--import", "tsx", entry, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => p.kill("SIGKILL"), 60_000)
    p.once("exit", (status) => {
      clearTimeout(timer)
      res({ status, stdout, stderr })
    })
  })

describe("chronik-server CLI", () => {
  it("documents every flag with its environment variable and default", async () => {
    const r = await run(["standalone", "--help"])
    expect(r.status).toBe(0)
    for (const flag of ["--kafka-port", "--data-dir", "--advertised-host", "--wal-fsync", "--log-retention-ms"]) {
      expect(r.stdout).toContain(flag)
    }
    expect(r.stdout).toContain("CHRONIK_KAFKA_PORT")
    expect(r.stdout).toContain("CHRONIK_WAL_FSYNC")
  })

  // The chronik-server executable (launch.cts sizes libuv's thread pool, then loads main.ts).
  it("runs the server entry through the chronik-server launcher, exit codes included", async () => {
    const version = await run(["--version"], {}, "layers/launch.cts")
    expect(version.status).toBe(0)
    expect(version.stdout.trim()).toBe("0.1.0")
    const bad = await run(["standalone", "--kafka-host", "0.0.0.0"], {}, "layers/launch.cts")
    expect(bad.status).not.toBe(0)
    expect(bad.stdout + bad.stderr).toContain("advertised")
  })

  // Every validation rule is unit-tested in test/config; these check the process-level behaviour.
  it.each([
    [["standalone", "--kafka-host", "0.0.0.0"], {}, "advertised"],
    [["standalone"], { CHRONIK_KAFKA_PORT: "not-a-number" }, "KAFKA_PORT"],
    // flags before the subcommand are read as its flags
    [["--kafka-host", "0.0.0.0", "standalone"], {}, "advertised"],
    [["--kafka-port=not-a-number", "standalone"], {}, "not-a-number"]
  ] as const)("rejects bad config %j %j with a clear message and a non-zero exit", async (args, env, needle) => {
    const r = await run([...args], env)
    expect(r.status).not.toBe(0)
    const text = r.stdout + r.stderr
    expect(text).toContain(needle)
    expect(text).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/) // no stack trace
  })

  it("serves with its flags written before `standalone`, as `chronik-server [flags] standalone`", async () => {
    const broker = await startBroker({ flagsFirst: true })
    try {
      const client = await connectRaw(broker.port)
      await client.request(3, 12, { topics: [{ name: "flags-first" }], allowAutoTopicCreation: true })
      const r = await client.request(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: "flags-first", partitionData: [{ index: 0, records: encodeBatch({ records: [{ key: null, value: Buffer.from("v") }] }) }] }]
      })
      expect(r.responses[0]!.partitionResponses[0]!.errorCode).toBe(0)
      expect((await readPartition(client, "flags-first")).map((x) => x.value)).toEqual(["v"])
      client.close()
      // the partition's files are under the --data-dir given before the subcommand
      expect(readdirSync(broker.dataDir, { recursive: true }).some((f) => String(f).includes("flags-first"))).toBe(true)
      expect(await broker.stop()).toBe(0)
    } finally {
      await broker.cleanup()
    }
  })

  it.each([
    ["synchronous segment writes (default)", []],
    ["segment writes on the libuv pool (--wal-async-writes true)", ["--wal-async-writes", "true"]]
  ])("shuts down gracefully on SIGTERM with its data intact: %s", async (_name, args) => {
    const broker = await startBroker({ args })
    try {
      const client = await connectRaw(broker.port)
      await client.request(3, 12, { topics: [{ name: "graceful" }], allowAutoTopicCreation: true })
      const values = Array.from({ length: 200 }, (_, i) => `kept-${i}`)
      for (let i = 0; i < values.length; i += 20) {
        const r = await client.request(0, 9, {
          acks: 1,
          timeoutMs: 5000,
          topicData: [{
            name: "graceful",
            partitionData: [{ index: 0, records: encodeBatch({ records: values.slice(i, i + 20).map((v) => ({ key: null, value: Buffer.from(v.padEnd(2000, ".")) })) }) }]
          }]
        })
        expect(r.responses[0]!.partitionResponses[0]!.errorCode).toBe(0)
      }
      client.close()
      const code = await broker.stop()
      expect(code).toBe(0)
      await broker.restart()
      const again = await connectRaw(broker.port)
      expect((await readPartition(again, "graceful")).map((r) => r.value!.replace(/\.+$/, ""))).toEqual(values)
      again.close()
    } finally {
      await broker.cleanup()
    }
  })
})
