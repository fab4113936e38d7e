"""`make bench-match`, the service's part: the matching *service* on the memory store with the
benchmark's market loaded in its engine — a new project's event → its proposals stored, the
background allocation after one change, and GET /v1/projects/{id}/matches over HTTP (uvicorn,
a client in another process) while that allocation runs, each with its baseline."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import offer_mix
from offer_mix import Timed

from g60_chassis import collector
from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from matching.adapters.allocator import ChildProcess, InProcess
from matching.bootstrap import bootstrap
from matching.domain.engine import MatchEngine
from matching.domain.model import Offer, Project
from matching.entrypoints.app import create
from matching.entrypoints.consumer import funding_events, project_events
from matching.service.handlers import MatchingService

Line = Callable[..., None]
GEN0: int = PlatformSettings.model_fields["gc_gen0_threshold"].default  # the served service's
CLIENT = """
import sys, time, httpx
url, key = sys.argv[1], sys.argv[2]
with httpx.Client(headers={"Authorization": "Bearer " + key}, timeout=60) as c:
    c.get(url).raise_for_status()
    print("ready", flush=True)
    while True:
        w, t = time.time(), time.perf_counter()
        r = c.get(url)
        print(w, time.perf_counter() - t, r.status_code, flush=True)
"""


def _stamp(as_of: datetime) -> dict[str, Any]:
    return {"version": 1, "created_at": as_of.isoformat(), "updated_at": as_of.isoformat()}


def offer_snapshot(o: Offer, at: datetime) -> OfferSnapshot:
    d = o.model_dump(mode="json", exclude={"capacity_cny"})
    req = d.get("requirements") or {}
    if req.get("min_years") is not None:
        req["min_years"] = round(req["min_years"])
    return OfferSnapshot.model_validate(
        {
            **d,
            **_stamp(at),
            "status": "active",
            "capacity_cny": o.capacity_cny,
            "remaining_cny": o.capacity_cny,
            "reserved_cny": 0,
            "committed_cny": 0,
        }
    )


def project_snapshots(p: Project, at: datetime) -> tuple[EnterpriseRegistered, ProjectSnapshot]:
    d = p.model_dump(mode="json")
    e = d.pop("enterprise")
    ent = EnterpriseRegistered.model_validate({**e, "created_at": at.isoformat()})
    project = ProjectSnapshot.model_validate(
        {**d, **_stamp(at), "enterprise_id": e["id"], "title": p.id, "status": "open"}
    )
    return ent, project


def census(top: int = 6) -> str:
    """How many objects a full collection walks, and the most common types among them."""
    kinds: dict[str, int] = {}
    for o in gc.get_objects():
        kinds[type(o).__name__] = kinds.get(type(o).__name__, 0) + 1
    common = sorted(kinds.items(), key=lambda kv: -kv[1])[:top]
    return f"{sum(kinds.values()):,} objects a full one walks: " + ", ".join(
        f"{n:,} {k}" for k, n in common
    )


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs) or [float("nan")]
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


async def run(
    e: MatchEngine,
    offers: list[Offer],
    new_projects: list[Project],
    engine_p99: float,
    say: Callable[[str], None],
    line: Line,
    get_seconds: float,
    profile: str | None = None,
    refreshes: int = 4,
    events_out: str | None = None,
    repeats: int = 0,
    offers_only: bool = False,
    gen0: int = GEN0,
    mix_offers: int = 100,
    tail: bool = True,
    seed: int = 60,
) -> None:
    """`gen0`: the youngest generation's threshold once loaded (0: Python's 700); by default
    the served service's (`collector.settle` in its lifespan). `mix_offers`: offer events
    sampled by width for the event mix (0: none), `tail`: one at the population's p99 width
    (`offer_mix.py`), `seed`: the sample's."""
    at = datetime.combine(e.as_of, datetime.min.time(), UTC)
    store = MemoryDocumentStore()
    keys = KeyStore(MemoryDocumentStore())
    built = bootstrap(
        PlatformSettings(store="memory", match_top_k=e.top_k, rate_limit_enabled=False),
        store=store,
        bus=MemoryBus(),
        keys=keys,
        clock=lambda: at,
        engine=e,
        allocate=ChildProcess(),
    )
    svc = built.service
    svc.allocation.allocate.start()  # as the service's prepare does: the child spawns meanwhile
    await built.ensure_indexes()  # as the service's lifespan does
    for o in offers:
        await svc.read.keep(svc.read.offers, offer_snapshot(o, at), removed=False)
    svc.proposals.seed(e.allocation_map())  # as if the flags of this allocation were stored
    # as the served service does: frozen once its engine is loaded (bootstrap.py), the young
    # generation collected every `gen0` allocations once started (its lifespan: a process run
    # by `serving.serve`); the bench ran at Python's 700 (`--gc-gen0 0`), whose young passes
    # walked each wide offer event's matches and events several times (5-12% of its CPU)
    collector.settle(gen0)
    handle = project_events(svc)
    events = []
    for p in new_projects:
        ent, project = project_snapshots(p, at)
        await svc.read.keep(svc.read.enterprises, ent, removed=False)
        events.append(
            Envelope(
                type="g60.project.submitted.v1",
                source="/b",
                subject=p.id,
                data=project.model_dump(mode="json"),
            )
        )

    say(f"\nthe matching service (memory store, {len(events)} new-project events)")
    # the last ones: one change before each refresh in the child, one before the thread's
    events, changes = events[: -refreshes - 1], events[-refreshes - 1 :]
    lat, cpu, collected = [], [], []  # wall, CPU, the collector's pauses inside each
    gc_began: list[float] = [0.0]
    gc_pauses: list[tuple[int, float]] = []

    def on_event_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        else:
            gc_pauses.append((info["generation"], time.perf_counter() - gc_began[0]))

    gc.callbacks.append(on_event_gc)
    for ev in events:
        gc_pauses.clear()
        t, c = time.perf_counter(), time.process_time()
        await handle(ev)
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        collected.append(gc_pauses[:])
        await built.relay.drain_written()  # as the running service's relay does, not timed
    gc.callbacks.remove(on_event_gc)
    stored = len(await svc.matches.every())
    line("event → proposals stored, p50", f"{pct(lat, 50) * 1e3:7.2f} ms")
    line(
        "event → proposals stored, p99",
        f"{pct(lat, 99) * 1e3:7.2f} ms",
        "[≤ 50 ms]",
        f"{pct(lat, 99) / engine_p99:5.2f}× the engine's upsert + proposals p99",
    )
    slowest = sorted(range(len(lat)), key=lambda i: lat[i], reverse=True)[:3]
    say(
        f"    CPU p50 / p99 {pct(cpu, 50) * 1e3:.1f} / {pct(cpu, 99) * 1e3:.1f} ms; "
        f"{sum(len(x) for x in collected)} collections inside "
        f"({sum(g == 2 for x in collected for g, _ in x)} full); the slowest three "
        "(wall / CPU / collector): "
        + "; ".join(
            f"{lat[i] * 1e3:.1f} / {cpu[i] * 1e3:.1f} / "
            f"{sum(d for _, d in collected[i]) * 1e3:.1f} ms"
            for i in slowest
        )
    )
    say(f"  {stored:,} matches stored for {len(events)} projects; the allocation was not computed")
    publish = built.relay.drain_written
    models = e.project_models
    await offer_events(
        svc,
        models,
        offers,
        at,
        line,
        say,
        publish,
        profile=profile,
        events_out=events_out,
        repeats=repeats,
        project_walls=lat,
        mix_offers=mix_offers,
        tail=tail,
        seed=seed,
    )
    if offers_only:
        svc.allocation.allocate.close()
        return
    t = time.perf_counter()
    await svc.allocation.refresh()
    line("first allocation run (a full one, in the child)", f"{time.perf_counter() - t:9.2f} s")

    # the outbox relay runs from here, as in the service (the event sections leave it stopped):
    # the batches it was handed (the new matches' events, breakdowns included) were a third of
    # the objects a full collection walks at 10,000 × 1,000, kept only because nothing published
    held = len(gc.get_objects())
    await built.relay.drain()
    await built.relay.start()
    say(
        f"  the outbox relay started: {held - len(gc.get_objects()):,} of {held:,} objects "
        "the collector tracked went with the events it published"
    )
    # one change, then the allocation, with GETs over HTTP from another process meanwhile
    import uvicorn

    app = create(built=built)  # served without its lifespan: the engine is loaded already
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    key = await keys.create(Role.operator)
    url = f"http://127.0.0.1:{port}/v1/projects/{new_projects[0].id}/matches"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, url, key, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    await proc.stdout.readline()  # ready
    samples: list[tuple[float, float]] = []
    refused: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            w, lat, status = raw.decode().split()
            if status != "200":  # counted, not fatal: the figures say how many
                refused.append(status)
                continue
            samples.append((float(w), float(lat)))

    reader = asyncio.create_task(read())
    await asyncio.sleep(min(get_seconds, 5.0))  # idle: the baseline
    idle = list(lat for _, lat in samples)
    i50, i99 = pct(idle, 50), pct(idle, 99)
    line(
        "GET /v1/projects/{id}/matches while idle, p50 / p99",
        f"{i50 * 1e3:.1f} / {i99 * 1e3:.1f} ms",
        "",
        f"{len(idle)} requests",
    )
    pauses: list[tuple[int, float, int]] = []  # the collector's pauses in this process
    began: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - began[0], info["collected"]))

    gc.callbacks.append(on_gc)
    stalls: list[tuple[float, float]] = []  # (when it ended, how late): the event loop's stalls

    async def watch() -> None:  # the loop's stalls, as g60_chassis.loop_lag sees them, finer
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stalls.append((now, now - t - 0.001))

    watching = asyncio.create_task(watch())
    child = svc.allocation.allocate
    pooled: list[float] = []  # GETs inside every refresh in the child
    pooled_stall = 0.0
    for n, (where, allocate, change) in enumerate(
        zip(
            ["child process"] * refreshes + ["worker thread"],
            [child] * refreshes + [InProcess()],
            changes,
            strict=True,
        )
    ):
        svc.allocation.allocate = allocate
        await handle(change)
        t0w, t = time.time(), time.perf_counter()
        pauses.clear()
        stalls.clear()
        alloc = await svc.allocation.refresh()
        t_refresh, t1w = time.perf_counter() - t, time.time()
        busy = [lat for w, lat in samples if t0w <= w and w + lat <= t1w]
        tm = svc.allocation.timings
        # each stall in the phase it began in (the sleeper's wake-up was due then): the
        # snapshot, the allocation away (the copy to the child included), the flags
        ends = (t + tm["snapshot"], t + tm["snapshot"] + tm["allocate"], float("inf"))
        worst = {ph: 0.0 for ph in ("snapshot", "allocate", "flags")}
        for w, lag in stalls:
            due = max(w - lag, t)
            ph = next(p for p, end in zip(worst, ends, strict=True) if due <= end)
            worst[ph] = max(worst[ph], lag)
        if where == "child process":
            pooled += busy
            pooled_stall = max(pooled_stall, *worst.values())
        line(
            f"allocation after one change, in a {where} ({n + 1})",
            f"{t_refresh:9.2f} s",
            "",
            f"snapshot {tm['snapshot'] * 1e3:.0f} ms, allocate {tm['allocate']:.1f} s, "
            f"flags {tm['flags'] * 1e3:.0f} ms",
        )
        line(
            "  GET meanwhile, p50 / p99 / max",
            " / ".join(f"{pct(busy, q) * 1e3:.1f}" for q in (50, 99, 100)) + " ms",
            "[≤ 50 ms]",
            f"{pct(busy, 99) / i99:5.2f}× idle p99, {len(busy)} requests, {len(refused)} refused",
        )
        say(
            "    the event loop's longest stall, by phase: "
            + ", ".join(f"{ph} {lag * 1e3:.0f} ms" for ph, lag in worst.items())
            + f"; {sum(lag > 0.02 for _, lag in stalls)} stalls over 20 ms"
        )
        say(
            "    garbage collections here, by generation (count, longest, total ms, collected): "
            + "; ".join(
                f"{g}: {len(ds)}, {max(ds, default=0) * 1e3:.0f}, {sum(ds) * 1e3:.0f}, "
                f"{sum(c for h, _, c in pauses if h == g):,}"
                for g in range(3)
                for ds in ([d for h, d, _ in pauses if h == g],)
            )
        )
        say(f"    {census()} (the rest frozen with the engine)")
    line(
        f"GET during the {refreshes} refreshes in the child, p50 / p99 / max",
        " / ".join(f"{pct(pooled, q) * 1e3:.1f}" for q in (50, 99, 100)) + " ms",
        "[≤ 50 ms]",
        f"{pct(pooled, 99) / i99:5.2f}× idle p99, {len(pooled)} requests; "
        f"the loop's longest stall {pooled_stall * 1e3:.0f} ms",
    )
    watching.cancel()
    say(
        f"  market version {alloc.market_version}: {len(alloc.assignments):,} assignments, "
        f"{len(alloc.blocking_pairs)} blocking pairs"
    )
    gc.callbacks.remove(on_gc)
    proc.terminate()
    await proc.wait()
    await reader
    server.should_exit = True
    await serving
    await built.relay.stop()
    built.service.allocation.allocate.close()


async def offer_events(
    svc: MatchingService,
    models: Mapping[str, Project],
    offers: list[Offer],
    at: datetime,
    line: Line,
    say: Callable[[str], None],
    publish: Callable[[], Awaitable[int]],
    samples: int = 30,
    profile: str | None = None,
    events_out: str | None = None,
    repeats: int = 0,
    project_walls: list[float] | None = None,
    mix_offers: int = 100,
    tail: bool = True,
    seed: int = 60,
) -> None:
    """A new offer's event → the proposals of every project whose top k it entered stored (a
    copy of a stored offer under a new id: it competes for the same projects), against the
    engine's own upsert of the same offer; each is withdrawn again after. The projects it
    touches (their models in `models`, the loaded engine's) get their views and current
    proposals stored first (not timed), as in a running service, so the event writes what
    changed: its new proposals and the retractions. Between events (not timed) the outbox relay
    publishes what they wrote (`publish`), as a running service's does: left waiting, a whole
    run's events stayed in memory, walked by every full garbage collection after.
    `profile`: a file to write the timed events' cProfile to (its top printed).
    `events_out`: a file to write each event's projects touched, CPU, wall and collector ms to
    (what makes the p99: the widest events' work, or stalls in ordinary ones).
    `repeats`: each wide offer's event (≥ 60 projects) run this many times more, each under a
    fresh id, for a steadier CPU per project than one run's (profiled too, with `profile`).
    `project_walls`: the new-project events' wall times, for the event mix (`offer_mix.report`:
    the offers' widths, `mix_offers` of them sampled by width, `tail`, `seed`)."""
    funding = funding_events(svc)
    prof = cProfile.Profile() if profile else None
    pauses: list[tuple[int, float]] = []  # the collector's pauses inside the timed events
    began, timing = [0.0], [False]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        elif timing[0]:
            pauses.append((info["generation"], time.perf_counter() - began[0]))

    gc.callbacks.append(on_gc)
    engine_t, event_t, settle_t, touched, proposed, cpu_t = [], [], [], [], [], []
    gc_t: list[float] = []  # the collector's time inside each timed event
    step = max(1, len(offers) // samples)

    async def one(o: Offer, new_id: str) -> Timed:
        """One offer event under `new_id` (set up, timed, settled, withdrawn: that event's
        own CPU timed too, its matches retracted)."""
        copy = o.model_copy(update={"id": new_id})
        snapshot = offer_snapshot(copy, at)
        t = time.perf_counter()
        delta = svc.engine.upsert_offer(svc.translate.offer(snapshot))
        engine = time.perf_counter() - t
        svc.engine.remove_offer(copy.id)
        for project_id in delta.projects:
            ent, project = project_snapshots(models[project_id], at)
            await svc.read.keep(svc.read.enterprises, ent, removed=False)
            await svc.read.keep(svc.read.projects, project, removed=False)
        await svc.proposals.reconcile(delta.projects)
        await svc.proposals.settling.settled()  # an idle service: nothing left for later
        await publish()
        data = snapshot.model_dump(mode="json")
        published = Envelope(type="g60.offer.published.v1", source="/b", subject=copy.id, data=data)
        if prof is not None:
            prof.enable()
        before = len(pauses)
        t, c, timing[0] = time.perf_counter(), time.process_time(), True
        await funding(published)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        timing[0] = False
        if prof is not None:
            prof.disable()
        await svc.proposals.settling.settled()  # ranks shifted etc., in the background
        settle_t.append(time.perf_counter() - t)
        proposed.append(len(await svc.matches.every({"offer_id": copy.id})))
        gone = {**data, "status": "withdrawn", "version": 2}
        c = time.process_time()
        await funding(
            Envelope(type="g60.offer.withdrawn.v1", source="/b", subject=copy.id, data=gone)
        )
        withdrawn = time.process_time() - c
        await svc.proposals.settling.settled()
        await publish()
        collected = sum(d for _, d in pauses[before:])
        return Timed(engine, wall, cpu, collected, len(delta.projects), withdrawn, settle_t[-1])

    picked = offers[::step][:samples]
    withdrawn_t: list[float] = []  # CPU of each offer's withdrawal event (its matches retracted)
    for o in picked:
        timed = await one(o, f"{o.id}-again")
        engine_t.append(timed.engine)
        event_t.append(timed.wall)
        cpu_t.append(timed.cpu)
        gc_t.append(timed.collected)
        touched.append(timed.projects)
        withdrawn_t.append(timed.withdrawn)
    e99 = pct(engine_t, 99)
    line("offer event → proposals stored, p50", f"{pct(event_t, 50) * 1e3:7.2f} ms")
    line(
        "offer event → proposals stored, sample's p99",
        f"{pct(event_t, 99) * 1e3:7.2f} ms",
        "",
        f"{pct(event_t, 99) / e99:5.2f}× the engine's upsert of the offer p99 "
        f"({e99 * 1e3:.1f} ms); {len(event_t)} offers evenly spaced in the market's order "
        "(the target's figure: the event mix below)",
    )
    line(
        "  CPU time of the offer event, p50 / p99",
        f"{pct(cpu_t, 50) * 1e3:.1f} / {pct(cpu_t, 99) * 1e3:.1f} ms",
        "",
        f"wide ones (≥ 60 projects): {_per_project(cpu_t, touched) * 1e3:.3f} ms per project",
    )
    line(
        "  CPU of the offer's withdrawal event, p50 / p99",
        f"{pct(withdrawn_t, 50) * 1e3:.1f} / {pct(withdrawn_t, 99) * 1e3:.1f} ms",
        "",
        f"wide ones (≥ 60 projects): {_per_project(withdrawn_t, touched) * 1e3:.3f} ms per project",
    )
    line(
        "  the rest settled (background), p50 / p99",
        f"{pct(settle_t, 50) * 1e3:.1f} / {pct(settle_t, 99) * 1e3:.1f} ms",
        "",
        "ranks shifted, breakdowns of the offer's other pairs",
    )
    say(
        f"  garbage collections inside them: {len(pauses)} "
        f"({sum(1 for g, _ in pauses if g == 2)} full), "
        f"longest {max((d for _, d in pauses), default=0.0) * 1e3:.0f} ms"
    )
    # the slowest events: is the p99 the event's own work, or a collection landing in it?
    slowest = sorted(range(len(event_t)), key=lambda i: event_t[i], reverse=True)[:3]
    say(
        "  the slowest three (wall / CPU / collector, projects): "
        + "; ".join(
            f"{event_t[i] * 1e3:.1f} / {cpu_t[i] * 1e3:.1f} / {gc_t[i] * 1e3:.1f} ms, {touched[i]}"
            for i in slowest
        )
    )
    own = [w - g for w, g in zip(event_t, gc_t, strict=True)]
    line(
        "  offer event p99 without the collector's pauses",
        f"{pct(own, 99) * 1e3:7.2f} ms",
        "",
        "wall time minus the collections inside it (not the target: its explanation)",
    )
    if events_out:
        _write_events(events_out, zip(touched, cpu_t, event_t, gc_t, strict=True))
    n = max(len(touched), 1)
    say(
        f"  {len(event_t)} new offers; projects whose top k each entered: mean "
        f"{sum(touched) / n:.1f}, max {max(touched, default=0)}; proposed: mean "
        f"{sum(proposed) / n:.1f}"
    )
    if repeats:
        await _repeat_wide(one, picked, touched, repeats, say)
    if mix_offers and project_walls:
        await offer_mix.report(
            one,
            svc.engine,
            project_walls,
            max(touched, default=0),
            say,
            line,
            seed,
            e99,
            mix_offers,
            tail,
        )
    gc.callbacks.remove(on_gc)  # after the repeats: their collector's time is counted too
    if prof is not None and profile:
        prof.dump_stats(profile)
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
        say(f"  cProfile of the timed offer events ({profile}), by own time:")
        say("\n".join("    " + x for x in out.getvalue().splitlines() if x.strip()))


async def _repeat_wide(
    one: Callable[[Offer, str], Awaitable[Timed]],
    picked: list[Offer],
    touched: list[int],
    repeats: int,
    say: Callable[[str], None],
    wide: int = 60,
) -> None:
    """The wide offers' events again, `repeats` times each: per offer the median CPU per
    project (the steadier figure on a shared machine), and their mean."""
    rows, gone, collected = [], [], []
    for o, n in zip(picked, touched, strict=True):
        if n < wide:
            continue
        runs = [await one(o, f"{o.id}-again{r}") for r in range(repeats)]
        cpus = [t.cpu for t in runs]
        rows.append((n, statistics.median(cpus), min(cpus)))
        gone.append(statistics.median(t.withdrawn for t in runs) / n)
        collected.append(sum(t.collected for t in runs))
    say(
        f"  the wide offers repeated {repeats}×, median CPU per project: "
        + "; ".join(f"{n}: {m / n * 1e3:.3f} ms (best {b / n * 1e3:.3f})" for n, m, b in rows)
        + f"; mean {statistics.fmean(m / n for n, m, _ in rows) * 1e3:.3f} ms; their "
        f"withdrawals: mean {statistics.fmean(gone) * 1e3:.3f} ms per project; the collector "
        f"inside the repeated publications: {sum(collected) * 1e3:.1f} ms"
    )


def _write_events(path: str, rows: Iterable[tuple[int, float, float, float]]) -> None:
    """One line per timed offer event: projects touched, CPU, wall and collector ms."""
    with open(path, "w") as f:
        f.write("projects\tcpu_ms\twall_ms\tgc_ms\n")
        for n, cpu, wall, gc_s in rows:
            f.write(f"{n}\t{cpu * 1e3:.2f}\t{wall * 1e3:.2f}\t{gc_s * 1e3:.2f}\n")


def _per_project(cpu: list[float], touched: list[int], wide: int = 60) -> float:
    """CPU time per touched project over the wide events (the p99 are those)."""
    rows = [(c, n) for c, n in zip(cpu, touched, strict=True) if n >= wide]
    return sum(c for c, _ in rows) / max(sum(n for _, n in rows), 1)


async def restart(
    e: MatchEngine,
    projects: list[Project],
    offers: list[Offer],
    say: Callable[[str], None],
    line: Line,
) -> None:
    """A matching service started on a store holding the whole market (its last project left
    out: its event arrives while the engine loads). Timed from the start of its lifespan: the
    first GET /v1/projects/{id}/matches answered (ready), the event consumed (its handler
    returned: the offset would be committed), and the engine loaded with that event applied
    (its proposals stored). Baseline: reading the same documents raw from the store."""
    at = datetime.combine(e.as_of, datetime.min.time(), UTC)
    store = MemoryDocumentStore()
    seed = bootstrap(
        PlatformSettings(store="memory"), store=store, bus=MemoryBus(), clock=lambda: at
    )
    read = seed.service.read
    probe = MatchEngine(e.as_of, top_k=e.top_k)
    probe.load((), offers, delta=False)
    late = next(p for p in reversed(projects) if probe.upsert_project(p).added)  # proposed
    stored = [p for p in projects if p.id != late.id]
    t = time.perf_counter()
    for o in offers:
        await read.keep(read.offers, offer_snapshot(o, at), removed=False)
    for p in stored:
        ent, project = project_snapshots(p, at)
        await read.keep(read.enterprises, ent, removed=False)
        await read.keep(read.projects, project, removed=False)
    ent, project = project_snapshots(late, at)
    await read.keep(read.enterprises, ent, removed=False)
    event = Envelope(
        type="g60.project.submitted.v1",
        source="/b",
        subject=late.id,
        data=project.model_dump(mode="json"),
    )
    say(
        f"\nrestart with {len(stored):,} projects and {len(offers):,} offers stored "
        f"(stored in {time.perf_counter() - t:.0f} s, not timed)"
    )
    t = time.perf_counter()
    raw = 0
    for collection in ("enterprise_views", "project_views", "offer_views"):
        raw += len(await store.find(collection, None, limit=10**9))
    t_raw = time.perf_counter() - t

    keys = KeyStore(MemoryDocumentStore())
    key = await keys.create(Role.operator)
    built = bootstrap(
        PlatformSettings(store="memory", match_top_k=e.top_k, rate_limit_enabled=False),
        store=store,
        bus=MemoryBus(),
        keys=keys,
        clock=lambda: at,
        allocate=InProcess(),
    )
    app = create(built=built)
    import httpx
    from asgi_lifespan import LifespanManager

    svc = built.service
    t0 = time.perf_counter()
    async with LifespanManager(app, startup_timeout=600, shutdown_timeout=600):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            r = await client.get(
                f"/v1/projects/{stored[0].id}/matches",
                headers={"Authorization": f"Bearer {key}"},
            )
            t_ready = time.perf_counter() - t0
            assert r.status_code == 200, r.text
            loading = not svc.loaded.is_set()
            await project_events(svc)(event)
            t_consumed = time.perf_counter() - t0
            during: list[float] = []  # GETs while the engine loads, one every 50 ms
            while not svc.loaded.is_set():
                t = time.perf_counter()
                r = await client.get(
                    f"/v1/projects/{stored[len(during) % len(stored)].id}/matches",
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert r.status_code == 200, r.text
                during.append(time.perf_counter() - t)
                await asyncio.sleep(0.05)
            t_loaded = time.perf_counter() - t0
            await svc.allocation.stop()  # not part of the restart
            wanted = svc.engine.proposals_for_projects([late.id], breakdowns=False, allocated=False)
            got = await svc.matches.every({"project_id": late.id})
    line(f"baseline: read the {raw:,} views raw from the store", f"{t_raw:9.2f} s")
    line(
        "restart: ready, GET matches answered",
        f"{t_ready:9.2f} s",
        "[≤ 10 s]",
        f"{t_ready / t_raw:5.2f}× the raw read",
    )
    line(
        "restart: an event consumed" + (" (kept pending)" if loading else ""),
        f"{t_consumed:9.2f} s",
        "[≤ 10 s]",
        f"{t_consumed / t_raw:5.2f}× the raw read",
    )
    line(
        "restart: engine loaded, that event applied",
        f"{t_loaded:9.2f} s",
        "",
        f"{t_loaded / t_raw:5.2f}× the raw read; {svc.loading.caught_up} pending applied",
    )
    if during:
        line(
            "  GET matches while it loads, p50 / p99 / max",
            " / ".join(f"{pct(during, q) * 1e3:.0f}" for q in (50, 99, 100)) + " ms",
            "",
            f"{len(during)} requests",
        )
    line(
        "  ready / loaded (the start before: ready once loaded)",
        f"{t_ready / t_loaded:9.2f}",
    )
    proposed = len(wanted.get(late.id, []))
    say(f"  the event's project: {len(got)} matches stored, {proposed} proposed by the engine")


def main(argv: list[str] | None = None) -> int:
    """The service's sections alone, on the same generated market as `bench_match.py`."""
    import argparse

    import bench_match as bm

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="10,000 × 1,000")
    ap.add_argument("--projects", type=int, help="projects in the market (default 100,000)")
    ap.add_argument("--offers", type=int, help="offers in the market (default 10,000)")
    ap.add_argument("--samples", type=int, default=300, help="new-project events timed")
    ap.add_argument("--get-seconds", type=float, default=5.0, help="idle GETs (the baseline)")
    ap.add_argument("--no-service", action="store_true", help="skip the loaded service")
    ap.add_argument("--no-restart", action="store_true", help="skip the restart")
    ap.add_argument("--refreshes", type=int, default=4, help="refreshes timed in the child")
    ap.add_argument("--seed", type=int, default=60)
    ap.add_argument("--profile", help="write a cProfile of the timed offer events to this file")
    ap.add_argument("--events", help="write each timed offer event's projects, CPU, wall to this")
    ap.add_argument(
        "--repeat-wide", type=int, default=0, help="run each wide offer event N times more"
    )
    ap.add_argument("--offers-only", action="store_true", help="stop after the offer events")
    ap.add_argument(
        "--mix-offers",
        type=int,
        default=100,
        help="offer events sampled by width for the event mix's p99 (0: none)",
    )
    ap.add_argument(
        "--no-tail", action="store_true", help="skip the offer at the population's p99 width"
    )
    ap.add_argument(
        "--gc-gen0",
        type=int,
        default=GEN0,
        help="the young generation's threshold, as the served service sets it (0: Python's)",
    )
    args = ap.parse_args(argv)
    n_p = args.projects or (10_000 if args.quick else 100_000)
    n_o = args.offers or (1_000 if args.quick else 10_000)
    bm.say(
        f"matching service benchmark: {n_p:,} projects × {n_o:,} offers, seed {args.seed}, "
        f"young collections every {args.gc_gen0 or gc.get_threshold()[0]:,} allocations"
    )
    projects, offers = bm.market(n_p + args.samples, n_o, bm.AS_OF, args.seed)
    thresholds = gc.get_threshold()
    new_projects, projects = projects[n_p:], projects[:n_p]
    if not args.no_service:
        e = MatchEngine(bm.AS_OF, top_k=10)
        t = time.perf_counter()
        e.load(projects, offers, delta=False)
        bm.say(f"engine loaded in {time.perf_counter() - t:.1f} s (not timed below)")
        lat = []  # the engine alone: the baseline of the event path
        for p in new_projects[:100]:
            t = time.perf_counter()
            e.upsert_project(p)
            e.proposals_for_project(p.id, breakdowns=True, allocated=False)
            lat.append(time.perf_counter() - t)
            e.remove_project(p.id)
        asyncio.run(
            run(
                e,
                offers,
                new_projects,
                pct(lat, 99),
                bm.say,
                bm.line,
                args.get_seconds,
                profile=args.profile,
                refreshes=args.refreshes,
                events_out=args.events,
                repeats=args.repeat_wide,
                offers_only=args.offers_only,
                gen0=args.gc_gen0,
                mix_offers=args.mix_offers,
                tail=not args.no_tail,
                seed=args.seed,
            )
        )
        del e
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        gc.collect()
    if not args.no_restart:
        asyncio.run(restart(MatchEngine(bm.AS_OF, top_k=10), projects, offers, bm.say, bm.line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
