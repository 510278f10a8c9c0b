import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { httpCall, NetworkError, type HttpAnswer } from "../http-call";
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
import { buildRequests, classifySendFailure, describeGraphError, isTokenError, readGraphError } from "./whatsapp-outbound";
import { answerChallenge, MEDIA_REF_PREFIX, parseNotification, verifySignature } from "./whatsapp-webhook";

/**
 * WhatsApp Business Cloud API (Graph API). The webhook is configured once per Meta app in its dashboard (callback URL
 * + verify token), so connect() only checks the credentials; there is nothing to register or remove.
 *
 * settings: phoneNumberId, displayPhoneNumber (filled by connect). secrets: accessToken (a system-user token with
 * whatsapp_business_messaging), appSecret (signs webhooks), verifyToken (our answer to Meta's GET handshake).
 */

export const GRAPH_API_VERSION = "v21.0";

export interface WhatsAppAdapterOptions {
  /** https://graph.facebook.com in production, the fake's baseUrl in tests. */
  apiBaseUrl: string;
  timeoutMs: number;
}

/** Graph object ids are numeric; checking keeps a pasted URL or name from becoming part of the request path. */
const GRAPH_ID = /^\d+$/;

interface RequiredInput {
  value: string | undefined;
  field: string;
  missing: string;
}

function requireInputs(inputs: RequiredInput[]): string[] {
  return inputs.map(({ value, field, missing }) => {
    const trimmed = value?.trim() ?? "";
    if (!trimmed) throw new ChannelSetupError(field, missing);
    return trimmed;
  });
}

export class WhatsAppAdapter implements ProviderAdapter {
  readonly messenger = Messenger.WHATSAPP;
  private readonly graphUrl: string;

  constructor(private readonly options: WhatsAppAdapterOptions) {
    this.graphUrl = `${options.apiBaseUrl.replace(/\/+$/, "")}/${GRAPH_API_VERSION}`;
  }

  async connect(input: ConnectInput): Promise<ConnectResult> {
    const [phoneNumberId, accessToken, appSecret, verifyToken] = requireInputs([
      { value: input.settings.phoneNumberId, field: "whatsapp.phone_number_id", missing: "Enter the phone number ID shown under WhatsApp > API Setup in your Meta app" },
      { value: input.secrets.accessToken, field: "whatsapp.access_token", missing: "Enter an access token of a system user with the whatsapp_business_messaging permission" },
      { value: input.secrets.appSecret, field: "whatsapp.app_secret", missing: "Enter the app secret (App settings > Basic in your Meta app): it verifies that webhooks come from Meta" },
      { value: input.secrets.verifyToken, field: "whatsapp.verify_token", missing: "Enter the verify token you typed into the webhook settings of your Meta app" },
    ]) as [string, string, string, string];
    if (!GRAPH_ID.test(phoneNumberId)) {
      throw new ChannelSetupError("whatsapp.phone_number_id", `The phone number ID is a number like 106540352242922, not "${phoneNumberId}"; copy it from WhatsApp > API Setup`);
    }

    // A NetworkError propagates as is: Meta being unreachable says nothing about the credentials.
    const answer = await httpCall(`${this.graphUrl}/${phoneNumberId}?fields=display_phone_number,verified_name`, {
      headers: { authorization: `Bearer ${accessToken}` },
      timeoutMs: this.options.timeoutMs,
    });
    const number = answer.json as { display_phone_number?: unknown; verified_name?: unknown } | undefined;
    if (answer.status === 200 && typeof number?.display_phone_number === "string") {
      const displayPhoneNumber = number.display_phone_number;
      const verifiedName = typeof number.verified_name === "string" ? number.verified_name : "";
      return {
        settings: { phoneNumberId, displayPhoneNumber },
        secrets: { accessToken, appSecret, verifyToken },
        accountLabel: verifiedName ? `${displayPhoneNumber} (${verifiedName})` : displayPhoneNumber,
      };
    }
    const error = readGraphError(answer);
    if (isTokenError(answer.status, error)) throw new ChannelSetupError("whatsapp.access_token", `WhatsApp refused the access token: ${error.message}`);
    if (answer.status >= 500) throw new Error(`WhatsApp could not check the phone number right now (${describeGraphError(error)}); try again in a minute`);
    throw new ChannelSetupError("whatsapp.phone_number_id", `WhatsApp cannot find phone number ID ${phoneNumberId} for this access token: ${error.message}`);
  }

  async disconnect(_account: AccountView): Promise<void> {
    // The webhook belongs to the Meta app, not to us; nothing was registered per channel.
  }

  handleWebhook(account: AccountView, request: WebhookRequest): WebhookOutcome {
    if (request.method === "GET") return answerChallenge(account.secrets.verifyToken, request.query);
    verifySignature(account.secrets.appSecret, request.headers["x-hub-signature-256"], request.rawBody);
    return parseNotification(account.settings.phoneNumberId ?? "", request.rawBody);
  }

  async send(account: AccountView, message: OutboundMessage): Promise<SendResult> {
    const built = buildRequests(message);
    if ("rejected" in built) return { ok: false, kind: "rejected", error: built.rejected };
    const url = `${this.graphUrl}/${account.settings.phoneNumberId}/messages`;
    const headers = { authorization: `Bearer ${account.secrets.accessToken}` };
    let providerMessageId = "";
    for (const [index, body] of built.bodies.entries()) {
      // Parts already sent go out again when the dispatcher retries; the operator should know a failure was partial.
      const partial = index > 0 ? ` (after ${index} of ${built.bodies.length} parts were sent)` : "";
      let answer: HttpAnswer;
      try {
        answer = await httpCall(url, { method: "POST", headers, body, timeoutMs: this.options.timeoutMs });
      } catch (err) {
        if (err instanceof NetworkError) return { ok: false, kind: "transient", error: `WhatsApp did not answer: ${err.message}${partial}` };
        throw err;
      }
      if (answer.status < 200 || answer.status >= 300) {
        const failure = classifySendFailure(answer);
        return { ...failure, error: failure.error + partial };
      }
      const id = (answer.json as { messages?: Array<{ id?: unknown }> } | undefined)?.messages?.[0]?.id;
      if (typeof id !== "string" || !id) return { ok: false, kind: "transient", error: `WhatsApp accepted the message but returned no message id: ${answer.text.slice(0, 200)}${partial}` };
      providerMessageId = id;
    }
    return { ok: true, providerMessageId };
  }

  /**
   * Resolves an attachment ref ("wa-media:<id>" or a bare media id) to its download URL. The URL is short-lived
   * (about five minutes) and must itself be fetched with the same Bearer token.
   */
  async mediaDownloadUrl(account: AccountView, ref: string): Promise<string> {
    const mediaId = ref.startsWith(MEDIA_REF_PREFIX) ? ref.slice(MEDIA_REF_PREFIX.length) : ref;
    if (!GRAPH_ID.test(mediaId)) throw new Error(`"${ref}" is not a WhatsApp media reference`);
    const phoneNumberId = encodeURIComponent(account.settings.phoneNumberId ?? "");
    const answer = await httpCall(`${this.graphUrl}/${mediaId}?phone_number_id=${phoneNumberId}`, {
      headers: { authorization: `Bearer ${account.secrets.accessToken}` },
      timeoutMs: this.options.timeoutMs,
    });
    const url = (answer.json as { url?: unknown } | undefined)?.url;
    if (answer.status === 200 && typeof url === "string" && url) return url;
    throw new Error(`WhatsApp could not look up media ${mediaId}: ${describeGraphError(readGraphError(answer))}`);
  }

  isMediaRef(url: string): boolean {
    return url.startsWith(MEDIA_REF_PREFIX);
  }

  /** The lookaside URL Graph gives for a media id needs the same Bearer token to download. */
  async resolveMedia(account: AccountView, ref: string): Promise<{ url: string; headers: Record<string, string> }> {
    return { url: await this.mediaDownloadUrl(account, ref), headers: { authorization: `Bearer ${account.secrets.accessToken}` } };
  }
}
