import { cors as connectCors, createContextValues, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { FIELD_TRAILER } from "@chatcrm/grpc";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
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

// Every HTTP/2 connection without TLS opens with this preface ("prior knowledge" h2c, as gRPC clients do).
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0");

/**
 * The public API on one port: Connect JSON/binary and gRPC-Web over HTTP/1.1 for browsers and curl, and gRPC
 * (and Connect) over cleartext HTTP/2 for servers. Node cannot serve HTTP/1.1 and h2c from one server, so a TCP
 * listener reads each connection's first bytes and hands it to the HTTP/1.1 or the HTTP/2 server. TLS ends at
 * the ingress. Unknown paths get a 404 from the adapter.
 */
export async function listenPublicApi(options: PublicApiOptions): Promise<PublicApiServer> {
  const handler = connectNodeAdapter({
    routes: options.routes,
    readMaxBytes: options.maxBodyBytes,
    interceptors: options.interceptors,
    contextValues: (req) => createContextValues().set(clientAddressKey, clientAddress(req, options.trustProxy)),
  });
  const origins = new Set(options.corsOrigins);
  const listener = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    if (applyCors(req, res, origins)) handler(req, res);
  };
  const http1 = createServer(listener);
  const http2 = createHttp2Server({}, listener);
  const sessions = new Set<Http2Session>();
  http2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const sockets = new Set<Socket>();
  const tcp = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("readable", () => {
      const head = socket.read() as Buffer | null;
      if (!head) return socket.destroy();
      socket.unshift(head);
      const h2 = head.subarray(0, H2_PREFACE.length).equals(H2_PREFACE.subarray(0, Math.min(head.length, H2_PREFACE.length)));
      (h2 ? http2 : http1).emit("connection", socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once("error", (err) => reject(new Error(`cannot listen for HTTP on ${options.host}:${options.port}: ${err.message}`)));
    tcp.listen(options.port, options.host, resolve);
  });
  return {
    port: (tcp.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        http1.closeIdleConnections();
        for (const session of sessions) session.close();
        // Live-update streams never end on their own; shutdown ends them.
        setTimeout(() => sockets.forEach((s) => s.destroy()), 2_000).unref();
      }),
  };
}

/** Adds CORS headers for allowed origins and answers preflights; false when the request is fully answered. */
function applyCors(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, origins: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
  if (!origin) return true;
  if (!origins.has(origin)) {
    if (!preflight) return true;
    res.writeHead(403, { "content-type": "text/plain" });
    res.end(`origin ${origin} is not allowed to call this API (CORS_ALLOWED_ORIGINS)`);
    return false;
  }
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Vary", "Origin");
  res.setHeader("Access-Control-Expose-Headers", [...connectCors.exposedHeaders, FIELD_TRAILER].join(", "));
  if (!preflight) return true;
  res.writeHead(204, {
    "Access-Control-Allow-Methods": connectCors.allowedMethods.join(", "),
    "Access-Control-Allow-Headers": [...connectCors.allowedHeaders, "Authorization"].join(", "),
    "Access-Control-Max-Age": "7200",
  });
  res.end();
  return false;
}
