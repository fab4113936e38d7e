"""The slowest needs of a benchmark step, split by stage (`make bench-flow`): the medians over
every need say where a typical need's time goes, not where the p99's does. For the slowest
`share` of a step's needs (at least one): the mean of each stage (HTTP, relay + broker,
matcher, sent -> read by the bench) beside the step's median need, and when in the step they
were POSTed (bunched in a second or two: a stall, e.g. a long batch, a full collection, a run
of flags; spread over the step: queueing)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

STAGES = ("http", "relay", "matcher", "seen")


@dataclass(frozen=True)
class Times:
    """When one need was POSTed, answered, on the projects topic, proposal sent, read."""

    posted: float
    answered: float
    on_topic: float
    published: float
    proposed: float

    def stages(self) -> tuple[float, float, float, float]:
        return (
            self.answered - self.posted,
            max(0.0, self.on_topic - self.answered),
            max(0.0, self.published - self.on_topic),
            max(0.0, self.proposed - self.published),
        )

    @property
    def latency(self) -> float:
        return self.proposed - self.posted


@dataclass(frozen=True)
class Tail:
    needs: int  # in the tail
    threshold_s: float  # the fastest of them
    tail_ms: tuple[float, ...]  # mean of each stage over the tail
    median_ms: tuple[float, ...]  # each stage of the step's median need (by latency)
    posted_s: tuple[float, ...]  # when each was POSTed, from the step's first POST, sorted


def tail(times: list[Times], share: float = 0.02) -> Tail | None:
    if not times:
        return None
    ranked = sorted(times, key=lambda t: t.latency)
    k = max(1, round(len(ranked) * share))
    slow = ranked[-k:]
    start = min(t.posted for t in times)
    means = tuple(statistics.fmean(t.stages()[i] for t in slow) * 1000 for i in range(4))
    median = tuple(x * 1000 for x in ranked[len(ranked) // 2].stages())
    posted = tuple(sorted(t.posted - start for t in slow))
    return Tail(k, slow[0].latency, means, median, posted)


def line(rate: float, t: Tail | None) -> str:
    if t is None:
        return f"  {rate:>6g}/s  no need proposed"
    split = " / ".join(f"{x:.0f}" for x in t.tail_ms)
    med = " / ".join(f"{x:.0f}" for x in t.median_ms)
    when = ", ".join(f"{x:.1f}" for x in t.posted_s[:12])
    more = f" (+{len(t.posted_s) - 12})" if len(t.posted_s) > 12 else ""
    return (
        f"  {rate:>6g}/s  slowest {t.needs} (>= {t.threshold_s * 1000:.0f} ms): {split}"
        f"  | median need: {med}  | POSTed at {when}{more} s"
    )


HEADER = (
    "the slowest 2% of each step's needs, ms by stage (mean): http / relay + broker / matcher /\n"
    "  sent -> read, beside the step's median need; when in the step they were POSTed"
)
