/**
 * Typed storage errors. They cross service boundaries (Produce/Fetch
 * handlers, Raft driver), so they are `Schema.TaggedError`s. The synchronous
 * core throws them; the Effect wrappers surface them in the error channel.
 */
import { Schema } from "effect"

/** A frame failed its length/CRC/key checks where the data should be durable. */
export class WalCorrupt extends Schema.TaggedError<WalCorrupt>()("WalCorrupt", {
  log: Schema.String,
  file: Schema.String,
  position: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `corrupt log ${this.log}: ${this.file} at ${this.position}: ${this.reason}`
  }
}

/** An I/O failure (ENOSPC, EIO, EBADF...). Acknowledged data is never corrupted by one. */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  log: Schema.String,
  op: Schema.String,
  code: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `storage error on ${this.log} during ${this.op} (${this.code}): ${this.reason}`
  }
}

export class LogNotFound extends Schema.TaggedError<LogNotFound>()("LogNotFound", {
  log: Schema.String
}) {
  override get message(): string {
    return `log not found: ${this.log}`
  }
}

/** Requested key is below the log start or above the log end. */
export class OffsetOutOfRange extends Schema.TaggedError<OffsetOutOfRange>()("OffsetOutOfRange", {
  log: Schema.String,
  key: Schema.Number,
  logStartKey: Schema.Number,
  nextKey: Schema.Number
}) {
  override get message(): string {
    return `key ${this.key} out of range [${this.logStartKey}, ${this.nextKey}] in ${this.log}`
  }
}

/** An append whose keys do not follow the log end, or are malformed. */
export class InvalidAppend extends Schema.TaggedError<InvalidAppend>()("InvalidAppend", {
  log: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid append to ${this.log}: ${this.reason}`
  }
}

export type LogError = WalCorrupt | StorageError | OffsetOutOfRange | InvalidAppend

/** Map a thrown node/fs error (or anything) to a StorageError, keeping typed errors as-is. */
export const toStorageError = (log: string, op: string, e: unknown): LogError => {
  if (
    e instanceof WalCorrupt || e instanceof StorageError || e instanceof OffsetOutOfRange ||
    e instanceof InvalidAppend
  ) return e
  const err = e as { code?: unknown; message?: unknown }
  return new StorageError({
    log,
    op,
    code: typeof err?.code === "string" ? err.code : "EUNKNOWN",
    reason: typeof err?.message === "string" ? err.message : String(e)
  })
}
