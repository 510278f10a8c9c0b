import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ConnectRouter } from "@connectrpc/connect";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface PublicApiServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The public Connect API over HTTP/1.1: Connect JSON/binary and gRPC-Web, so browsers and curl can call it.
 * Unknown paths get a 404 from the adapter.
 */
export async function listenPublicApi(routes: (router: ConnectRouter) => void, host: string, port: number, maxBodyBytes: number): Promise<PublicApiServer> {
  const handler = connectNodeAdapter({ routes, readMaxBytes: maxBodyBytes });
  const server: Server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`cannot listen for HTTP on ${host}:${port}: ${err.message}`)));
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
