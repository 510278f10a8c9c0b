// Bundles a TypeScript entry point into one CommonJS file: our own code (service sources and libs, through the
// tsconfig path aliases) goes in; packages from node_modules stay external, because the OpenTelemetry
// instrumentations patch them as they are required. Services (tools/build-service.mjs) and benchmarks use it.
//   node tools/bundle.mjs <entry.ts> <outfile.js>
import { build } from "esbuild";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function bundle(entry, outfile) {
  await build({
    entryPoints: [path.resolve(root, entry)],
    outfile: path.resolve(root, outfile),
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    packages: "external",
    sourcemap: true,
    tsconfig: path.join(root, "tsconfig.base.json"),
    logLevel: "warning",
  });
  console.log(`built ${path.relative(root, path.resolve(root, outfile))}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [entry, outfile] = process.argv.slice(2);
  if (!entry || !outfile || !existsSync(path.resolve(root, entry))) {
    console.error("usage: node tools/bundle.mjs <entry.ts> <outfile.js>");
    process.exit(2);
  }
  await bundle(entry, outfile);
}
