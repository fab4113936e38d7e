"""`g60 report`: the corridor's statistics (`GET /v1/stats`) as a terminal table, a CSV file
and PNG charts (the dashboard's charts, drawn with matplotlib)."""

from __future__ import annotations

import csv
from pathlib import Path

from rich.console import Console
from rich.table import Table

from g60_contracts.stats import CapacityUse, Figures, GroupFigures, StatsOut

COLUMNS = ("needs", "requested_cny", "matched_cny", "proposals", "agreed", "reserved", "closed")
COLUMNS_END = ("funded_cny",)


def _m(cny: int) -> str:
    return f"{cny / 1e6:,.1f}"


def _row(label: str, f: Figures) -> list[str]:
    return [
        label,
        str(f.needs),
        _m(f.requested_cny),
        _m(f.matched_cny),
        str(f.proposals),
        str(f.agreed),
        str(f.reserved),
        str(f.closed),
        _m(f.funded_cny),
    ]


def tables(s: StatsOut) -> list[Table]:
    out = []
    for title, rows in (("city", s.by_city), ("instrument", s.by_instrument)):
        t = Table(title=f"By {title} (amounts in CNY m)", title_justify="left")
        for name in (title, "needs", "requested", "matched", "proposals", "agreed"):
            t.add_column(name, justify="left" if name == title else "right")
        for name in ("reserved", "closed", "funded"):
            t.add_column(name, justify="right")
        for r in rows:
            t.add_row(*_row(r.key, r))
        t.add_row(*_row("total", s.totals), style="bold")
        out.append(t)
    summary = Table(title="Corridor", title_justify="left", show_header=False)
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    d1, d2 = s.to_first_proposal, s.to_close
    summary.add_row("scope", s.scope)
    summary.add_row("need → first proposal, median / p90 h", f"{d1.median_hours} / {d1.p90_hours}")
    summary.add_row("need → close, median / p90 h", f"{d2.median_hours} / {d2.p90_hours}")
    summary.add_row(
        "open needs with no eligible offer",
        f"{s.no_eligible_offer} of {s.open_needs} ({s.no_eligible_share:.0%})",
    )
    for w in s.why_not[:5]:
        summary.add_row(f"  why not: {w.rule}", f"{w.needs} needs")
    out.append(summary)
    return out


def print_tables(s: StatsOut, console: Console) -> None:
    for t in tables(s):
        console.print(t)


def write_csv(s: StatsOut, path: Path) -> None:
    groups: list[tuple[str, list[GroupFigures]]] = [
        ("city", s.by_city),
        ("sector", s.by_sector),
        ("instrument", s.by_instrument),
        ("funder", s.by_funder),
        ("month", s.by_month),
    ]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dimension", "key", *COLUMNS, *COLUMNS_END])
        w.writerow(["total", "", *(getattr(s.totals, c) for c in (*COLUMNS, *COLUMNS_END))])
        for dim, rows in groups:
            for r in rows:
                w.writerow([dim, r.key, *(getattr(r, c) for c in (*COLUMNS, *COLUMNS_END))])


def _label(c: CapacityUse) -> str:
    """The offer's name where the charts' font can draw it (matplotlib's bundled font has no
    CJK glyphs, and 科创贷 would print as boxes), else its instrument and id."""
    return c.name if c.name.isascii() else f"{c.instrument} {c.offer_id[-6:]}"


def write_charts(s: StatsOut, out: Path) -> list[Path]:
    """The dashboard's five charts as PNG files in `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    written: list[Path] = []

    def save(fig: Figure, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    def grouped(ax: Axes, labels: list[str], series: dict[str, list[float]]) -> None:
        width = 0.8 / max(len(series), 1)
        for i, (name, values) in enumerate(series.items()):
            xs = [x + i * width for x in range(len(labels))]
            ax.bar(xs, values, width, label=name)
        ax.set_xticks(
            [x + width * (len(series) - 1) / 2 for x in range(len(labels))],
            labels,
            rotation=30,
            ha="right",
        )
        ax.legend()

    def m(xs: list[int]) -> list[float]:
        return [x / 1e6 for x in xs]

    fig, ax = plt.subplots(figsize=(9, 4.5))
    grouped(
        ax,
        [r.key for r in s.by_city],
        {
            "requested": m([r.requested_cny for r in s.by_city]),
            "matched": m([r.matched_cny for r in s.by_city]),
            "funded": m([r.funded_cny for r in s.by_city]),
        },
    )
    ax.set_title("Amount requested, matched and funded by city (CNY m)")
    save(fig, "by_city.png")

    fig, ax = plt.subplots(figsize=(9, 4.5))
    grouped(
        ax,
        [r.key for r in s.by_instrument],
        {
            "matched": m([r.matched_cny for r in s.by_instrument]),
            "funded": m([r.funded_cny for r in s.by_instrument]),
        },
    )
    ax.set_title("Amount matched and funded by instrument (CNY m)")
    save(fig, "by_instrument.png")

    t = s.totals
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(
        ["needs", "proposals", "agreed", "reserved", "closed"],
        [t.needs, t.proposals, t.agreed, t.reserved, t.closed],
        color="#2f6fb3",
    )
    ax.set_title("Funnel: from need to close")
    save(fig, "funnel.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh([w.rule for w in s.why_not][::-1], [w.needs for w in s.why_not][::-1])
    ax.set_title("Top why-not reasons (needs with no eligible offer)")
    save(fig, "why_not.png")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar([_label(c) for c in s.capacity], [100 * c.used_share for c in s.capacity])
    ax.set_ylim(0, 100)
    ax.set_title("Capacity used per fund / product (% of its capacity)")
    ax.tick_params(axis="x", rotation=30)
    save(fig, "capacity.png")
    return written
