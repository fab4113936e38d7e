#!/usr/bin/env bash
# Local infrastructure for the tests and the distributed shape, without Docker:
#   - Apache Kafka, the real broker: its jars from Maven Central (mvn), one KRaft node
#     (broker + controller) on 127.0.0.1:$KAFKA_PORT
#   - PostgreSQL (the Debian package's binaries), a cluster of its own created once under
#     $INFRA_DIR/postgres (not the system cluster), on 127.0.0.1:$POSTGRES_PORT; run as the
#     `postgres` user when this script runs as root (PostgreSQL refuses to run as root)
#   - FerretDB (MongoDB wire protocol) on that PostgreSQL (`--handler=postgresql`), built from
#     its Go module, on 127.0.0.1:$FERRETDB_PORT. PostgreSQL, not SQLite: FerretDB's SQLite
#     backend scans on every filter (find by an indexed field over 5,000 documents: 522 ms on
#     SQLite, 7 ms on PostgreSQL).
# Fetched and built once, cached under $INFRA_DIR (default <repo>/.infra, git-ignored).
#
#   infra.sh up | down | status | logs
#   infra.sh start-kafka | stop-kafka | start-ferretdb | stop-ferretdb | start-postgres |
#            stop-postgres   (used by the e2e fault tests)
#   KAFKA_NODES=3 infra.sh start-kafka | stop-kafka   a three-node KRaft cluster (replication
#            factor 3, min.insync.replicas 2) on KAFKA_PORT+2..+7; infra.sh kill-node N |
#            start-node N | cluster-bootstrap   (the failover test in `make chaos`)
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), FERRETDB_PORT (27017),
# POSTGRES_PORT (54329), KAFKA_VERSION (4.1.1), FERRETDB_VERSION (v1.24.2), INFRA_DIR,
# INFRA_WAIT (90 s), KAFKA_HEAP (-Xmx768m), KAFKA_JVM (-XX:+UseG1GC),
# JAVA_HOME, PG_BIN (the newest
# /usr/lib/postgresql/*/bin, else the directory of pg_ctl on PATH),
# PY (python with aiokafka + pymongo: .venv/bin/python).
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
POSTGRES_PORT=${POSTGRES_PORT:-54329}
# KAFKA_NODES=3: a three-node KRaft cluster instead of the single node (failover tests); node
# i (1-3) listens on KAFKA_PORT+2i, its controller on KAFKA_PORT+2i+1
KAFKA_NODES=${KAFKA_NODES:-1}
INFRA_WAIT=${INFRA_WAIT:-90}
PY=${PY:-$ROOT/.venv/bin/python}
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
# the health check reads these; an explicit G60_* address wins
export KAFKA_PORT FERRETDB_PORT
if ((KAFKA_NODES == 3)); then
  export G60_KAFKA_BOOTSTRAP=127.0.0.1:$((KAFKA_PORT + 2)),127.0.0.1:$((KAFKA_PORT + 4)),127.0.0.1:$((KAFKA_PORT + 6))
else
  export G60_KAFKA_BOOTSTRAP=${G60_KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}
fi
export G60_MONGO_URL=${G60_MONGO_URL:-mongodb://127.0.0.1:$FERRETDB_PORT}

# fixed cluster ids (base64 of 16 bytes, as Kafka's Uuid wants): the storage is formatted once
CLUSTER_ID=RzYwTG9jYWxLYWZrYTAwMQ
CLUSTER3_ID=RzYwTG9jYWxLYWZrYTAwMw
LIBS="$INFRA_DIR/kafka/libs-$KAFKA_VERSION"
KAFKA_DATA="$INFRA_DIR/kafka/data"
KAFKA_CONF="$INFRA_DIR/kafka/server.properties"
FERRET_BIN="$INFRA_DIR/bin/ferretdb-$FERRETDB_VERSION"
FERRET_STATE="$INFRA_DIR/ferretdb/state"
PG_DIR="$INFRA_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_SOCKETS="$PG_DIR/sockets"  # unix sockets here, not in the system's /var/run/postgresql
PG_DATABASE=ferretdb
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
    kill -"${STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
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

kafka_java_opts() {  # kafka_java_opts LOGDIR
  # KAFKA_JVM: the broker's GC and JIT (G1 and both JIT tiers by default). Measured on a broker
  # just started (docs/decisions.md, stored forms and fetches): C1 only
  # (-XX:TieredStopAtLevel=1) halved its CPU in its first minutes (idle 36-41 -> 22 ms/s; at 40
  # needs/s 8-11 -> 5-6 ms per need) but a warm default broker does better (3-5 ms per need) and
  # bench-flow's raw consumer baseline read half as fast (one run): not the default. SerialGC: no
  # difference from G1.
  # shellcheck disable=SC2206
  JAVA_OPTS=(-Xms256m ${KAFKA_HEAP:--Xmx768m} ${KAFKA_JVM:--XX:+UseG1GC}
             -Djava.awt.headless=true
             "-Dlog4j2.configurationFile=$HERE/kafka/log4j2.xml" "-Dkafka.logs.dir=$1")
}

kafka_conf() {  # kafka_conf OUT NODE_ID PORT CONTROLLER_PORT DATA VOTERS REPLICAS MIN_ISR
  sed -e "s#@NODE_ID@#$2#g" -e "s#@KAFKA_PORT@#$3#g" -e "s#@CONTROLLER_PORT@#$4#g" \
      -e "s#@DATA_DIR@#$5#g" -e "s#@VOTERS@#$6#g" -e "s#@REPLICAS@#$7#g" -e "s#@MIN_ISR@#$8#g" \
      "$HERE/kafka/server.properties.template" >"$1"
}

kafka_format() {  # kafka_format CONF DATA CLUSTER_ID LOG
  [ -f "$2/meta.properties" ] && return 0
  say "formatting the KRaft storage in $2 (once)"
  "$JAVA" "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
    --cluster-id "$3" --config "$1" --ignore-formatted >"$4" 2>&1 \
    || { tail -n 20 "$4" >&2; die "formatting the Kafka storage failed"; }
}

start_kafka() {
  if ((KAFKA_NODES == 3)); then start_cluster; return; fi
  if alive kafka; then say "kafka already running (pid $(pid_of kafka))"; return 0; fi
  port_free_or_die "$KAFKA_PORT" KAFKA_PORT
  port_free_or_die "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT
  prepare kafka
  mkdir -p "$KAFKA_DATA" "$LOGS" "$RUN"
  kafka_conf "$KAFKA_CONF" 1 "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_DATA" \
    "1@127.0.0.1:$KAFKA_CONTROLLER_PORT" 1 1
  kafka_java_opts "$LOGS"
  kafka_format "$KAFKA_CONF" "$KAFKA_DATA" "$CLUSTER_ID" "$LOGS/kafka-format.log"
  nohup "$JAVA" "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$KAFKA_CONF" \
    >"$LOGS/kafka.out" 2>&1 </dev/null &
  echo $! >"$RUN/kafka.pid"
  say "kafka $KAFKA_VERSION starting on 127.0.0.1:$KAFKA_PORT, controller :$KAFKA_CONTROLLER_PORT (pid $!, log $LOGS/kafka.log)"
}

# ---- the three-node cluster (KAFKA_NODES=3) ----------------------------------------------------

node_port() { echo $((KAFKA_PORT + 2 * $1)); }
node_controller_port() { echo $((KAFKA_PORT + 2 * $1 + 1)); }
cluster_bootstrap() { echo "127.0.0.1:$(node_port 1),127.0.0.1:$(node_port 2),127.0.0.1:$(node_port 3)"; }

start_node() {  # start_node I: one broker + controller of the cluster
  local i=$1 dir="$INFRA_DIR/kafka-cluster/node-$1" voters port cport
  if alive "kafka-$i"; then say "kafka node $i already running (pid $(pid_of "kafka-$i"))"; return 0; fi
  port=$(node_port "$i") cport=$(node_controller_port "$i")
  port_free_or_die "$port" KAFKA_PORT
  port_free_or_die "$cport" KAFKA_PORT
  prepare kafka
  mkdir -p "$dir/data" "$LOGS/kafka-$i" "$RUN"
  voters="1@127.0.0.1:$(node_controller_port 1),2@127.0.0.1:$(node_controller_port 2),3@127.0.0.1:$(node_controller_port 3)"
  kafka_conf "$dir/server.properties" "$i" "$port" "$cport" "$dir/data" "$voters" 3 2
  kafka_java_opts "$LOGS/kafka-$i"
  kafka_format "$dir/server.properties" "$dir/data" "$CLUSTER3_ID" "$LOGS/kafka-$i/format.log"
  nohup "$JAVA" "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
    >"$LOGS/kafka-$i/kafka.out" 2>&1 </dev/null &
  echo $! >"$RUN/kafka-$i.pid"
  say "kafka node $i starting on 127.0.0.1:$port, controller :$cport (pid $!, log $LOGS/kafka-$i/kafka.log)"
}

start_cluster() { local i; for i in 1 2 3; do start_node "$i"; done; }

stop_cluster() {
  local i
  for i in 1 2 3; do stop "kafka-$i" "$(node_port "$i")" "$(node_controller_port "$i")"; done
}

kill_node() {  # kill_node I: SIGKILL, as a crash
  local pid
  pid=$(pid_of "kafka-$1")
  [ -n "$pid" ] || die "kafka node $1 is not running"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/kafka-$1.pid"
  say "kafka node $1 (pid $pid) killed with SIGKILL"
}

start_ferretdb() {
  if alive ferretdb; then say "ferretdb already running (pid $(pid_of ferretdb))"; return 0; fi
  port_free_or_die "$FERRETDB_PORT" FERRETDB_PORT
  prepare ferretdb
  mkdir -p "$FERRET_STATE" "$LOGS" "$RUN"
  # --debug-addr=- : no debug/metrics HTTP listener; --telemetry=disable : no call home.
  # pool_max_conns: FerretDB 1.24 deadlocks when every connection of its PostgreSQL pool is
  # held by an update that waits for another one (measured: 100 concurrent update_one with
  # the default pool of 50 hung it for good, `ping` included). The platform's clients keep
  # their own pools small (G60_MONGO_MAX_POOL); this pool is larger than all of them together.
  nohup "$FERRET_BIN" --handler=postgresql \
    --postgresql-url="postgres://postgres@127.0.0.1:$POSTGRES_PORT/$PG_DATABASE?pool_max_conns=${FERRETDB_PG_POOL:-240}" \
    --listen-addr="127.0.0.1:$FERRETDB_PORT" --state-dir="$FERRET_STATE" \
    --telemetry=disable --debug-addr=- --log-level=warn \
    >>"$LOGS/ferretdb.log" 2>&1 </dev/null &
  echo $! >"$RUN/ferretdb.pid"
  say "ferretdb $FERRETDB_VERSION starting on 127.0.0.1:$FERRETDB_PORT on PostgreSQL :$POSTGRES_PORT (pid $!, log $LOGS/ferretdb.log)"
}

# ---- PostgreSQL: a cluster of our own ------------------------------------------------------

pg_bin() {  # the directory of initdb/postgres/pg_isready: PG_BIN, the newest Debian one, PATH
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -n "$d" ]; then echo "$d"; return; fi
  d=$(command -v pg_ctl 2>/dev/null || true)
  [ -n "$d" ] && dirname "$d"
}

need_pg() {
  local bin
  bin=$(pg_bin)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/postgres" ]; then
    {
      echo "infra: missing: PostgreSQL (initdb, postgres; 15 or later)"
      echo "  FerretDB stores its data in PostgreSQL; this script creates a cluster of its own"
      echo "  under $INFRA_DIR. On Debian/Ubuntu: sudo apt-get install postgresql"
      echo "  (or set PG_BIN to the directory holding initdb and postgres)."
    } >&2
    exit 1
  fi
}

pg_user_prefix() {  # how to run a PostgreSQL binary unprivileged: as `postgres` when root
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root and there is no 'postgres' user to run PostgreSQL as"
    PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)  # execs: same pid
  else
    PG_AS=()
  fi
}
as_pg() { pg_user_prefix; "${PG_AS[@]}" "$@"; }

pg_dirs() {  # the cluster's directories, owned by whoever runs PostgreSQL
  mkdir -p "$PG_DIR" "$PG_SOCKETS" "$LOGS" "$RUN"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_DIR" "$PG_SOCKETS"
    [ -d "$PG_DATA" ] && chown -R postgres: "$PG_DATA"
    as_pg test -w "$PG_DIR" 2>/dev/null || die "the postgres user cannot write $PG_DIR (a parent \
directory is not searchable by it?): set INFRA_DIR to a directory it can reach, e.g. /var/tmp/g60-infra"
  fi
  chmod 0755 "$PG_DIR" "$PG_SOCKETS"
}

pg_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -d postgres -U postgres; }

start_postgres() {
  if alive postgres; then say "postgres already running (pid $(pid_of postgres))"; return 0; fi
  need_pg
  port_free_or_die "$POSTGRES_PORT" POSTGRES_PORT
  pg_dirs
  local bin
  bin=$(pg_bin)
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    say "creating a PostgreSQL $("$bin/postgres" --version | awk '{print $3}') cluster in $PG_DATA (once)"
    rm -rf "$PG_DATA"
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale \
      >"$LOGS/postgres-initdb.log" 2>&1 \
      || { tail -n 20 "$LOGS/postgres-initdb.log" >&2; die "initdb failed"; }
  fi
  # Local test cluster: listens on 127.0.0.1 only, trust auth (like Kafka and FerretDB here).
  # plan_cache_mode: FerretDB's prepared statements name the filtered field as a parameter;
  # only a plan made for the actual field can use the GIN indexes of postgres/ferretdb-gin.sql.
  # fsync=off: a killed process loses nothing (the WAL is written before a commit returns),
  # only a crash of the whole machine could; it keeps a shared, slow disk out of the tests.
  pg_user_prefix
  nohup "${PG_AS[@]}" "$bin/postgres" -D "$PG_DATA" -p "$POSTGRES_PORT" -k "$PG_SOCKETS" \
    -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
    -c max_connections=300 -c shared_buffers=128MB -c log_min_messages=warning \
    -c plan_cache_mode=force_custom_plan \
    >>"$LOGS/postgres.log" 2>&1 </dev/null &
  local pid=$!  # the postmaster itself (setpriv execs it)
  echo "$pid" >"$RUN/postgres.pid"
  say "postgres starting on 127.0.0.1:$POSTGRES_PORT (pid $pid, data $PG_DATA, log $LOGS/postgres.log)"
}

wait_postgres() {  # until it accepts connections; then the FerretDB database exists
  local t0=$SECONDS bin
  bin=$(pg_bin)
  until pg_ready; do
    alive postgres || { tail -n 25 "$LOGS/postgres.log" >&2; die "postgres exited (log $LOGS/postgres.log)"; }
    ((SECONDS - t0 < INFRA_WAIT)) || { tail -n 25 "$LOGS/postgres.log" >&2; die "postgres not ready in $INFRA_WAIT s"; }
    sleep 0.5
  done
  if ! "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres "$PG_DATABASE"
    say "postgres: created database $PG_DATABASE for FerretDB"
  fi
  # GIN twins of FerretDB's indexes, which it can use (see the file): idempotent, every start
  "$bin/psql" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d "$PG_DATABASE" \
    -v ON_ERROR_STOP=1 -f "$HERE/postgres/ferretdb-gin.sql" >>"$LOGS/postgres.log" 2>&1 \
    || die "could not install the FerretDB index trigger (log $LOGS/postgres.log)"
}

# ---- status and logs -----------------------------------------------------------------------

status_line() {  # status_line NAME PORT PROBE...: one line; non-zero when not answering
  local name=$1 port=$2 proc answer rc=0
  shift 2
  if alive "$name"; then proc="running (pid $(pid_of "$name"))"; else proc="not running"; fi
  if "$@" >/dev/null 2>&1; then answer=healthy; else answer="NOT answering"; rc=1; fi
  if ! alive "$name" && ((rc == 0)); then proc="not started by this script ($(port_owner "$port" || true))"; fi
  printf 'infra: %-8s 127.0.0.1:%-6s %-14s %s\n' "$name" "$port" "$answer" "$proc"
  return $rc
}

status() {
  local rc=0
  status_line kafka "$KAFKA_PORT" health kafka --quiet || rc=1
  status_line postgres "$POSTGRES_PORT" pg_ready || rc=1
  status_line ferretdb "$FERRETDB_PORT" health mongo --quiet || rc=1
  return $rc
}

logs() {
  local files=() f
  for f in "$LOGS/kafka.log" "$LOGS/postgres.log" "$LOGS/ferretdb.log"; do [ -f "$f" ] && files+=("$f"); done
  ((${#files[@]})) || { say "no logs yet in $LOGS"; return 0; }
  if [ -t 1 ] && [ "${FOLLOW:-1}" = 1 ]; then
    tail -n "${LINES_SHOWN:-40}" -F "${files[@]}"  # Ctrl-C to stop
  else
    tail -n "${LINES_SHOWN:-40}" "${files[@]}"
  fi
}

# ---- commands ------------------------------------------------------------------------------

stop_postgres() {  # SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for every client)
  STOP_SIGNAL=INT stop postgres "$POSTGRES_PORT"
}

up() {
  local t0=$SECONDS
  need_py
  if alive kafka && alive postgres && alive ferretdb && health kafka mongo --quiet; then
    say "kafka (pid $(pid_of kafka), :$KAFKA_PORT), postgres (pid $(pid_of postgres), :$POSTGRES_PORT) and ferretdb (pid $(pid_of ferretdb), :$FERRETDB_PORT) already up and healthy"
    wait_postgres  # (re)installs the index trigger: a cluster from an older checkout gets it
    return 0
  fi
  local tools=(java)
  kafka_fetched || tools+=(mvn)
  ferretdb_built || tools+=(go)
  need "${tools[@]}"
  need_pg
  prepare kafka ferretdb
  start_postgres
  start_kafka
  wait_postgres
  start_ferretdb
  wait_healthy kafka mongo
  say "up in $((SECONDS - t0)) s: Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT, FerretDB $FERRETDB_VERSION on 127.0.0.1:$FERRETDB_PORT, PostgreSQL on 127.0.0.1:$POSTGRES_PORT"
}

case "${1:-}" in
  up) up ;;
  down) stop kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; stop ferretdb "$FERRETDB_PORT"; stop_postgres
        say "down: ports $KAFKA_PORT, $KAFKA_CONTROLLER_PORT, $FERRETDB_PORT, $POSTGRES_PORT are free" ;;
  status) status ;;
  logs) logs ;;
  start-kafka) need_py; need java; start_kafka; wait_healthy kafka ;;
  stop-kafka) if ((KAFKA_NODES == 3)); then stop_cluster; else stop kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; fi ;;
  start-node) need java; KAFKA_NODES=3 start_node "${2:?node 1-3}" ;;
  kill-node) kill_node "${2:?node 1-3}" ;;
  cluster-bootstrap) cluster_bootstrap ;;
  start-ferretdb) need_py; start_ferretdb; wait_healthy mongo ;;
  stop-ferretdb) stop ferretdb "$FERRETDB_PORT" ;;
  start-postgres) start_postgres; wait_postgres ;;
  stop-postgres) stop_postgres ;;
  *) echo "usage: $0 up|down|status|logs|start-kafka|stop-kafka|start-ferretdb|stop-ferretdb|start-postgres|stop-postgres|start-node N|kill-node N|cluster-bootstrap" >&2
     exit 2 ;;
esac
