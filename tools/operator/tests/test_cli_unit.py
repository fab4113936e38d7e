"""The operator CLI without a platform: path routing, key resolution, exit codes and one-line
errors, backup and restore of SQLite files, the report's CSV and charts."""

from __future__ import annotations

import csv
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from g60_chassis.settings import PlatformSettings
from g60_contracts.stats import CapacityUse, Durations, Figures, GroupFigures, StatsOut
from g60_operator import backup, report
from g60_operator.cli import run
from g60_operator.client import OperatorError, resolve, service_of


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/v1/enterprises", "projects"),
        ("/v1/projects/prj_1", "projects"),
        ("/v1/projects/prj_1/withdraw", "projects"),
        ("/v1/projects/prj_1/matches", "matching"),
        ("/v1/projects/prj_1/explain", "matching"),
        ("/v1/funders", "funding"),
        ("/v1/offers/off_1", "funding"),
        ("/v1/offers/off_1/matches", "matching"),
        ("/v1/matches/mat_1/audit", "matching"),
        ("/v1/stats", "matching"),
        ("/v1/rematch", "matching"),
    ],
)
def test_each_path_goes_to_the_service_that_serves_it(path, service):
    assert service_of(path) == service


def test_a_new_key_goes_to_the_service_owning_its_tenant():
    assert service_of("/v1/keys", b'{"role": "enterprise", "tenant_id": "e"}') == "projects"
    assert service_of("/v1/keys", b'{"role": "funder"}') == "funding"
    assert service_of("/v1/keys", b'{"role": "operator"}') == "matching"
    assert service_of("/v1/keys", b"not json") == "matching"


def test_the_key_comes_from_the_option_then_the_environment_then_the_data_folder(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("G60_OPERATOR_KEY", raising=False)
    monkeypatch.setenv("G60_MATCHING_URL", "http://m:1/")
    settings = PlatformSettings(data_dir=tmp_path)
    with pytest.raises(OperatorError) as missing:
        resolve(None, None, settings)
    assert missing.value.code == OperatorError.USAGE
    (tmp_path / "operator.key").write_text("from-file\n")
    target = resolve("http://x:9/", None, settings)
    assert (target.key, target.url, target.url_for("matching")) == (
        "from-file",
        "http://x:9",
        "http://m:1",
    )
    monkeypatch.setenv("G60_OPERATOR_KEY", "from-env")
    assert resolve(None, None, settings).key == "from-env"
    assert resolve(None, "given", settings).key == "given"


def test_an_unreachable_platform_is_exit_3_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("G60_DATA_DIR", str(tmp_path))
    code = run(["report", "--url", "http://127.0.0.1:9", "--key", "k"])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert err.startswith("g60: cannot reach http://127.0.0.1:9/v1/stats") and "\n" not in err


def test_usage_errors_are_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("G60_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("G60_OPERATOR_KEY", raising=False)
    monkeypatch.delenv("G60_BOOTSTRAP_OPERATOR_KEY", raising=False)
    assert run(["seed", "--url", "http://127.0.0.1:9"]) == 2
    assert "no operator key" in capsys.readouterr().err
    assert run(["no-such-command"]) == 2
    monkeypatch.setenv("G60_STORE", "mongo")
    assert run(["backup", str(tmp_path / "b.tar.gz")]) == 2


def _db(path: Path, rows: list[str]) -> None:
    with sqlite3.connect(path) as c:
        c.execute("create table if not exists t (v text)")
        c.execute("delete from t")
        c.executemany("insert into t values (?)", [(r,) for r in rows])
    c.close()


def _rows(path: Path) -> list[str]:
    c = sqlite3.connect(path)
    try:
        return [r[0] for r in c.execute("select v from t order by v")]
    finally:
        c.close()


def test_a_backup_restores_every_database_and_keeps_what_it_replaced(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _db(data / "projects.sqlite", ["a", "b"])
    _db(data / "matching.sqlite", ["m"])
    (data / "operator.key").write_text("k\n")
    archive = tmp_path / "b.tar.gz"
    assert backup.backup(data, archive) == ["matching.sqlite", "projects.sqlite", "operator.key"]
    _db(data / "projects.sqlite", ["changed"])
    names, aside = backup.restore(archive, data)
    assert set(names) == {"matching.sqlite", "projects.sqlite", "operator.key"}
    assert _rows(data / "projects.sqlite") == ["a", "b"]
    assert aside is not None and _rows(aside / "projects.sqlite") == ["changed"]


def test_restore_refuses_what_is_not_a_backup(tmp_path):
    bogus = tmp_path / "x.tar.gz"
    bogus.write_bytes(b"not a tar")
    with pytest.raises(OperatorError) as exc:
        backup.restore(bogus, tmp_path / "data")
    assert exc.value.code == OperatorError.USAGE
    with pytest.raises(OperatorError):
        backup.backup(tmp_path / "empty", tmp_path / "out.tar.gz")


def _stats() -> StatsOut:
    row = {"needs": 2, "requested_cny": 30_000_000, "matched_cny": 20_000_000, "proposals": 3}
    return StatsOut(
        scope="corridor",
        generated_at=datetime(2026, 11, 1, tzinfo=UTC),
        totals=Figures(**row, closed=1, funded_cny=5_000_000),
        by_city=[GroupFigures(key="hefei", **row)],
        by_instrument=[GroupFigures(key="equity", **row)],
        to_first_proposal=Durations(count=2, median_hours=1.0, p90_hours=2.0),
        to_close=Durations(),
        capacity=[
            CapacityUse(
                offer_id="off_1",
                name="科创贷",
                funder_id="fun_1",
                instrument="credit_loan",
                capacity_cny=100,
                remaining_cny=60,
                used_cny=40,
                used_share=0.4,
            )
        ],
    )


def test_the_report_writes_a_csv_and_five_charts(tmp_path):
    s = _stats()
    report.write_csv(s, tmp_path / "stats.csv")
    rows = list(csv.reader((tmp_path / "stats.csv").open()))
    assert rows[0][:3] == ["dimension", "key", "needs"]
    assert rows[1][:3] == ["total", "", "2"]
    assert rows[2][:2] == ["city", "hefei"]
    charts = report.write_charts(s, tmp_path)
    assert sorted(p.name for p in charts) == [
        "by_city.png",
        "by_instrument.png",
        "capacity.png",
        "funnel.png",
        "why_not.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in charts)
