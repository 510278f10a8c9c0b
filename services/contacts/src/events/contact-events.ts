import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ContactChangeKind } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { Topics, type EventPublisher, type OutgoingEvent } from "@chatcrm/kafka";
import { toContactProto, toSnapshot } from "../rpc/contact-to-proto";
import type { ContactDoc } from "../store/contact-document";

type ChangedEvent = OutgoingEvent<typeof Topics.contactEvents.schema>;

export type ChangeKind = "created" | "updated" | "deleted";
const kinds = { created: ContactChangeKind.CREATED, updated: ContactChangeKind.UPDATED, deleted: ContactChangeKind.DELETED };

/** A contact event. Event ids are derived from what caused the change, so a redone change republishes the same id. */
export function contactChanged(doc: Pick<ContactDoc, "_id" | "projectId"> & Partial<ContactDoc>, kind: ChangeKind, eventId: string, changedFields: string[], at: Date): ChangedEvent {
  const full = kind !== "deleted" ? (doc as ContactDoc) : undefined;
  return {
    key: doc._id,
    projectId: doc.projectId,
    eventId,
    value: {
      eventId,
      projectId: doc.projectId,
      contactId: doc._id,
      kind: kinds[kind],
      changedFields,
      contact: full ? toSnapshot(full) : undefined,
      card: full ? toContactProto(full) : undefined,
      at: timestampFromDate(at),
    },
  };
}

export const publishContactEvents = (publisher: EventPublisher, events: ChangedEvent[]) => publisher.publishBatch(Topics.contactEvents, events);
