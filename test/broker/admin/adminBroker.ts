/**
 * The in-process broker for the admin handler tests, with `request` failing
 * loudly when the broker sends no response (a handler defect closes the
 * connection instead of answering).
 */
import type * as BrokerConfig from "../../../src/config/BrokerConfig.js"
import type { ApiKey, RequestInputTypes, ResponseTypes } from "../../../src/protocol/messages.js"
import { encodeBatch } from "../../../src/protocol/recordBatch.js"
import { type InProcessBroker, startInProcessBroker } from "../../support/inProcessBroker.js"

export interface AdminBroker extends Omit<InProcessBroker, "request"> {
  readonly request: <K extends ApiKey>(apiKey: K, apiVersion: number, body: RequestInputTypes[K]) => Promise<ResponseTypes[K]>
}

export const startAdminBroker = async (overrides: Partial<BrokerConfig.BrokerConfigInput> = {}): Promise<AdminBroker> => {
  const broker = await startInProcessBroker(overrides)
  return {
    ...broker,
    request: async (apiKey, apiVersion, body) => {
      const response = await broker.request(apiKey, apiVersion, body)
      if (response === null) throw new Error(`no response (closed: ${broker.closedConnections.join("; ")})`)
      return response
    }
  }
}

/** A record batch of `count` small records. */
export const batch = (count: number) =>
  encodeBatch({ records: Array.from({ length: count }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`) })) })
