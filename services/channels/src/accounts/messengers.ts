import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";

/** The messengers this service connects, by the name used in URLs, stored records and config. */
export const MESSENGER_NAMES = {
  telegram: Messenger.TELEGRAM,
  whatsapp: Messenger.WHATSAPP,
  vk: Messenger.VK,
  email: Messenger.EMAIL,
  web: Messenger.WEB,
} as const;

export type MessengerName = keyof typeof MESSENGER_NAMES;

export const messengerOf = (name: string): Messenger => MESSENGER_NAMES[name as MessengerName] ?? Messenger.UNSPECIFIED;

export const nameOfMessenger = (messenger: Messenger): MessengerName | undefined =>
  (Object.entries(MESSENGER_NAMES) as [MessengerName, Messenger][]).find(([, m]) => m === messenger)?.[0];

export const isMessengerName = (name: string): name is MessengerName => name in MESSENGER_NAMES;
