import { cors as connectCors, createContextValues, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { FIELD_TRAILER } from "@chatcrm/grpc";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { clientAddressKey } from "./access/caller";

export interface PublicApiServer {
  port: number;
  close(): Promise<void>;
}

export interface PublicApiOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  host: string;
  port: number;
  maxBodyBytes: number;
  /** Browser origins allowed to call; any other origin gets no CORS headers (and its preflight a 403). */
  corsOrigins: string[];
  /** Behind an ingress the client's address is the first X-Forwarded-For entry. */
  trustProxy: boolean;
}

function clientAddress(req: { headers: IncomingHttpHeaders; socket: { remoteAddress?: string } }, trustProxy: boolean): string {
  const forwarded = trustProxy ? String(req.headers["x-forwarded-for"] ?? "").split(",")[0]?.trim() : "";
  return forwarded || req.socket.remoteAddress || "unknown";
}

/**
 * The public API on one HTTP/1.1 port: Connect JSON/binary and gRPC-Web for browsers and curl, gRPC for servers
 * that speak it over HTTP/1.1-capable proxies. Unknown paths get a 404 from the adapter.
 */
export async function listenPublicApi(options: PublicApiOptions): Promise<PublicApiServer> {
  const handler = connectNodeAdapter({
    routes: options.routes,
    readMaxBytes: options.maxBodyBytes,
    interceptors: options.interceptors,
    contextValues: (req) => createContextValues().set(clientAddressKey, clientAddress(req, options.trustProxy)),
  });
  const origins = new Set(options.corsOrigins);
  const server: Server = createServer((req, res) => {
    if (applyCors(req, res, origins)) handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`cannot listen for HTTP on ${options.host}:${options.port}: ${err.message}`)));
    server.listen(options.port, options.host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Live-update streams never end on their own; shutdown ends them.
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      }),
  };
}

/** Adds CORS headers for allowed origins and answers preflights; false when the request is fully answered. */
function applyCors(req: IncomingMessage, res: ServerResponse, origins: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
  if (!origin) return true;
  if (!origins.has(origin)) {
    if (!preflight) return true;
    res.writeHead(403, { "content-type": "text/plain" }).end(`origin ${origin} is not allowed to call this API (CORS_ALLOWED_ORIGINS)`);
    return false;
  }
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Vary", "Origin");
  res.setHeader("Access-Control-Expose-Headers", [...connectCors.exposedHeaders, FIELD_TRAILER].join(", "));
  if (!preflight) return true;
  res
    .writeHead(204, {
      "Access-Control-Allow-Methods": connectCors.allowedMethods.join(", "),
      "Access-Control-Allow-Headers": [...connectCors.allowedHeaders, "Authorization"].join(", "),
      "Access-Control-Max-Age": "7200",
    })
    .end();
  return false;
}
