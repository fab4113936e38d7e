# G60 financing matchmaking platform — operator targets. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
INFRA  := bash deploy/local/infra.sh
G60    := $(VENV)/bin/g60

# The local servers' addresses in one place: infra.sh listens on KAFKA_PORT / FERRETDB_PORT, and
# the tests, benches and services started from here get the same addresses unless
# G60_KAFKA_BOOTSTRAP / G60_MONGO_URL say otherwise (`KAFKA_PORT=19092 make test` just works).
KAFKA_PORT    ?= 9092
FERRETDB_PORT ?= 27017
export G60_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)
export G60_MONGO_URL       ?= mongodb://127.0.0.1:$(FERRETDB_PORT)

.PHONY: help install run demo test test-unit test-integration test-e2e lint fmt \
        infra-up infra-down infra-status infra-logs up down run-projects run-funding run-matching \
        bench-match bench-service bench-flow chaos allocate clean dlq-replay keys keys-create keys-list \
        keys-revoke keys-rotate up down fuzz seed rematch topics dlq-list dlq-purge report \
        audit backup restore bench-report \
        run-subscriptions webhooks-list webhooks-replay bench-webhooks

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "python3 (3.11) is required" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the platform into $(VENV) ..."
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install the platform with its dev tools

run: $(STAMP) ## run the whole platform in one process (embedded: in-process bus, SQLite) on :8000
	G60_WEBHOOK_ALLOW_LOOPBACK=$${G60_WEBHOOK_ALLOW_LOOPBACK:-1} $(PY) -m allinone run

demo: $(STAMP) ## walk one deal end to end against the embedded platform
	$(PY) -m allinone demo

test: $(STAMP) infra-up ## unit + integration + e2e tests (starts Kafka, PostgreSQL and FerretDB if needed)
	$(PY) -m pytest

test-unit: $(STAMP) ## unit tests only (no servers)
	$(PY) -m pytest -m "not integration and not e2e and not fuzz"

test-integration: $(STAMP) infra-up ## integration tests against the real Kafka and FerretDB
	$(PY) -m pytest -m integration

test-e2e: $(STAMP) infra-up ## end-to-end tests over HTTP and Kafka
	$(PY) -m pytest -m "e2e and not chaos"

chaos: $(STAMP) infra-up ## long fault runs under load: Kafka, PostgreSQL, FerretDB restarted; each service kill -9
	$(PY) -m pytest -m chaos tests/e2e

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(STAMP) ## format and autofix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

infra-up: $(STAMP) ## fetch/build once, start Kafka (KRaft), PostgreSQL and FerretDB on it; wait until all answer
	$(INFRA) up

infra-down: ## stop Kafka, FerretDB and PostgreSQL and free their ports
	$(INFRA) down

infra-status: ## is each of Kafka, PostgreSQL and FerretDB running and answering?
	$(INFRA) status

infra-logs: ## tail the Kafka, PostgreSQL and FerretDB logs
	$(INFRA) logs

bench-flow: $(STAMP) infra-up ## event-path benchmark: bus vs raw Kafka, relay, end to end (ratios to baselines)
	$(PY) bench/bench_flow.py $(if $(QUICK),--quick) $(if $(RATES),--rates "$(RATES)")

fuzz: $(STAMP) ## long fuzzing of every service's OpenAPI (schemathesis): make fuzz [EXAMPLES=500]
	G60_FUZZ_EXAMPLES=$(or $(EXAMPLES),500) G60_FUZZ_RANDOM=1 $(PY) -m pytest -m fuzz -p no:cacheprovider

bench-webhooks: $(STAMP) infra-up ## webhook deliveries/s to a loopback stub vs a raw httpx POST loop; p99 Kafka -> receipt
	$(PY) bench/bench_webhooks.py $(if $(QUICK),--quick)

bench-match: $(STAMP) ## matching-engine benchmark with ratios to baselines run in the same command
	$(PY) bench/bench_match.py

bench-service: $(STAMP) ## the matching service alone: event paths, GETs during the allocation, restart (QUICK=1)
	$(PY) bench/bench_service.py $(if $(QUICK),--quick)

bench-report: $(STAMP) ## make report's time to its table on a seeded platform, beside baselines
	$(PY) bench/bench_report.py $(if $(URL),--url "$(URL)")

allocate: $(STAMP) ## offline allocation: make allocate IN=instance.json OUT=result.json
	@test -n "$(IN)" || { echo "usage: make allocate IN=instance.json OUT=result.json" >&2; exit 2; }
	@$(G60) engine allocate "$(IN)" $(if $(OUT),--out "$(OUT)")

clean: ## remove the venv, caches and local data (not the infra cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .data

# Operator targets: each calls the `g60` CLI (`g60 --help`); against the embedded platform
# (make run) by default, another one with URL= (and KEY= or G60_OPERATOR_KEY), or per service
# with G60_PROJECTS_URL / G60_FUNDING_URL / G60_MATCHING_URL; Kafka from G60_KAFKA_BOOTSTRAP.
OP_TARGET = $(if $(URL),--url "$(URL)") $(if $(KEY),--key "$(KEY)")

seed: $(STAMP) ## the demo catalogue into a running platform, idempotent: make seed [URL=]
	@$(G60) seed $(OP_TARGET)

rematch: $(STAMP) ## recompute every need's proposals and the allocation now: make rematch [URL=]
	@$(G60) rematch $(OP_TARGET)

topics: $(STAMP) ## Kafka topics: partitions, end offsets, consumer group lag, DLQ sizes
	@$(G60) topics

dlq-list: $(STAMP) ## list dead letters: make dlq-list TOPIC=g60.matches
	@test -n "$(TOPIC)" || { echo "usage: make dlq-list TOPIC=g60.matches" >&2; exit 2; }
	@$(G60) dlq-list "$(TOPIC)"

dlq-replay: $(STAMP) ## replay dead letters onto their topic: make dlq-replay TOPIC=g60.matches
	@test -n "$(TOPIC)" || { echo "usage: make dlq-replay TOPIC=g60.matches" >&2; exit 2; }
	@$(G60) dlq-replay "$(TOPIC)"

dlq-purge: $(STAMP) ## delete dead letters for good: make dlq-purge TOPIC=g60.matches
	@test -n "$(TOPIC)" || { echo "usage: make dlq-purge TOPIC=g60.matches" >&2; exit 2; }
	@$(G60) dlq-purge "$(TOPIC)" --yes

report: $(STAMP) ## corridor statistics: table, and CSV + PNG charts: make report [SINCE=] [OUT=dir]
	@$(G60) report $(OP_TARGET) $(if $(SINCE),--since "$(SINCE)") --out "$(or $(OUT),.data/report)"

audit: $(STAMP) ## a match's decision record, replayed: make audit MATCH=mat_...
	@test -n "$(MATCH)" || { echo "usage: make audit MATCH=mat_..." >&2; exit 2; }
	@$(G60) audit "$(MATCH)" $(OP_TARGET)

backup: $(STAMP) ## archive the embedded platform's data: make backup OUT=g60.tar.gz
	@test -n "$(OUT)" || { echo "usage: make backup OUT=g60-backup.tar.gz" >&2; exit 2; }
	@$(G60) backup "$(OUT)"

restore: $(STAMP) ## restore the embedded platform's data (stopped): make restore IN=g60.tar.gz
	@test -n "$(IN)" || { echo "usage: make restore IN=g60-backup.tar.gz" >&2; exit 2; }
	@$(G60) restore "$(IN)" $(if $(URL),--url "$(URL)")

DISTRIBUTED := G60_BUS=kafka G60_STORE=mongo

run-projects: $(STAMP) infra-up ## the projects service alone on :8001 (Kafka + FerretDB)
	$(DISTRIBUTED) G60_PORT=8001 $(PY) -m projects

run-funding: $(STAMP) infra-up ## the funding service alone on :8002 (Kafka + FerretDB)
	$(DISTRIBUTED) G60_PORT=8002 $(PY) -m funding

run-matching: $(STAMP) infra-up ## the matching service alone on :8003 (Kafka + FerretDB)
	$(DISTRIBUTED) G60_PORT=8003 $(PY) -m matching

run-subscriptions: $(STAMP) infra-up ## the subscriptions (webhooks) service alone on :8004 (Kafka + FerretDB)
	$(DISTRIBUTED) G60_PORT=8004 $(PY) -m subscriptions

up: $(STAMP) infra-up ## start the four services in the background against Kafka + FerretDB
	bash deploy/local/services.sh up

down: ## stop the four background services (not the infrastructure)
	bash deploy/local/services.sh down

keys keys-create: $(STAMP) ## issue an API key: make keys ROLE=enterprise TENANT=ent_... [DAYS=n] [NOTE=..]
	@test -n "$(ROLE)" || { echo "usage: make keys ROLE=operator|enterprise|funder|partner [TENANT=id] [DAYS=n]" >&2; exit 2; }
	@$(G60) keys create --role "$(ROLE)" $(if $(TENANT),--tenant "$(TENANT)") $(if $(DAYS),--days "$(DAYS)") $(if $(NOTE),--note "$(NOTE)")

keys-list: $(STAMP) ## list API keys (never their secrets): make keys-list [TENANT=id]
	@$(G60) keys list $(if $(TENANT),--tenant "$(TENANT)")

keys-revoke: $(STAMP) ## revoke a key (every service within G60_KEY_CACHE_S, 1 s): make keys-revoke ID=..
	@test -n "$(ID)" || { echo "usage: make keys-revoke ID=<key id>" >&2; exit 2; }
	@$(G60) keys revoke "$(ID)"

keys-rotate: $(STAMP) ## successor key; the old one works OVERLAP s more (86400): make keys-rotate ID=..
	@test -n "$(ID)" || { echo "usage: make keys-rotate ID=<key id> [OVERLAP=seconds]" >&2; exit 2; }
	@$(G60) keys rotate "$(ID)" $(if $(OVERLAP),--overlap "$(OVERLAP)")

webhooks-list: $(STAMP) ## list webhook endpoints: status (and why disabled), owner, pending deliveries
	@$(G60) webhooks list

webhooks-replay: $(STAMP) ## resend an endpoint's deliveries, same ids: make webhooks-replay ENDPOINT=whe_.. SINCE=2026-11-28T00:00:00Z
	@test -n "$(ENDPOINT)" -a -n "$(SINCE)" || { echo "usage: make webhooks-replay ENDPOINT=<endpoint id> SINCE=<RFC 3339 time>" >&2; exit 2; }
	@$(G60) webhooks replay "$(ENDPOINT)" "$(SINCE)"
