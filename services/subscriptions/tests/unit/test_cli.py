"""`make webhooks-list` / `make webhooks-replay` on the SQLite store of `make run`."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from g60_chassis.principal import OPERATOR
from g60_chassis.runtime import make_store
from g60_chassis.settings import PlatformSettings
from services.subscriptions.tests.unit import factories as ev
from services.subscriptions.tests.unit.conftest import FakeSender, start
from subscriptions.domain.delivery import Delivery, SendResult
from subscriptions.entrypoints.cli import cli
from subscriptions.service.journal import DeliveryJournal
from subscriptions.service.ports import EndpointDraft
from tests.polling import eventually

pytestmark = pytest.mark.integration  # a real SQLite file


async def _one_failed_delivery(settings: PlatformSettings) -> tuple[str, str]:
    store = make_store(settings, "subscriptions")
    sender = FakeSender(answer=lambda r: SendResult(status_code=410))
    built, bus, _ = await start(store, sender)  # type: ignore[arg-type]
    await built.ensure_indexes()
    await built.start()
    try:
        draft = EndpointDraft(url="https://partner.example/hook", event_types=["*"])
        endpoint, _ = await built.service.endpoints.register(OPERATOR, draft)
        await bus.publish("g60.projects", ev.project("ent_a"))

        async def failed() -> Delivery | None:
            found = await built.service.dispatcher.deliveries.every(endpoint.id, "failed")
            return found[0] if found else None

        delivery = await eventually(failed)
        await eventually(lambda: _disabled(built, endpoint.id))
    finally:
        await built.stop()
        await store.close()
    return endpoint.id, delivery.id


async def _disabled(built, id: str) -> bool:
    endpoint = await built.service.endpoints.endpoints.get(id)
    return endpoint is not None and endpoint.status == "disabled"


def test_list_shows_why_an_endpoint_is_disabled_and_replay_reschedules(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("G60_STORE", "sqlite")
    monkeypatch.setenv("G60_DATA_DIR", str(tmp_path))
    endpoint, delivery = asyncio.run(_one_failed_delivery(PlatformSettings()))
    runner = CliRunner()
    listed = runner.invoke(cli, ["list"])
    assert listed.exit_code == 0, listed.output
    assert endpoint in listed.output and "410 Gone" in listed.output
    replayed = runner.invoke(cli, ["replay", endpoint, "2000-01-01T00:00:00Z"])
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.startswith("1 deliveries")
    listed = runner.invoke(cli, ["list"])
    assert f"{1:>7}" in listed.output.splitlines()[1]  # one pending again
    assert runner.invoke(cli, ["replay", "whe_nope", "2000-01-01"]).exit_code == 2
    assert runner.invoke(cli, ["replay", endpoint, "yesterday"]).exit_code == 2
    assert asyncio.run(_status(PlatformSettings(), delivery)) == "pending"  # the same id


async def _status(settings: PlatformSettings, id: str) -> str:
    store = make_store(settings, "subscriptions")
    try:
        delivery = await DeliveryJournal(store).get(id)
    finally:
        await store.close()
    assert delivery is not None
    return delivery.status
