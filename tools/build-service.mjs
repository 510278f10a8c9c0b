// Bundles one service into dist/services/<name>/main.js for its container image.
// Our own code (libs included, through the tsconfig path aliases) goes into the bundle; packages from
// node_modules stay external, because the OpenTelemetry instrumentations patch them as they are required.
import { build } from "esbuild";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const name = process.argv[2];
const entry = path.join(root, "services", name ?? "", "src", "main.ts");
if (!name || !existsSync(entry)) {
  console.error(`usage: node tools/build-service.mjs <service>; no ${path.relative(root, entry)}`);
  process.exit(2);
}

await build({
  entryPoints: [entry],
  outfile: path.join(root, "dist", "services", name, "main.js"),
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  packages: "external",
  sourcemap: true,
  tsconfig: path.join(root, "tsconfig.base.json"),
  logLevel: "warning",
});
console.log(`built dist/services/${name}/main.js`);
