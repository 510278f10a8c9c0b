import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Health, HealthCheckResponse_ServingStatus as S } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { createGrpcClient } from "@chatcrm/grpc";
import { testInfra, uniqueName, waitFor } from "@chatcrm/testing";
import { freePort, runService, SERVICES, type ServiceName, type ServiceProcess } from "./processes";

interface OtlpSpan {
  traceId: string;
  name: string;
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** A minimal OTLP/HTTP JSON trace receiver: what each process exported, by service name. */
async function startCollector() {
  const spans: { service: string; traceId: string; name: string }[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const data = JSON.parse(body) as OtlpExport;
    for (const rs of data.resourceSpans ?? []) {
      const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "?";
      for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ service, traceId: span.traceId, name: span.name });
    }
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("the seven services as real processes", () => {
  const procs: ServiceProcess[] = [];
  const ports = {} as Record<ServiceName, number>;
  let httpPort = 0;
  let webhookPort = 0;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  const run = uniqueName("sys").replace(/-/g, "_");

  beforeAll(async () => {
    collector = await startCollector();
    for (const name of SERVICES) ports[name] = await freePort();
    httpPort = await freePort();
    webhookPort = await freePort();
    const { kafkaBrokers, mongoUrl } = testInfra();
    const addr = (name: ServiceName) => `127.0.0.1:${ports[name]}`;
    for (const name of SERVICES) {
      procs.push(
        runService(name, {
          GRPC_HOST: "127.0.0.1",
          GRPC_PORT: String(ports[name]),
          MONGO_URL: mongoUrl,
          MONGO_DATABASE: `${run}_${name.replace(/-/g, "_")}`,
          KAFKA_BROKERS: kafkaBrokers.join(","),
          LOG_LEVEL: "info",
          HEALTH_PROBE_INTERVAL_MS: "500",
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          ...(name === "channels" ? { WEBHOOK_HOST: "127.0.0.1", WEBHOOK_PORT: String(webhookPort), CHANNEL_SECRETS_KEY: randomBytes(32).toString("base64") } : {}),
          ...(name === "gateway"
            ? {
                HTTP_HOST: "127.0.0.1",
                HTTP_PORT: String(httpPort),
                ACCESS_TOKEN_SECRET: randomBytes(48).toString("base64"),
                CHANNELS_GRPC_ADDR: addr("channels"),
                CONTACTS_GRPC_ADDR: addr("contacts"),
                FLOW_RUNTIME_GRPC_ADDR: addr("flow-runtime"),
                IDENTITY_MERGE_GRPC_ADDR: addr("identity-merge"),
                INTEGRATIONS_GRPC_ADDR: addr("integrations"),
                EXPORT_GRPC_ADDR: addr("export"),
              }
            : {}),
        }),
      );
    }
  });

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await collector?.close();
  });

  it("each reports SERVING over grpc.health.v1", async () => {
    for (const name of SERVICES) {
      const client = createGrpcClient(Health, `127.0.0.1:${ports[name]}`);
      const proc = procs.find((p) => p.name === name)!;
      await waitFor(`${name} to serve`, async () => (await client.check({}, { timeoutMs: 1_000 })).status === S.SERVING, 60_000, 250).catch((err: Error) => {
        throw new Error(`${err.message}\n--- ${name} output ---\n${proc.output()}`);
      });
      client.close();
    }
  });

  it("the gateway sees every backend SERVING over gRPC, and one trace spans the HTTP call and the gRPC calls", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await fetch(`http://127.0.0.1:${httpPort}/chatcrm.system.v1.SystemService/GetSystemStatus`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: "{}",
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { allServing?: boolean; services: { name: string; state: string }[] };
    expect(body.services.map((s) => [s.name, s.state])).toEqual(
      SERVICES.filter((s) => s !== "gateway").map((s) => [s, "SERVICE_STATE_SERVING"]),
    );
    expect(body.allServing).toBe(true);

    // SIGTERM makes each process flush its spans before it exits 0.
    for (const p of procs) p.child.kill("SIGTERM");
    const exits = await Promise.all(procs.map((p) => p.exited));
    expect(exits.map((e, i) => [procs[i]!.name, e.code])).toEqual(SERVICES.map((s) => [s, 0]));
    for (const p of procs) expect(p.output()).toMatch(/"msg":"[a-z-]+ stopped"/);

    const inTrace = collector.spans.filter((s) => s.traceId === traceId);
    const services = new Set(inTrace.map((s) => s.service));
    expect([...services].sort()).toEqual([...SERVICES].sort());
    expect(inTrace.filter((s) => s.service === "contacts").map((s) => s.name)).toContain("grpc.grpc.health.v1.Health/Check");
  });
});
