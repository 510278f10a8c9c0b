import { timestampDate } from "@bufbuild/protobuf/wkt";
import { DeliveryState, MessageOrigin, type DeliveryStatus } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactRefSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { create } from "@bufbuild/protobuf";
import { RpcError, Status } from "@chatcrm/grpc";
import type { ContactDoc, LastMessageDoc } from "../store/contact-document";
import type { Change, ContactWriter } from "./contact-writer";

/**
 * Outbound delivery statuses: a sent message becomes the dialog's preview; a failure marks it; a permanent failure
 * (the user blocked the bot, the chat is gone) unsubscribes the contact. A status for a contact that no longer
 * exists is dropped: statuses never create or resurrect contacts.
 */
export async function applyDeliveryStatus(writer: ContactWriter, status: DeliveryStatus): Promise<"applied" | "no-contact"> {
  if (!status.projectId || !status.contactId) return "no-contact";
  const ref = create(ContactRefSchema, { ref: { case: "contactId", value: status.contactId } });
  try {
    await writer.mutate(status.projectId, ref, "system", (doc) => decide(doc, status));
    return "applied";
  } catch (err) {
    if (err instanceof RpcError && err.code === Status.NOT_FOUND) return "no-contact";
    throw err;
  }
}

function decide(doc: ContactDoc, status: DeliveryStatus): Change | null {
  const at = status.at ? timestampDate(status.at) : new Date();
  const set: Partial<ContactDoc> = {};
  const changedFields: string[] = [];
  const timeline: Change["timeline"] = [];
  const current = doc.lastMessage;
  if ((status.state === DeliveryState.QUEUED || status.state === DeliveryState.SENT) && (!current || current.at <= at) && current?.commandId !== status.commandId) {
    const preview: LastMessageDoc = {
      author: status.origin === MessageOrigin.OPERATOR ? "operator" : "bot",
      operatorId: status.operatorId,
      excerpt: status.excerpt.slice(0, 200),
      hasAttachment: status.hasAttachment,
      at,
      failed: false,
      error: "",
      commandId: status.commandId,
    };
    set.lastMessage = preview;
    changedFields.push("last_message");
  }
  if (status.state === DeliveryState.FAILED) {
    if (current?.commandId === status.commandId && !current.failed) {
      set.lastMessage = { ...current, failed: true, error: status.error.slice(0, 500) };
      changedFields.push("last_message");
    }
    if (status.permanent && doc.status === "subscribed") {
      set.status = "unsubscribed";
      changedFields.push("status");
      timeline.push({ kind: "status_changed", subject: "status", oldValue: doc.status, newValue: "unsubscribed" });
    }
  }
  return changedFields.length ? { set, changedFields, timeline } : null;
}
