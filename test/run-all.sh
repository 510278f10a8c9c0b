#!/usr/bin/env bash
# The test command (npm test): every check and every test, on a fresh machine too. It installs what is
# missing (npm packages, Kafka jars, FerretDB, helm, kubernetes-validate), starts the local test
# infrastructure unless KAFKA_BROKERS and MONGO_URL are given, and stops it again however the run ends.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source deploy/local/common.sh
export FORCE_COLOR=0
started=$SECONDS
step() { printf '\n==> %s\n' "$*"; }

step "npm packages"
ensure_npm_packages

step "tools for the infrastructure and chart checks"
bash deploy/local/install.sh all

step "contracts: lint, breaking changes, generated code"
buf lint proto
if git rev-parse --verify -q HEAD~1 >/dev/null && git cat-file -e HEAD~1:proto/buf.yaml 2>/dev/null; then
  buf breaking proto --against ".git#ref=HEAD~1,subdir=proto"
  echo "no breaking changes against the previous commit"
else
  echo "no previous commit with proto/ to compare against; buf breaking skipped"
fi
bash proto/generate.sh --check

if [[ -z "${KAFKA_BROKERS:-}" || -z "${MONGO_URL:-}" ]]; then
  step "local test infrastructure (Kafka, FerretDB)"
  export CHATCRM_INSTANCE=test CHATCRM_INFRA_FRESH=1 CHATCRM_INFRA_OWNER_PID=$$
  trap 'bash "$root/deploy/local/infra.sh" stop' EXIT
  bash deploy/local/infra.sh start
  eval "$(bash deploy/local/infra.sh env)"
fi

step "lint, typecheck, build and tests of every project (Nx)"
rm -rf dist/test-results
nx run-many -t lint typecheck build test --outputStyle=static

step "Helm chart: lint, render, validate against the Kubernetes schemas, template tests"
bash charts/chatcrm/test.sh

step "summary"
node -e '
  const fs = require("fs"), dir = "dist/test-results";
  let passed = 0, failed = 0, suites = 0;
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const r = JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; suites += r.numTotalTestSuites;
  }
  if (passed + failed === 0) { console.error("no test ran"); process.exit(1); }
  console.log(`${suites} test suites in ${fs.readdirSync(dir).length} projects`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
'
echo "all checks passed in $((SECONDS - started)) s"
