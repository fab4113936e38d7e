"""A frozen copy of the engine's state, for the allocation to run beside the engine.

`MarketSnapshot` copies what the allocation reads (both tables' columns, the id orders and the
preference cache of the live projects) at one market version, so the allocation can run in a
worker thread while the engine keeps changing on the event loop: the copy takes milliseconds,
the allocation seconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.domain.columns import Cols
from matching.domain.topcache import I64, B, TopCache


@dataclass(frozen=True)
class MarketSnapshot:
    version: int  # the market version this copy holds
    as_of_ord: int
    projects: Cols  # rows [0, size) of each column, copied
    offers: Cols
    project_ids: tuple[str | None, ...]
    offer_ids: tuple[str | None, ...]
    project_rank: I64  # place of each row's id in sorted order
    offer_rank: I64
    live: I64  # live project rows
    pref_off: I64  # the preference cache's rows [0, size): offers, best first
    pref_aux: I64  # the funder's score of each entry
    pref_count: I64
    pref_complete: B


def take(
    version: int,
    as_of_ord: int,
    projects: Cols,
    offers: Cols,
    project_ids: list[str | None],
    offer_ids: list[str | None],
    project_rank: I64,
    offer_rank: I64,
    prefs: TopCache,
) -> MarketSnapshot:
    n = int(projects["active"].size)
    return MarketSnapshot(
        version=version,
        as_of_ord=as_of_ord,
        projects={k: v.copy() for k, v in projects.items()},
        offers={k: v.copy() for k, v in offers.items()},
        project_ids=tuple(project_ids[:n]),
        offer_ids=tuple(offer_ids[: int(offers["active"].size)]),
        project_rank=project_rank,
        offer_rank=offer_rank,
        live=np.flatnonzero(projects["active"]).astype(np.int64),
        pref_off=prefs.off[:n].astype(np.int64),
        pref_aux=prefs.aux[:n].copy(),
        pref_count=prefs.count[:n].copy(),
        pref_complete=prefs.exhaustive[:n].copy(),
    )
