/** A topic config for replica tests: tiny segments (many rolls), no retention, no timestamp bounds. */
import type { EffectiveTopicConfig } from "../../src/metadata/TopicConfig.js"

export const smallSegmentTopicConfig: EffectiveTopicConfig = {
  retentionMs: -1,
  retentionBytes: -1,
  segmentBytes: 2048,
  segmentMs: 3_600_000,
  maxMessageBytes: 1 << 20,
  logAppendTime: false,
  minInsyncReplicas: 1,
  timestampBeforeMaxMs: Number.MAX_SAFE_INTEGER,
  timestampAfterMaxMs: Number.MAX_SAFE_INTEGER
}
