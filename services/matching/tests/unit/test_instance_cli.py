"""The offline instance format and the operator CLI (`allocate`, `explain`, `check`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from matching.domain.instance import Instance, engine_for, parse, result_json
from matching.entrypoints.cli import app
from services.matching.tests.unit.factories import code, enterprise

EXAMPLE = Path(__file__).parents[4] / "docs" / "examples" / "instance.json"
runner = CliRunner()


def small(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "as_of": "2026-11-26",
        "top_k": 2,
        "funders": [{"id": "f1", "name": "bank", "kind": "bank"}],
        "enterprises": [enterprise(id="e1")],
        "projects": [
            {
                "id": "p1",
                "enterprise_id": "e1",
                "amount_cny": 5_000_000,
                "instruments": ["credit_loan"],
                "stage": "series_a",
                "sector": "instruments_meters",
            },
            {
                "id": "p2",
                "enterprise": enterprise(id="e2", uscc=code(2)),
                "amount_cny": 8_000_000,
                "instruments": ["credit_loan"],
                "stage": "growth",
                "sector": "new_materials",
            },
        ],
        "offers": [
            {
                "id": "o1",
                "funder_id": "f1",
                "instrument": "credit_loan",
                "ticket_min_cny": 1_000_000,
                "ticket_max_cny": 10_000_000,
                "capacity_cny": 10_000_000,
            }
        ],
    }
    return {**base, **kw}


def test_projects_may_name_their_enterprise_and_offers_take_the_funders_kind() -> None:
    inst = Instance.model_validate(small())
    assert inst.projects[0].enterprise.id == "e1" and inst.projects[1].enterprise.id == "e2"
    assert inst.offers[0].funder_kind == "bank"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"projects": [{"id": "p", "enterprise_id": "nope"}]}, "no enterprise with id 'nope'"),
        ({"offers": [{"id": "o", "funder_id": "nope"}]}, "no funder with id 'nope'"),
        (
            {"offers": [{**small()["offers"][0], "funder_kind": "vc"}]},
            "funder_kind 'vc' but the funder is a 'bank'",
        ),
        ({"offers": [small()["offers"][0]] * 2}, "offers: ids repeat"),
        ({"as_of": None}, "as_of"),
    ],
)
def test_bad_instances_say_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Instance.model_validate(small(**change))


def test_the_result_is_valid_json_with_every_part() -> None:
    engine = engine_for(Instance.model_validate(small()))
    result = json.loads("".join(result_json(engine)))
    assert result["format"] == "g60-matching-result/1" and result["stable"] is True
    assert result["summary"]["allocated"] == 1 and result["summary"]["unallocated"] == 1
    (a,) = result["allocation"]
    assert (a["project_id"], a["offer_id"], a["amount_cny"], a["rank"]) == ("p1", "o1", 5e6, 1)
    assert a["enterprise_view"]["terms"] and a["funder_view"]["terms"]
    assert [p["project_id"] for p in result["proposals"]] == ["p1", "p2"]
    (proposed,) = result["proposals"][1]["offers"]  # proposed, but the capacity went to p1
    assert proposed["offer_id"] == "o1" and proposed["allocated"] is False
    assert result["offers"] == [
        {
            "offer_id": "o1",
            "capacity_cny": 10_000_000,
            "allocated_cny": 5_000_000,
            "deals_allocated": 1,
            "deals_left": None,
        }
    ]
    assert result["blocking_pairs"] == []


def test_cli_allocate_writes_the_result(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = runner.invoke(app, ["allocate", str(EXAMPLE), "--out", str(out), "--quiet"])
    assert done.exit_code == 0, done.output
    result = json.loads(out.read_text())
    inst = parse(EXAMPLE.read_bytes())
    assert result["summary"]["projects"] == len(inst.projects)
    assert result["stable"] is True and result["summary"]["allocated"] >= 3
    for a in result["allocation"]:
        assert {"enterprise_view", "funder_view", "score", "amount_cny"} <= set(a)


def test_cli_allocate_to_stdout_without_breakdowns(tmp_path: Path) -> None:
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(small()))
    done = runner.invoke(app, ["allocate", str(path), "--no-breakdowns", "--top-k", "1"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["top_k"] == 1 and "enterprise_view" not in result["allocation"][0]


def test_cli_refuses_a_bad_instance(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(small(as_of="yesterday")))
    done = runner.invoke(app, ["allocate", str(path)])
    assert done.exit_code == 2 and "not a valid instance" in done.stderr
    assert runner.invoke(app, ["check", str(tmp_path / "missing.json")]).exit_code == 2


def test_cli_explain_and_check() -> None:
    done = runner.invoke(app, ["explain", str(EXAMPLE), "prj-chips-tapeout", "off-vc-seed"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["explanation"]["reasons"][0]["rule"] == "amount"
    assert out["advice"][0]["offer_ids"] == ["off-vc-seed"]
    done = runner.invoke(app, ["check", str(EXAMPLE)])
    assert done.exit_code == 0 and "valid" in done.stdout
