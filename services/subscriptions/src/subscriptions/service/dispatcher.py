"""Sends due deliveries: one lane per endpoint (concurrency, rate, per-subject order), each
attempt claimed in the store first (a lease, so two instances never send one delivery at the
same time), its outcome recorded after, and the endpoint disabled on 410 or after failing for
too long. Nothing is held only in memory: a restart rebuilds the lanes from the pending
deliveries; an attempt cut short by a crash is sent again, with the same webhook-id, once its
lease has expired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.store import VersionConflict
from g60_chassis.tasks import cancel, every
from subscriptions.domain.delivery import Delivery, SendResult
from subscriptions.domain.endpoint import Endpoint
from subscriptions.domain.records import Scheduled
from subscriptions.service.journal import DeliveryJournal
from subscriptions.service.lanes import Entry, Lane, Limits
from subscriptions.service.ports import Clock, Rules, Sender, WebhookRequest

log = logging.getLogger(__name__)


def _limits(endpoint: Endpoint) -> Limits:
    return Limits(endpoint.ordered, endpoint.max_in_flight, endpoint.rate_per_s)


class Dispatcher:
    def __init__(
        self,
        deliveries: DeliveryJournal,
        endpoints: Aggregates[Endpoint],
        sender: Sender,
        rules: Rules,
        clock: Clock,
        rescan_s: float = 30.0,
        endpoint_ttl_s: float = 1.0,
    ) -> None:
        self.deliveries, self.endpoints, self.sender = deliveries, endpoints, sender
        self.rules, self.clock, self.rescan_s = rules, clock, rescan_s
        self.lanes: dict[str, Lane] = {}
        self.known: set[str] = set()  # delivery ids in a lane or in flight
        # deliveries the fan-out just stored leased to this process, and endpoints read less
        # than `endpoint_ttl_s` ago: a first attempt then costs no read and no claim, only
        # its outcome's (batched) writes. Any other attempt reads its schedule entry first.
        self._last: dict[str, Delivery] = {}
        self._endpoints: dict[str, tuple[float, Endpoint]] = {}
        self._held: set[str] = set()  # deliveries whose lease this process holds
        self.endpoint_ttl_s = endpoint_ttl_s
        self._reading: dict[str, asyncio.Future[Endpoint | None]] = {}
        self._configured: set[str] = set()  # endpoints whose settings this process has read
        self.loaded = False  # the pending deliveries in the store were read once
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # scheduling ------------------------------------------------------------------------------
    def configure(self, endpoint: Endpoint) -> None:
        """An endpoint as it is now (read, or changed through the API of this process)."""
        self._endpoints[endpoint.id] = (time.monotonic(), endpoint)
        self._configured.add(endpoint.id)
        lane = self.lanes.get(endpoint.id)
        if lane is None:
            self.lanes[endpoint.id] = Lane(_limits(endpoint))
        else:
            lane.limits = _limits(endpoint)

    def schedule(self, delivery: Delivery, held: bool = False) -> None:
        """A delivery that became pending (fan-out, retry, replay) or stays pending; `held`:
        its lease is this process's (it was just stored so by the fan-out)."""
        if delivery.status != "pending" or delivery.next_attempt_at is None:
            return
        if held:
            self._last[delivery.id] = delivery
            self._held.add(delivery.id)
        self._enqueue(
            Scheduled(
                id=delivery.id,
                endpoint_id=delivery.endpoint_id,
                subject=delivery.subject,
                seq=delivery.seq,
                next_attempt_at=delivery.next_attempt_at,
                lease_until=None if held else delivery.lease_until,
                updated_at=delivery.updated_at,
            )
        )

    def _enqueue(self, entry: Scheduled) -> None:
        lane = self.lanes.setdefault(entry.endpoint_id, Lane(Limits()))
        fresh = entry.id not in self.known
        self.known.add(entry.id)
        due = entry.next_attempt_at.timestamp()
        if entry.lease_until is not None:
            due = max(due, entry.lease_until.timestamp())
        lane.add(Entry(due, entry.seq, entry.id, entry.subject), fresh)
        self._wake.set()

    async def rescan(self) -> int:
        """Pending deliveries from the store that no lane holds (after a restart, or written
        by another instance): into their lanes, in seq order."""
        for endpoint in await self.endpoints.every():
            self.configure(endpoint)
        found = await self.deliveries.pending()
        fresh = sorted((e for e in found if e.id not in self.known), key=lambda e: e.seq)
        for entry in fresh:
            self._enqueue(entry)
        return len(fresh)

    # running ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Sends what the fan-out schedules at once; the pending deliveries in the store (a
        backlog from before a restart) are read alongside, not before. Until they have been
        read once, only lanes of endpoints known to be unordered send: an event fanned out now
        must not overtake an older pending one of its subject."""
        self._loops = [asyncio.create_task(self._run()), asyncio.create_task(self._rescanning())]

    def _may_send(self, endpoint_id: str, lane: Lane) -> bool:
        if self.loaded:
            return True
        return endpoint_id in self._configured and not lane.limits.ordered

    async def stop(self) -> None:
        await cancel(*self._loops)
        if self._tasks:  # attempts in flight finish (their leases would cover a cut anyway)
            await asyncio.wait(self._tasks, timeout=10.0)
        for task in list(self._tasks):
            task.cancel()

    async def _rescanning(self) -> None:
        await every(self.rescan_s, self._rescan_pass, "rescan of pending deliveries")

    async def _rescan_pass(self) -> None:
        await self.rescan()
        if not self.loaded:
            self.loaded = True
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            now = self.clock().timestamp()
            waits: list[float] = []
            for endpoint_id, lane in self.lanes.items():
                if not self._may_send(endpoint_id, lane):
                    continue  # woken when the first rescan is done
                entries, wake = lane.take(now)
                if wake is not None:
                    waits.append(wake)
                for entry in entries:
                    task = loop.create_task(self._attempt(lane, entry))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            timeout = min(waits, default=self.rescan_s)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that arrives as the event is set, and `stop` then waited for this loop forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0.001)):
                    await self._wake.wait()

    async def _attempt(self, lane: Lane, entry: Entry) -> None:
        again: Delivery | None = None
        try:
            again = await self._send(lane, entry)
        except Exception:
            log.exception("delivery %s: attempt failed inside the platform; retrying", entry.id)
            entry.due = self.clock().timestamp() + 5.0
            lane.add(entry, fresh=False)
            lane.finished(entry)
            self._wake.set()
            return
        lane.finished(entry)
        if again is not None and again.status == "pending":
            self.schedule_again(lane, entry, again)
        else:
            lane.done(entry)
            self.known.discard(entry.id)
            self._last.pop(entry.id, None)
            self._held.discard(entry.id)
        self._wake.set()

    def schedule_again(self, lane: Lane, entry: Entry, delivery: Delivery) -> None:
        assert delivery.next_attempt_at is not None
        due = delivery.next_attempt_at.timestamp()
        if delivery.lease_until is not None:
            due = max(due, delivery.lease_until.timestamp())
        lane.add(Entry(due, entry.seq, entry.id, entry.subject), fresh=False)

    async def _endpoint(self, id: str) -> Endpoint | None:
        cached = self._endpoints.get(id)
        if cached is not None and time.monotonic() - cached[0] < self.endpoint_ttl_s:
            return cached[1]
        # one read per endpoint at a time: the attempts in flight when the copy goes stale
        # all wait for it (each reading it was 17% of the store's time in the bench)
        reading = self._reading.get(id)
        if reading is None:
            reading = asyncio.ensure_future(self.endpoints.get(id))
            self._reading[id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(id, None))
        endpoint = await asyncio.shield(reading)
        if endpoint is not None:
            self.configure(endpoint)
        return endpoint

    async def _send(self, lane: Lane, entry: Entry) -> Delivery | None:
        """One attempt; the delivery as stored after it (None: nothing left to do here)."""
        held = entry.id in self._held
        self._held.discard(entry.id)
        delivery = self._last.pop(entry.id, None) if held else None
        delivery = delivery or await self.deliveries.working(entry.id)
        now = self.clock()
        if delivery is None or delivery.status != "pending":
            return None
        # a lease still held with time to spare for this attempt saves the claim's write
        held = held and delivery.lease_left(now) > self.rules.retry.lease_s / 2
        if not delivery.due(now, holding_lease=held):
            return delivery  # leased by another instance, or moved later: look again then
        endpoint = await self._endpoint(delivery.endpoint_id)
        if endpoint is None or endpoint.status == "disabled":
            reason = endpoint.disabled_reason if endpoint else "the endpoint is gone"
            await self.deliveries.abandon(delivery, f"not sent: endpoint disabled ({reason})", now)
            return None
        if not held:
            try:
                delivery = await self.deliveries.claim(delivery, now, self.rules.retry)
            except VersionConflict:  # another replica claimed it, or it moved: look again
                return await self.deliveries.working(entry.id)
        request = WebhookRequest(
            endpoint.url, delivery.id, now, delivery.body, endpoint.signing_secrets(now)
        )
        result = await self.sender.send(request)
        lane.sent(entry)  # the next request to the endpoint need not wait for this write
        self._wake.set()
        after = await self.deliveries.record(delivery, result, self.clock(), self.rules.retry)
        await self._judge(endpoint, result)
        return after

    async def _judge(self, seen: Endpoint, result: SendResult) -> None:
        """The endpoint's health after an attempt: 410 disables it at once; failing without a
        success for `disable_after` disables it; a success clears the failing streak."""

        if result.ok and seen.failing_since is None:
            return  # the common case: healthy and still healthy, nothing to write

        async def attempt() -> None:
            endpoint = await self.endpoints.get(seen.id)
            if endpoint is None:
                return
            now = self.clock()
            if result.gone:
                changed = endpoint.disable("the endpoint answered 410 Gone", now)
            elif result.ok:
                changed = endpoint.succeeded(now)
            else:
                changed = endpoint.failed(now, self.rules.disable_after)
            if changed:
                self.configure(await self.endpoints.save(endpoint))

        await retry_on_conflict(attempt)
