// Shared Jest settings: SWC transpiles TypeScript (type checking is the typecheck target's job) and the
// tsconfig path aliases map to source, so tests run against the libraries' code, not a build.
const path = require("node:path");
const { compilerOptions } = require("./tsconfig.base.json");

const moduleNameMapper = {};
for (const [alias, [target]] of Object.entries(compilerOptions.paths)) {
  const from = "^" + alias.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === "*" ? "(.*)" : "\\" + c)) + "$";
  moduleNameMapper[from] = path.join(__dirname, target.replace("*", "$1"));
}

module.exports = {
  testEnvironment: "node",
  transform: { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022" } }] },
  moduleNameMapper,
  testMatch: ["<rootDir>/**/*.test.ts"],
  // Starts Kafka and FerretDB through deploy/local/infra.sh unless KAFKA_BROKERS and MONGO_URL are given.
  globalSetup: path.join(__dirname, "libs/testing/src/global-setup.js"),
  testTimeout: 60_000,
};
