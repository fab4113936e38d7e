"""A frozen copy of the engine's state, for the allocation to run beside the engine.

`MarketSnapshot` copies what the allocation reads (both tables' columns, the id orders and the
preference cache of the live projects) at one market version, so the allocation can run in a
worker thread or a child process while the engine keeps changing on the event loop.

At 100,000 × 10,000 the copy is ~65 MB (the preference cache: 100,000 rows × 32 offers and
scores, as int64) and took 0.1–0.3 s of the event loop in one go on the loaded machine: the
longest single stall of a refresh. `take_in_slices` copies the project-sized arrays a slice of
rows at a time and yields between slices, so the caller lets HTTP and the consumers run. Events
may change the state meanwhile; a snapshot must be of one version: the version is read before
every slice, and a change starts the copy over (after `tries` starts, the rest is taken in one
go, so a stream of events cannot starve the allocation)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from matching.domain.columns import Cols
from matching.domain.topcache import I64, B, TopCache

SLICE = 5_000  # project rows copied between two yields (~3 MB: a few milliseconds)


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


@dataclass(frozen=True)
class Source:
    """What a snapshot copies, as the state holds it now (views of its arrays, not copies)."""

    version: int
    as_of_ord: int
    projects: Cols  # rows [0, size) of each column
    offers: Cols
    project_ids: list[str | None]
    offer_ids: list[str | None]
    project_rank: I64  # never changed in place (`Table.id_order`): kept, not copied
    offer_rank: I64
    prefs: TopCache


def take(src: Source) -> MarketSnapshot:
    """The whole copy in one go."""
    n = int(src.projects["active"].size)
    return _finish(
        src,
        {k: v.copy() for k, v in src.projects.items()},
        src.prefs.off[:n].astype(np.int64),
        src.prefs.aux[:n].copy(),
    )


def take_in_slices(
    version: Callable[[], int], read: Callable[[], Source], rows: int = SLICE, tries: int = 3
) -> Iterator[MarketSnapshot | None]:
    """The copy of `take`, `rows` project rows at a time: yields None between slices (the
    caller lets other work run), then the snapshot, of the version read at the start of the
    copy that completed. `version`: the state's version now (read before every slice)."""
    for _ in range(max(tries - 1, 0)):
        src = read()
        n = int(src.projects["active"].size)
        depth = src.prefs.depth
        projects = {k: np.empty_like(v) for k, v in src.projects.items()}
        off = np.empty((n, depth), dtype=np.int64)
        aux = np.empty((n, depth), dtype=src.prefs.aux.dtype)
        whole = True
        for a in range(0, n, rows):
            if a:
                yield None
                if version() != src.version:  # changed meanwhile: this copy is of no version
                    whole = False
                    break
            b = min(a + rows, n)
            for k, v in src.projects.items():
                projects[k][a:b] = v[a:b]
            off[a:b] = src.prefs.off[a:b]
            aux[a:b] = src.prefs.aux[a:b]
        if whole:
            yield _finish(src, projects, off, aux)
            return
    yield take(read())


def _finish(src: Source, projects: Cols, off: I64, aux: I64) -> MarketSnapshot:
    """The snapshot of `src` from its copied project columns and preference rows (the rest is
    small: copied here, in one go)."""
    n = int(projects["active"].size)
    return MarketSnapshot(
        version=src.version,
        as_of_ord=src.as_of_ord,
        projects=projects,
        offers={k: v.copy() for k, v in src.offers.items()},
        project_ids=tuple(src.project_ids[:n]),
        offer_ids=tuple(src.offer_ids[: int(src.offers["active"].size)]),
        project_rank=src.project_rank,
        offer_rank=src.offer_rank,
        live=np.flatnonzero(projects["active"]).astype(np.int64),
        pref_off=off,
        pref_aux=aux,
        pref_count=src.prefs.count[:n].copy(),
        pref_complete=src.prefs.exhaustive[:n].copy(),
    )
