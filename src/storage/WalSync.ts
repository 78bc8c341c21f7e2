/**
 * Node-wide group commit. Logs mark themselves dirty after a write; one pass
 * collects every dirty log, runs one fdatasync per dirty file (in parallel on
 * the libuv pool), then advances each log's durable key and wakes its
 * waiters. While a pass is in flight new appends accumulate, so under load
 * one fsync covers many appends across many partitions.
 *
 * Up to `MAX_PASSES_IN_FLIGHT` passes overlap: a write that just missed a
 * running pass starts the next one at once instead of waiting for the
 * running one to finish (it would otherwise wait for one and a half sync
 * times on average). Overlapping is safe: fdatasync waits for the writeback
 * already in flight on its file, and a log's durable marks only move
 * forward (`beginSync` takes its targets when the pass starts).
 *
 * A request is urgent (someone's reply waits for it: an acks=all produce, a
 * Raft log write that must be durable before it is answered) or background
 * (nobody's reply waits: the Raft commit of records written with acks=0/1,
 * which only moves the high watermark). Under `batch`, a background request
 * starts a pass after `backgroundDelayMs` unless a pass starts sooner, so that
 * acks=1 traffic does not sync once per append burst: fewer fdatasync calls
 * (each one takes kernel time from the cores the clients share) at the cost
 * of up to that delay before the records count as committed and reach
 * consumers.
 *
 * With a node `Journal` (docs/node-log.md), logs write their segments through
 * it and a pass fdatasyncs the journal files written since the previous pass
 * (usually one) instead of the segments; the logs' jobs then hold only the
 * rare files written outside the journal (sealed indexes, truncated tails,
 * new directories). A pass then completes its jobs only after every earlier
 * pass has completed its own: a later pass may sync only the next journal
 * file, and its records count only once the file before is durable too.
 */
import type { FileIO, Fd } from "./FileIO.js"
import type { Journal } from "./Journal.js"

export type FsyncPolicy =
  /** An append that needs durability waits for the next group fsync (default). */
  | { readonly _tag: "batch" }
  /** Dirty files are fsynced every `ms`; durability waiters wait for the next tick. */
  | { readonly _tag: "interval"; readonly ms: number }
  /** Never fsync on the append path (only on roll and close); waiters return at once. */
  | { readonly _tag: "never" }

export const FsyncPolicy = {
  batch: { _tag: "batch" } as FsyncPolicy,
  never: { _tag: "never" } as FsyncPolicy,
  interval: (ms: number): FsyncPolicy => ({ _tag: "interval", ms }),
  /** "batch" | "never" | "interval:<ms>" */
  parse: (s: string): FsyncPolicy | undefined => {
    const t = s.trim().toLowerCase()
    if (t === "batch") return FsyncPolicy.batch
    if (t === "never") return FsyncPolicy.never
    const m = /^interval:(\d+)$/.exec(t)
    if (m) return FsyncPolicy.interval(Math.max(1, Number(m[1])))
    return undefined
  },
  format: (p: FsyncPolicy): string => (p._tag === "interval" ? `interval:${p.ms}` : p._tag)
}

/** fdatasync `fds` in parallel, then fsync `dirs` (a new file's entry is durable only once its data is). */
export const syncFilesThenDirs = async (io: FileIO, fds: ReadonlyArray<Fd>, dirs: ReadonlyArray<string>): Promise<void> => {
  await Promise.all(fds.map((fd) => io.fdatasync(fd)))
  if (dirs.length > 0) await Promise.all(dirs.map((d) => io.fsyncDir(d)))
}

/** One log's share of a pass. */
export interface SyncJob {
  readonly fds: ReadonlyArray<Fd>
  readonly dirs: ReadonlyArray<string>
  complete(error: unknown): void
}

export interface Syncable {
  /** Snapshot what needs syncing now; undefined if nothing. */
  beginSync(): SyncJob | undefined
}

export interface WalSyncStats {
  passes: number
  fdatasyncs: number
  failures: number
}

/** Sync passes allowed in flight at once (see the module comment). */
const MAX_PASSES_IN_FLIGHT = 2

export class WalSync {
  private dirty = new Set<Syncable>()
  /** A pass is scheduled (setImmediate) and has not started yet. */
  private scheduled = false
  private inFlight = 0
  private again = false
  /** A background request arrived while the passes in flight were at the limit. */
  private againBackground = false
  /** The pending background pass, if one is waiting for its delay. */
  private backgroundTimer: ReturnType<typeof setTimeout> | undefined
  private timer: ReturnType<typeof setInterval> | undefined
  private passWaiters: Array<() => void> = []
  private closed = false
  /** Settles when the latest pass has completed its jobs. */
  private lastPass: Promise<void> = Promise.resolve()
  readonly stats: WalSyncStats = { passes: 0, fdatasyncs: 0, failures: 0 }

  /**
   * @param journal the node journal logs write through (only with a policy
   *   that syncs: batch or interval).
   * @param backgroundDelayMs how long a background request may wait for its pass (0: none).
   */
  constructor(
    readonly io: FileIO,
    readonly policy: FsyncPolicy,
    readonly journal?: Journal,
    readonly backgroundDelayMs: number = 0
  ) {
    if (journal !== undefined && policy._tag === "never") throw new Error("a journal needs a policy that syncs")
    if (policy._tag === "interval") {
      this.timer = setInterval(() => {
        if (this.dirty.size > 0) this.requestFlush()
      }, policy.ms)
      this.timer.unref?.()
    }
  }

  markDirty(log: Syncable): void {
    this.dirty.add(log)
  }

  /** Forget a log (closed/deleted); its pending job, if any, still completes. */
  remove(log: Syncable): void {
    this.dirty.delete(log)
  }

  /**
   * Ask for a pass soon (coalesces with a pass already requested; overlaps one
   * running). A `background` request lets the pass wait up to
   * `backgroundDelayMs` (see the module comment).
   */
  requestFlush(background = false): void {
    if (this.closed) return
    if (background && this.backgroundDelayMs > 0) return this.requestBackground()
    if (this.backgroundTimer !== undefined) {
      clearTimeout(this.backgroundTimer)
      this.backgroundTimer = undefined
    }
    if (this.scheduled || this.inFlight >= MAX_PASSES_IN_FLIGHT) {
      this.again = true
      return
    }
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      void this.pass()
    })
  }

  private requestBackground(): void {
    // a pass about to start, or a background one already waiting, covers it
    if (this.scheduled || this.backgroundTimer !== undefined) return
    if (this.inFlight >= MAX_PASSES_IN_FLIGHT) {
      this.againBackground = true
      return
    }
    this.backgroundTimer = setTimeout(() => {
      this.backgroundTimer = undefined
      this.requestFlush()
    }, this.backgroundDelayMs)
  }

  /** Run a pass that starts after this call, and resolve when it is done. */
  flush(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.passWaiters.push(resolve)
      this.requestFlush()
    })
  }

  /** Settles when the pass started last has completed (with a journal, passes complete in order). */
  idle(): Promise<void> {
    return this.lastPass
  }

  close(): void {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    if (this.backgroundTimer !== undefined) clearTimeout(this.backgroundTimer)
    this.backgroundTimer = undefined
  }

  private async pass(): Promise<void> {
    this.again = false
    this.againBackground = false
    // this pass takes every log dirty so far: a background pass waiting for its delay has nothing left
    if (this.backgroundTimer !== undefined) {
      clearTimeout(this.backgroundTimer)
      this.backgroundTimer = undefined
    }
    this.inFlight++
    const waiters = this.passWaiters
    this.passWaiters = []
    const logs = [...this.dirty]
    this.dirty.clear()
    const jobs: Array<SyncJob> = []
    for (const l of logs) {
      const j = l.beginSync()
      if (j) jobs.push(j)
    }
    const journal = this.journal
    // in the same turn as beginSync: the journal records of those jobs are in these files
    const targets = jobs.length > 0 && journal !== undefined ? journal.takeSyncTargets() : undefined
    const previous = journal === undefined ? undefined : this.lastPass
    let done!: () => void
    this.lastPass = new Promise<void>((resolve) => (done = resolve))
    try {
      if (jobs.length > 0) {
        this.stats.passes++
        const journalSync = targets === undefined ? undefined : this.syncFiles(targets.fds, targets.dirs)
        const results = await Promise.all([journalSync, ...jobs.map((j) => this.syncFiles(j.fds, j.dirs))])
        if (targets !== undefined) {
          journal!.released(targets.fds)
          if (results[0] !== undefined) journal!.fail(results[0])
        }
        await previous
        for (let i = 0; i < jobs.length; i++) jobs[i]!.complete(results[0] ?? results[i + 1])
      } else {
        await previous
      }
    } finally {
      this.inFlight--
      done()
    }
    for (const w of waiters) w()
    if (this.again || this.passWaiters.length > 0) this.requestFlush()
    else if (this.againBackground) this.requestFlush(true)
  }

  /** fdatasync `fds`, then fsync `dirs`; the error, if one failed. */
  private async syncFiles(fds: ReadonlyArray<Fd>, dirs: ReadonlyArray<string>): Promise<unknown> {
    try {
      await syncFilesThenDirs(this.io, fds, dirs)
      this.stats.fdatasyncs += fds.length
      return undefined
    } catch (e) {
      this.stats.failures++
      return e
    }
  }
}
