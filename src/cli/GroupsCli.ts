/**
 * `chronik-server groups describe <group> --bootstrap host:port`: a consumer
 * group's committed offsets, the partitions' log end offsets (high
 * watermarks) and the lag between them, like Kafka's
 * `kafka-consumer-groups.sh --describe`. It talks to the broker over the
 * Kafka protocol, so it works against any running node.
 */
import { Args, Command, Options } from "@effect/cli"
import { Config, Console, Effect } from "effect"
import { type KafkaWireClient, connect } from "../client/KafkaWireClient.js"
import { errorName } from "../protocol/errorCodes.js"

export interface LagRow {
  readonly topic: string
  readonly partition: number
  /** -1 when the group has no committed offset for the partition. */
  readonly committedOffset: bigint
  readonly logEndOffset: bigint
  readonly lag: bigint
}

export interface GroupLag {
  readonly group: string
  readonly state: string
  readonly members: number
  readonly rows: ReadonlyArray<LagRow>
}

/** Reads a group's state, committed offsets and lag per partition. */
export const describeGroupLag = async (client: KafkaWireClient, group: string): Promise<GroupLag> => {
  const described = await client.request(15, 5, { groups: [group], includeAuthorizedOperations: false })
  const g = described.groups[0]!
  if (g.errorCode !== 0) throw new Error(`DescribeGroups ${group}: ${errorName(g.errorCode)}`)
  const fetched = await client.request(9, 7, { groupId: group, topics: null, requireStable: false })
  if (fetched.errorCode !== 0) throw new Error(`OffsetFetch ${group}: ${errorName(fetched.errorCode)}`)
  const committed = fetched.topics.flatMap((t) =>
    t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, committedOffset: p.committedOffset }))
  )
  const topics = [...new Set(committed.map((c) => c.topic))]
  const ends = new Map<string, bigint>()
  if (topics.length > 0) {
    const listed = await client.request(2, 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: topics.map((name) => ({
        name,
        partitions: committed.filter((c) => c.topic === name).map((c) => ({ partitionIndex: c.partition, timestamp: -1n }))
      }))
    })
    for (const t of listed.topics) for (const p of t.partitions) ends.set(`${t.name}\u0000${p.partitionIndex}`, p.offset)
  }
  const rows = committed
    .map((c) => {
      const logEndOffset = ends.get(`${c.topic}\u0000${c.partition}`) ?? -1n
      const lag = c.committedOffset < 0n || logEndOffset < 0n ? logEndOffset : logEndOffset - c.committedOffset
      return { ...c, logEndOffset, lag: lag < 0n ? 0n : lag }
    })
    .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
  return { group, state: g.groupState, members: g.members.length, rows }
}

export const formatGroupLag = (lag: GroupLag): string => {
  const header = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"]
  const lines = lag.rows.map((r) => [
    lag.group,
    r.topic,
    String(r.partition),
    r.committedOffset < 0n ? "-" : String(r.committedOffset),
    String(r.logEndOffset),
    String(r.lag)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const fmt = (cols: ReadonlyArray<string>) => cols.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  return [`Group ${lag.group}: state ${lag.state}, ${lag.members} member(s)`, "", fmt(header), ...lines.map(fmt)].join("\n")
}

const parseBootstrap = (s: string): { host: string; port: number } => {
  const i = s.lastIndexOf(":")
  const port = Number(s.slice(i + 1))
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`--bootstrap must be host:port, got "${s}"`)
  }
  return { host: s.slice(0, i), port }
}

const describe = Command.make(
  "describe",
  {
    group: Args.text({ name: "group" }).pipe(Args.withDescription("The consumer group id")),
    bootstrap: Options.text("bootstrap").pipe(
      Options.withFallbackConfig(Config.string("bootstrap")),
      Options.withDefault("127.0.0.1:9092"),
      Options.withDescription("A broker to ask, host:port [env CHRONIK_BOOTSTRAP, default 127.0.0.1:9092]")
    )
  },
  ({ bootstrap, group }) =>
    Effect.tryPromise({
      try: async () => {
        const { host, port } = parseBootstrap(bootstrap)
        const client = await connect(port, host, "chronik-cli")
        try {
          return formatGroupLag(await describeGroupLag(client, group))
        } finally {
          client.close()
        }
      },
      catch: (e) => new Error(e instanceof Error ? e.message : String(e))
    }).pipe(Effect.flatMap(Console.log))
).pipe(Command.withDescription("Show a consumer group's committed offsets and lag per partition"))

export const groupsCommand = Command.make("groups").pipe(
  Command.withDescription("Inspect consumer groups"),
  Command.withSubcommands([describe])
)
