import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

export { freePort } from "@chatcrm/testing";

export const repoRoot = path.resolve(__dirname, "../..");
export const SERVICES = ["channels", "contacts", "flow-runtime", "identity-merge", "integrations", "export", "gateway"] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs a built service bundle, the way its container does. */
export function runService(name: string, env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, [path.join(repoRoot, "dist/services", name, "main.js")], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? "", NODE_ENV: "test", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { name, child, output: () => output, exited };
}
