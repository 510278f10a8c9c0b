import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { z } from "zod";
import { MessageKind, type Button, type InboundMessage } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { AnswerKind } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";

/** A valid answer, normalised for saving; `button` is the payload of the chosen button. */
export type AnswerCheck = { valid: true; value: string; button?: string } | { valid: false };

const email = z.email();
const INVALID: AnswerCheck = { valid: false };
const MEDIA: Partial<Record<AnswerKind, MessageKind>> = {
  [AnswerKind.IMAGE]: MessageKind.IMAGE,
  [AnswerKind.VIDEO]: MessageKind.VIDEO,
  [AnswerKind.AUDIO]: MessageKind.AUDIO,
  [AnswerKind.DOCUMENT]: MessageKind.DOCUMENT,
};

function phone(message: InboundMessage, region: string): AnswerCheck {
  // A shared contact card (Telegram's "share my number") is the best answer there is.
  const raw = (message.sharedPhone || message.text).trim();
  let compact = raw.replace(/[\s().-]/g, "");
  // Messengers share numbers in international form, with or without the "+".
  if (message.sharedPhone && !compact.startsWith("+")) compact = `+${compact}`;
  if (!/^\+?\d{5,17}$/.test(compact)) return INVALID;
  const parsed = compact.startsWith("+") ? parsePhoneNumberFromString(compact) : parsePhoneNumberFromString(compact, region as CountryCode);
  return parsed?.isValid() ? { valid: true, value: parsed.number } : INVALID;
}

function number(text: string): AnswerCheck {
  const compact = text.trim().replace(/[\s\u00a0]/g, "").replace(",", ".");
  return /^[-+]?\d+(\.\d+)?$/.test(compact) ? { valid: true, value: String(Number(compact)) } : INVALID;
}

function date(text: string): AnswerCheck {
  const t = text.trim();
  const iso = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(t);
  const dmy = /^(\d{1,2})[./](\d{1,2})[./](\d{4})$/.exec(t);
  const [y, m, d] = iso ? [iso[1], iso[2], iso[3]] : dmy ? [dmy[3], dmy[2], dmy[1]] : [];
  if (!y || !m || !d) return INVALID;
  const at = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  // Date.UTC rolls 31.02 over into March; a real date survives the round trip.
  if (at.getUTCFullYear() !== Number(y) || at.getUTCMonth() !== Number(m) - 1 || at.getUTCDate() !== Number(d)) return INVALID;
  return { valid: true, value: at.toISOString().slice(0, 10) };
}

function button(message: InboundMessage, buttons: Button[]): AnswerCheck {
  const typed = message.text.trim().toLowerCase();
  const chosen = buttons.find((b) => (message.buttonPayload && (b.payload || b.text) === message.buttonPayload) || (typed && b.text.trim().toLowerCase() === typed));
  return chosen ? { valid: true, value: chosen.text, button: chosen.payload || chosen.text } : INVALID;
}

/** Checks an answer against what the question expects (seeds 000, 004). */
export function checkAnswer(expect: AnswerKind, message: InboundMessage, options: { region: string; buttons: Button[] }): AnswerCheck {
  const text = message.text.trim();
  switch (expect) {
    case AnswerKind.PHONE:
      return phone(message, options.region);
    case AnswerKind.EMAIL:
      return email.safeParse(text).success ? { valid: true, value: text.toLowerCase() } : INVALID;
    case AnswerKind.NUMBER:
      return number(text);
    case AnswerKind.DATE:
      return date(text);
    case AnswerKind.BUTTON:
      return button(message, options.buttons);
    case AnswerKind.IMAGE:
    case AnswerKind.VIDEO:
    case AnswerKind.AUDIO:
    case AnswerKind.DOCUMENT: {
      const media = message.attachments.find((a) => a.kind === MEDIA[expect]);
      return media ? { valid: true, value: media.url } : INVALID;
    }
    default:
      // Any text; a press of a button counts as its text.
      return text ? { valid: true, value: text } : message.buttonPayload ? { valid: true, value: message.buttonPayload } : INVALID;
  }
}
