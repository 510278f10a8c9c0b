# Shared settings for the local infrastructure scripts; sourced, not run.
# Everything lives under CHATCRM_CACHE so a machine keeps one copy of the downloads and builds.

CHATCRM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHATCRM_CACHE=${CHATCRM_CACHE:-$HOME/.cache/chatcrm}

KAFKA_VERSION=3.9.1
SLF4J_VERSION=1.7.36
RELOAD4J_VERSION=1.2.25
FERRETDB_VERSION=v1.24.2
HELM_VERSION=v3.19.5

KAFKA_LIBS="$CHATCRM_CACHE/kafka-$KAFKA_VERSION/libs"
FERRETDB_BIN="$CHATCRM_CACHE/ferretdb-$FERRETDB_VERSION/ferretdb"
HELM_BIN="$CHATCRM_CACHE/helm-$HELM_VERSION/helm"
VALIDATE_VENV="$CHATCRM_CACHE/kubernetes-validate-venv"

# One infrastructure instance: a named folder with its data, logs and pids, and its own ports, so the
# developer's running system ("dev") and a test run ("test") can live side by side.
CHATCRM_INSTANCE=${CHATCRM_INSTANCE:-dev}
if [[ "$CHATCRM_INSTANCE" == "test" ]]; then
  KAFKA_PORT=${KAFKA_PORT:-19092}
  KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
  FERRETDB_PORT=${FERRETDB_PORT:-37017}
else
  KAFKA_PORT=${KAFKA_PORT:-9092}
  KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
  FERRETDB_PORT=${FERRETDB_PORT:-27017}
fi
INSTANCE_DIR="$CHATCRM_CACHE/run/$CHATCRM_INSTANCE"

# Repo-local tools first, Nx without its daemon, cloud or TUI (scripts want plain, finite output).
export PATH="$CHATCRM_ROOT/node_modules/.bin:$PATH" NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false

# Installs the npm packages when node_modules is missing or older than the lockfile.
# Not 'npm ci': the npm 11 here leaves other platforms' optional binaries (buf, swc, esbuild...) out of the
# lockfile, and 'npm ci' then refuses the lockfile as out of sync (npm/cli#8320, #4828). 'npm install' still
# installs the locked versions.
ensure_npm_packages() {
  local lock="$CHATCRM_ROOT/package-lock.json" installed="$CHATCRM_ROOT/node_modules/.package-lock.json"
  if [[ ! -f "$installed" || "$lock" -nt "$installed" ]]; then
    (cd "$CHATCRM_ROOT" && npm install --no-audit --no-fund)
  fi
}

log() { printf '[chatcrm] %s\n' "$*" >&2; }
die() { printf '[chatcrm] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
