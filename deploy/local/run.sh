#!/usr/bin/env bash
# The run command (npm start): the whole system on this machine. Installs what is missing, starts Kafka and
# FerretDB (unless KAFKA_BROKERS and MONGO_URL are given), builds and starts the seven services, waits until
# the gateway reports every backend SERVING, and prints where to reach it. Ctrl-C stops everything.
#
# Every service runs on the defaults of its own config.ts (gRPC 50050-50056, the gateway's peer addresses to
# match), so ports are written down once; GATEWAY_HTTP_PORT moves the public API from 8080.
# Service logs: ~/.cache/chatcrm/run/dev/logs/<service>.log (LOG_LEVEL applies to all).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
source deploy/local/common.sh

SERVICES=()
for dir in services/*/; do SERVICES+=("$(basename "$dir")"); done
http_port=${GATEWAY_HTTP_PORT:-8080}
logs="$INSTANCE_DIR/logs"
pids=()
own_infra=0

cleanup() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    log "stopping the services"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  if ((own_infra)); then bash deploy/local/infra.sh stop; fi
  log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_npm_packages

if [[ -z "${KAFKA_BROKERS:-}" || -z "${MONGO_URL:-}" ]]; then
  own_infra=1
  CHATCRM_INFRA_OWNER_PID=$$ bash deploy/local/infra.sh start
  eval "$(bash deploy/local/infra.sh env)"
  # Our FerretDB (SQLite) never uses non-unique indexes and pays for them on every write.
  export MONGO_QUERY_INDEXES="${MONGO_QUERY_INDEXES:-false}"
fi

# The channels service encrypts channel secrets with this key. Locally it is generated once per machine and kept
# beside the instance's data; production takes it from a Secret (charts/, CHANNEL_SECRETS_KEY), never a default.
key_file="$INSTANCE_DIR/channel-secrets.key"
if [[ -z "${CHANNEL_SECRETS_KEY:-}" ]]; then
  mkdir -p "$INSTANCE_DIR"
  [[ -s "$key_file" ]] || (umask 077 && node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64"))' >"$key_file")
  CHANNEL_SECRETS_KEY=$(cat "$key_file")
fi
export CHANNEL_SECRETS_KEY

# The gateway signs access tokens with this secret; the same rule: per machine here, a Secret in production.
token_file="$INSTANCE_DIR/access-token.secret"
if [[ -z "${ACCESS_TOKEN_SECRET:-}" ]]; then
  [[ -s "$token_file" ]] || (umask 077 && node -e 'process.stdout.write(require("crypto").randomBytes(48).toString("base64"))' >"$token_file")
  ACCESS_TOKEN_SECRET=$(cat "$token_file")
fi
export ACCESS_TOKEN_SECRET

log "building the services"
nx run-many -t build --projects="$(IFS=,; echo "${SERVICES[*]}")" --outputStyle=static >/dev/null

mkdir -p "$logs"
for name in "${SERVICES[@]}"; do
  # A taken port makes the service exit with a message naming it; the wait below shows that log.
  GRPC_HOST=127.0.0.1 HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" WEBHOOK_HOST=127.0.0.1 \
    node --enable-source-maps "dist/services/$name/main.js" >>"$logs/$name.log" 2>&1 &
  pids+=($!)
  log "started $name (pid $!, log $logs/$name.log)"
done

status_url="http://127.0.0.1:$http_port/chatcrm.system.v1.SystemService/GetSystemStatus"
deadline=$((SECONDS + 90))
until curl -fsS -X POST -H 'content-type: application/json' -d '{}' "$status_url" 2>/dev/null | grep -q '"allServing":true'; do
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || { tail -n 20 "$logs/${SERVICES[$i]}.log" >&2; die "${SERVICES[$i]} exited during start-up"; }
  done
  ((SECONDS < deadline)) || die "the services did not all become ready in 90 s; see $logs"
  sleep 1
done

# First run: a demo project and its admin, with a generated password kept beside the instance's data (never a
# default password). Later runs find the admin and leave it alone.
demo_file="$INSTANCE_DIR/demo-login.txt"
demo_email=${DEMO_ADMIN_EMAIL:-admin@demo.chatcrm.local}
if [[ ! -s "$demo_file" ]]; then
  demo_password=$(node -e 'process.stdout.write(require("crypto").randomBytes(15).toString("base64url"))')
  if ADMIN_PASSWORD="$demo_password" MONGO_DATABASE=chatcrm_gateway node dist/services/gateway/main.js create-project \
    --name "Demo project" --admin-email "$demo_email" --admin-name "Demo admin" --if-absent | grep -q "created"; then
    (umask 077 && printf 'email=%s\npassword=%s\n' "$demo_email" "$demo_password" >"$demo_file")
  fi
fi
demo_password=$(sed -n 's/^password=//p' "$demo_file" 2>/dev/null || true)

cat <<MSG

  ChatCRM is running: all ${#SERVICES[@]} services report SERVING.

  Gateway (Connect JSON, gRPC-Web):  http://127.0.0.1:$http_port
  Services (gRPC, with reflection):  127.0.0.1:50050-50056 (see each services/*/README.md)
  Messenger webhooks, web widget:    http://127.0.0.1:8081 (channels; /webhooks/<messenger>/<channel>, /widget/v1/ws)
  Kafka: $KAFKA_BROKERS   MongoDB: $MONGO_URL
  Logs: $logs

  Try:  curl -X POST -H 'content-type: application/json' -d '{}' $status_url

  Demo project admin:  ${demo_email}  password: ${demo_password:-"(set on an earlier run; see $demo_file)"}
  Log in:  curl -X POST -H 'content-type: application/json' \\
             -d '{"email":"${demo_email}","password":"${demo_password:-<password>}"}' \\
             http://127.0.0.1:$http_port/chatcrm.gateway.v1.AuthService/Login
  Then see "First calls with curl" in README.md.

  Press Ctrl-C to stop everything.

MSG
wait -n "${pids[@]}" || true
log "a service exited on its own; stopping the rest"
