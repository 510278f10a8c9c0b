import type { ServiceImpl } from "@connectrpc/connect";
import { LiveService } from "@chatcrm/contracts/chatcrm/gateway/v1/live_service_pb";
import type { LiveHub } from "../live/live-hub";
import { callerOf } from "../proxy/forward";

export function liveService(hub: LiveHub): ServiceImpl<typeof LiveService> {
  return {
    streamUpdates: (_req, ctx) => hub.stream(callerOf(ctx), ctx.signal),
  };
}
