// Bundles one service into dist/services/<name>/main.js for its container image (see bundle.mjs).
import { existsSync } from "node:fs";
import path from "node:path";
import { bundle, root } from "./bundle.mjs";

const name = process.argv[2];
const entry = path.join("services", name ?? "", "src", "main.ts");
if (!name || !existsSync(path.join(root, entry))) {
  console.error(`usage: node tools/build-service.mjs <service>; no ${entry}`);
  process.exit(2);
}
await bundle(entry, path.join("dist", "services", name, "main.js"));
