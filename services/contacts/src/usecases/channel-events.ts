import { create } from "@bufbuild/protobuf";
import { DeliveryState, MessageOrigin, type DeliveryStatus, type SubscriberStatusChanged } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactRefSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { RpcError, Status } from "@chatcrm/grpc";
import type { EventPublisher } from "@chatcrm/kafka";
import { messengerName } from "../domain/enums";
import { contactChanged, publishContactEvents } from "../events/contact-events";
import { identityId } from "../store/support-models";
import type { ContactStore } from "./contact-store";
import type { ContactWriter } from "./contact-writer";
import { contactForIdentity } from "./new-contact";

/**
 * An operator's first message to a WhatsApp number or email address nobody has written from yet (seed 002) goes
 * out without a contact; once it is sent, the recipient becomes a contact like a subscriber who wrote first.
 * Returns the contact id to apply the status to, or "" when there is none (blacklisted, deleted, not a first send).
 */
export async function contactForFirstSend(store: ContactStore, publisher: EventPublisher, status: DeliveryStatus): Promise<string> {
  if (status.contactId || status.state !== DeliveryState.SENT || status.origin !== MessageOrigin.OPERATOR) return status.contactId;
  const messenger = messengerName(status.messenger);
  if (!status.projectId || !status.channelId || !status.recipientId || !messenger) return "";
  const at = status.at ? timestampDate(status.at) : new Date();
  const result = await contactForIdentity(store, {
    projectId: status.projectId,
    messenger,
    channelId: status.channelId,
    messengerUserId: status.recipientId,
    at,
    cause: "operator-send",
    actor: status.operatorId ? `operator:${status.operatorId}` : "system",
  });
  if (result.kind === "created") {
    await publishContactEvents(publisher, [contactChanged(result.contact, "created", `created:${result.contact._id}`, [], at)]);
    return result.contact._id;
  }
  return result.kind === "exists" ? result.contactId : "";
}

/**
 * The subscriber blocked the bot (nothing can reach them: unsubscribed) or unblocked it (subscribed again). A
 * subscriber we do not know, or a deleted contact, is left alone: statuses never create contacts.
 */
export async function applySubscriberStatus(store: ContactStore, writer: ContactWriter, event: SubscriberStatusChanged): Promise<"applied" | "no-contact"> {
  const identity = await store.support.identities.findById(identityId(event.projectId, event.channelId, event.subscriberId)).lean();
  if (!identity || identity.deletedAt || identity.projectId !== event.projectId) return "no-contact";
  const ref = create(ContactRefSchema, { ref: { case: "contactId", value: identity.contactId } });
  const wanted = event.blocked ? "unsubscribed" : "subscribed";
  try {
    await writer.mutate(event.projectId, ref, "system", (doc) => {
      // A contact we blacklisted stays so; only the subscription itself follows the messenger.
      if (doc.status === wanted || doc.status === "blocked") return null;
      return { set: { status: wanted }, changedFields: ["status"], timeline: [{ kind: "status_changed", subject: "status", oldValue: doc.status, newValue: wanted }] };
    });
    return "applied";
  } catch (err) {
    if (err instanceof RpcError && err.code === Status.NOT_FOUND) return "no-contact";
    throw err;
  }
}
