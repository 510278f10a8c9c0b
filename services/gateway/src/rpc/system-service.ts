import type { ServiceImpl } from "@connectrpc/connect";
import { SystemService } from "@chatcrm/contracts/chatcrm/system/v1/system_service_pb";
import { getSystemStatus, type Peer } from "../usecases/get-system-status";

export function systemService(peers: Peer[], peerTimeoutMs: number): Partial<ServiceImpl<typeof SystemService>> {
  return {
    getSystemStatus: () => getSystemStatus(peers, peerTimeoutMs),
  };
}
