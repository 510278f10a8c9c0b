import type { MessageInitShape } from "@bufbuild/protobuf";
import { ServiceState, type GetSystemStatusResponseSchema, type ServiceStatus } from "@chatcrm/contracts/chatcrm/system/v1/system_service_pb";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { RpcError, Status, type GrpcClient } from "@chatcrm/grpc";

export interface Peer {
  name: string;
  health: GrpcClient<typeof Health>;
}

type StatusInit = MessageInitShape<typeof GetSystemStatusResponseSchema>;

/** Asks every backend's health endpoint at once; one slow or dead service does not hide the others. */
export async function getSystemStatus(peers: Peer[], timeoutMs: number): Promise<StatusInit> {
  const services = await Promise.all(peers.map((peer) => checkPeer(peer, timeoutMs)));
  return { services, allServing: services.every((s) => s.state === ServiceState.SERVING) };
}

async function checkPeer(peer: Peer, timeoutMs: number): Promise<Pick<ServiceStatus, "name" | "state" | "latencyMs" | "detail">> {
  const started = performance.now();
  const latencyMs = () => Math.round(performance.now() - started);
  try {
    const { status } = await peer.health.check({}, { timeoutMs });
    return status === Serving.SERVING
      ? { name: peer.name, state: ServiceState.SERVING, latencyMs: latencyMs(), detail: "" }
      : { name: peer.name, state: ServiceState.NOT_SERVING, latencyMs: latencyMs(), detail: "its database or Kafka is not reachable" };
  } catch (err) {
    const detail =
      err instanceof RpcError && err.code === Status.DEADLINE_EXCEEDED
        ? `no answer within ${timeoutMs} ms`
        : err instanceof RpcError && err.code === Status.UNAVAILABLE
          ? "not reachable"
          : `health check failed: ${(err as Error).message}`;
    return { name: peer.name, state: ServiceState.UNREACHABLE, latencyMs: latencyMs(), detail };
  }
}
