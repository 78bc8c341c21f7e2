/**
 * Runs one micro-benchmark module's exported `run()` in its own process so that
 * bench/run.ts can bound it with a timeout (the micro-benchmarks are synchronous).
 *
 *   npx tsx bench/micro-child.ts <module path relative to bench/> [--quick]
 *
 * Prints one JSON line: { ok: true, result } | { ok: false, skipped?: true, error }.
 */
import { readFileSync } from "node:fs"
import { pathToFileURL } from "node:url"
import { resolve } from "node:path"

const [moduleArg, ...rest] = process.argv.slice(2)
const quick = rest.includes("--quick")

const main = async () => {
  if (moduleArg === undefined) throw new Error("usage: micro-child.ts <module>")
  // Do not import a module without run(): its top level may start a benchmark (or create files).
  const source = readFileSync(resolve(import.meta.dirname, moduleArg), "utf8")
  if (!/export\s+(const|let|async\s+function|function)\s+run\b|export\s*\{[^}]*\brun\b/.test(source)) {
    process.stdout.write(JSON.stringify({ ok: false, skipped: true, error: `${moduleArg} does not export run()` }) + "\n")
    return
  }
  const mod = (await import(pathToFileURL(resolve(import.meta.dirname, moduleArg)).href)) as { run?: unknown }
  if (typeof mod.run !== "function") {
    process.stdout.write(JSON.stringify({ ok: false, skipped: true, error: `${moduleArg} does not export run()` }) + "\n")
    return
  }
  // codec-records.ts takes { msPerCase }; other modules may take { quick } or nothing.
  const options = { msPerCase: quick ? 150 : 600, quick, seconds: quick ? 1 : 3 }
  const result: unknown = await (mod.run as (o: unknown) => unknown)(options)
  process.stdout.write(JSON.stringify({ ok: true, result }) + "\n")
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stdout.write(JSON.stringify({ ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }) + "\n")
    process.exit(1)
  }
)
