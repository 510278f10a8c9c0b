import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { z } from "zod";
import { AnswerField, ContactStatus, type AddCommentRequest } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { failedPrecondition, invalidArgument } from "@chatcrm/grpc";
import { statusName } from "../domain/enums";
import { checkNames, checkText, checkVariableName, Limits } from "../domain/limits";
import { variableIndexFields, type ContactDoc } from "../store/contact-document";
import type { Change } from "./contact-writer";

// Each command is a pure decision: given the card as it is, what changes. contact-writer.ts applies it.

type Decide = (doc: ContactDoc) => Change | null;

/** Sets and unsets variables; names are kept exactly as given (any language, spaces and dots included). */
export function setVariables(set: Record<string, string>, unset: string[]): Decide {
  const entries = Object.entries(set).map(([name, value], i) => {
    if (!name.trim()) throw invalidArgument(`set[${i}]`, "a variable name is empty");
    checkVariableName(`set["${name.slice(0, 40)}"]`, name);
    checkText(`set["${name.slice(0, 40)}"]`, value, Limits.variableValue);
    return [name, value] as const;
  });
  unset.forEach((name, i) => {
    if (!name.trim()) throw invalidArgument(`unset[${i}]`, "a variable name is empty");
    checkVariableName(`unset[${i}]`, name);
    if (name in set) throw invalidArgument(`unset[${i}]`, `"${name.slice(0, 40)}" is both set and unset`);
  });
  if (entries.length + unset.length === 0) throw invalidArgument("set", "name at least one variable to set or unset");
  return (doc) => {
    const variables = (doc.variables ?? []).map((v) => ({ ...v }));
    const timeline: Change["timeline"] = [];
    for (const [name, value] of entries) {
      const existing = variables.find((v) => v.name === name);
      if (existing?.value === value) continue;
      timeline.push({ kind: "variable_set", subject: name, oldValue: existing?.value ?? "", newValue: value });
      if (existing) existing.value = value;
      else variables.push({ name, value });
    }
    for (const name of unset) {
      const at = variables.findIndex((v) => v.name === name);
      if (at < 0) continue;
      timeline.push({ kind: "variable_unset", subject: name, oldValue: variables[at]!.value, newValue: "" });
      variables.splice(at, 1);
    }
    if (variables.length > Limits.variablesPerContact) throw invalidArgument("set", `a contact can hold at most ${Limits.variablesPerContact} variables`);
    if (timeline.length === 0) return null;
    return { set: { variables, ...variableIndexFields(variables) }, changedFields: ["variables"], timeline };
  };
}

const emailSchema = z.email();

/** A data-collection answer saved to the card; every pass overwrites the last one (seed 000). */
export function setAnswer(field: AnswerField, raw: string, defaultRegion: string): Decide {
  const value = raw.trim();
  if (!value) throw invalidArgument("value", "is empty");
  switch (field) {
    case AnswerField.PHONE: {
      const region = defaultRegion.trim().toUpperCase();
      if (region && !/^[A-Z]{2}$/.test(region)) throw invalidArgument("default_region", `"${defaultRegion}" is not a two-letter country code`);
      const phone = parsePhoneNumberFromString(checkText("value", value, 50), (region || undefined) as CountryCode | undefined);
      if (!phone?.isValid()) throw invalidArgument("value", `"${value}" is not a valid phone number${region ? "" : " (numbers without a country code need default_region)"}`);
      return setField("phone", phone.number);
    }
    case AnswerField.EMAIL:
      if (!emailSchema.safeParse(checkText("value", value, 254)).success) throw invalidArgument("value", `"${value}" is not a valid email address`);
      return setField("email", value.toLowerCase());
    case AnswerField.FREE_TEXT:
      return setField("freeText", checkText("value", value, Limits.variableValue));
    default:
      throw invalidArgument("field", "choose PHONE, EMAIL or FREE_TEXT");
  }
}

const protoName: Partial<Record<keyof ContactDoc, string>> = { freeText: "free_text", operatorId: "operator_id", dealStage: "deal_stage" };

function setField<K extends "phone" | "email" | "freeText" | "operatorId" | "dealStage">(key: K, value: string, kind = "field_set"): Decide {
  return (doc) =>
    doc[key] === value
      ? null
      : { set: { [key]: value }, changedFields: [protoName[key] ?? key], timeline: [{ kind, subject: protoName[key] ?? key, oldValue: doc[key] ?? "", newValue: value }] };
}

/** Adds and removes tags or lists; set semantics, so repeating a command changes nothing. */
export function modifySet(key: "tags" | "lists", add: string[], remove: string[]): Decide {
  const toAdd = checkNames("add", add);
  const toRemove = checkNames("remove", remove);
  const both = toAdd.find((v) => toRemove.includes(v));
  if (both) throw invalidArgument("remove", `"${both}" is both added and removed`);
  if (toAdd.length + toRemove.length === 0) throw invalidArgument("add", "name at least one value to add or remove");
  const singular = key === "tags" ? "tag" : "list";
  return (doc) => {
    const current = doc[key] ?? [];
    const added = toAdd.filter((v) => !current.includes(v));
    const removed = toRemove.filter((v) => current.includes(v));
    if (added.length + removed.length === 0) return null;
    return {
      set: { [key]: [...current.filter((v) => !removed.includes(v)), ...added] },
      changedFields: [key],
      timeline: [
        ...added.map((v) => ({ kind: `${singular}_added`, subject: v, oldValue: "", newValue: v })),
        ...removed.map((v) => ({ kind: `${singular}_removed`, subject: v, oldValue: v, newValue: "" })),
      ],
    };
  };
}

export function setStatus(status: ContactStatus): Decide {
  if (status === ContactStatus.BLACKLISTED) throw invalidArgument("status", "BLACKLISTED is set by deleting the contact with blacklist");
  const name = statusName(status);
  if (!name) throw invalidArgument("status", "choose SUBSCRIBED, UNSUBSCRIBED, BLOCKED or PAUSED");
  return (doc) => (doc.status === name ? null : { set: { status: name }, changedFields: ["status"], timeline: [{ kind: "status_changed", subject: "status", oldValue: doc.status, newValue: name }] });
}

/** Moves the contact to a block; the history keeps every move, the latest Limits.funnelHistory of them. */
export function setFunnelPosition(flowId: string, blockId: string): Decide {
  return recordFunnelMoves([{ flowId, blockId, at: new Date() }], { skipRecorded: false });
}

export interface FunnelMove {
  flowId: string;
  blockId: string;
  at: Date;
}

/**
 * Moves the contact through several blocks at once, in order (the flow runtime's moves, batched). With
 * `skipRecorded`, a move no newer than the card's position is one already recorded (a redelivered event) and
 * changes nothing.
 */
export function recordFunnelMoves(moves: FunnelMove[], { skipRecorded = true } = {}): Decide {
  const checked = moves.map((m) => {
    const flow = checkText("flow_id", m.flowId.trim());
    const block = checkText("block_id", m.blockId.trim());
    if (!flow) throw invalidArgument("flow_id", "is empty");
    if (!block) throw invalidArgument("block_id", "is empty");
    return { flowId: flow, blockId: block, at: m.at };
  });
  return (doc) => {
    const since = skipRecorded && doc.funnel?.at ? new Date(doc.funnel.at).getTime() : -Infinity;
    const fresh = checked.filter((m) => m.at.getTime() > since);
    if (fresh.length === 0) return null;
    const path = (p: { flowId: string; blockId: string } | null | undefined) => (p ? `${p.flowId}/${p.blockId}` : "");
    const last = fresh[fresh.length - 1]!;
    return {
      set: { funnel: last, funnelBlockId: last.blockId, funnelHistory: [...(doc.funnelHistory ?? []), ...fresh].slice(-Limits.funnelHistory) },
      changedFields: ["funnel", "funnel_history"],
      timeline: fresh.map((m, i) => ({ kind: "funnel_moved", subject: m.flowId, oldValue: path(i === 0 ? doc.funnel : fresh[i - 1]), newValue: path(m) })),
    };
  };
}

export const setDealStage = (stage: string) => setField("dealStage", checkText("deal_stage", stage.trim()), "deal_stage_changed");
export const assignOperator = (operatorId: string) => setField("operatorId", checkText("operator_id", operatorId.trim()), "assigned");

export function setPinned(pinned: boolean): Decide {
  return (doc) => (!!doc.pinned === pinned ? null : { set: { pinned }, changedFields: ["pinned"], timeline: [{ kind: "pinned", subject: "pinned", oldValue: String(!!doc.pinned), newValue: String(pinned) }] });
}

/** Read clears the unread mark; unread marks the last message unread, only if the client has written (seed 003). */
export function setRead(read: boolean): Decide {
  return (doc) => {
    if (read) {
      if (!doc.unread && !doc.unreadCount) return null;
      return { set: { unread: false, unreadCount: 0 }, changedFields: ["unread", "unread_count"], timeline: [{ kind: "read_changed", subject: "unread", oldValue: "true", newValue: "false" }] };
    }
    if (!doc.lastInboundAt) throw failedPrecondition("the client has not written yet: only a dialog with a message from the client can be marked unread");
    if (doc.unread) return null;
    return { set: { unread: true, unreadCount: Math.max(1, doc.unreadCount ?? 0) }, changedFields: ["unread", "unread_count"], timeline: [{ kind: "read_changed", subject: "unread", oldValue: "false", newValue: "true" }] };
  };
}

/**
 * A comment in the chat (seed 003): it becomes the last message, authored COMMENT, and a timeline line naming the
 * mentioned operator. A repeated comment_id adds it once: the card keeps the last Limits.recentComments ids.
 */
export function addComment(req: Pick<AddCommentRequest, "authorOperatorId" | "mentionedOperatorId" | "text" | "commentId">): Decide {
  const text = checkText("text", req.text.trim(), Limits.comment);
  if (!text) throw invalidArgument("text", "is empty");
  const author = checkText("author_operator_id", req.authorOperatorId.trim());
  const mentioned = checkText("mentioned_operator_id", req.mentionedOperatorId.trim());
  const commentId = checkText("comment_id", req.commentId.trim());
  return (doc) => {
    const seen = doc.recentCommentIds ?? [];
    if (commentId && seen.includes(commentId)) return null;
    return {
      set: {
        lastMessage: { author: "comment", operatorId: author, excerpt: text.slice(0, Limits.excerpt), hasAttachment: false, at: new Date(), failed: false, error: "", commandId: "" },
        ...(commentId ? { recentCommentIds: [...seen, commentId].slice(-Limits.recentComments) } : {}),
      },
      changedFields: ["last_message"],
      timeline: [{ kind: "comment", subject: mentioned, oldValue: "", newValue: text }],
    };
  };
}

/** A comment's timeline actor is its author: the operator who wrote it, or the flow (the bot) when there is none. */
export const commentActor = (authorOperatorId: string) => (authorOperatorId.trim() ? `operator:${authorOperatorId.trim()}` : "flow");
