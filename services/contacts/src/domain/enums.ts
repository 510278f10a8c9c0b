import { ContactStatus, MessageAuthor } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import type { AuthorName, StatusName } from "../store/contact-document";

// Stored values are readable names, not enum numbers, so the database reads well in a shell and survives enum
// renumbering mistakes.

export { messengerFromName, messengerName } from "@chatcrm/messenger-ids";

const statusNames: Partial<Record<ContactStatus, StatusName>> = {
  [ContactStatus.SUBSCRIBED]: "subscribed",
  [ContactStatus.UNSUBSCRIBED]: "unsubscribed",
  [ContactStatus.BLOCKED]: "blocked",
  [ContactStatus.PAUSED]: "paused",
};

export const statusName = (s: ContactStatus): StatusName | undefined => statusNames[s];
export const statusFromName = (name: StatusName): ContactStatus => (Number(Object.entries(statusNames).find(([, n]) => n === name)?.[0]) as ContactStatus) || ContactStatus.UNSPECIFIED;

const authorNames: Record<AuthorName, MessageAuthor> = {
  client: MessageAuthor.CLIENT,
  bot: MessageAuthor.BOT,
  operator: MessageAuthor.OPERATOR,
  comment: MessageAuthor.COMMENT,
};

export const authorToProto = (a: AuthorName): MessageAuthor => authorNames[a] ?? MessageAuthor.UNSPECIFIED;
