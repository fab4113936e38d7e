"""The proposals, read from the market's top-k caches: each project's ranked offers, each
offer's projects, one pair's rank among all a project's eligible offers, and the proposals'
scores and breakdowns computed a batch of pairs at a time. Composed by `MatchEngine`, which
gives it the market's state and the allocation to mark."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from matching.domain import eligibility, explanations, offerscores, pairs, scoring
from matching.domain.columns import Cols
from matching.domain.results import Proposal
from matching.domain.state import MarketState

I64 = npt.NDArray[np.int64]
AllocationMap = Callable[[], dict[str, str]]  # project id → allocated offer id, fresh
P_READ = tuple(dict.fromkeys((*scoring.P_COLUMNS, *explanations.P_NOTES)))  # the breakdowns'
O_READ = tuple(dict.fromkeys((*scoring.O_COLUMNS, *explanations.O_NOTES)))


class Ranking:
    def __init__(self, market: MarketState, allocation_map: AllocationMap) -> None:
        self.market = market
        self.allocation_map = allocation_map

    def pairs(self, prows: list[int], orows: list[int]) -> tuple[Cols, Cols]:
        m = self.market
        return m.projects.take(np.asarray(prows)), m.offers.take(np.asarray(orows))

    def _read(self, prows: list[int], orows: list[int]) -> tuple[Cols, Cols]:
        """The columns the breakdowns read of these pairs (`pairs` took all ~60), the offer's
        as one row when every pair has the same offer (a wide change's do: the formulas
        broadcast it, the same values)."""
        m = self.market
        P = pairs.take(m.projects.cols, np.asarray(prows, np.int64), P_READ)
        one = all(o == orows[0] for o in orows)
        return P, pairs.take(m.offers.cols, np.asarray(orows[:1] if one else orows), O_READ)

    def pair_scores(self, project_id: str, offer_id: str) -> tuple[int, int] | None:
        """Both views' quantised totals of an eligible pair (None if not eligible)."""
        m = self.market
        P, O = self.pairs([m.projects.row[project_id]], [m.offers.row[offer_id]])
        if not bool(eligibility.eligible(P, O, m.as_of_ord)[0]):
            return None
        e_q, f_q = scoring.totals(P, O)
        return int(e_q[0]), int(f_q[0])

    def visible(self, row: int) -> list[int]:
        """The offer rows of a project row's top k, best first."""
        ranked = self.market.ranked
        mine: list[int] = ranked.off[row, : min(int(ranked.count[row]), self.market.top_k)].tolist()
        return mine

    def rank(self, row: int, orow: int) -> int:
        """The rank of an eligible offer among all the project's eligible offers."""
        mine = self.visible(row)
        return mine.index(orow) + 1 if orow in mine else self._rank_beyond(row, orow)

    def ranks(self, prows: list[int], orows: list[int]) -> list[int]:
        """`rank` of each of these eligible pairs: from the top k, else counted in one
        vectorised pass over all the eligible pairs of the projects concerned (`pairs.blocks`,
        as the top ks are filled) instead of a pass over every offer per pair (`_rank_beyond`:
        most of the allocation flags' CPU, a flagged pair being often beyond the top k)."""
        out, beyond = [0] * len(prows), dict[int, list[int]]()
        for j, (row, orow) in enumerate(zip(prows, orows, strict=True)):
            mine = self.visible(row)
            if orow in mine:
                out[j] = mine.index(orow) + 1
            else:
                beyond.setdefault(row, []).append(j)
        if not beyond:
            return out
        m = self.market
        id_rank = m.offers.id_order()  # ties by offer id
        rows = np.asarray(sorted(beyond), dtype=np.int64)
        for ch in pairs.blocks(m.projects.view(), rows, m.offers.view(), m.as_of_ord):
            c, offs = ch.e_q + ch.f_q, ch.offers[ch.ci] if ch.ci.size else ch.ci
            bounds = np.searchsorted(ch.ri, np.arange(ch.rows.size + 1)).tolist()  # row-major
            for r, row in enumerate(ch.rows.tolist()):
                cs, os_ = c[bounds[r] : bounds[r + 1]], offs[bounds[r] : bounds[r + 1]]
                for j in beyond[row]:
                    at = np.flatnonzero(os_ == orows[j])
                    if at.size == 0:  # not among the block's pairs: never, but ranked as before
                        out[j] = self._rank_beyond(row, orows[j])
                        continue
                    mc, me = cs[at[0]], id_rank[orows[j]]
                    out[j] = int((cs > mc).sum() + ((cs == mc) & (id_rank[os_] < me)).sum()) + 1
        return out

    def of_pairs(
        self, wanted: Sequence[tuple[str, str]], breakdowns: bool, allocated: bool
    ) -> list[Proposal | None]:
        """See `MatchEngine.proposals_of`."""
        m = self.market
        out: list[Proposal | None] = [None] * len(wanted)
        at = [i for i, (p, o) in enumerate(wanted) if p in m.projects.row and o in m.offers.row]
        if not at:
            return out
        prows = [m.projects.row[wanted[i][0]] for i in at]
        orows = [m.offers.row[wanted[i][1]] for i in at]
        P, O = self.pairs(prows, orows)
        ok = np.flatnonzero(eligibility.eligible(P, O, m.as_of_ord)).tolist()
        prows, orows = [prows[j] for j in ok], [orows[j] for j in ok]
        made = self.proposals(prows, orows, self.ranks(prows, orows), breakdowns, allocated)
        for j, p in zip(ok, made, strict=True):
            out[at[j]] = p
        return out

    def _rank_beyond(self, row: int, orow: int) -> int:
        m = self.market
        orows, e_q, f_q = pairs.project_vs_offers(m.projects.one(row), m.offers.view(), m.as_of_ord)
        c = e_q + f_q
        mine = int(c[orows == orow][0])
        me, ids = m.offers.ids[orow] or "", m.offers.ids
        ties = [ids[o] or "" for o in orows[c == mine].tolist()]
        return int((c > mine).sum()) + sum(1 for t in ties if t < me) + 1

    def proposals(
        self, prows: list[int], orows: list[int], ranks: list[int], views: bool, marked: bool
    ) -> list[Proposal]:
        if not prows:
            return []
        m, n = self.market, len(prows)
        at, o_at = np.asarray(prows, np.int64), np.asarray(orows, np.int64)
        # compiled, read in place: the same bits as `scoring.totals` (`offerscores`)
        e_q, f_q = offerscores.pair_totals(m.projects.view(), at, m.offers.view(), o_at)
        bd = explanations.breakdowns(*self._read(prows, orows)) if views else [(None, None)] * n
        alloc = self.allocation_map() if marked else None
        pid, oid = m.projects.ids, m.offers.ids
        # `scoring.combined` and `as_score` of every pair, rounded as one block (`rounded_rows`:
        # Python's `round` bit for bit; a call per value was a fifth of a wide change's proposals)
        scores = explanations.rounded_rows(
            [(e_q + f_q) / (2 * scoring.SCALE), e_q / scoring.SCALE, f_q / scoring.SCALE], n
        )
        return [  # plain values from lists: a numpy scalar per field was half the cost
            Proposal.made(
                project_id=str(pid[p]),
                offer_id=str(oid[o]),
                rank=rank,
                score=score,
                enterprise_score=e,
                funder_score=f,
                allocated=None if alloc is None else alloc.get(str(pid[p])) == oid[o],
                enterprise_view=ev,
                funder_view=fv,
            )
            for p, o, rank, score, e, f, (ev, fv) in zip(
                prows, orows, ranks, *scores, bd, strict=True
            )
        ]

    def for_projects(
        self,
        project_ids: Iterable[str],
        breakdowns: bool,
        allocated: bool,
        only: Mapping[str, Collection[str]] | None,
    ) -> dict[str, list[Proposal]]:
        """See `MatchEngine.proposals_for_projects`. The top ks read in one gather (`visible`
        a project at a time was most of a wide change's proposals: ~9 µs a project)."""
        alloc = self.allocation_map() if allocated else {}
        prows, orows, ranks = list[int](), list[int](), list[int]()
        m = self.market
        projects, offers, ids, k = m.projects, m.offers, m.offers.ids, m.top_k
        known = [(p, row) for p in project_ids if (row := projects.row.get(p)) is not None]
        at = np.fromiter((row for _, row in known), np.int64, len(known))
        if only is not None and not alloc:  # a wide change's: the pairs asked, vectorised
            prows, orows, ranks = self._asked(known, at, only)
            known = []
        tops = m.ranked.off[at, :k].tolist() if known else []
        counts = np.minimum(m.ranked.count[at], k).tolist() if known else []
        for (project_id, row), top, n in zip(known, tops, counts, strict=True):
            mine = top[:n]  # `visible(row)`
            if only is None:
                prows += [row] * len(mine)
                orows += mine
                ranks += range(1, len(mine) + 1)
            else:
                wanted = only.get(project_id, ())
                picked = [(i, o) for i, o in enumerate(mine, 1) if ids[o] in wanted]
                prows += [row] * len(picked)
                orows += [o for _, o in picked]
                ranks += [i for i, _ in picked]
            held = alloc.get(project_id)
            if only is not None and held not in only.get(project_id, ()):
                continue
            if held is not None and offers.row[held] not in mine:
                prows.append(row)
                orows.append(offers.row[held])
                ranks.append(self._rank_beyond(row, orows[-1]))
        out: dict[str, list[Proposal]] = {}
        for p in self.proposals(prows, orows, ranks, breakdowns, allocated):
            out.setdefault(p.project_id, []).append(p)
        return out

    def _asked(
        self, known: list[tuple[str, int]], at: I64, only: Mapping[str, Collection[str]]
    ) -> tuple[list[int], list[int], list[int]]:
        """(project rows, offer rows, ranks) of the offers `only` asks of each project that are
        in its top k, project by project (in `known`'s order), each by rank: the asked offers'
        rows looked up once each, their places found in one comparison with the top ks (the
        ids of every listed offer compared with the asked ones was ~2 µs a project)."""
        m = self.market
        js, want, row_of = list[int](), list[int](), m.offers.row
        for j, (project_id, _) in enumerate(known):
            for offer_id in only.get(project_id, ()):
                if (orow := row_of.get(offer_id)) is not None:
                    js.append(j)
                    want.append(orow)
        if not js:
            return [], [], []
        J, W, k = np.asarray(js, np.int64), np.asarray(want, np.int64), m.top_k
        rows = at[J]
        hit = m.ranked.off[rows, :k] == W[:, None]
        hit &= np.arange(k) < np.minimum(m.ranked.count[rows], k)[:, None]
        got = np.flatnonzero(hit.any(axis=1))
        pos = hit[got].argmax(axis=1)
        order = np.lexsort((pos, J[got]))  # by project, then by rank
        got, pos = got[order], pos[order]
        return rows[got].tolist(), W[got].tolist(), (pos + 1).tolist()

    def allocated(self, project_ids: Iterable[str], breakdowns: bool) -> list[Proposal]:
        """The allocated pair of each of these projects that has one, as a proposal."""
        alloc = self.allocation_map()
        prows, orows = list[int](), list[int]()
        m = self.market
        for project_id in project_ids:
            if project_id in alloc:
                row, orow = m.projects.row[project_id], m.offers.row[alloc[project_id]]
                prows.append(row)
                orows.append(orow)
        return self.proposals(prows, orows, self.ranks(prows, orows), breakdowns, True)

    def with_breakdowns(self, proposals: list[Proposal]) -> list[Proposal]:
        """See `MatchEngine.with_breakdowns`."""
        if not proposals:
            return []
        m = self.market
        rows = [m.projects.row[p.project_id] for p in proposals]
        views = explanations.breakdowns(
            *self._read(rows, [m.offers.row[p.offer_id] for p in proposals])
        )
        return [  # made directly: `dataclasses.replace` checks its fields each time (~3x)
            Proposal.made(
                project_id=p.project_id,
                offer_id=p.offer_id,
                rank=p.rank,
                score=p.score,
                enterprise_score=p.enterprise_score,
                funder_score=p.funder_score,
                allocated=p.allocated,
                enterprise_view=e,
                funder_view=f,
            )
            for p, (e, f) in zip(proposals, views, strict=True)
        ]

    def for_offer(
        self, offer_id: str, breakdowns: bool, limit: int | None, allocated: bool
    ) -> list[Proposal]:
        """See `MatchEngine.proposals_for_offer`."""
        m = self.market
        row = m.offers.row.get(offer_id)
        if row is None:
            return []
        prows, pos = m.ranked.holders(row, m.top_k, m.projects.size)
        keys = m.ranked.key[prows, pos]
        pid = m.projects.ids
        order = sorted(range(prows.size), key=lambda i: (-int(keys[i]), pid[int(prows[i])] or ""))
        order = order[:limit] if limit is not None else order
        return self.proposals(
            [int(prows[i]) for i in order],
            [row] * len(order),
            [int(pos[i]) + 1 for i in order],
            breakdowns,
            allocated,
        )
