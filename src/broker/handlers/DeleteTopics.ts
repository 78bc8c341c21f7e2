/**
 * DeleteTopics (key 20), v0-v6.
 *
 * Follows Kafka's ControllerApis.deleteTopics:
 * - v0-v5 name topics in `topicNames`; v6 in `topics`, each by name or by
 *   id (both given: INVALID_REQUEST "You may not specify both topic name and
 *   topic id."; neither: INVALID_REQUEST "Neither topic name nor id were
 *   specified.").
 * - A name or id given more than once: one INVALID_REQUEST result
 *   ("Duplicate topic name." / "Duplicate topic id.") and no deletion.
 * - An unknown name is UNKNOWN_TOPIC_OR_PARTITION, an unknown id
 *   UNKNOWN_TOPIC_ID; a name that maps to an id also given is INVALID_REQUEST.
 * - Deleting removes the topic from the metadata; the ReplicaManager's
 *   metadata listener closes and deletes its partition logs before the
 *   deletion returns, so the data is gone when the response is sent
 *   (timeoutMs has nothing to wait for).
 * - errorMessage is v5+, topicId v6+ (the encoder drops them below).
 */
import { Effect } from "effect"
import { ClusterMetadata } from "../../metadata/ClusterMetadata.js"
import { ErrorCode } from "../../protocol/errorCodes.js"
import type { DeleteTopicsRequest, DeleteTopicsResponseInput } from "../../protocol/messages.js"
import { defineHandler } from "../RequestRouter.js"
import { errorCodeOf, messageOf } from "./common.js"

type ResultOut = DeleteTopicsResponseInput["responses"][number]

const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"

const UNKNOWN_TOPIC_MESSAGE = "This server does not host this topic-partition."
const UNKNOWN_TOPIC_ID_MESSAGE = "This server does not host this topic ID."

export const make = Effect.gen(function* () {
  const metadata = yield* ClusterMetadata

  return defineHandler<DeleteTopicsRequest, DeleteTopicsResponseInput>({
    apiKey: 20,
    name: "DeleteTopics",
    minVersion: 0,
    maxVersion: 6,
    handle: (ctx, req) =>
      Effect.gen(function* () {
        const responses: Array<ResultOut> = []
        const append = (name: string | null, topicId: string, errorCode: number, errorMessage: string | null) =>
          responses.push({ name, topicId, errorCode, errorMessage })

        const names: Array<string> = []
        const dupNames = new Set<string>()
        const ids: Array<string> = []
        const dupIds = new Set<string>()
        const addName = (name: string) => {
          if (dupNames.has(name)) return
          const i = names.indexOf(name)
          if (i >= 0) {
            names.splice(i, 1)
            dupNames.add(name)
          } else names.push(name)
        }
        const addId = (id: string) => {
          if (dupIds.has(id)) return
          const i = ids.indexOf(id)
          if (i >= 0) {
            ids.splice(i, 1)
            dupIds.add(id)
          } else ids.push(id)
        }

        if (ctx.apiVersion < 6) for (const n of req.topicNames) addName(n)
        else {
          for (const t of req.topics) {
            if (t.name === null) {
              if (t.topicId === ZERO_UUID) append(null, ZERO_UUID, ErrorCode.INVALID_REQUEST, "Neither topic name nor id were specified.")
              else addId(t.topicId)
            } else if (t.topicId === ZERO_UUID) addName(t.name)
            else append(t.name, t.topicId, ErrorCode.INVALID_REQUEST, "You may not specify both topic name and topic id.")
          }
        }
        for (const n of dupNames) append(n, ZERO_UUID, ErrorCode.INVALID_REQUEST, "Duplicate topic name.")
        for (const id of dupIds) append(null, id, ErrorCode.INVALID_REQUEST, "Duplicate topic id.")

        // Resolve to (id -> name) pairs as Kafka does, then delete each once.
        const state = metadata.current()
        const toDelete = new Map<string, string>()
        for (const id of ids) {
          const t = state.topicsById.get(id)
          if (t === undefined) append(null, id, ErrorCode.UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_ID_MESSAGE)
          else toDelete.set(id, t.name)
        }
        for (const name of names) {
          const t = state.topics.get(name)
          if (t === undefined) {
            append(name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_MESSAGE)
          } else if (toDelete.has(t.topicId)) {
            toDelete.delete(t.topicId)
            append(name, t.topicId, ErrorCode.INVALID_REQUEST, "The provided topic name maps to an ID that was already supplied.")
          } else toDelete.set(t.topicId, name)
        }
        for (const [id, name] of toDelete) {
          const result = yield* Effect.either(metadata.deleteTopic(name))
          if (result._tag === "Right") {
            append(name, id, ErrorCode.NONE, null)
          } else if (result.left._tag === "UnknownTopic") {
            // Deleted concurrently since the lookup above.
            append(name, id, ErrorCode.UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_ID_MESSAGE)
          } else {
            append(name, id, errorCodeOf(result.left), messageOf(result.left))
          }
        }
        return { throttleTimeMs: 0, responses }
      })
  })
})
