import type { Selection } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument, type Viewer } from "@chatcrm/grpc";
import { contactQuery } from "../filters/contact-query";
import { checkNames, Limits } from "../domain/limits";
import type { ContactQuery } from "../store/contact-document";

/** The contacts a mass action covers, as a query (without the project and the start cut-off, added by the runner). */
export function selectionQuery(selection: Selection | undefined, viewer: Viewer): ContactQuery {
  const s = selection?.selection;
  switch (s?.case) {
    case "contactIds":
      return { _id: { $in: checkNames("selection.contact_ids.ids", s.value.ids, { max: Limits.explicitSelection, required: true }) } };
    case "filter":
      return contactQuery(s.value.filter, s.value.tab, viewer, "selection.filter.filter");
    case "unsubscribedOrBlocked":
      return { status: { $in: ["unsubscribed", "blocked"] } };
    case "allUnread":
      // Seed 002 "mark all read": an operator's "all" is their own clients, as their unread counter is.
      return viewer.role === "operator" ? { unread: true, operatorId: viewer.operatorId } : { unread: true };
    default:
      throw invalidArgument("selection", "choose contact_ids, filter, unsubscribed_or_blocked or all_unread");
  }
}
