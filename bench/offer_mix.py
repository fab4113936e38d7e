"""`bench_service.py`'s offer events set against the market (issue 9): how many projects each
live offer's event reaches (the population of widths, from the loaded engine's top-k rows), the
service's event mix (new projects and new offers in the market's proportion, the offers a sample
stratified by width), and one wide offer at the population's p99 width."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from matching.domain.engine import MatchEngine
from matching.domain.model import Offer

I64 = npt.NDArray[np.int64]
Line = Callable[..., None]
Say = Callable[[str], None]


class Timed(NamedTuple):
    """One offer event of `bench_service.offer_events`: the engine's upsert, the event's wall and
    CPU time, the collector's time inside it, the projects touched; the CPU of its withdrawal
    after; from the event's start until the settling it left (ranks shifted etc.) ended."""

    engine: float
    wall: float
    cpu: float
    collected: float
    projects: int
    withdrawn: float
    settled: float


One = Callable[[Offer, str], Awaitable[Timed]]


class Widths(NamedTuple):
    """Per live offer (in the engine's `offer_models` order): the projects whose current top k
    holds it (`held`: what a new offer of the same scores enters), and those holding it within
    their first k - 1 (`behind`: what a copy ranked just behind it enters, i.e.
    `bench_service`'s `-again` copies)."""

    held: I64
    behind: I64


def widths(engine: MatchEngine) -> Widths:
    """One bincount over the top-k offer rows of every project (~10 ms at 100,000 × 10,000)."""
    k, n = engine.top_k, len(engine.offers.ids)
    top = engine.ranked.off[:, :k]
    held = np.bincount(top[top >= 0], minlength=n)
    first = top[:, : k - 1]
    behind = np.bincount(first[first >= 0], minlength=n)
    rows = np.array([engine.offers.row[i] for i in engine.offer_models], dtype=np.int64)
    return Widths(held[rows], behind[rows])


def ahead(offer_id: str, tag: str) -> str:
    """An id sorting just before `offer_id` and after any id below it (its last character one
    lower, then '~' and `tag`): a copy under it ties with the original and ranks just ahead of
    it, so it enters every project whose top k holds the original (`Widths.held`). A tag per
    use: an id once withdrawn is not published again."""
    return f"{offer_id[:-1]}{chr(ord(offer_id[-1]) - 1)}~{tag}"


def checked(engine: MatchEngine, offers: list[Offer], w: Widths, picks: list[int]) -> str:
    """The bincounts against a copy's upsert in the engine (`len(delta.projects)`, removed
    again), ranked ahead of and behind the original, on `picks`."""
    same_held = same_behind = 0
    for i in picks:
        o = offers[i]
        for new_id, want in ((ahead(o.id, "check"), w.held[i]), (f"{o.id}-check", w.behind[i])):
            n = len(engine.upsert_offer(o.model_copy(update={"id": new_id})).projects)
            engine.remove_offer(new_id)
            if new_id.endswith("~check"):
                same_held += n == want
            else:
                same_behind += n == want
    return (
        f"the counts against a copy's upsert (its delta's projects) on {len(picks)} offers: "
        f"ranked ahead, = the top-k count in {same_held}; ranked behind, = the first k - 1 "
        f"count in {same_behind}"
    )


def stratified(held: I64, m: int, seed: int) -> list[int]:
    """`m` offers at the width population's quantiles (i + 0.5) / m (ties in a seeded random
    order): the sample's widths are the population's, evenly."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(held.size), held))
    at = ((np.arange(min(m, held.size)) + 0.5) * held.size / min(m, held.size)).astype(np.int64)
    return [int(i) for i in order[at]]


def mixed_pct(groups: list[tuple[list[float], float]], q: float) -> float:
    """The q-th percentile of a mixture: each group's values share its weight equally (the
    weights: the group's share of the events)."""
    vals = np.concatenate([np.asarray(xs, dtype=np.float64) for xs, _ in groups])
    wts = np.concatenate([np.full(len(xs), share / len(xs)) for xs, share in groups])
    order = np.argsort(vals, kind="stable")
    cum = np.cumsum(wts[order]) / wts.sum()
    return float(vals[order][min(int(np.searchsorted(cum, q / 100)), vals.size - 1)])


def rank(population: npt.ArrayLike, value: float) -> float:
    """The share (%) of the population at or below `value`."""
    return float((np.asarray(population) <= value).mean() * 100)


def _pcts(xs: I64) -> str:
    return " / ".join(f"{np.percentile(xs, q):,.0f}" for q in (50, 90, 99, 100))


async def report(
    one: One,
    engine: MatchEngine,
    project_walls: list[float],
    sampled_widest: int,
    say: Say,
    line: Line,
    seed: int,
    baseline: float,
    samples: int = 100,
    tail: bool = True,
) -> None:
    """The population of widths, the event mix's p99, and (`tail`) one offer at the p99 width.
    `baseline`: the engine's own upsert of the sample's offers, p99 (the mix's ratio to it).
    `one(offer, new_id)`: an offer event timed (set up, published, settled, withdrawn). The
    population: the engine's live offers (`bench_match.py`'s run changed some before)."""
    began = time.perf_counter()
    offers = list(engine.offer_models.values())
    w = widths(engine)
    picks = stratified(w.held, samples, seed)
    say(
        f"\n  the offer events' population ({len(offers):,} live offers; the projects whose "
        f"top {engine.top_k} holds each, from the engine's rows)"
    )
    line(
        "  width (projects), p50 / p90 / p99 / max",
        _pcts(w.held),
        "",
        f"mean {w.held.mean():.1f}",
    )
    line(
        "  a copy ranked behind enters, the same",
        _pcts(w.behind),
        "",
        "the timed copies above (their first k - 1 entries)",
    )
    say(
        f"    the evenly spaced sample's widest ({sampled_widest} projects) is the population's "
        f"p{rank(w.behind, sampled_widest):.1f} (of the copies' widths)"
    )
    say(
        "    " + checked(engine, offers, w, picks[-6:] + picks[: len(picks) // 2 : len(picks) // 4])
    )
    timed = [await one(offers[i], ahead(offers[i].id, "mix")) for i in picks]
    walls = [t.wall for t in timed]
    ratio = len(engine.project_models) / max(len(offers), 1)
    share = ratio / (ratio + 1)
    mix = [(project_walls, share), (walls, 1 - share)]
    p99 = mixed_pct(mix, 99)
    line(
        "offer event (by width), p50 / p90 / p99",
        " / ".join(f"{mixed_pct([(walls, 1.0)], q) * 1e3:.1f}" for q in (50, 90, 99)) + " ms",
        "",
        f"{len(walls)} offers at the widths' quantiles (i + 0.5) / {len(walls)}, each a copy "
        "ranked ahead of it",
    )
    line(
        "event mix → proposals stored, p99",
        f"{p99 * 1e3:7.2f} ms",
        "[≤ 50 ms]",
        f"{p99 / baseline:5.2f}× the engine's upsert of the offer p99; projects : offers "
        f"{ratio:.1f} : 1 as in the market ({len(project_walls)} project and {len(walls)} offer "
        "events, weighted to it)",
    )
    # an offer is withdrawn as often as it is published: the offer events half each (the
    # withdrawals' CPU time: the bench times their CPU only; on the memory store ~ their wall)
    gone = [t.withdrawn for t in timed]
    both = [(project_walls, share), (walls, (1 - share) / 2), (gone, (1 - share) / 2)]
    with_gone = mixed_pct(both, 99)
    line(
        "  the same, the offers' withdrawals in it",
        f"{with_gone * 1e3:7.2f} ms",
        "[≤ 50 ms]",
        f"{with_gone / baseline:5.2f}× the same baseline; offer events half publications, half "
        "their withdrawals (CPU); withdrawals by width p50 / p90 / p99 "
        + " / ".join(f"{mixed_pct([(gone, 1.0)], q) * 1e3:.1f}" for q in (50, 90, 99))
        + " ms",
    )
    over = [t for t in timed if t.wall >= p99]
    say(
        f"    at or above it: {sum(x >= p99 for x in project_walls)} project events, {len(over)} "
        f"offer events ({', '.join(str(t.projects) for t in over)} projects); it is the offer "
        f"events' p{rank(walls, p99):.0f}"
        + (f", at {min(t.projects for t in over)} projects" if over else "")
        + "; the mix's p50 / p90 "
        + " / ".join(f"{mixed_pct(mix, q) * 1e3:.1f}" for q in (50, 90))
        + " ms"
    )
    per = [x.cpu / x.projects for x in timed if x.projects >= 60]
    if per:
        say(
            f"    the stratified sample's wide events (≥ 60 projects): median "
            f"{statistics.median(per) * 1e3:.3f} ms CPU per project"
        )
    say(f"    (the population and the mix's offer events: {time.perf_counter() - began:.0f} s)")
    if not tail:
        return
    began = time.perf_counter()
    target = float(np.percentile(w.held, 99))
    i = int(np.argmin(np.abs(w.held - target)))
    t = await one(offers[i], ahead(offers[i].id, "tail"))
    line(
        f"offer at the p99 width ({t.projects:,} projects), once",
        f"{t.wall * 1e3:7.1f} ms",
        "",
        f"CPU {t.cpu * 1e3:.0f} ms, {t.cpu / max(t.projects, 1) * 1e3:.3f} ms per project; "
        f"settled after {t.settled * 1e3:.0f} ms; withdrawal CPU {t.withdrawn * 1e3:.0f} ms",
    )
    say(f"    (set up, timed, settled and withdrawn in {time.perf_counter() - began:.0f} s)")
