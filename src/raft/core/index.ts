/**
 * Public surface of the pure Raft core. No Node imports, no I/O.
 * See docs/raft.md.
 */
export * from "./types.js"
export * from "./random.js"
export * from "./storage.js"
export { RaftCore } from "./raft.js"
export type { ProgressStatus, Proposed, RaftConfig, RaftStatus, ReadOnlyOption } from "./raft.js"
export type { ProgressState } from "./progress.js"
