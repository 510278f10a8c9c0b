import { Agent, request } from "undici";

/** One keep-alive pool for every provider call: a send is a loopback-cheap request, not a new TCP+TLS handshake. */
const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256, pipelining: 1 });

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body parsed as JSON; undefined when it is not JSON. */
  json: unknown;
  text: string;
}

/** A call that never got an HTTP answer (refused, reset, timed out): always worth retrying. */
export class NetworkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NetworkError";
  }
}

export interface HttpCallOptions {
  method?: "GET" | "POST" | "PUT" | "DELETE";
  headers?: Record<string, string>;
  /** Sent as JSON unless it is already a string or a URLSearchParams (then form-encoded). */
  body?: unknown;
  timeoutMs: number;
}

/** Calls a provider's HTTP API; any HTTP status resolves (adapters decide what it means), transport failures throw NetworkError. */
export async function httpCall(url: string, options: HttpCallOptions): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.body instanceof URLSearchParams) {
    body = options.body.toString();
    headers["content-type"] ??= "application/x-www-form-urlencoded";
  } else if (typeof options.body === "string") {
    body = options.body;
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  try {
    const res = await request(url, {
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body,
      dispatcher: agent,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: res.headers, json, text };
  } catch (err) {
    throw new NetworkError(`${new URL(url).host}: ${(err as Error).message}`);
  }
}
