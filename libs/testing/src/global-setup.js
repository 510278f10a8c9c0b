// Jest globalSetup for every project: makes sure a real Kafka and a real MongoDB-compatible server are there.
// With KAFKA_BROKERS and MONGO_URL set (the test command sets them, CI or a developer may point them at real
// clusters) it starts nothing. Otherwise it starts the local "test" instance through deploy/local/infra.sh,
// with this Jest process as an owner: the instance's watchdog stops it once every owner has exited, so no
// process outlives the run. Variables set here reach the test workers, which start after it.
const { execFileSync } = require("node:child_process");
const path = require("node:path");

module.exports = async function globalSetup() {
  if (process.env.KAFKA_BROKERS && process.env.MONGO_URL) return;
  const script = path.join(__dirname, "../../../deploy/local/infra.sh");
  const env = { ...process.env, CHATCRM_INSTANCE: "test", CHATCRM_INFRA_OWNER_PID: String(process.pid) };
  execFileSync("bash", [script, "start"], { env, stdio: ["ignore", "inherit", "inherit"] });
  const lines = execFileSync("bash", [script, "env"], { env, encoding: "utf8" });
  for (const [, key, value] of lines.matchAll(/^export (\w+)=(.*)$/gm)) process.env[key] = value;
};
