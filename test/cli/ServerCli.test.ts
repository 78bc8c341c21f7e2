/**
 * `chronik-server [flags] standalone [flags]`: the flags of `standalone`
 * may come before its name too.
 */
import { describe, expect, it } from "vitest"
import { withFlagsAfterSubcommand } from "../../src/cli/ServerCli.js"

describe("withFlagsAfterSubcommand", () => {
  it("moves flags written before `standalone` after it", () => {
    expect(withFlagsAfterSubcommand(["--kafka-port", "9093", "--data-dir=/tmp/x", "standalone", "--wal-fsync", "never"])).toEqual([
      "standalone",
      "--kafka-port",
      "9093",
      "--data-dir=/tmp/x",
      "--wal-fsync",
      "never"
    ])
  })

  it("reads a flag's value as a value, even when it is the word standalone", () => {
    expect(withFlagsAfterSubcommand(["--data-dir", "standalone", "standalone"])).toEqual(["standalone", "--data-dir", "standalone"])
  })

  it("knows every flag of standalone by its kebab-case name", () => {
    for (const flag of ["--node-id", "--advertised-host", "--wal-journal-file-bytes", "--log-retention-check-interval-ms", "--memory-tier-bytes", "--wal-async-writes"]) {
      expect(withFlagsAfterSubcommand([flag, "1", "standalone"])[0]).toBe("standalone")
    }
  })

  it("leaves everything else to the parser", () => {
    for (const args of [
      ["standalone", "--kafka-port", "9093"],
      ["--help"],
      ["--version"],
      ["--no-such-flag", "1", "standalone"],
      ["groups", "describe", "g", "--bootstrap", "127.0.0.1:9092"],
      ["--kafka-port", "9093"]
    ]) {
      expect(withFlagsAfterSubcommand(args)).toEqual(args)
    }
  })
})
