import { MassActionKind, type MassAction } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ContactStatus } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument } from "@chatcrm/grpc";
import { checkNames, checkText } from "../domain/limits";
import type { ContactDoc } from "../store/contact-document";
import { assignOperator, modifySet, setPinned, setRead, setStatus } from "../usecases/contact-commands";
import type { Change } from "../usecases/contact-writer";

/**
 * How a mass action changes one contact: `decide` is the same pure decision the single-contact command makes (for
 * the event, the timeline and "does it change anything"), `update` the atomic MongoDB update that applies it
 * without reading-and-rewriting, so concurrent writes to other fields or values are never lost. Every update is
 * idempotent: applying a batch again after a crash leaves the contact as applying it once did.
 */
export interface ContactPlan {
  decide: (doc: ContactDoc) => Change | null;
  update: (change: Change) => Record<string, unknown>;
}

export type ActionPlan = { type: "update"; plan: ContactPlan } | { type: "start-flow"; flowId: string; blockId: string } | { type: "delete"; blacklist: boolean };

export function planAction(action: MassAction | undefined): ActionPlan {
  if (!action) throw invalidArgument("action", "is missing");
  const values = () => checkNames("action.values", action.values, { required: true });
  const set = (change: Change) => ({ $set: change.set, $inc: { rev: 1 } });
  const each = (key: "tags" | "lists", op: "$addToSet" | "$pullAll", v: string[]) => () => ({ [op]: { [key]: op === "$addToSet" ? { $each: v } : v }, $inc: { rev: 1 } });
  switch (action.kind) {
    case MassActionKind.ADD_TAGS:
    case MassActionKind.REMOVE_TAGS:
    case MassActionKind.ADD_LISTS:
    case MassActionKind.REMOVE_LISTS: {
      const key = action.kind === MassActionKind.ADD_TAGS || action.kind === MassActionKind.REMOVE_TAGS ? "tags" : "lists";
      const adding = action.kind === MassActionKind.ADD_TAGS || action.kind === MassActionKind.ADD_LISTS;
      const v = values();
      return { type: "update", plan: { decide: modifySet(key, adding ? v : [], adding ? [] : v), update: each(key, adding ? "$addToSet" : "$pullAll", v) } };
    }
    case MassActionKind.MARK_READ:
      return { type: "update", plan: { decide: setRead(true), update: set } };
    case MassActionKind.MARK_UNREAD: {
      const decide = setRead(false);
      // Contacts who never wrote are skipped, as the single command refuses them (seed 003).
      return { type: "update", plan: { decide: (doc) => (doc.lastInboundAt ? decide(doc) : null), update: () => ({ $set: { unread: true }, $max: { unreadCount: 1 }, $inc: { rev: 1 } }) } };
    }
    case MassActionKind.BLOCK:
      return { type: "update", plan: { decide: setStatus(ContactStatus.BLOCKED), update: set } };
    case MassActionKind.UNBLOCK: {
      const decide = setStatus(ContactStatus.SUBSCRIBED);
      return { type: "update", plan: { decide: (doc) => (doc.status === "blocked" ? decide(doc) : null), update: set } };
    }
    case MassActionKind.PIN:
    case MassActionKind.UNPIN:
      return { type: "update", plan: { decide: setPinned(action.kind === MassActionKind.PIN), update: set } };
    case MassActionKind.ASSIGN_OPERATOR:
      return { type: "update", plan: { decide: assignOperator(action.operatorId), update: set } };
    case MassActionKind.START_FLOW: {
      const flowId = checkText("action.flow_id", action.flowId.trim());
      if (!flowId) throw invalidArgument("action.flow_id", "name the flow to start");
      return { type: "start-flow", flowId, blockId: checkText("action.block_id", action.blockId.trim()) };
    }
    case MassActionKind.DELETE:
      return { type: "delete", blacklist: action.blacklist };
    default:
      throw invalidArgument("action.kind", "choose what the mass action does");
  }
}
