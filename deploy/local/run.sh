#!/usr/bin/env bash
# The run command (npm start): the whole system on this machine. Installs what is missing, starts Kafka and
# FerretDB (unless KAFKA_BROKERS and MONGO_URL are given), builds and starts the seven services, waits until
# the gateway reports every backend SERVING, and prints where to reach it. Ctrl-C stops everything.
#
# Ports: GATEWAY_HTTP_PORT (8080) and CHATCRM_GRPC_BASE_PORT (50050: gateway, then the others upwards).
# Service logs: ~/.cache/chatcrm/run/dev/logs/<service>.log (LOG_LEVEL applies to all).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
source deploy/local/common.sh
export PATH="$root/node_modules/.bin:$PATH" NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false

SERVICES=(gateway channels contacts flow-runtime identity-merge integrations export)
http_port=${GATEWAY_HTTP_PORT:-8080}
base_port=${CHATCRM_GRPC_BASE_PORT:-50050}
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

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "installing npm packages"
  # Not 'npm ci': the npm 11 here leaves other platforms' optional binaries (buf, swc, esbuild...) out of the
  # lockfile, and 'npm ci' then refuses the lockfile as out of sync (npm/cli#8320, #4828). 'npm install' still
  # installs the locked versions.
  npm install --no-audit --no-fund
fi

if [[ -z "${KAFKA_BROKERS:-}" || -z "${MONGO_URL:-}" ]]; then
  own_infra=1
  CHATCRM_INFRA_OWNER_PID=$$ bash deploy/local/infra.sh start
  eval "$(bash deploy/local/infra.sh env)"
fi

log "building the services"
nx run-many -t build --projects="$(IFS=,; echo "${SERVICES[*]}")" --outputStyle=static >/dev/null

mkdir -p "$logs"
grpc_addr() { local i; for i in "${!SERVICES[@]}"; do [[ "${SERVICES[$i]}" == "$1" ]] && echo "127.0.0.1:$((base_port + i))"; done; }
for i in "${!SERVICES[@]}"; do
  name=${SERVICES[$i]}
  port=$((base_port + i))
  port_open "$port" && die "port $port (for $name) is taken; set CHATCRM_GRPC_BASE_PORT"
  env GRPC_HOST=127.0.0.1 GRPC_PORT="$port" HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" \
    CHANNELS_GRPC_ADDR="$(grpc_addr channels)" CONTACTS_GRPC_ADDR="$(grpc_addr contacts)" \
    FLOW_RUNTIME_GRPC_ADDR="$(grpc_addr flow-runtime)" IDENTITY_MERGE_GRPC_ADDR="$(grpc_addr identity-merge)" \
    INTEGRATIONS_GRPC_ADDR="$(grpc_addr integrations)" EXPORT_GRPC_ADDR="$(grpc_addr export)" \
    node --enable-source-maps "dist/services/$name/main.js" >>"$logs/$name.log" 2>&1 &
  pids+=($!)
  log "started $name (pid $!, gRPC $port, log $logs/$name.log)"
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

cat <<MSG

  ChatCRM is running: all seven services report SERVING.

  Gateway (Connect JSON, gRPC-Web):  http://127.0.0.1:$http_port
  Gateway and services (gRPC):       127.0.0.1:$base_port-$((base_port + ${#SERVICES[@]} - 1))
  Kafka: $KAFKA_BROKERS   MongoDB: $MONGO_URL
  Logs: $logs

  Try:  curl -X POST -H 'content-type: application/json' -d '{}' $status_url

  Press Ctrl-C to stop everything.

MSG
wait -n "${pids[@]}" || true
log "a service exited on its own; stopping the rest"
