import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactStatus, MessageAuthor } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import type { AuthorName, StatusName } from "../store/contact-document";

// Stored values are readable names, not enum numbers, so the database reads well in a shell and survives enum
// renumbering mistakes.

const messengerNames: Record<Messenger, string> = {
  [Messenger.UNSPECIFIED]: "",
  [Messenger.TELEGRAM]: "telegram",
  [Messenger.WHATSAPP]: "whatsapp",
  [Messenger.VK]: "vk",
  [Messenger.EMAIL]: "email",
  [Messenger.WEB]: "web",
  [Messenger.INSTAGRAM]: "instagram",
};

export const messengerName = (m: Messenger): string | undefined => messengerNames[m] || undefined;
export const messengerFromName = (name: string): Messenger => (Number(Object.entries(messengerNames).find(([, n]) => n === name)?.[0]) as Messenger) || Messenger.UNSPECIFIED;

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
