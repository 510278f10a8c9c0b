import { execSync } from "node:child_process";
import os from "node:os";

/** What a benchmark report records about where it ran: the figures mean little without it. */
export function benchMachine() {
  let gitHead = "";
  try {
    gitHead = execSync("git rev-parse --short HEAD", { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    // Not a git checkout (an unpacked bundle): the report says so by the empty value.
  }
  return {
    nproc: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "",
    memTotalGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    gitHead,
  };
}
