"""The capacity-aware allocation of a market, from `MarketSnapshot`s, so that it can run in a
worker thread or process while the engine keeps changing on the event loop.

`allocate_market(snapshot)` is the batch allocation: deferred acceptance from scratch, then
repair (`allocation.py`). `MarketAllocation` keeps the deferred-acceptance state between
snapshots: the first call is the batch allocation; each later one reads what changed since the
previous snapshot (`changes.py`) and continues from the state. Projects that changed, came or
went, and the holders of offers whose terms changed, are taken out and propose again from the
top; an offer whose capacity changed chooses again from what it holds; every offer that gained
room reopens the projects it rejected, transitively (`stability.unsettle`), so every rejection
left in the state still holds and deferred acceptance continued from it ends where the batch run
does: exactly the batch's allocation when amounts are equal (one outcome whatever the order of
proposals; the property tests hold it to that). With mixed amounts the outcome depends on the
order of proposals anyway, and one new offer can reopen a third of the market through the chains
of holders leaving, so beyond `REOPEN` projects the reopening is left to repair instead: an offer
that gained room makes blocking pairs with the projects it would now keep, and the repair rounds
move them, chain by chain (the same repair the batch runs).

A project whose list changed only below the offer it holds keeps its state, or goes back to
the first place that changed (`rewind.py`; lists lengthened beyond the cache are read again
as deep to tell), instead of proposing again from the top. Then repair
resumes from the residual blocking pairs of the previous run plus those the changes may have
made, within a budget of proposals and rounds (a round that would pass it is undone): the work
of one run stays bounded whatever chains its moves set off. Residual pairs piled up beyond
twice those of the last batch run + 64 (each run repairs only the pairs its changes made, and
some stay): this run repairs them all, within the same budget, and so on until they are back
under (the reference stays the batch's: following what the last such repair left let them
pile up to thousands at full scale). Only too many changes (5 %
of the projects, 64 offers) or a new "as of" day run the batch."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from matching.domain import changes, rewind, stability
from matching.domain.acceptance import Acceptance, Pairs
from matching.domain.allocation import SETTLE, Result, repair, result, settle, since
from matching.domain.preferences import SnapshotLists
from matching.domain.results import Allocation
from matching.domain.snapshot import MarketSnapshot
from matching.domain.topcache import I64

Progress = Callable[[str, int, int], None]  # (stage, done, total)
MAX_SHARE = 0.05  # changed projects beyond this share of the market: the batch instead
MAX_OFFERS = 64  # offers whose terms changed beyond this: the batch instead
REOPEN = 256  # projects reopened for an exact continuation at most (see `_step`)
DRIFT = 2  # residual blocking pairs beyond twice the last batch's (+ 64): repair them all
BUDGET = 20_000  # proposals the repair of a run after changes may make (see `repair`)
ROUNDS, PATIENCE = 12, 4  # its repair rounds at most, and without improvement
SETTLE_STEP, TRIES = 10_000, 32  # proposals and tries of the one-at-a-time search after changes


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Deferred acceptance makes millions of small tuples and lists that live until the end of
    the run; each of Python's cyclic collections would walk them all, and every other object of
    the process (a loaded service or the benchmark's input models): -30 % at 30,000 × 3,000.
    Nothing the run makes is cyclic; the collector runs again afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def allocate_market(m: MarketSnapshot, progress: Progress | None = None) -> Allocation:
    return MarketAllocation()(m, progress)


class MarketAllocation:
    def __init__(self) -> None:
        self.market: MarketSnapshot | None = None
        self.state: Acceptance | None = None
        self.lists: SnapshotLists | None = None
        self.pairs: Pairs = {}  # the residual blocking pairs of the last run
        self.mode = ""  # "batch" or "incremental": how the last run went
        self.reopened = 0  # projects the last incremental run let propose again
        self.exact = True  # the last run is the batch's result, were amounts equal
        self.batch_pairs = 0  # the residual blocking pairs the last batch's rounds left
        self._rewind: dict[int, int] = {}  # project row → place it proposes from again

    def __call__(self, m: MarketSnapshot, progress: Progress | None = None) -> Allocation:
        with _collector_paused():
            return self._run(m, progress)

    def _run(self, m: MarketSnapshot, progress: Progress | None) -> Allocation:
        old, s, lists = self.market, self.state, self.lists
        if old is None or s is None or lists is None or old.as_of_ord != m.as_of_ord:
            return self._batch(m, progress)
        c = changes.between(old, m)
        c, self._rewind = rewind.unmoved(s, lists, old, m, c)
        if c.projects.size > max(64, MAX_SHARE * m.live.size) or c.reset.size > MAX_OFFERS:
            return self._batch(m, progress)
        moved = np.union1d(c.reset, c.recap)  # (capacity decides eligibility too)
        hit = rewind.hit(lists, m, moved).without(c.projects)
        deep, back = rewind.deep(s, lists, m, hit, c.reset, moved)
        self._rewind.update(back)
        changed = np.union1d(c.projects, deep).astype(np.int64)
        changed = np.union1d(changed, self._shorten(m, np.setdiff1d(c.shrunk, deep)))
        return self._step(m, c, changed.astype(np.int64), progress)

    def _shorten(self, m: MarketSnapshot, rows: I64) -> I64:
        """Lists the cache now holds less of: cut to what it holds where the project has not
        proposed beyond; the rows that did (they changed)."""
        s, lists = self.state, self.lists
        assert s is not None and lists is not None
        out = []
        for p, n in zip(rows.tolist(), m.pref_count[rows].tolist(), strict=True):
            if p in lists.deep:
                continue
            if s.ptr[p] > n:
                out.append(p)
            else:
                lists.cut(p, n)
        return np.asarray(out, dtype=np.int64)

    def _arrays(self, s: Acceptance, m: MarketSnapshot, rank: I64 | None = None) -> None:
        P, O = m.projects, m.offers
        s.columns(
            P["amount"],
            O["tmax"],
            O["cap"],
            O["deals_left"],
            m.project_rank if rank is None else rank,
        )

    def _ranks(self, s: Acceptance, old: MarketSnapshot, m: MarketSnapshot) -> I64 | None:
        """The ranks the state goes on with: ranks only order ids, so the old ones hold while
        no id came, or every id that came sorts after all others (new ids usually do); then
        they get the next ranks. None: the ids' order changed, the state takes the new ranks
        (and re-keys what offers hold)."""
        live = np.flatnonzero(m.projects["active"])
        k = len(old.project_ids)
        same = np.zeros(live.size, dtype=bool)
        inside = live < k
        same[inside] = changes.same_ids(old.project_ids, m.project_ids, live[inside])
        came, stayed = live[~same], live[same]
        rank = np.zeros(len(m.project_ids), np.int64)
        n = min(rank.size, s.rank.size)
        rank[:n] = s.rank[:n]
        if came.size == 0:
            return rank
        new_rank = m.project_rank
        if stayed.size and int(new_rank[came].min()) < int(new_rank[stayed].max()):
            return None
        top = int(rank[stayed].max()) if stayed.size else -1
        rank[came[np.argsort(new_rank[came])]] = top + 1 + np.arange(came.size)
        return rank

    def _batch(self, m: MarketSnapshot, progress: Progress | None) -> Allocation:
        live = m.live
        order = live[np.argsort(m.project_rank[live])].tolist()
        lists = SnapshotLists(m, live, progress)
        P, O = m.projects, m.offers
        s = Acceptance(lists, P["amount"], O["tmax"], O["cap"], O["deals_left"], m.project_rank)
        s.run(order)
        blocking = stability.blocking(s, order)
        if progress:
            progress("deferred acceptance: proposals, blocking pairs", s.proposals, len(blocking))
        self.mode, self.reopened, self.exact = "batch", 0, True
        r = repair(s, blocking, progress=progress)
        # The reference for residual pairs piling up stays what the rounds leave (441 at full
        # scale), not what `settle` leaves (29): a budgeted repair of them all cuts chains and
        # leaves more; with 29 as the reference it ran after most offer changes and 168 single
        # changes ended with 2,173 pairs. `settle` after each run keeps them low instead.
        self.batch_pairs = len(r.pairs)
        r = result(s, settle(s, r.pairs, SETTLE), r.rounds)
        s.compact_applicants()  # each offer's applicants together: read ~20% faster after changes
        if progress:
            progress("one at a time: blocking pairs", s.proposals, len(r.pairs))
        return self._done(m, s, lists, r)

    def _step(
        self, m: MarketSnapshot, c: changes.Changes, changed: I64, progress: Progress | None
    ) -> Allocation:
        s, lists = self.state, self.lists
        assert s is not None and lists is not None
        s.clear_marks()
        s.proposals = 0
        live = m.projects["active"]
        out = set(changed.tolist())
        for o in c.reset.tolist():
            out.update(s.held_by(o))
        opened = s.drop(out)  # with the lists they proposed from
        self._rewind = {p: q for p, q in self._rewind.items() if p not in out}
        opened |= rewind.rewound(s, lists, m, self._rewind)
        gone = [p for p in out if p >= live.size or not live[p]]
        lists.take(m, np.asarray([p for p in out if p not in gone], dtype=np.int64), gone)
        kept_ranks = self._ranks(s, self.market, m) if self.market is not None else None
        self._arrays(s, m, kept_ranks)
        for o in c.reset.tolist():
            s.reset_offer(o)
        if kept_ranks is None:
            s.rekey()
        rejected = list[int]()
        for o in c.recap.tolist():
            rejected += s.recap(o)
        opened.update(c.reset.tolist(), c.grew.tolist())
        s.dirty_o[list(opened)] = True
        s.touched_o[list(opened)] = True
        s.touched_o[c.recap] = True
        reopen = stability.unsettle(s, opened, REOPEN)
        self.exact = reopen is not None
        again = reopen or set()  # too many: the blocking pairs and repair move them instead
        s.drop(again)
        rank = s.rank
        queue = sorted(
            (out | again | set(rejected) | self._rewind.keys()) - set(gone), key=lambda p: rank[p]
        )
        s.run(queue)
        self.mode, self.reopened = "incremental", len(again)
        out |= self._rewind.keys()
        old = {x: j for x, j in self.pairs.items() if x[0] not in out and x[0] not in again}
        now = since(s, old)
        if len(now) > DRIFT * self.batch_pairs + 64:  # residual pairs piled up: repair them all
            r = repair(s, now, ROUNDS, PATIENCE, progress, BUDGET)
            r = result(s, settle(s, r.pairs, SETTLE_STEP, tries=TRIES), r.rounds)
        else:
            # Repair what the changes made: the residual pairs left before were already tried
            # by the repair that left them (they come back in cycles): only checked again.
            made = {x: j for x, j in now.items() if x not in old}
            r = repair(s, made, ROUNDS, PATIENCE, None, BUDGET)
            left = {x: j for x, j in old.items() if x in now and j < s.upto(x[0])}
            every = {**stability.blocking(s, (), (), left), **r.pairs}
            made_now = every.keys() - old.keys()
            r = result(s, settle(s, every, SETTLE_STEP, focus=made_now, tries=TRIES), r.rounds)
        return self._done(m, s, lists, r)

    def _done(
        self, m: MarketSnapshot, s: Acceptance, lists: SnapshotLists, r: Result
    ) -> Allocation:
        """The allocation as ids, in columns (see `Allocation`); the id order recomputed each
        time (a few ms): a new project's row can shift the ranks of the others while the
        assigned rows stay the same (the property test caught it)."""
        self.market, self.state, self.lists, self.pairs = m, s, lists, r.pairs
        pid, oid = m.project_ids, m.offer_ids
        ps = np.flatnonzero(r.assign >= 0)
        ps = ps[np.argsort(s.rank[ps])]
        os_ = r.assign[ps]
        blocking = sorted((str(pid[p]), str(oid[o])) for p, o in r.blocking)
        return Allocation(
            project_ids=np.array([pid[p] for p in ps.tolist()], dtype=np.str_),
            offer_ids=np.array([oid[o] for o in os_.tolist()], dtype=np.str_),
            amounts=np.minimum(r.amount[ps], r.tmax[os_]).astype(np.int64),
            blocking=np.array(blocking, dtype=np.str_).reshape(-1, 2),
            stable=r.stable,
            repair_rounds=r.rounds,
            proposals_made=r.proposals,
            market_version=m.version,
        )
