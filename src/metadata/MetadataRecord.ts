/**
 * The records of the metadata log. Every change to cluster metadata is one
 * of these, appended to the MetadataLog and then applied to MetadataState by
 * the pure `apply` function, so replaying the log rebuilds the state exactly
 * (standalone: from the local journal; clustered: from the `__meta` Raft group).
 * They are JSON-safe (int64 values as decimal strings).
 */
export type MetadataRecord =
  | { readonly type: "ClusterCreated"; readonly clusterId: string }
  | {
      readonly type: "TopicCreated"
      readonly name: string
      readonly topicId: string
      /** replicas[partition] = node ids, the first being the preferred leader. */
      readonly replicas: ReadonlyArray<ReadonlyArray<number>>
      readonly configs: Readonly<Record<string, string>>
    }
  | { readonly type: "PartitionsCreated"; readonly name: string; readonly replicas: ReadonlyArray<ReadonlyArray<number>> }
  | { readonly type: "TopicDeleted"; readonly name: string; readonly topicId: string }
  | {
      readonly type: "TopicConfigsChanged"
      readonly name: string
      /** The topic's full set of overrides after the change. */
      readonly configs: Readonly<Record<string, string>>
    }
  | { readonly type: "ProducerIdsAllocated"; readonly nextProducerId: string }

export const encodeRecord = (r: MetadataRecord): Buffer => Buffer.from(JSON.stringify(r), "utf8")

export const decodeRecord = (b: Uint8Array): MetadataRecord => JSON.parse(Buffer.from(b).toString("utf8")) as MetadataRecord
