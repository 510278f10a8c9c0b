import { Messenger, type Button } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { createHash } from "node:crypto";
import { NetworkError } from "../http-call";
import {
  ChannelSetupError,
  type AccountView,
  type ConnectInput,
  type ConnectResult,
  type OutboundMessage,
  type ProviderAdapter,
  type SendResult,
  type WebhookOutcome,
  type WebhookRequest,
} from "../provider";
import { callVk, sendFailure, TOKEN_ERROR_CODES } from "./vk-api";
import { handleVkCallback } from "./vk-callback";

/**
 * VK communities over the Callback API. settings: groupId, groupName; secrets: accessToken (a community token with
 * the messages scope), secret (the Callback API secret key), confirmationCode (the string VK expects back when the
 * server address is confirmed). The callback server itself is registered by hand in the community settings.
 */

export interface VkAdapterOptions {
  /** "https://api.vk.com" in production. */
  apiBaseUrl: string;
  timeoutMs: number;
}

// An inline keyboard holds at most 5×6 keys and 10 in all; with one button per row that is 6 buttons.
const MAX_INLINE_ROWS = 6;
const MAX_LABEL_CHARS = 40;
const MAX_PAYLOAD_CHARS = 255;

const REQUIRED_SECRETS = [
  ["accessToken", "vk.access_token", "the community access token (Manage → API usage → Access tokens, with access to messages)"],
  ["secret", "vk.secret", "the Callback API secret key (Manage → API usage → Callback API → Server settings)"],
  ["confirmationCode", "vk.confirmation_code", "the confirmation code shown above the server address in Manage → API usage → Callback API"],
] as const;

export class VkAdapter implements ProviderAdapter {
  readonly messenger = Messenger.VK;

  constructor(private readonly options: VkAdapterOptions) {}

  async connect(input: ConnectInput): Promise<ConnectResult> {
    const groupId = (input.settings.groupId ?? "").trim();
    if (!groupId) throw new ChannelSetupError("vk.group_id", "Enter the community id: the number in the community's address (club123456 → 123456)");
    if (!/^[1-9]\d{0,18}$/.test(groupId)) throw new ChannelSetupError("vk.group_id", `The community id must be a positive number (club123456 → 123456), not "${groupId}"`);
    const secrets: Record<string, string> = {};
    for (const [key, field, what] of REQUIRED_SECRETS) {
      const value = (input.secrets[key] ?? "").trim();
      if (!value) throw new ChannelSetupError(field, `Enter ${what}`);
      secrets[key] = value;
    }
    const accessToken = secrets.accessToken as string;

    // Without group_id a community token names its own community, which is what tells a token of another
    // community apart (asked with group_id, VK would describe any public community it is given).
    let result;
    try {
      result = await callVk(this.options.apiBaseUrl, "groups.getById", accessToken, {}, this.options.timeoutMs);
    } catch (err) {
      if (err instanceof NetworkError) throw new Error(`VK did not answer (${err.message}); try connecting again`);
      throw err;
    }
    if (result.kind === "http") throw new Error(`VK answered HTTP ${result.status} while checking the access token; try connecting again`);
    if (result.kind === "error") {
      if (TOKEN_ERROR_CODES.has(result.code)) throw new ChannelSetupError("vk.access_token", `VK refused the access token: ${result.message}`);
      if (result.code === 100) throw new ChannelSetupError("vk.access_token", `VK did not name a community for this token (${result.message}): use a community access token, not a user's`);
      throw new Error(`VK error ${result.code} while checking the access token: ${result.message}`);
    }
    const group = firstGroup(result.response);
    if (!group) throw new Error("VK answered groups.getById without a community; try connecting again");
    if (String(group.id) !== groupId) {
      throw new ChannelSetupError("vk.group_id", `The access token belongs to community ${group.id} (${group.name}), not ${groupId}: enter ${group.id} or the token of community ${groupId}`);
    }
    return { settings: { groupId, groupName: group.name }, secrets, accountLabel: group.name };
  }

  /** Nothing to undo: connect() registered nothing with VK (the callback server is set up in the community settings). */
  async disconnect(_account: AccountView): Promise<void> {}

  handleWebhook(account: AccountView, request: WebhookRequest): WebhookOutcome {
    return handleVkCallback(account, request);
  }

  async send(account: AccountView, message: OutboundMessage): Promise<SendResult> {
    if (!/^-?\d+$/.test(message.recipientId)) return { ok: false, kind: "rejected", error: `"${message.recipientId}" is not a VK peer id` };
    const text = composeText(message);
    if (!text) return { ok: false, kind: "rejected", error: "The message is empty: VK needs text or an attachment" };
    const keyboard = buildKeyboard(message.buttons);
    if (typeof keyboard === "object") return { ok: false, kind: "rejected", error: keyboard.error };
    const accessToken = account.secrets.accessToken;
    if (!accessToken) return { ok: false, kind: "rejected", error: "The channel has no VK access token: reconnect the channel" };

    const params: Record<string, string> = { peer_id: message.recipientId, random_id: String(randomIdFor(message.commandId)), message: text };
    if (keyboard) params.keyboard = keyboard;
    params.dont_parse_links = "0";
    let result;
    try {
      result = await callVk(this.options.apiBaseUrl, "messages.send", accessToken, params, this.options.timeoutMs);
    } catch (err) {
      if (err instanceof NetworkError) return { ok: false, kind: "transient", error: `VK did not answer: ${err.message}` };
      throw err;
    }
    if (result.kind !== "response") return sendFailure(result);
    if (typeof result.response !== "number") {
      // Unexpected, but the same random_id makes the retry safe: VK answers it with the first message's id.
      return { ok: false, kind: "transient", error: `VK answered messages.send with ${JSON.stringify(result.response)} instead of a message id` };
    }
    return { ok: true, providerMessageId: String(result.response) };
  }
}

function firstGroup(response: unknown): { id: number | string; name: string } | undefined {
  // 5.199 answers {groups:[…], profiles:[]}; versions before 5.139 answered the array itself.
  const groups = Array.isArray(response) ? response : (response as { groups?: unknown } | null)?.groups;
  const group: unknown = Array.isArray(groups) ? groups[0] : undefined;
  if (!group || typeof group !== "object") return undefined;
  const { id, name } = group as { id?: unknown; name?: unknown };
  return typeof id === "number" || typeof id === "string" ? { id, name: typeof name === "string" ? name : String(id) } : undefined;
}

/**
 * VK cannot attach a file by URL: it has to be uploaded to VK first (photos.getMessagesUploadServer → upload →
 * photos.saveMessagesPhoto, or the docs.* equivalents), which this adapter does not do yet. Until then each
 * attachment's URL goes on its own line under the text, where VK shows it as a link with a preview.
 */
function composeText(message: OutboundMessage): string {
  const lines = message.text ? [message.text] : [];
  for (const attachment of message.attachments) if (attachment.url) lines.push(attachment.url);
  return lines.join("\n");
}

/**
 * A positive 31-bit id derived from the command: VK drops a second send with the same random_id and answers it
 * with the first message's id, so a retried command never reaches the user twice. 0 would switch that check off.
 */
export function randomIdFor(commandId: string): number {
  const id = createHash("sha256").update(commandId).digest().readUInt32BE(0) & 0x7fffffff;
  return id === 0 ? 1 : id;
}

/** The keyboard JSON for the buttons, "" for none, or why VK would refuse it. */
function buildKeyboard(buttons: Button[]): string | { error: string } {
  if (buttons.length === 0) return "";
  if (buttons.length > MAX_INLINE_ROWS) return { error: `VK shows at most ${MAX_INLINE_ROWS} buttons under a message; this one has ${buttons.length}` };
  const rows = [];
  for (const button of buttons) {
    const label = button.text;
    if (!label) return { error: "A button has no text; VK needs a label on every button" };
    if ([...label].length > MAX_LABEL_CHARS) return { error: `The button "${label}" is longer than the ${MAX_LABEL_CHARS} characters VK allows` };
    if (button.url) {
      if (!/^https?:\/\//i.test(button.url)) return { error: `The button "${label}" links to "${button.url}", which is not an http(s) address` };
      rows.push([{ action: { type: "open_link", link: button.url, label } }]);
      continue;
    }
    const payload = JSON.stringify({ p: button.payload });
    if (payload.length > MAX_PAYLOAD_CHARS) return { error: `The payload of the button "${label}" is longer than VK's ${MAX_PAYLOAD_CHARS} characters` };
    rows.push([{ action: { type: "text", label, payload } }]);
  }
  return JSON.stringify({ inline: true, buttons: rows });
}
