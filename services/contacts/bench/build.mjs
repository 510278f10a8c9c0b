// Bundles the contacts benchmark into dist/bench/contacts.js, the way tools/build-service.mjs bundles a service:
// our code (service sources and libs, through the tsconfig path aliases) goes in, node_modules packages stay external.
import { build } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

await build({
  entryPoints: [path.join(root, "services/contacts/bench/contacts-bench.ts")],
  outfile: path.join(root, "dist/bench/contacts.js"),
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  packages: "external",
  sourcemap: true,
  tsconfig: path.join(root, "tsconfig.base.json"),
  logLevel: "warning",
});
console.log("built dist/bench/contacts.js");
