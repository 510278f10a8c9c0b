import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { assertTargetAllowed, fetchPublic, FetchFailed, isPrivateAddress, PrivateTargetRefused } from "./index";

describe("private-target guard", () => {
  it.each(["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "not-an-ip"])("refuses %s", (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each(["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])("allows %s", (ip) => {
    expect(isPrivateAddress(ip)).toBe(false);
  });

  it("refuses a literal private host unless private targets are allowed", () => {
    expect(() => assertTargetAllowed("169.254.169.254", false)).toThrow(PrivateTargetRefused);
    expect(() => assertTargetAllowed("[::1]", false)).toThrow(/private or local address/);
    expect(() => assertTargetAllowed("127.0.0.1", true)).not.toThrow();
  });
});

describe("fetchPublic", () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === "/big") return res.end(Buffer.alloc(2_000));
      if (req.url === "/missing") return res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/pdf" }).end("%PDF-1.4");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("refuses a loopback URL by default, and a name that resolves to loopback", async () => {
    await expect(fetchPublic(`${base}/file.pdf`, { timeoutMs: 2_000, maxBytes: 1_000, allowPrivate: false })).rejects.toThrow(PrivateTargetRefused);
    const port = new URL(base).port;
    await expect(fetchPublic(`http://localhost:${port}/file.pdf`, { timeoutMs: 2_000, maxBytes: 1_000, allowPrivate: false })).rejects.toThrow(/private or local address/);
  });

  it("downloads when private targets are allowed, with the size and status limits", async () => {
    const file = await fetchPublic(`${base}/file.pdf`, { timeoutMs: 2_000, maxBytes: 1_000, allowPrivate: true });
    expect(file.body.toString()).toBe("%PDF-1.4");
    expect(file.contentType).toBe("application/pdf");
    await expect(fetchPublic(`${base}/big`, { timeoutMs: 2_000, maxBytes: 1_000, allowPrivate: true })).rejects.toMatchObject({ status: 413 });
    await expect(fetchPublic(`${base}/missing`, { timeoutMs: 2_000, maxBytes: 1_000, allowPrivate: true })).rejects.toBeInstanceOf(FetchFailed);
  });
});
