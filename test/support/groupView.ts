/** A consumer group's state and assignment as DescribeGroups (through a kafkajs Admin) reports them. */
import { type Admin, AssignerProtocol } from "kafkajs"

export interface GroupView {
  readonly state: string
  /** memberId -> partitions of `topic`, sorted */
  readonly assignments: Map<string, Array<number>>
}

export const describeGroup = async (admin: Admin, groupId: string, topic: string): Promise<GroupView> => {
  const { groups } = await admin.describeGroups([groupId])
  const g = groups[0]!
  const assignments = new Map<string, Array<number>>()
  for (const m of g.members) {
    const decoded = m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null
    assignments.set(m.memberId, [...(decoded?.assignment[topic] ?? [])].sort((a, b) => a - b))
  }
  return { state: g.state, assignments }
}
