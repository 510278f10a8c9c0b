import { buffer } from "node:stream/consumers";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a fake provider received, as the tests inspect it. */
export interface RecordedCall {
  method: string;
  /** The path without the query string. */
  path: string;
  headers: Record<string, string | undefined>;
  query: Record<string, string>;
  raw: Buffer;
  /** The body parsed as JSON, URL-encoded form or multipart-less form; undefined when empty or unparseable. */
  body: unknown;
  at: number;
}

export interface FakeResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type FakeHandler = (call: RecordedCall) => FakeResponse | Promise<FakeResponse>;

interface ScriptedResponse {
  match: (call: RecordedCall) => boolean;
  response: FakeResponse | ((call: RecordedCall) => FakeResponse);
  remaining: number;
}

function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString("utf8");
  try {
    if (contentType?.includes("application/x-www-form-urlencoded")) return Object.fromEntries(new URLSearchParams(text));
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}


/**
 * The HTTP part every provider fake shares: an ephemeral-port server that records each call, lets a test script
 * the next answers (a 429, a 5xx burst, a network drop) and otherwise hands the call to the fake's own handler.
 */
export class FakeServer {
  readonly calls: RecordedCall[] = [];
  private readonly scripted: ScriptedResponse[] = [];
  private readonly waiters = new Set<() => void>();

  private readonly server: Server;
  private url = "";

  private constructor(handler: FakeHandler) {
    this.server = createServer(async (req, res) => {
      const url = new URL(req.url ?? "/", "http://fake");
      const raw = await buffer(req);
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
      const call: RecordedCall = {
        method: req.method ?? "GET",
        path: url.pathname,
        headers,
        query: Object.fromEntries(url.searchParams),
        raw,
        body: parseBody(raw, headers["content-type"]),
        at: Date.now(),
      };
      this.calls.push(call);
      let response: FakeResponse | "drop";
      try {
        response = this.takeScripted(call) ?? (await handler(call));
      } catch (err) {
        response = { status: 500, body: { error: (err as Error).message } };
      }
      for (const wake of this.waiters) wake();
      if (response === "drop") {
        req.socket.destroy();
        return;
      }
      const body = response.body === undefined ? "" : typeof response.body === "string" ? response.body : JSON.stringify(response.body);
      res.writeHead(response.status, { "content-type": typeof response.body === "string" ? "text/plain" : "application/json", ...response.headers });
      res.end(body);
    });
    this.server.keepAliveTimeout = 30_000;
  }

  get baseUrl(): string {
    return this.url;
  }

  static async start(handler: FakeHandler): Promise<FakeServer> {
    const fake = new FakeServer(handler);
    await new Promise<void>((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  /** The next `times` calls matching `match` get `response` instead of the fake's normal answer. */
  script(match: (call: RecordedCall) => boolean, response: FakeResponse | ((call: RecordedCall) => FakeResponse), times = 1): void {
    this.scripted.push({ match, response, remaining: times });
  }

  /** The next `times` matching calls lose their connection without an answer (a network error for the client). */
  dropConnections(match: (call: RecordedCall) => boolean, times = 1): void {
    this.scripted.push({ match, response: () => ({ status: -1 }), remaining: times });
  }

  callsTo(pathPart: string): RecordedCall[] {
    return this.calls.filter((c) => c.path.includes(pathPart));
  }

  /** Resolves once `count` calls whose path contains `pathPart` arrived; rejects after `timeoutMs`. */
  async waitForCalls(pathPart: string, count: number, timeoutMs = 10_000): Promise<RecordedCall[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.callsTo(pathPart);
      if (found.length >= count) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} calls to ${pathPart}, got ${found.length}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 200));
        this.waiters.add(wake);
      });
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private takeScripted(call: RecordedCall): FakeResponse | "drop" | undefined {
    const entry = this.scripted.find((s) => s.remaining > 0 && s.match(call));
    if (!entry) return undefined;
    entry.remaining--;
    const response = typeof entry.response === "function" ? entry.response(call) : entry.response;
    return response.status === -1 ? "drop" : response;
  }
}

/** Posts a webhook body to the service the way a provider would; returns the status and the answer's text. */
export async function postWebhook(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
  return { status: res.status, text: await res.text() };
}
