/**
 * DescribeCluster (key 60), v0-v1.
 *
 * This node is the only broker (with its advertised host and port) and also
 * the controller, so controllerId is our node id. With
 * `includeClusterAuthorizedOperations` the cluster operations are reported
 * (no authorizer: every cluster operation is allowed), otherwise Kafka's
 * "omitted" value.
 *
 * v1 (KIP-919) has `endpointType`: 1 (brokers) is served. As Kafka's
 * AuthHelper answers on a broker listener: 2 (controllers) is
 * MISMATCHED_ENDPOINT_TYPE (114) "The request was sent to an endpoint of type
 * BROKER, but we wanted an endpoint of type CONTROLLER", any other value
 * UNSUPPORTED_ENDPOINT_TYPE (115) "Unsupported endpoint type N"; at v0 both
 * would be INVALID_REQUEST (v0 cannot carry another type). An error response
 * has an empty cluster id and no brokers.
 */
import { Effect } from "effect"
import { BrokerConfig } from "../../config/BrokerConfig.js"
import { ClusterMetadata } from "../../metadata/ClusterMetadata.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { DescribeClusterRequest, DescribeClusterResponseInput } from "../../protocol/messages.js"
import { defineHandler } from "../RequestRouter.js"
import { AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_AUTHORIZED_OPERATIONS } from "./common.js"


const ENDPOINT_BROKERS = 1
const ENDPOINT_CONTROLLERS = 2

export const make = Effect.gen(function* () {
  const config = yield* BrokerConfig
  const metadata = yield* ClusterMetadata

  return defineHandler<DescribeClusterRequest, DescribeClusterResponseInput>({
    apiKey: 60,
    name: "DescribeCluster",
    minVersion: 0,
    maxVersion: 1,
    handle: (ctx, req) =>
      Effect.sync((): DescribeClusterResponseInput => {
        const v = ctx.apiVersion
        const endpointType = v >= 1 ? req.endpointType : ENDPOINT_BROKERS
        if (endpointType !== ENDPOINT_BROKERS) {
          const known = endpointType === ENDPOINT_CONTROLLERS
          return {
            throttleTimeMs: 0,
            errorCode: v === 0 ? ErrorCode.INVALID_REQUEST : known ? ErrorCode.MISMATCHED_ENDPOINT_TYPE : ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            errorMessage: known
              ? "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
              : `Unsupported endpoint type ${endpointType}`,
            endpointType: ENDPOINT_BROKERS,
            clusterId: "",
            controllerId: -1,
            brokers: [],
            clusterAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED
          }
        }
        return {
          throttleTimeMs: 0,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          endpointType: ENDPOINT_BROKERS,
          clusterId: metadata.clusterId,
          controllerId: config.nodeId,
          brokers: metadata.brokers.map((brokerId) => ({
            brokerId,
            host: config.advertisedHost,
            port: config.advertisedPort,
            rack: null
          })),
          clusterAuthorizedOperations: req.includeClusterAuthorizedOperations
            ? CLUSTER_AUTHORIZED_OPERATIONS
            : AUTHORIZED_OPERATIONS_OMITTED
        }
      })
  })
})
