import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { z } from "zod";
import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";

const email = z.email();

// Stored values are readable names, not enum numbers, so a database reads well in a shell and survives enum
// renumbering mistakes. Every service stores messengers by these names.
const messengerNames: Record<Messenger, string> = {
  [Messenger.UNSPECIFIED]: "",
  [Messenger.TELEGRAM]: "telegram",
  [Messenger.WHATSAPP]: "whatsapp",
  [Messenger.VK]: "vk",
  [Messenger.EMAIL]: "email",
  [Messenger.WEB]: "web",
  [Messenger.INSTAGRAM]: "instagram",
};
const messengersByName = new Map(Object.entries(messengerNames).map(([m, name]) => [name, Number(m) as Messenger]));

/** The stored name of a messenger; undefined for UNSPECIFIED. */
export const messengerName = (m: Messenger): string | undefined => messengerNames[m] || undefined;

/** The messenger a stored name stands for; UNSPECIFIED for an unknown name. */
export const messengerFromName = (name: string): Messenger => (name ? messengersByName.get(name) : undefined) ?? Messenger.UNSPECIFIED;

export interface NormalizeOptions {
  /** ISO 3166 region for phone numbers written without a country code ("8 916 …" in Russia). */
  defaultRegion?: string;
}

function whatsappId(raw: string, options: NormalizeOptions): string | { problem: string } {
  const compact = raw.replace(/[\s()-]/g, "");
  const phone = options.defaultRegion && !compact.startsWith("+") ? parsePhoneNumberFromString(compact, options.defaultRegion as CountryCode) : parsePhoneNumberFromString(compact.startsWith("+") ? compact : `+${compact}`);
  // WhatsApp's wa_id is the E.164 number without the "+".
  return phone?.isValid() ? phone.number.slice(1) : { problem: "a WhatsApp id is a phone number with its country code" };
}

const idRules: Record<Messenger, (raw: string, options: NormalizeOptions) => string | { problem: string }> = {
  [Messenger.UNSPECIFIED]: () => ({ problem: "no messenger" }),
  [Messenger.TELEGRAM]: (v) => (/^-?\d{1,20}$/.test(v) ? v : { problem: "a Telegram id is a number" }),
  [Messenger.VK]: (v) => (/^\d{1,20}$/.test(v) ? v : { problem: "a VK id is a positive number" }),
  [Messenger.WHATSAPP]: whatsappId,
  [Messenger.EMAIL]: (v) => (email.safeParse(v).success ? v.toLowerCase() : { problem: "not an email address" }),
  [Messenger.WEB]: (v) => (/^[\w.:@-]{1,100}$/.test(v) ? v : { problem: "a web visitor id is letters, digits and . : @ _ -" }),
  [Messenger.INSTAGRAM]: (v) => (/^\d{1,30}$/.test(v) ? v : { problem: "an Instagram id is a number" }),
};

/**
 * A subscriber's id as its messenger writes it, normalised (WhatsApp phones to E.164 digits, emails lower-cased),
 * or the reason it is not one. Shared by every place that takes a messenger id from a person: imports, operator
 * sends, manual merges.
 */
export function normalizeMessengerId(messenger: Messenger, raw: string, options: NormalizeOptions = {}): string | { problem: string } {
  return (idRules[messenger] ?? idRules[Messenger.UNSPECIFIED])(raw.trim(), options);
}
