#!/usr/bin/env bash
# Start / stop the four services in the background against the local Kafka and FerretDB
# (`make up`, `make down`). Settings come from the environment (G60_*); the defaults here pick
# the distributed shape: Kafka bus, MongoDB-wire store.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN_DIR=${G60_RUN_DIR:-.data/run}
PY=${PY:-.venv/bin/python}
export G60_BUS=${G60_BUS:-kafka} G60_STORE=${G60_STORE:-mongo}
declare -A PORTS=([projects]=8001 [funding]=8002 [matching]=8003 [subscriptions]=8004)
mkdir -p "$RUN_DIR"

alive() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

up() {
  for svc in projects funding matching subscriptions; do
    if alive "$svc"; then echo "$svc already running (pid $(cat "$RUN_DIR/$svc.pid"))"; continue; fi
    G60_PORT=${PORTS[$svc]} nohup "$PY" -m "$svc" >"$RUN_DIR/$svc.log" 2>&1 &
    echo $! >"$RUN_DIR/$svc.pid"
    echo "started $svc on :${PORTS[$svc]} (pid $!, log $RUN_DIR/$svc.log)"
  done
  for svc in projects funding matching subscriptions; do
    printf 'waiting for %s to be ready ' "$svc"
    for _ in $(seq 1 120); do
      if curl -fsS "http://127.0.0.1:${PORTS[$svc]}/readyz" >/dev/null 2>&1; then echo " ready"; continue 2; fi
      alive "$svc" || { echo " died; see $RUN_DIR/$svc.log"; tail -20 "$RUN_DIR/$svc.log"; exit 1; }
      printf '.'; sleep 0.5
    done
    echo " not ready after 60 s; see $RUN_DIR/$svc.log"; exit 1
  done
}

down() {
  for svc in subscriptions matching funding projects; do
    if alive "$svc"; then
      pid=$(cat "$RUN_DIR/$svc.pid"); kill -TERM "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "stopped $svc"
    fi
    rm -f "$RUN_DIR/$svc.pid"
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) for svc in projects funding matching subscriptions; do
            if alive "$svc"; then echo "$svc running (pid $(cat "$RUN_DIR/$svc.pid"))"; else echo "$svc stopped"; fi
          done ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
