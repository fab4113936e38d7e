"""Every operator target against the distributed shape: the three services as processes on the
real Kafka and FerretDB, reached one URL per service (G60_*_URL); topics, lag and dead letters
read from the broker; the dashboard in a real headless Chromium."""

from __future__ import annotations

import asyncio
import csv
import os
import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer

from g60_chassis.settings import PlatformSettings
from g60_operator.client import Target, resolve
from tests.e2e.harness import Platform, platform_env, running
from tools.operator.tests.helpers import dashboard_refuses, dashboard_screenshot, deal, g60, get

pytestmark = pytest.mark.e2e
BASE_PORT = int(os.environ.get("G60_E2E_BASE_PORT", "8101")) + 50
SERVICES = ("projects", "funding", "matching")


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("ops-data")
    with running(platform_env("ops", data), SERVICES, BASE_PORT, data) as p:
        yield p


@pytest.fixture
def target(platform: Platform, monkeypatch) -> Target:
    for name in ("G60_BUS", "G60_STORE", "G60_KAFKA_BOOTSTRAP", "G60_DATA_DIR"):
        monkeypatch.setenv(name, platform.env[name])
    for name in ("G60_TOPIC_PROJECTS", "G60_TOPIC_FUNDING", "G60_TOPIC_MATCHES"):
        monkeypatch.setenv(name, platform.env[name])
    monkeypatch.setenv("G60_OPERATOR_KEY", platform.env["G60_BOOTSTRAP_OPERATOR_KEY"])
    for service in SERVICES:
        monkeypatch.setenv(f"G60_{service.upper()}_URL", platform.url(service))
    monkeypatch.setenv("G60_URL", platform.url("matching"))
    return resolve(None, None, PlatformSettings())


def _prefix(platform: Platform) -> str:
    return platform.env["G60_TOPIC_MATCHES"].removesuffix("matches")


def _proposed(target: Target, timeout: float = 180.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for p in get(target, "/v1/projects?limit=200")["items"]:
            found += get(target, f"/v1/projects/{p['id']}/matches")["items"]
            if len(found) >= 10:
                return found
        time.sleep(1)
    raise AssertionError("no proposals from the matcher")


def test_seed_is_idempotent_across_the_three_services(target, capsys):
    assert g60(capsys, "seed").code == 0
    again = g60(capsys, "seed")
    assert again.code == 0, again.err
    assert len(get(target, "/v1/projects?limit=200")["items"]) == 36
    assert len(get(target, "/v1/offers?limit=200")["items"]) == 7
    assert _proposed(target)


def test_rematch_and_audit(target, capsys):
    r = g60(capsys, "rematch")
    assert r.code == 0, r.err
    assert "36 of 36 open needs reconciled" in r.out
    match = _proposed(target)[0]
    audited = g60(capsys, "audit", match["id"])
    assert audited.code == 0, audited.err
    assert "replay reproduces it" in audited.out and "differs" not in audited.out


def test_report_counts_a_closed_deal(target, capsys, tmp_path):
    closed = deal(target)
    r = g60(capsys, "report", "--out", str(tmp_path))
    assert r.code == 0, r.err
    total = next(row for row in csv.DictReader((tmp_path / "stats.csv").open()))
    assert total["dimension"] == "total" and int(total["closed"]) == 1
    assert int(total["funded_cny"]) == closed["match"]["closed_amount_cny"]
    assert len(list(tmp_path.glob("*.png"))) == 5


def test_topics_show_end_offsets_and_consumer_lag(platform, target, capsys):
    r = g60(capsys, "topics", "--prefix", _prefix(platform))
    assert r.code == 0, r.err
    assert platform.env["G60_TOPIC_PROJECTS"] in r.out
    assert f"{platform.env['G60_CONSUMER_GROUP_PREFIX']}-matching" in r.out


async def _dead_letter(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        headers = [
            ("ce_type", b"g60.test.poison.v1"),
            ("dlq_original_topic", topic.encode()),
            ("dlq_error", b"ValueError('poison')"),
            ("dlq_attempts", b"3"),
        ]
        await producer.send_and_wait(topic + ".dlq", b"{}", key=b"k-1", headers=headers)
    finally:
        await producer.stop()


def test_dead_letters_are_listed_replayed_and_purged(platform, target, capsys):
    scratch = _prefix(platform) + "scratch"  # nobody consumes it: replays stay countable
    asyncio.run(_dead_letter(platform.env["G60_KAFKA_BOOTSTRAP"], scratch))
    listed = g60(capsys, "dlq-list", scratch)
    assert listed.code == 0, listed.err
    assert "g60.test.poison.v1" in listed.out and "1 dead letter(s)" in listed.out
    replayed = g60(capsys, "dlq-replay", scratch)
    assert replayed.code == 0 and "1 dead letter(s) replayed" in replayed.out
    shown = g60(capsys, "topics", "--prefix", scratch)
    assert f"{scratch}.dlq" in shown.out and "1 dead letter(s) held" in shown.out
    purged = g60(capsys, "dlq-purge", scratch, "--yes")
    assert purged.code == 0 and "1 dead letter(s) deleted" in purged.out
    assert "0 dead letter(s)" in g60(capsys, "dlq-list", scratch).out


def test_backup_is_for_the_embedded_shape(target, capsys, tmp_path):
    r = g60(capsys, "backup", str(tmp_path / "b.tar.gz"))
    assert r.code == 2 and "mongodump" in r.err


def test_the_dashboard_on_the_matching_service_in_chromium(platform, target):
    base = platform.url("matching")
    assert dashboard_refuses(base) == (401, 401)
    path, charts, tiles = dashboard_screenshot(base, target.key, "dashboard-distributed.png")
    assert charts == 5 and "needs posted" in tiles
    assert path.stat().st_size > 10_000
