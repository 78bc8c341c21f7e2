#!/usr/bin/env node
/**
 * The `chronik-server` executable. libuv's thread pool (4 threads unless
 * `UV_THREADPOOL_SIZE` says otherwise) runs the log's group-commit
 * fdatasyncs; with more partitions than threads, a pass's syncs queue
 * behind each other instead of overlapping their I/O. The pool is
 * created on its first use and sized from the environment then, and an ES
 * module entry is itself read through the pool, so this CommonJS file sets
 * the size first and then loads the real entry (`main.ts`).
 */
const DEFAULT_THREAD_POOL_SIZE = "16"

// a size the user set (non-empty) is kept
process.env["UV_THREADPOOL_SIZE"] ||= DEFAULT_THREAD_POOL_SIZE

import("./main.js").catch((error: unknown) => {
  console.error("chronik-server: cannot load the server:", error)
  process.exit(1)
})
