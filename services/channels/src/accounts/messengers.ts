import type { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { messengerFromName, messengerName } from "@chatcrm/messenger-ids";

/** The messengers this service connects, by the stored name used in URLs, records and config. */
const CONNECTABLE = ["telegram", "whatsapp", "vk", "email", "web"] as const;

export type MessengerName = (typeof CONNECTABLE)[number];

export const isMessengerName = (name: string): name is MessengerName => (CONNECTABLE as readonly string[]).includes(name);

export const messengerOf = (name: string): Messenger => messengerFromName(name);

/** The stored name of a messenger this service connects; undefined for any other. */
export const nameOfMessenger = (messenger: Messenger): MessengerName | undefined => {
  const name = messengerName(messenger);
  return name && isMessengerName(name) ? name : undefined;
};

/** Where a channel's provider posts (the web widget has one endpoint for all its channels). */
export const webhookPath = (messenger: string, channelId: string) => (messenger === "web" ? "/widget/v1/ws" : `/webhooks/${messenger}/${channelId}`);
