#!/usr/bin/env bash
# Local infrastructure for the tests and the distributed shape, without Docker:
#   - Apache Kafka, the real broker: its jars from Maven Central (mvn), one KRaft node
#     (broker + controller) on 127.0.0.1:$KAFKA_PORT
#   - FerretDB (MongoDB wire protocol, SQLite backend), built from its Go module, on
#     127.0.0.1:$FERRETDB_PORT
# Fetched and built once, cached under $INFRA_DIR (default <repo>/.infra, git-ignored).
#
#   infra.sh up | down | status | logs
#   infra.sh start-kafka | stop-kafka | start-ferretdb | stop-ferretdb   (used by the e2e tests)
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), FERRETDB_PORT (27017),
# KAFKA_VERSION (4.1.1), FERRETDB_VERSION (v1.24.2), INFRA_DIR, INFRA_WAIT (90 s),
# KAFKA_HEAP (-Xmx768m), JAVA_HOME, PY (python with aiokafka + pymongo: .venv/bin/python).
# Docker users: deploy/compose.yaml instead.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/deploy/local"
INFRA_DIR=${INFRA_DIR:-$ROOT/.infra}
KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
FERRETDB_VERSION=${FERRETDB_VERSION:-v1.24.2}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
FERRETDB_PORT=${FERRETDB_PORT:-27017}
INFRA_WAIT=${INFRA_WAIT:-90}
PY=${PY:-$ROOT/.venv/bin/python}
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
# the health check reads these; an explicit G60_* address wins
export KAFKA_PORT FERRETDB_PORT
export G60_KAFKA_BOOTSTRAP=${G60_KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}
export G60_MONGO_URL=${G60_MONGO_URL:-mongodb://127.0.0.1:$FERRETDB_PORT}

# a fixed cluster id (base64 of 16 bytes, as Kafka's Uuid wants): the storage is formatted once
CLUSTER_ID=RzYwTG9jYWxLYWZrYTAwMQ
LIBS="$INFRA_DIR/kafka/libs-$KAFKA_VERSION"
KAFKA_DATA="$INFRA_DIR/kafka/data"
KAFKA_CONF="$INFRA_DIR/kafka/server.properties"
FERRET_BIN="$INFRA_DIR/bin/ferretdb-$FERRETDB_VERSION"
FERRET_DATA="$INFRA_DIR/ferretdb/data"
FERRET_STATE="$INFRA_DIR/ferretdb/state"
LOGS="$INFRA_DIR/logs"
RUN="$INFRA_DIR/run"

say() { printf 'infra: %s\n' "$*"; }
die() { printf 'infra: %s\n' "$*" >&2; exit 1; }

# ---- prerequisites -------------------------------------------------------------------------

java_major() { "$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
go_minor() { go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p'; }

need() {  # need java mvn go: every missing tool named at once
  local missing=() tool v
  for tool in "$@"; do
    case $tool in
      java) command -v "$JAVA" >/dev/null 2>&1 || { missing+=("java (17+)"); continue; }
            v=$(java_major || true); ((${v:-0} >= 17)) \
              || missing+=("java 17+ (found $("$JAVA" -version 2>&1 | head -1); set JAVA_HOME)") ;;
      go) command -v go >/dev/null 2>&1 || { missing+=("go (1.21+)"); continue; }
          v=$(go_minor || true); ((${v:-0} >= 21)) \
            || missing+=("go 1.21+ (found $(go env GOVERSION); it fetches the 1.24 toolchain FerretDB needs)") ;;
      *) command -v "$tool" >/dev/null 2>&1 || missing+=("$tool") ;;
    esac
  done
  ((${#missing[@]} == 0)) && return 0
  {
    printf 'infra: missing: %s\n' "$(IFS=,; echo "${missing[*]}" | sed 's/,/, /g')"
    echo "  The tests start a real Kafka (jars fetched by Maven, run by Java 17+) and FerretDB"
    echo "  (built by Go) once, into $INFRA_DIR. On Debian/Ubuntu:"
    echo "    sudo apt-get install openjdk-17-jre-headless maven golang"
    echo "  With Docker instead: docker compose -f deploy/compose.yaml up (see deploy/README.md)."
    echo "  'make run' needs none of these (embedded bus and SQLite)."
  } >&2
  exit 1
}

need_py() {
  [ -x "$PY" ] || die "no $PY (the health check needs aiokafka and pymongo): run 'make install' first"
}

# ---- processes and ports -------------------------------------------------------------------

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_owner() {  # "pid command" of the listener on a port, if ss can tell
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\2 \1/p' | head -1
}
port_free_or_die() {
  port_busy "$1" || return 0
  die "port $1 is taken by another process ($(port_owner "$1" || true)); stop it or set $2"
}

health() { need_py; "$PY" "$HERE/healthcheck.py" "$@"; }

wait_healthy() {  # wait_healthy kafka mongo: bounded, with progress dots; logs on failure
  local args=() s name
  for s in "$@"; do
    name=$([ "$s" = mongo ] && echo ferretdb || echo "$s")
    alive "$name" && args+=(--pid "$s=$(pid_of "$name")")
  done
  say "waiting up to $INFRA_WAIT s until $* answer (Kafka: a metadata request, FerretDB: a ping)"
  if ! health "$@" --wait "$INFRA_WAIT" "${args[@]}"; then
    for log in "$LOGS/kafka.log" "$LOGS/kafka.out" "$LOGS/ferretdb.log"; do
      [ -s "$log" ] && { echo "---- tail $log"; tail -n 25 "$log"; }
    done
    die "not healthy; full logs in $LOGS ('make infra-logs')"
  fi
}

stop() {  # stop NAME PORT...: SIGTERM, wait, SIGKILL; then make sure the ports are free
  local name=$1 pid owner port
  shift
  if alive "$name"; then
    pid=$(pid_of "$name")
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name did not stop in 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$RUN/$name.pid"
  for port in "$@"; do
    for _ in $(seq 1 20); do port_busy "$port" || continue 2; sleep 0.5; done
    # still taken: ours only if its command line names this INFRA_DIR (a lost pid file)
    owner=$(port_owner "$port" | cut -d' ' -f1)
    if [ -n "$owner" ] && tr '\0' ' ' <"/proc/$owner/cmdline" 2>/dev/null | grep -qF "$INFRA_DIR/"; then
      say "port $port held by an orphaned $name of $INFRA_DIR (pid $owner): SIGKILL"
      kill -KILL "$owner" 2>/dev/null || true
      sleep 1
    fi
    port_busy "$port" && die "port $port is still taken ($(port_owner "$port" || true)), not by this $INFRA_DIR"
  done
  return 0
}

# ---- fetch and build once ------------------------------------------------------------------

kafka_fetched() { [ "$(cat "$LIBS/.complete" 2>/dev/null)" = "$KAFKA_VERSION" ]; }
ferretdb_built() { [ -x "$FERRET_BIN" ]; }

fetch_kafka() {  # the broker jar (kafka_2.13) and its runtime dependencies, from Maven Central
  rm -rf "$LIBS.partial"
  mvn -q -B -f "$HERE/kafka/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime -DoutputDirectory="$LIBS.partial"
  rm -rf "$LIBS" && mv "$LIBS.partial" "$LIBS" && echo "$KAFKA_VERSION" >"$LIBS/.complete"
}

build_ferretdb() {
  # `GOBIN=... go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds, but that
  # binary panics at start ("Invalid build/version/version.txt"): the file is generated by
  # FerretDB's own build and is not in the module zip. So: download the same module, write the
  # version file, and build the same main package from it.
  local dir src
  dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "go mod download of FerretDB $FERRETDB_VERSION failed"; return 1; }
  src="$INFRA_DIR/src/ferretdb-$FERRETDB_VERSION"
  rm -rf "$src" && mkdir -p "$INFRA_DIR/src" "$INFRA_DIR/bin" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  echo "local" >"$src/build/version/package.txt"
  (cd "$src" && GOFLAGS=-mod=mod go build -trimpath -o "$FERRET_BIN.partial" ./cmd/ferretdb)
  mv "$FERRET_BIN.partial" "$FERRET_BIN"
}

prepare() {  # prepare kafka ferretdb: fetch/build what is missing, in parallel, with progress
  local want=() pids=() names=() t0=$SECONDS i rc=0 running pid s
  mkdir -p "$LOGS"
  for s in "$@"; do
    case $s in
      kafka) kafka_fetched || want+=(kafka) ;;
      ferretdb) ferretdb_built || want+=(ferretdb) ;;
    esac
  done
  ((${#want[@]})) || return 0
  for s in "${want[@]}"; do
    case $s in
      kafka) need java mvn
             say "fetching Apache Kafka $KAFKA_VERSION and its dependencies from Maven Central (once; log $LOGS/fetch-kafka.log)"
             fetch_kafka >"$LOGS/fetch-kafka.log" 2>&1 & ;;
      ferretdb) need go
                say "building FerretDB $FERRETDB_VERSION from its Go module (once, a minute or two; log $LOGS/build-ferretdb.log)"
                build_ferretdb >"$LOGS/build-ferretdb.log" 2>&1 & ;;
    esac
    pids+=($!) names+=("$s")
  done
  printf 'infra: '
  while true; do
    running=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
    ((running)) || break
    printf '.'; sleep 2
  done
  echo " ($((SECONDS - t0)) s)"
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
      case ${names[$i]} in
        kafka) say "kafka: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS" ;;
        ferretdb) say "ferretdb: $FERRET_BIN ($("$FERRET_BIN" --version | head -1))" ;;
      esac
    else
      rc=1
      local log="$LOGS/$([ "${names[$i]}" = kafka ] && echo fetch-kafka || echo build-ferretdb).log"
      echo "---- tail $log" >&2; tail -n 30 "$log" >&2
      say "${names[$i]}: FAILED (see $log)"
    fi
  done
  ((rc == 0)) || die "could not fetch/build; nothing started"
}

# ---- start ---------------------------------------------------------------------------------

start_kafka() {
  if alive kafka; then say "kafka already running (pid $(pid_of kafka))"; return 0; fi
  port_free_or_die "$KAFKA_PORT" KAFKA_PORT
  port_free_or_die "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT
  prepare kafka
  mkdir -p "$KAFKA_DATA" "$LOGS" "$RUN"
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@DATA_DIR@#$KAFKA_DATA#g" "$HERE/kafka/server.properties.template" >"$KAFKA_CONF"
  # shellcheck disable=SC2206
  local java_opts=(-Xms256m ${KAFKA_HEAP:--Xmx768m} -XX:+UseG1GC -Djava.awt.headless=true
                   "-Dlog4j2.configurationFile=$HERE/kafka/log4j2.xml" "-Dkafka.logs.dir=$LOGS")
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    say "formatting the KRaft storage in $KAFKA_DATA (once)"
    "$JAVA" "${java_opts[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
      --cluster-id "$CLUSTER_ID" --config "$KAFKA_CONF" --ignore-formatted \
      >"$LOGS/kafka-format.log" 2>&1 \
      || { tail -n 20 "$LOGS/kafka-format.log" >&2; die "formatting the Kafka storage failed"; }
  fi
  nohup "$JAVA" "${java_opts[@]}" -cp "$LIBS/*" kafka.Kafka "$KAFKA_CONF" \
    >"$LOGS/kafka.out" 2>&1 </dev/null &
  echo $! >"$RUN/kafka.pid"
  say "kafka $KAFKA_VERSION starting on 127.0.0.1:$KAFKA_PORT, controller :$KAFKA_CONTROLLER_PORT (pid $!, log $LOGS/kafka.log)"
}

start_ferretdb() {
  if alive ferretdb; then say "ferretdb already running (pid $(pid_of ferretdb))"; return 0; fi
  port_free_or_die "$FERRETDB_PORT" FERRETDB_PORT
  prepare ferretdb
  mkdir -p "$FERRET_DATA" "$FERRET_STATE" "$LOGS" "$RUN"
  # --debug-addr=- : no debug/metrics HTTP listener; --telemetry=disable : no call home
  nohup "$FERRET_BIN" --handler=sqlite --sqlite-url="file:$FERRET_DATA/" \
    --listen-addr="127.0.0.1:$FERRETDB_PORT" --state-dir="$FERRET_STATE" \
    --telemetry=disable --debug-addr=- --log-level=warn \
    >>"$LOGS/ferretdb.log" 2>&1 </dev/null &
  echo $! >"$RUN/ferretdb.pid"
  say "ferretdb $FERRETDB_VERSION starting on 127.0.0.1:$FERRETDB_PORT (pid $!, log $LOGS/ferretdb.log)"
}

# ---- status and logs -----------------------------------------------------------------------

status_line() {  # status_line NAME PROBE PORT: one line; non-zero when not answering
  local name=$1 probe=$2 port=$3 proc answer rc=0
  if alive "$name"; then proc="running (pid $(pid_of "$name"))"; else proc="not running"; fi
  if health "$probe" --quiet; then answer=healthy; else answer="NOT answering"; rc=1; fi
  if ! alive "$name" && ((rc == 0)); then proc="not started by this script ($(port_owner "$port" || true))"; fi
  printf 'infra: %-8s 127.0.0.1:%-6s %-14s %s\n' "$name" "$port" "$answer" "$proc"
  return $rc
}

status() {
  local rc=0
  status_line kafka kafka "$KAFKA_PORT" || rc=1
  status_line ferretdb mongo "$FERRETDB_PORT" || rc=1
  return $rc
}

logs() {
  local files=() f
  for f in "$LOGS/kafka.log" "$LOGS/ferretdb.log"; do [ -f "$f" ] && files+=("$f"); done
  ((${#files[@]})) || { say "no logs yet in $LOGS"; return 0; }
  if [ -t 1 ] && [ "${FOLLOW:-1}" = 1 ]; then
    tail -n "${LINES_SHOWN:-40}" -F "${files[@]}"  # Ctrl-C to stop
  else
    tail -n "${LINES_SHOWN:-40}" "${files[@]}"
  fi
}

# ---- commands ------------------------------------------------------------------------------

up() {
  local t0=$SECONDS
  need_py
  if alive kafka && alive ferretdb && health kafka mongo --quiet; then
    say "kafka (pid $(pid_of kafka), :$KAFKA_PORT) and ferretdb (pid $(pid_of ferretdb), :$FERRETDB_PORT) already up and healthy"
    return 0
  fi
  local tools=(java)
  kafka_fetched || tools+=(mvn)
  ferretdb_built || tools+=(go)
  need "${tools[@]}"
  prepare kafka ferretdb
  start_ferretdb
  start_kafka
  wait_healthy kafka mongo
  say "up in $((SECONDS - t0)) s: Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT, FerretDB $FERRETDB_VERSION on 127.0.0.1:$FERRETDB_PORT"
}

case "${1:-}" in
  up) up ;;
  down) stop kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; stop ferretdb "$FERRETDB_PORT"
        say "down: ports $KAFKA_PORT, $KAFKA_CONTROLLER_PORT, $FERRETDB_PORT are free" ;;
  status) status ;;
  logs) logs ;;
  start-kafka) need_py; need java; start_kafka; wait_healthy kafka ;;
  stop-kafka) stop kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" ;;
  start-ferretdb) need_py; start_ferretdb; wait_healthy mongo ;;
  stop-ferretdb) stop ferretdb "$FERRETDB_PORT" ;;
  *) echo "usage: $0 up|down|status|logs|start-kafka|stop-kafka|start-ferretdb|stop-ferretdb" >&2
     exit 2 ;;
esac
