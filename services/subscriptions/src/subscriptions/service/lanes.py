"""The in-memory schedule of one endpoint's pending deliveries (a lane): which are due, how
many are in flight (HTTP requests, bounded by the endpoint's limit; and attempts whose outcome
is still being stored, bounded at a few times that), its rate, and — for an endpoint that
asked for ordering — which delivery heads each subject's queue. The store holds the truth; a
lane is rebuilt from it at start."""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

SETTLING = 4  # attempts per request slot that may be storing their outcome at once


@dataclass(order=True)
class Entry:
    due: float  # epoch seconds
    seq: int
    id: str = field(compare=False)
    subject: str = field(compare=False)


@dataclass
class Limits:
    ordered: bool = False
    max_in_flight: int = 8
    rate_per_s: float = 50.0


@dataclass
class Lane:
    limits: Limits
    heap: list[Entry] = field(default_factory=list)
    in_flight: int = 0  # HTTP requests to the endpoint
    sending: set[str] = field(default_factory=set)  # their delivery ids
    unsettled: int = 0  # attempts taken and not finished (sending, or storing the outcome)
    busy: set[str] = field(default_factory=set)  # subjects with an attempt in flight
    heads: dict[str, list[int]] = field(default_factory=dict)  # subject → pending seqs
    tokens: float = 1.0
    refilled: float = field(default_factory=time.monotonic)

    def add(self, entry: Entry, fresh: bool) -> None:
        heapq.heappush(self.heap, entry)
        if fresh:
            heapq.heappush(self.heads.setdefault(entry.subject, []), entry.seq)

    def done(self, entry: Entry) -> None:
        """The delivery left `pending` (delivered, failed or gone)."""
        seqs = self.heads.get(entry.subject)
        if seqs and entry.seq in seqs:
            seqs.remove(entry.seq)
            heapq.heapify(seqs)
            if not seqs:
                del self.heads[entry.subject]

    def _take_token(self) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        now = time.monotonic()
        burst = max(1.0, self.limits.rate_per_s)
        self.tokens = min(burst, self.tokens + (now - self.refilled) * self.limits.rate_per_s)
        self.refilled = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.limits.rate_per_s

    def take(self, now: float) -> tuple[list[Entry], float | None]:
        """The entries to attempt now, and the seconds until this lane should be looked at
        again (None: when an attempt finishes)."""
        out: list[Entry] = []
        aside: list[Entry] = []
        wake: float | None = None
        most = self.limits.max_in_flight
        while self.heap and self.in_flight < most and self.unsettled < SETTLING * most:
            top = self.heap[0]
            if top.due > now:
                wake = top.due - now
                break
            if self.limits.ordered and (
                top.subject in self.busy or self.heads.get(top.subject, [top.seq])[0] != top.seq
            ):
                aside.append(heapq.heappop(self.heap))
                continue
            wait = self._take_token()
            if wait > 0:
                wake = wait
                break
            entry = heapq.heappop(self.heap)
            self.in_flight += 1
            self.unsettled += 1
            self.sending.add(entry.id)
            self.busy.add(entry.subject)
            out.append(entry)
        for entry in aside:
            heapq.heappush(self.heap, entry)
        return out, wake

    def sent(self, entry: Entry) -> None:
        """The attempt's request is over: its slot serves another request while the outcome
        is stored (a subject stays busy until then, so an ordered one waits for it)."""
        if entry.id in self.sending:
            self.sending.discard(entry.id)
            self.in_flight -= 1

    def finished(self, entry: Entry) -> None:
        self.sent(entry)
        self.unsettled -= 1
        self.busy.discard(entry.subject)
