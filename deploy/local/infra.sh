#!/usr/bin/env bash
# Local Kafka (KRaft, one node) and FerretDB (MongoDB wire protocol, SQLite backend) as plain processes.
#
#   infra.sh start    install if needed, start both, wait until they answer; a no-op when already running
#   infra.sh stop     stop both (TERM, then KILL after a grace period)
#   infra.sh status   what runs, with pids and addresses
#   infra.sh logs     the tail of both logs (infra.sh logs -f to follow)
#   infra.sh env      the KAFKA_BROKERS / MONGO_URL lines to export
#
# CHATCRM_INSTANCE picks the instance (dev by default, test for the test command); ports come from
# KAFKA_PORT, KAFKA_CONTROLLER_PORT and FERRETDB_PORT. With CHATCRM_INFRA_OWNER_PID set, a watchdog stops
# the instance once every process that started it so has died, so a killed test run leaves no orphans. CHATCRM_INFRA_FRESH=1 wipes
# the instance's data on start.
set -euo pipefail
source "$(dirname "$0")/common.sh"

KAFKA_DIR="$INSTANCE_DIR/kafka"
FERRET_DIR="$INSTANCE_DIR/ferretdb"
# Held on fd 9 while starting or stopping; the processes started are given no fd 9, or they would hold it forever.
LOCK="$INSTANCE_DIR/.lock"

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_kafka_config() {
  mkdir -p "$KAFKA_DIR/data"
  cat >"$KAFKA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=3
# Topics are provisioned by the services (libs/kafka); a typo must fail, not create a topic.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Consumers join at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
log.retention.hours=24
PROPS
  cat >"$KAFKA_DIR/log4j.properties" <<'PROPS'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
PROPS
}

kafka_java_args() {
  echo -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
}

kafka_java() {
  # shellcheck disable=SC2046 # the options are single words
  java $(kafka_java_args) -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" -cp "$KAFKA_LIBS/*" "$@"
}

start_kafka() {
  if pid_alive "$KAFKA_DIR/pid"; then return 0; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process; set KAFKA_PORT"
  port_open "$KAFKA_CONTROLLER_PORT" && die "port $KAFKA_CONTROLLER_PORT is taken by another process; set KAFKA_CONTROLLER_PORT"
  write_kafka_config
  if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
    local cluster_id
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid)
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/format.log" 2>&1 ||
      { cat "$KAFKA_DIR/format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  log "starting Kafka on 127.0.0.1:$KAFKA_PORT"
  # shellcheck disable=SC2046
  setsid java $(kafka_java_args) -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" -cp "$KAFKA_LIBS/*" \
    kafka.Kafka "$KAFKA_DIR/server.properties" >>"$KAFKA_DIR/kafka.log" 2>&1 </dev/null 9>&- &
  echo $! >"$KAFKA_DIR/pid"
}

start_ferretdb() {
  if pid_alive "$FERRET_DIR/pid"; then return 0; fi
  port_open "$FERRETDB_PORT" && die "port $FERRETDB_PORT is taken by another process; set FERRETDB_PORT"
  mkdir -p "$FERRET_DIR/data" "$FERRET_DIR/state"
  log "starting FerretDB $FERRETDB_VERSION on 127.0.0.1:$FERRETDB_PORT"
  # Two settings that cost nothing in what is kept but a third of FerretDB's CPU under writes (profiled in the flow
  # bench, services/flow-runtime/bench/REPORT.md): the text and json log formats render every SQL statement's
  # arguments (whole documents) for a debug line the level then drops, the console format only when it prints;
  # and SQLite's statement journals go to memory instead of a temporary file written and closed per insert.
  setsid "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$FERRET_DIR/data/?_pragma=temp_store(memory)" \
    --listen-addr="127.0.0.1:$FERRETDB_PORT" --debug-addr=- --state-dir="$FERRET_DIR/state" \
    --telemetry=disable --log-level=warn --log-format=console \
    >>"$FERRET_DIR/ferretdb.log" 2>&1 </dev/null 9>&- &
  echo $! >"$FERRET_DIR/pid"
}

wait_ready() {
  local deadline=$((SECONDS + ${CHATCRM_INFRA_TIMEOUT:-90}))
  until port_open "$FERRETDB_PORT"; do
    pid_alive "$FERRET_DIR/pid" || { tail -n 20 "$FERRET_DIR/ferretdb.log" >&2; die "FerretDB exited during start-up"; }
    ((SECONDS < deadline)) || die "FerretDB did not open port $FERRETDB_PORT in time"
    sleep 0.2
  done
  # The broker port opens before the broker can serve; the log line says when it can.
  until grep -q "Kafka Server started" "$KAFKA_DIR/kafka.log" 2>/dev/null && port_open "$KAFKA_PORT"; do
    pid_alive "$KAFKA_DIR/pid" || { tail -n 30 "$KAFKA_DIR/kafka.log" >&2; die "Kafka exited during start-up"; }
    ((SECONDS < deadline)) || { tail -n 30 "$KAFKA_DIR/kafka.log" >&2; die "Kafka did not become ready in time"; }
    sleep 0.3
  done
}

stop_one() {
  local name=$1 pidfile=$2
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 20 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

start_watchdog() {
  echo "$1" >>"$INSTANCE_DIR/owners"
  pid_alive "$INSTANCE_DIR/watchdog.pid" && return 0
  # Outlives its owners by design: it is what cleans up when the last of them is killed outright.
  setsid bash -c '
    alive() { while read -r p; do kill -0 "$p" 2>/dev/null && return 0; done <"$1"; return 1; }
    while alive "$1"; do sleep 2; done
    exec bash "$2" stop' _ "$INSTANCE_DIR/owners" "$CHATCRM_ROOT/deploy/local/infra.sh" >>"$INSTANCE_DIR/watchdog.log" 2>&1 </dev/null 9>&- &
  echo $! >"$INSTANCE_DIR/watchdog.pid"
}

cmd_start() {
  bash "$CHATCRM_ROOT/deploy/local/install.sh" kafka ferretdb
  mkdir -p "$INSTANCE_DIR"
  exec 9>"$LOCK"
  flock 9
  if [[ "${CHATCRM_INFRA_FRESH:-0}" == 1 ]] && ! pid_alive "$KAFKA_DIR/pid" && ! pid_alive "$FERRET_DIR/pid"; then
    rm -rf "$KAFKA_DIR" "$FERRET_DIR"
  fi
  mkdir -p "$KAFKA_DIR" "$FERRET_DIR"
  # An instance someone started by hand (no owner) stays until they stop it: a test run that finds it running
  # uses it without becoming an owner, so its watchdog cannot pull it from under the person's other work.
  pid_alive "$KAFKA_DIR/pid" || pid_alive "$FERRET_DIR/pid" || rm -f "$INSTANCE_DIR/persistent"
  start_ferretdb
  start_kafka
  if [[ -z "${CHATCRM_INFRA_OWNER_PID:-}" ]]; then
    touch "$INSTANCE_DIR/persistent"
  elif [[ ! -f "$INSTANCE_DIR/persistent" ]]; then
    start_watchdog "$CHATCRM_INFRA_OWNER_PID"
  fi
  if ! wait_ready; then
    cmd_stop_locked
    exit 1
  fi
  log "infrastructure '$CHATCRM_INSTANCE' is ready: KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT MONGO_URL=mongodb://127.0.0.1:$FERRETDB_PORT"
}

cmd_stop_locked() {
  stop_one Kafka "$KAFKA_DIR/pid"
  stop_one FerretDB "$FERRET_DIR/pid"
  if pid_alive "$INSTANCE_DIR/watchdog.pid" && [[ "$(cat "$INSTANCE_DIR/watchdog.pid")" != "$$" ]]; then
    kill "$(cat "$INSTANCE_DIR/watchdog.pid")" 2>/dev/null || true
  fi
  rm -f "$INSTANCE_DIR/watchdog.pid" "$INSTANCE_DIR/owners" "$INSTANCE_DIR/persistent"
}

cmd_stop() {
  [[ -d "$INSTANCE_DIR" ]] || return 0
  exec 9>"$LOCK"
  flock 9
  cmd_stop_locked
}

cmd_status() {
  local name pidfile addr
  for entry in "Kafka|$KAFKA_DIR/pid|127.0.0.1:$KAFKA_PORT" "FerretDB|$FERRET_DIR/pid|127.0.0.1:$FERRETDB_PORT"; do
    IFS='|' read -r name pidfile addr <<<"$entry"
    if pid_alive "$pidfile"; then echo "$name: running (pid $(cat "$pidfile")) on $addr"; else echo "$name: stopped"; fi
  done
}

cmd_logs() {
  local files=("$KAFKA_DIR/kafka.log" "$FERRET_DIR/ferretdb.log")
  if [[ "${1:-}" == "-f" ]]; then tail -n 50 -F "${files[@]}"; else tail -n 50 "${files[@]}" 2>/dev/null || true; fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  env) printf 'export KAFKA_BROKERS=127.0.0.1:%s\nexport MONGO_URL=mongodb://127.0.0.1:%s\n' "$KAFKA_PORT" "$FERRETDB_PORT" ;;
  *) echo "usage: $0 start|stop|status|logs [-f]|env" >&2; exit 2 ;;
esac
