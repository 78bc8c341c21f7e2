/**
 * The cluster metadata as a value: topics by name and by id, partition
 * replica sets, topic config overrides, and the producer id allocator.
 * `apply` is pure; services hold the current state in a Ref.
 */
import type { MetadataRecord } from "./MetadataRecord.js"

export interface TopicMeta {
  readonly name: string
  readonly topicId: string
  readonly replicas: ReadonlyArray<ReadonlyArray<number>>
  readonly configs: ReadonlyMap<string, string>
}

export interface MetadataState {
  readonly clusterId: string | undefined
  readonly topics: ReadonlyMap<string, TopicMeta>
  readonly topicsById: ReadonlyMap<string, TopicMeta>
  readonly nextProducerId: bigint
  /** Count of applied records, used to detect change. */
  readonly version: number
}

export const empty: MetadataState = {
  clusterId: undefined,
  topics: new Map(),
  topicsById: new Map(),
  nextProducerId: 0n,
  version: 0
}

const withTopic = (s: MetadataState, t: TopicMeta): MetadataState => {
  const topics = new Map(s.topics)
  const topicsById = new Map(s.topicsById)
  topics.set(t.name, t)
  topicsById.set(t.topicId, t)
  return { ...s, topics, topicsById }
}

export const apply = (s: MetadataState, r: MetadataRecord): MetadataState => {
  const next = applyRecord(s, r)
  return { ...next, version: s.version + 1 }
}

const applyRecord = (s: MetadataState, r: MetadataRecord): MetadataState => {
  switch (r.type) {
    case "ClusterCreated":
      return s.clusterId === undefined ? { ...s, clusterId: r.clusterId } : s
    case "TopicCreated":
      return withTopic(s, {
        name: r.name,
        topicId: r.topicId,
        replicas: r.replicas,
        configs: new Map(Object.entries(r.configs))
      })
    case "PartitionsCreated": {
      const t = s.topics.get(r.name)
      return t === undefined ? s : withTopic(s, { ...t, replicas: [...t.replicas, ...r.replicas] })
    }
    case "TopicDeleted": {
      const t = s.topics.get(r.name)
      if (t === undefined || t.topicId !== r.topicId) return s
      const topics = new Map(s.topics)
      const topicsById = new Map(s.topicsById)
      topics.delete(r.name)
      topicsById.delete(r.topicId)
      return { ...s, topics, topicsById }
    }
    case "TopicConfigsChanged": {
      const t = s.topics.get(r.name)
      return t === undefined ? s : withTopic(s, { ...t, configs: new Map(Object.entries(r.configs)) })
    }
    case "ProducerIdsAllocated": {
      const n = BigInt(r.nextProducerId)
      return n > s.nextProducerId ? { ...s, nextProducerId: n } : s
    }
  }
}

export const replay = (records: Iterable<MetadataRecord>): MetadataState => {
  let s = empty
  for (const r of records) s = apply(s, r)
  return s
}
