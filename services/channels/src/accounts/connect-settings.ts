import type { ConnectChannelRequest } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { invalidArgument } from "@chatcrm/grpc";
import type { MessengerName } from "./messengers";

export interface SplitSettings {
  messenger: MessengerName;
  settings: Record<string, string>;
  secrets: Record<string, string>;
  allowedOrigins: string[];
}

const ORIGIN = /^https?:\/\/[^/\s?#]+$/;

/**
 * The connect request's typed settings, split into what may be shown (settings) and what is sealed (secrets), in
 * the flat string maps the adapters take. Checks that need the provider are the adapter's; shapes are checked here.
 */
export function settingsFromRequest(request: ConnectChannelRequest): SplitSettings {
  const s = request.settings;
  switch (s.case) {
    case "telegram":
      return { messenger: "telegram", settings: {}, secrets: { botToken: s.value.botToken.trim() }, allowedOrigins: [] };
    case "whatsapp":
      return {
        messenger: "whatsapp",
        settings: { phoneNumberId: s.value.phoneNumberId.trim() },
        secrets: { accessToken: s.value.accessToken.trim(), appSecret: s.value.appSecret.trim(), verifyToken: s.value.verifyToken.trim() },
        allowedOrigins: [],
      };
    case "vk":
      if (s.value.groupId <= 0n) throw invalidArgument("vk.group_id", "give the VK community's numeric id (above 0)");
      return {
        messenger: "vk",
        settings: { groupId: String(s.value.groupId) },
        secrets: { accessToken: s.value.accessToken.trim(), secret: s.value.secret.trim(), confirmationCode: s.value.confirmationCode.trim() },
        allowedOrigins: [],
      };
    case "email":
      return {
        messenger: "email",
        settings: {
          smtpHost: s.value.smtpHost.trim(),
          smtpPort: s.value.smtpPort ? String(s.value.smtpPort) : "",
          smtpSecure: String(s.value.smtpSecure),
          smtpUser: s.value.smtpUser.trim(),
          fromAddress: s.value.fromAddress.trim(),
          fromName: s.value.fromName.trim(),
          defaultSubject: s.value.defaultSubject.trim(),
        },
        secrets: { smtpPassword: s.value.smtpPassword },
        allowedOrigins: [],
      };
    case "web": {
      const origins = s.value.allowedOrigins.map((o) => o.trim().replace(/\/$/, ""));
      const bad = origins.find((o) => !ORIGIN.test(o));
      if (bad !== undefined) throw invalidArgument("web.allowed_origins", `"${bad}" is not an origin like https://shop.example.com`);
      return { messenger: "web", settings: {}, secrets: {}, allowedOrigins: origins };
    }
    default:
      throw invalidArgument("settings", "choose the messenger: telegram, whatsapp, vk, email or web");
  }
}
