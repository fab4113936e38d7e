"""Once a service started, its objects are frozen out of the garbage collector's reach and the
youngest generation is collected less often (`collector.py`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from g60_chassis import collector


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_settle_freezes_what_exists_and_sets_the_young_generation(restored: None) -> None:
    gc.unfreeze()
    _, gen1, gen2 = gc.get_threshold()
    held = [[i] for i in range(1000)]  # containers the collector tracks
    collector.settle(10_000)
    assert gc.get_freeze_count() >= len(held)
    assert gc.get_threshold() == (10_000, gen1, gen2)


def test_only_a_served_process_settles(restored: None, monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    monkeypatch.setattr(collector, "_serving", [False])
    collector.settle_if_serving(10_000)  # a test process starting apps: left alone
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
    collector.serving()
    collector.settle_if_serving(10_000)
    assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == 10_000


def test_settle_with_zero_keeps_the_thresholds(restored: None) -> None:
    before = gc.get_threshold()
    collector.settle(0)
    assert gc.get_threshold() == before and gc.get_freeze_count() > 0
