import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { FlowsService } from "@chatcrm/contracts/chatcrm/flows/v1/flows_service_pb";
import { AccessService } from "@chatcrm/contracts/chatcrm/gateway/v1/access_service_pb";
import { AuthService } from "@chatcrm/contracts/chatcrm/gateway/v1/auth_service_pb";
import { ConversationsService } from "@chatcrm/contracts/chatcrm/gateway/v1/conversations_service_pb";
import { LiveService } from "@chatcrm/contracts/chatcrm/gateway/v1/live_service_pb";
import { SystemService } from "@chatcrm/contracts/chatcrm/system/v1/system_service_pb";
import { Health } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { createGrpcClient } from "@chatcrm/grpc";
import { subscribeBatch, Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Logger } from "@chatcrm/logging";
import { AccessTokens } from "./access/access-tokens";
import { Authenticator } from "./access/authenticator";
import { accessGuard } from "./access/guard";
import { LoginLockout } from "./access/login-lockout";
import { RequestLimits } from "./access/request-limits";
import { Revocations } from "./access/revocations";
import { peerAddresses, type Config } from "./config";
import { identityModels } from "./data/identity-models";
import { listenPublicApi } from "./http-server";
import { LiveHub } from "./live/live-hub";
import { errorBoundary } from "./proxy/connect-errors";
import { forwardService } from "./proxy/forward";
import { accessService } from "./rpc/access-service";
import { authService } from "./rpc/auth-service";
import { conversationsService } from "./rpc/conversations-service";
import { liveService } from "./rpc/live-service";
import { systemService } from "./rpc/system-service";
import { Sessions } from "./usecases/sessions";

/**
 * Starts the gateway: the shared backend (its own database with projects, operators, sessions and API keys;
 * Kafka; gRPC health) plus the public Connect API in front of the backend services.
 */
export async function startGateway(config: Config, logger: Logger) {
  let httpPort = 0;
  const backend = await startBackend({
    name: "gateway",
    config,
    logger,
    topics: [Topics.sendCommands, Topics.flowCommands, Topics.resolvedMessages, Topics.contactEvents],
    register: async (ctx) => {
      const models = identityModels(ctx.mongo.connection);
      ctx.addModels(...Object.values(models));

      const timeoutMs = config.PEER_CALL_TIMEOUT_MS;
      const contacts = createGrpcClient(ContactsService, config.CONTACTS_GRPC_ADDR, { defaultTimeoutMs: timeoutMs });
      const channels = createGrpcClient(ChannelsService, config.CHANNELS_GRPC_ADDR, { defaultTimeoutMs: timeoutMs });
      const flows = createGrpcClient(FlowsService, config.FLOW_RUNTIME_GRPC_ADDR, { defaultTimeoutMs: timeoutMs });
      const peers = Object.entries(peerAddresses(config)).map(([name, address]) => ({ name, health: createGrpcClient(Health, address) }));

      const revocations = new Revocations(models, config.ACCESS_TOKEN_TTL_SEC * 1000, logger);
      await revocations.poll();
      ctx.every("revocation poll", config.REVOCATION_POLL_MS, () => revocations.poll());
      const tokens = new AccessTokens(config.ACCESS_TOKEN_SECRET, config.ACCESS_TOKEN_TTL_SEC);
      const sessions = new Sessions(models, tokens, revocations, config.REFRESH_TOKEN_TTL_SEC);
      const limits = new RequestLimits({
        perApiKeyPerSec: config.REQUESTS_PER_SEC_PER_API_KEY,
        perOperatorPerSec: config.REQUESTS_PER_SEC_PER_OPERATOR,
        loginsPerMinutePerAddress: config.LOGINS_PER_MINUTE_PER_ADDRESS,
      });
      const lockout = new LoginLockout(models, { maxFailures: config.LOGIN_MAX_FAILURES, windowSec: config.LOGIN_FAILURE_WINDOW_SEC, lockoutSec: config.LOGIN_LOCKOUT_SEC });
      const authenticator = new Authenticator(tokens, models, revocations);

      const hub = new LiveHub(contacts, { heartbeatMs: config.LIVE_HEARTBEAT_MS, unreadDebounceMs: config.LIVE_UNREAD_DEBOUNCE_MS, timeoutMs }, logger);
      // Every replica reads every event (its own group, from now on) for the streams it holds; nothing to redo
      // after a restart, so no processed-event records.
      ctx.addConsumer({
        groupId: `${config.KAFKA_CONSUMER_GROUP}-${hostname()}-${randomUUID().slice(0, 8)}`,
        fromBeginning: false,
        subscriptions: [
          subscribeBatch(Topics.resolvedMessages, async (events) => hub.onMessages(events.map((e) => e.value))),
          subscribeBatch(Topics.contactEvents, async (events) => hub.onContactChanges(events.map((e) => e.value))),
        ],
      });

      const api = await listenPublicApi({
        routes: (router) =>
          router
            .service(SystemService, systemService(peers, config.PEER_HEALTH_TIMEOUT_MS))
            .service(AuthService, authService({ models, sessions, lockout, limits }))
            .service(AccessService, accessService({ models, sessions, revocations }))
            .service(ConversationsService, conversationsService({ contacts, channels, timeoutMs }))
            .service(LiveService, liveService(hub))
            .service(ContactsService, forwardService(ContactsService, contacts, "contacts", timeoutMs))
            .service(ChannelsService, forwardService(ChannelsService, channels, "channels", timeoutMs))
            .service(FlowsService, forwardService(FlowsService, flows, "flow-runtime", timeoutMs)),
        interceptors: [errorBoundary(logger), accessGuard({ authenticator, limits, contacts, channels, timeoutMs })],
        host: config.HTTP_HOST,
        port: config.HTTP_PORT,
        maxBodyBytes: config.HTTP_MAX_BODY_BYTES,
        corsOrigins: config.CORS_ALLOWED_ORIGINS,
        trustProxy: config.HTTP_TRUST_PROXY,
      });
      httpPort = api.port;
      logger.info({ httpPort }, "public Connect API listening");
      ctx.onShutdown("public API", async () => {
        hub.close();
        await api.close();
      });
      ctx.onShutdown("backend clients", () => [contacts, channels, flows, ...peers.map((p) => p.health)].forEach((c) => c.close()));
      return { models, hub, sessions };
    },
  });
  return { ...backend, httpPort };
}
