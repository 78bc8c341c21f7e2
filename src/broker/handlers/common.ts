/** Small helpers shared by the API handlers. */
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { PartitionReplica } from "../../replication/PartitionReplica.js"

/** Kafka's check of a client's current leader epoch (KIP-320): -1 means "not given". */
export const checkLeaderEpoch = (replica: PartitionReplica, currentLeaderEpoch: number): number => {
  if (currentLeaderEpoch < 0 || currentLeaderEpoch === replica.leaderEpoch) return ErrorCode.NONE
  return currentLeaderEpoch < replica.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH
}

/** The error code carried by a typed failure, or UNKNOWN_SERVER_ERROR. */
export const errorCodeOf = (e: unknown): number =>
  typeof e === "object" && e !== null && "errorCode" in e && typeof e.errorCode === "number"
    ? e.errorCode
    : ErrorCode.UNKNOWN_SERVER_ERROR

export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** Kafka's AclOperation codes; with no authorizer every operation is allowed. */
const acl = { READ: 3, WRITE: 4, CREATE: 5, DELETE: 6, ALTER: 7, DESCRIBE: 8, CLUSTER_ACTION: 9, DESCRIBE_CONFIGS: 10, ALTER_CONFIGS: 11, IDEMPOTENT_WRITE: 12 }
const bits = (...ops: Array<number>) => ops.reduce((a, op) => a | (1 << op), 0)

export const TOPIC_AUTHORIZED_OPERATIONS = bits(
  acl.READ, acl.WRITE, acl.CREATE, acl.DELETE, acl.ALTER, acl.DESCRIBE, acl.DESCRIBE_CONFIGS, acl.ALTER_CONFIGS
)
export const CLUSTER_AUTHORIZED_OPERATIONS = bits(
  acl.CREATE, acl.ALTER, acl.DESCRIBE, acl.CLUSTER_ACTION, acl.DESCRIBE_CONFIGS, acl.ALTER_CONFIGS, acl.IDEMPOTENT_WRITE
)
/** "Not requested" in Kafka responses. */
export const AUTHORIZED_OPERATIONS_OMITTED = -2147483648
