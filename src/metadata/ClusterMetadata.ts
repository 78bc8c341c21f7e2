/**
 * ClusterMetadata: topics, partitions, topic configs and producer-id blocks.
 *
 * Every change is validated, appended to the MetadataLog (durable), applied
 * to the in-memory MetadataState, and then handed to the registered
 * listeners (ReplicaManager creates and deletes partition logs there) before
 * the call returns, so a client that created a topic can produce to it at
 * once. Writers are serialised; readers take the current state without
 * locking (`current` is a plain synchronous read for the hot path).
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { BrokerConfig } from "../config/BrokerConfig.js"
import {
  InvalidPartitions,
  InvalidReplicaAssignment,
  InvalidReplicationFactor,
  InvalidTopic,
  InvalidTopicConfig,
  type MetadataLogError,
  type TopicError,
  TopicAlreadyExists,
  UnknownTopic
} from "./errors.js"
import { METADATA_LOG_ID, MetadataLog } from "./MetadataLog.js"
import type { MetadataRecord } from "./MetadataRecord.js"
import * as State from "./MetadataState.js"
import { validateTopicConfig } from "./TopicConfig.js"

export interface CreateTopicRequest {
  readonly name: string
  /** -1: the broker default. */
  readonly numPartitions: number
  /** -1: the broker default (1). */
  readonly replicationFactor: number
  /** Explicit replica assignment; when given, numPartitions and replicationFactor must be -1. */
  readonly assignments?: ReadonlyArray<{ readonly partition: number; readonly brokerIds: ReadonlyArray<number> }>
  readonly configs: ReadonlyArray<{ readonly name: string; readonly value: string | null }>
  readonly validateOnly: boolean
}

export type ConfigOp =
  | { readonly op: "set"; readonly name: string; readonly value: string }
  | { readonly op: "delete"; readonly name: string }

/** Called inside the writer lock after each applied change, before the change's caller resumes. */
export type MetadataListener = (prev: State.MetadataState, next: State.MetadataState) => Effect.Effect<void>

export interface ClusterMetadataShape {
  /** The current state; a synchronous read, safe on the hot path. */
  readonly current: () => State.MetadataState
  readonly clusterId: string
  /** Node ids of the brokers in the cluster (standalone: this node). */
  readonly brokers: ReadonlyArray<number>
  readonly createTopic: (req: CreateTopicRequest) => Effect.Effect<State.TopicMeta, CreateTopicError>
  readonly deleteTopic: (name: string) => Effect.Effect<State.TopicMeta, UnknownTopic | MetadataLogError>
  readonly createPartitions: (
    name: string,
    totalCount: number,
    assignments: ReadonlyArray<ReadonlyArray<number>> | null,
    validateOnly: boolean
  ) => Effect.Effect<State.TopicMeta, UnknownTopic | InvalidPartitions | InvalidReplicaAssignment | MetadataLogError>
  /** Applies config changes. `replace` drops every override not set by `ops` (AlterConfigs semantics). */
  readonly alterTopicConfigs: (
    name: string,
    ops: ReadonlyArray<ConfigOp>,
    replace: boolean,
    validateOnly: boolean
  ) => Effect.Effect<State.TopicMeta, UnknownTopic | InvalidTopicConfig | MetadataLogError>
  /**
   * Incremental config change whose ops are computed from the topic's current
   * overrides inside the writer lock (IncrementalAlterConfigs APPEND/SUBTRACT
   * read-modify-write without a lost-update race).
   */
  readonly alterTopicConfigsWith: (
    name: string,
    compute: (current: ReadonlyMap<string, string>) => ReadonlyArray<ConfigOp>,
    validateOnly: boolean
  ) => Effect.Effect<State.TopicMeta, UnknownTopic | InvalidTopicConfig | MetadataLogError>
  /** Reserves `count` producer ids durably and returns the first. */
  readonly allocateProducerIds: (count: number) => Effect.Effect<bigint, MetadataLogError>
  readonly addListener: (listener: MetadataListener) => Effect.Effect<void>
}

export type CreateTopicError = Exclude<TopicError, UnknownTopic>

export class ClusterMetadata extends Context.Tag("chronik/ClusterMetadata")<ClusterMetadata, ClusterMetadataShape>() {}

const legalTopicChars = /^[a-zA-Z0-9._-]+$/
export const maxTopicNameLength = 249

/** Kafka's topic name rules; returns a message for INVALID_TOPIC_EXCEPTION, or undefined. */
export const checkTopicName = (name: string): string | undefined => {
  if (name.length === 0) return "Topic name is illegal, it can't be empty"
  if (name === "." || name === "..") return "Topic name cannot be \".\" or \"..\""
  if (name === METADATA_LOG_ID) return `Topic name ${name} is reserved for the cluster metadata log`
  if (name.length > maxTopicNameLength) {
    return `Topic name is illegal, it can't be longer than ${maxTopicNameLength} characters, topic name: ${name}`
  }
  if (!legalTopicChars.test(name)) {
    return `Topic name ${name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'`
  }
  return undefined
}

const reservedUuids = new Set(["AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAQ"])

/** A random Kafka UUID in its canonical URL-safe base64 form. */
export const randomUuid = (): string => {
  for (;;) {
    const id = randomBytes(16).toString("base64url")
    if (!reservedUuids.has(id)) return id
  }
}

export interface ClusterMetadataOptions {
  readonly brokers: ReadonlyArray<number>
  readonly defaultPartitions: number
  readonly defaultReplicationFactor: number
}

export const make = (options: ClusterMetadataOptions) =>
  Effect.gen(function* () {
    const log = yield* MetadataLog
    const replayed = yield* log.readAll
    let state = State.replay(replayed)
    if (state.clusterId === undefined) {
      const record: MetadataRecord = { type: "ClusterCreated", clusterId: randomUuid() }
      yield* log.append([record])
      state = State.apply(state, record)
    }
    const clusterId = state.clusterId!
    const listeners: Array<MetadataListener> = []
    const lock = yield* Effect.makeSemaphore(1)
    let nextAssignmentStart = 0

    /** Appends, applies and notifies listeners; the caller holds the lock. */
    const commit = (records: ReadonlyArray<MetadataRecord>) =>
      Effect.gen(function* () {
        yield* log.append(records)
        const prev = state
        let next = state
        for (const r of records) next = State.apply(next, r)
        state = next
        for (const l of listeners) yield* l(prev, next)
      })

    const assign = (count: number, rf: number): Array<Array<number>> => {
      const out: Array<Array<number>> = []
      for (let p = 0; p < count; p++) {
        const replicas: Array<number> = []
        for (let r = 0; r < rf; r++) replicas.push(options.brokers[(nextAssignmentStart + p + r) % options.brokers.length]!)
        out.push(replicas)
      }
      nextAssignmentStart = (nextAssignmentStart + count) % options.brokers.length
      return out
    }

    const checkAssignment = (replicas: ReadonlyArray<number>): string | undefined => {
      if (replicas.length === 0) return "Replica assignment must not be empty"
      if (new Set(replicas).size !== replicas.length) return `Duplicate brokers in replica assignment: ${replicas.join(",")}`
      const unknown = replicas.filter((b) => !options.brokers.includes(b))
      return unknown.length > 0 ? `Unknown broker ids in replica assignment: ${unknown.join(",")}` : undefined
    }

    const validateConfigs = (configs: ReadonlyArray<{ name: string; value: string | null }>) => {
      for (const c of configs) {
        const problem = validateTopicConfig(c.name, c.value)
        if (problem !== undefined) return Effect.fail(new InvalidTopicConfig({ reason: problem }))
      }
      return Effect.void
    }

    const createTopic = (req: CreateTopicRequest) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const nameProblem = checkTopicName(req.name)
          if (nameProblem !== undefined) return yield* new InvalidTopic({ topic: req.name, reason: nameProblem })
          if (state.topics.has(req.name)) return yield* new TopicAlreadyExists({ topic: req.name })
          yield* validateConfigs(req.configs)
          let replicas: Array<Array<number>>
          if (req.assignments !== undefined && req.assignments.length > 0) {
            if (req.numPartitions !== -1 || req.replicationFactor !== -1) {
              return yield* new InvalidReplicaAssignment({
                reason: "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
              })
            }
            const sorted = [...req.assignments].sort((a, b) => a.partition - b.partition)
            if (sorted.some((a, i) => a.partition !== i)) {
              return yield* new InvalidReplicaAssignment({ reason: "Partitions must be consecutive and start at 0" })
            }
            const rf = sorted[0]!.brokerIds.length
            for (const a of sorted) {
              const problem = checkAssignment(a.brokerIds)
              if (problem !== undefined) return yield* new InvalidReplicaAssignment({ reason: problem })
              if (a.brokerIds.length !== rf) {
                return yield* new InvalidReplicaAssignment({ reason: "All partitions must have the same replication factor" })
              }
            }
            replicas = sorted.map((a) => [...a.brokerIds])
          } else {
            const count = req.numPartitions === -1 ? options.defaultPartitions : req.numPartitions
            const rf = req.replicationFactor === -1 ? options.defaultReplicationFactor : req.replicationFactor
            if (count <= 0) return yield* new InvalidPartitions({ reason: "Number of partitions must be larger than 0." })
            if (rf <= 0) return yield* new InvalidReplicationFactor({ reason: "Replication factor must be larger than 0." })
            if (rf > options.brokers.length) {
              return yield* new InvalidReplicationFactor({
                reason: `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${options.brokers.length} broker(s) are registered.`
              })
            }
            replicas = assign(count, rf)
          }
          const configs: Record<string, string> = {}
          for (const c of req.configs) if (c.value !== null) configs[c.name] = c.value
          const topicId = randomUuid()
          const meta: State.TopicMeta = { name: req.name, topicId, replicas, configs: new Map(Object.entries(configs)) }
          if (req.validateOnly) return meta
          yield* commit([{ type: "TopicCreated", name: req.name, topicId, replicas, configs }])
          return state.topics.get(req.name)!
        })
      )

    const deleteTopic = (name: string) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const t = state.topics.get(name)
          if (t === undefined) return yield* new UnknownTopic({ topic: name })
          yield* commit([{ type: "TopicDeleted", name, topicId: t.topicId }])
          return t
        })
      )

    const createPartitions = (
      name: string,
      totalCount: number,
      assignments: ReadonlyArray<ReadonlyArray<number>> | null,
      validateOnly: boolean
    ) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const t = state.topics.get(name)
          if (t === undefined) return yield* new UnknownTopic({ topic: name })
          const current = t.replicas.length
          if (totalCount < current) {
            return yield* new InvalidPartitions({
              reason: `Topic currently has ${current} partitions, which is higher than the requested ${totalCount}.`
            })
          }
          if (totalCount === current) {
            return yield* new InvalidPartitions({ reason: `Topic already has ${current} partitions.` })
          }
          const added = totalCount - current
          let replicas: Array<Array<number>>
          if (assignments !== null) {
            if (assignments.length !== added) {
              return yield* new InvalidReplicaAssignment({
                reason: `Increasing the number of partitions by ${added} but ${assignments.length} assignments provided.`
              })
            }
            for (const a of assignments) {
              const problem = checkAssignment(a)
              if (problem !== undefined) return yield* new InvalidReplicaAssignment({ reason: problem })
            }
            replicas = assignments.map((a) => [...a])
          } else {
            replicas = assign(added, t.replicas[0]!.length)
          }
          if (validateOnly) return { ...t, replicas: [...t.replicas, ...replicas] }
          yield* commit([{ type: "PartitionsCreated", name, replicas }])
          return state.topics.get(name)!
        })
      )

    /** Applies the ops `compute` derives from the current overrides, inside the writer lock. */
    const alter = (
      name: string,
      compute: (current: ReadonlyMap<string, string>) => ReadonlyArray<ConfigOp>,
      replace: boolean,
      validateOnly: boolean
    ) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const t = state.topics.get(name)
          if (t === undefined) return yield* new UnknownTopic({ topic: name })
          const ops = compute(t.configs)
          yield* validateConfigs(ops.map((o) => ({ name: o.name, value: o.op === "set" ? o.value : null })))
          const configs = new Map(replace ? [] : t.configs)
          for (const o of ops) {
            if (o.op === "set") configs.set(o.name, o.value)
            else configs.delete(o.name)
          }
          if (validateOnly) return { ...t, configs }
          yield* commit([{ type: "TopicConfigsChanged", name, configs: Object.fromEntries(configs) }])
          return state.topics.get(name)!
        })
      )

    const allocateProducerIds = (count: number) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const first = state.nextProducerId
          yield* commit([{ type: "ProducerIdsAllocated", nextProducerId: String(first + BigInt(count)) }])
          return first
        })
      )

    return ClusterMetadata.of({
      current: () => state,
      clusterId,
      brokers: options.brokers,
      createTopic,
      deleteTopic,
      createPartitions,
      alterTopicConfigs: (name, ops, replace, validateOnly) => alter(name, () => ops, replace, validateOnly),
      alterTopicConfigsWith: (name, compute, validateOnly) => alter(name, compute, false, validateOnly),
      allocateProducerIds,
      addListener: (l) => Effect.sync(() => void listeners.push(l))
    })
  })

/** ClusterMetadata for a single node, from BrokerConfig. */
export const layer: Layer.Layer<ClusterMetadata, MetadataLogError, MetadataLog | BrokerConfig> = Layer.effect(
  ClusterMetadata,
  Effect.flatMap(BrokerConfig, (config) =>
    make({ brokers: [config.nodeId], defaultPartitions: config.numPartitions, defaultReplicationFactor: 1 })
  )
)
