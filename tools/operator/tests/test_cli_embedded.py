"""Every operator target against the embedded platform (`make run`: one process, SQLite files,
in-process bus), running as a real server; the dashboard in a real headless Chromium."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from g60_chassis.settings import PlatformSettings
from g60_operator.client import Target, resolve
from tools.operator.tests.helpers import (
    ROOT,
    dashboard_refuses,
    dashboard_screenshot,
    deal,
    g60,
    get,
)

pytestmark = pytest.mark.integration  # a real server on real SQLite files
PORT = int(os.environ.get("G60_E2E_BASE_PORT", "8101")) + 40


class Embedded:
    def __init__(self, data: Path) -> None:
        self.data, self.url = data, f"http://127.0.0.1:{PORT}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.data.parent / "embedded.log", "ab")  # noqa: SIM115 - the process's
        env = {**os.environ, "G60_DATA_DIR": str(self.data), "G60_BUS": "memory"}
        env |= {"G60_STORE": "sqlite", "G60_OUTBOX_INTERVAL_S": "0.2"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "allinone", "run", "--port", str(PORT), "--no-seed"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the embedded platform exited; see embedded.log"
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("the embedded platform did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=120)
            self.proc = None


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[Embedded]:
    platform = Embedded(tmp_path_factory.mktemp("embedded") / "data")
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def target(embedded: Embedded, monkeypatch) -> Target:
    for name in ("G60_OPERATOR_KEY", "G60_PROJECTS_URL", "G60_FUNDING_URL", "G60_MATCHING_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("G60_DATA_DIR", str(embedded.data))
    monkeypatch.setenv("G60_URL", embedded.url)
    monkeypatch.setenv("G60_BUS", "memory")
    monkeypatch.setenv("G60_STORE", "sqlite")
    return resolve(None, None, PlatformSettings())


def test_seed_is_idempotent(target, capsys):
    first = g60(capsys, "seed")
    assert first.code == 0, first.err
    second = g60(capsys, "seed")
    assert second.code == 0, second.err
    assert "36 projects" in second.out
    projects = get(target, "/v1/projects?limit=200")["items"]
    assert len(projects) == 36


def test_rematch_reconciles_every_open_need_and_allocates(target, capsys):
    r = g60(capsys, "rematch")
    assert r.code == 0, r.err
    assert "36 of 36 open needs reconciled" in r.out
    assert "assignments" in r.out


def test_report_prints_the_table_and_writes_csv_and_charts(target, capsys, tmp_path):
    closed = deal(target)
    assert closed["match"]["status"] == "closed"
    r = g60(capsys, "report", "--out", str(tmp_path))
    assert r.code == 0, r.err
    assert "By city" in r.out and "hefei" in r.out
    table = csv.DictReader((tmp_path / "stats.csv").open())
    rows = {(row["dimension"], row["key"]): row for row in table}
    total = rows[("total", "")]
    assert int(total["needs"]) >= 37 and int(total["closed"]) == 1
    assert int(total["funded_cny"]) == closed["match"]["closed_amount_cny"]
    assert len(list(tmp_path.glob("*.png"))) == 5
    later = g60(capsys, "report", "--since", "2999-01-01")  # a bare date: UTC
    assert later.code == 0, later.err
    assert "open needs with no eligible offer" in later.out


def test_audit_replays_a_proposal_and_refuses_an_unknown_match(target, capsys):
    matches = [  # a quarter of the demo's needs have no eligible offer: take one that has
        m
        for p in get(target, "/v1/projects?limit=200")["items"]
        for m in get(target, f"/v1/projects/{p['id']}/matches?all=true")["items"]
    ]
    r = g60(capsys, "audit", matches[0]["id"])
    assert r.code == 0, r.err
    assert "replay reproduces it" in r.out and "replay differs" not in r.out
    missing = g60(capsys, "audit", "mat_nope")
    assert missing.code == 4 and missing.err.count("\n") == 1 and "404" in missing.err


def test_topics_and_dead_letters_of_the_in_process_bus(target, capsys):
    r = g60(capsys, "topics")
    assert r.code == 0, r.err
    assert "g60.projects" in r.out and "0 dead letter(s) held" in r.out
    for args, said in (
        (["dlq-list", "g60.matches"], "0 dead letter(s)"),
        (["dlq-replay", "g60.matches"], "0 dead letter(s) replayed"),
        (["dlq-purge", "g60.matches", "--yes"], "0 dead letter(s) deleted"),
    ):
        r = g60(capsys, *args)
        assert r.code == 0 and said in r.out, r


def test_the_dashboard_draws_the_seeded_corridor_in_chromium(embedded, target):
    assert dashboard_refuses(embedded.url) == (401, 401)
    path, charts, tiles = dashboard_screenshot(embedded.url, target.key, "dashboard-embedded.png")
    assert charts == 5
    assert "needs posted" in tiles
    assert path.stat().st_size > 10_000


def test_backup_then_restore_brings_the_data_back(embedded, target, capsys, tmp_path):
    archive = tmp_path / "g60.tar.gz"
    r = g60(capsys, "backup", str(archive))
    assert r.code == 0, r.err
    before = len(get(target, "/v1/projects?limit=200")["items"])
    refused = g60(capsys, "restore", str(archive))
    assert refused.code == 2 and "running" in refused.err
    embedded.stop()
    for db in embedded.data.glob("*.sqlite*"):
        db.unlink()  # the data is lost
    r = g60(capsys, "restore", str(archive))
    assert r.code == 0, r.err
    embedded.start()
    assert len(get(target, "/v1/projects?limit=200")["items"]) == before
