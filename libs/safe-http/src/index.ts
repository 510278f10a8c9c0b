import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { BlockList, isIP } from "node:net";
import { Agent, request } from "undici";

/**
 * Outbound connections to addresses a user chose (an email attachment URL, an SMTP host, later the external-request
 * action) must not reach the cluster's own network: loopback, private, link-local (cloud metadata), carrier-grade
 * NAT, unique-local and unspecified addresses are refused unless an operator allows private targets. The check is
 * made on the addresses a connection actually uses (a lookup hook), so DNS rebinding does not get around it.
 */
const blocked = new BlockList();
for (const [net, prefix] of [["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["224.0.0.0", 4], ["240.0.0.0", 4]] as const) {
  blocked.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8]] as const) blocked.addSubnet(net, prefix, "ipv6");

/** True for an address this service must not connect to on a user's behalf. */
export function isPrivateAddress(ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return blocked.check(mapped[1]!, "ipv4");
  const family = isIP(ip);
  if (family === 0) return true;
  return blocked.check(ip, family === 4 ? "ipv4" : "ipv6");
}

/** The error a refused target gives; its message is written for the operator who chose the address. */
export class PrivateTargetRefused extends Error {
  readonly code = "EPRIVATETARGET";
  constructor(host: string, address: string) {
    super(`${host} is a private or local address (${address}); this service does not connect there on a user's behalf`);
    this.name = "PrivateTargetRefused";
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for net/tls/undici connections that refuses private addresses (unless allowed). */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const refused = allowPrivate ? undefined : addresses.find((a) => isPrivateAddress(a.address));
      if (refused) return callback(new PrivateTargetRefused(hostname, refused.address), []);
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
}

/** Refuses a literal private IP at once (connections to an IP skip the lookup hook). */
export function assertTargetAllowed(host: string, allowPrivate: boolean): void {
  const bare = host.replace(/^\[|\]$/g, "");
  if (!allowPrivate && isIP(bare) && isPrivateAddress(bare)) throw new PrivateTargetRefused(host, bare);
}

export interface FetchOptions {
  timeoutMs: number;
  maxBytes: number;
  allowPrivate: boolean;
}

/** A download that failed: `status` is the HTTP status when there was one (4xx = the URL is wrong, not transient). */
export class FetchFailed extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "FetchFailed";
  }
}

const agents = new Map<boolean, Agent>();
const agentFor = (allowPrivate: boolean) => {
  let agent = agents.get(allowPrivate);
  if (!agent) agents.set(allowPrivate, (agent = new Agent({ connect: { lookup: guardedLookup(allowPrivate) } })));
  return agent;
};

/**
 * Downloads a user-given http(s) URL with the private-target guard on every hop (redirects are followed by hand,
 * at most 3), a time limit and a size limit.
 */
export async function fetchPublic(url: string, options: FetchOptions): Promise<{ body: Buffer; contentType: string | undefined }> {
  let target = new URL(url);
  for (let hop = 0; hop <= 3; hop++) {
    if (target.protocol !== "http:" && target.protocol !== "https:") throw new FetchFailed(`${target.protocol} URLs cannot be downloaded`, 400);
    assertTargetAllowed(target.hostname, options.allowPrivate);
    const res = await request(target, { dispatcher: agentFor(options.allowPrivate), headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs, method: "GET" });
    if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) {
      await res.body.dump();
      target = new URL(String(res.headers.location), target);
      continue;
    }
    if (res.statusCode >= 400) {
      await res.body.dump();
      throw new FetchFailed(`${target.host} answered HTTP ${res.statusCode}`, res.statusCode);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > options.maxBytes) {
        res.body.destroy();
        throw new FetchFailed(`the file at ${target.host} is larger than ${options.maxBytes} bytes`, 413);
      }
      chunks.push(chunk as Buffer);
    }
    const type = res.headers["content-type"];
    return { body: Buffer.concat(chunks), contentType: Array.isArray(type) ? type[0] : type };
  }
  throw new FetchFailed(`too many redirects from ${url}`, 400);
}
