#!/usr/bin/env bash
# Local infrastructure for tests and the distributed shape, without Docker:
#   - Apache Kafka (KRaft, one broker+controller node): jars from Maven Central via mvn
#   - FerretDB v1.24.2 (MongoDB wire protocol, SQLite backend): built from its Go module
# Everything is cached under $INFRA_DIR (default .infra/, git-ignored).
#
#   infra.sh up | down | status | logs | start-kafka | stop-kafka | start-ferretdb | stop-ferretdb
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), FERRETDB_PORT (27017),
# KAFKA_VERSION (4.1.1), INFRA_DIR, PY (python with aiokafka + pymongo, default .venv/bin/python).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/deploy/local"
INFRA_DIR=${INFRA_DIR:-$ROOT/.infra}
KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
FERRETDB_VERSION=${FERRETDB_VERSION:-v1.24.2}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
FERRETDB_PORT=${FERRETDB_PORT:-27017}
PY=${PY:-$ROOT/.venv/bin/python}
export KAFKA_PORT FERRETDB_PORT
export G60_KAFKA_BOOTSTRAP=${G60_KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}
export G60_MONGO_URL=${G60_MONGO_URL:-mongodb://127.0.0.1:$FERRETDB_PORT}

LIBS="$INFRA_DIR/kafka/libs-$KAFKA_VERSION"
KAFKA_DATA="$INFRA_DIR/kafka/data"
FERRET_BIN="$INFRA_DIR/bin/ferretdb-$FERRETDB_VERSION"
LOGS="$INFRA_DIR/logs"
RUN="$INFRA_DIR/run"

say() { printf '%s\n' "infra: $*"; }
die() { printf '%s\n' "infra: $*" >&2; exit 1; }

need() {
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  if ((${#missing[@]})); then
    die "missing: ${missing[*]}. Install Java 17+, Maven and Go (Debian: apt-get install openjdk-17-jre-headless maven golang), or, with Docker, use deploy/compose.yaml instead."
  fi
}

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch_kafka() {
  [ -f "$LIBS/.complete" ] && return 0
  need java mvn
  say "fetching Apache Kafka $KAFKA_VERSION and its runtime dependencies from Maven Central (once) ..."
  rm -rf "$LIBS.partial"
  mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime -DoutputDirectory="$LIBS.partial"
  mv "$LIBS.partial" "$LIBS" && touch "$LIBS/.complete"
  say "kafka jars in $LIBS ($(ls "$LIBS" | wc -l) files)"
}

build_ferretdb() {
  [ -x "$FERRET_BIN" ] && return 0
  need go
  say "building FerretDB $FERRETDB_VERSION from its Go module (once, about a minute) ..."
  # `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds, but the binary panics
  # at start ("Invalid build/version/version.txt"): that generated file is not in the module
  # zip. So: download the same module, add the version file, and build the same main package.
  local dir src
  dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' 2>/dev/null) \
    || dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$dir" ] || die "go mod download of FerretDB $FERRETDB_VERSION failed"
  src="$INFRA_DIR/src/ferretdb-$FERRETDB_VERSION"
  rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  mkdir -p "$INFRA_DIR/bin"
  (cd "$src" && GOFLAGS=-mod=mod go build -trimpath -o "$FERRET_BIN.partial" ./cmd/ferretdb)
  mv "$FERRET_BIN.partial" "$FERRET_BIN"
  say "ferretdb at $FERRET_BIN"
}

start_kafka() {
  if alive kafka; then say "kafka already running (pid $(cat "$RUN/kafka.pid"))"; return 0; fi
  port_busy "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process (set KAFKA_PORT)"
  fetch_kafka
  mkdir -p "$KAFKA_DATA" "$LOGS" "$RUN"
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@DATA_DIR@#$KAFKA_DATA#g" "$HERE/kafka/server.properties.template" \
      >"$INFRA_DIR/kafka/server.properties"
  local java_opts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
                   "-Dlog4j2.configurationFile=$HERE/kafka/log4j2.xml" "-Dkafka.logs.dir=$LOGS")
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    say "formatting the KRaft storage (once)"
    java "${java_opts[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
      -t "$(cat "$INFRA_DIR/kafka/cluster.id" 2>/dev/null || echo g60-local-kafka-01)" \
      -c "$INFRA_DIR/kafka/server.properties" --ignore-formatted >>"$LOGS/kafka-format.log" 2>&1 \
      || { tail -20 "$LOGS/kafka-format.log"; die "kafka storage format failed"; }
  fi
  nohup java "${java_opts[@]}" -cp "$LIBS/*" kafka.Kafka "$INFRA_DIR/kafka/server.properties" \
    >"$LOGS/kafka.out" 2>&1 &
  echo $! >"$RUN/kafka.pid"
  say "kafka $KAFKA_VERSION starting on 127.0.0.1:$KAFKA_PORT (pid $!, logs $LOGS/server.log)"
}

start_ferretdb() {
  if alive ferretdb; then say "ferretdb already running (pid $(cat "$RUN/ferretdb.pid"))"; return 0; fi
  port_busy "$FERRETDB_PORT" && die "port $FERRETDB_PORT is taken by another process (set FERRETDB_PORT)"
  build_ferretdb
  mkdir -p "$INFRA_DIR/ferretdb/data" "$INFRA_DIR/ferretdb/state" "$LOGS" "$RUN"
  nohup "$FERRET_BIN" --handler=sqlite --sqlite-url="file:$INFRA_DIR/ferretdb/data/" \
    --listen-addr="127.0.0.1:$FERRETDB_PORT" --state-dir="$INFRA_DIR/ferretdb/state" \
    --telemetry=disable --debug-addr=- --log-level=warn >"$LOGS/ferretdb.log" 2>&1 &
  echo $! >"$RUN/ferretdb.pid"
  say "ferretdb $FERRETDB_VERSION starting on 127.0.0.1:$FERRETDB_PORT (pid $!, log $LOGS/ferretdb.log)"
}

stop() {
  local name=$1 port=$2 pid
  if alive "$name"; then
    pid=$(cat "$RUN/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
    say "stopped $name"
  fi
  rm -f "$RUN/$name.pid"
  for _ in $(seq 1 20); do port_busy "$port" || return 0; sleep 0.5; done
  say "warning: port $port still answers (another process?)"
}

health() { [ -x "$PY" ] || die "no $PY: run 'make install' first"; "$PY" "$HERE/healthcheck.py" "$@"; }

wait_healthy() {
  say "waiting until the servers answer (a Kafka metadata request, a FerretDB ping) ..."
  health "$@" --wait "${INFRA_WAIT:-120}" || {
    tail -30 "$LOGS/server.log" 2>/dev/null || true; tail -30 "$LOGS/kafka.out" 2>/dev/null || true
    tail -20 "$LOGS/ferretdb.log" 2>/dev/null || true
    die "not healthy; logs above and in $LOGS"
  }
}

case "${1:-}" in
  up)
    start=$(date +%s)
    if alive kafka && alive ferretdb && health kafka mongo >/dev/null 2>&1; then
      say "kafka and ferretdb already up and healthy"; exit 0
    fi
    need java mvn go
    start_ferretdb
    start_kafka
    wait_healthy kafka mongo
    say "up in $(( $(date +%s) - start )) s"
    ;;
  down) stop kafka "$KAFKA_PORT"; stop ferretdb "$FERRETDB_PORT" ;;
  start-kafka) start_kafka; wait_healthy kafka ;;
  stop-kafka) stop kafka "$KAFKA_PORT" ;;
  start-ferretdb) start_ferretdb; wait_healthy mongo ;;
  stop-ferretdb) stop ferretdb "$FERRETDB_PORT" ;;
  status)
    for s in kafka ferretdb; do
      if alive "$s"; then say "$s running (pid $(cat "$RUN/$s.pid"))"; else say "$s not running"; fi
    done
    health kafka mongo
    ;;
  logs) tail -n "${LINES:-40}" "$LOGS/server.log" "$LOGS/ferretdb.log" 2>/dev/null || say "no logs yet" ;;
  *) echo "usage: $0 up|down|status|logs|start-kafka|stop-kafka|start-ferretdb|stop-ferretdb" >&2; exit 2 ;;
esac
