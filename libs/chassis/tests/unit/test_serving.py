"""A service that cannot have its port exits at once; broker-client noise is summarised."""

from __future__ import annotations

import logging
import socket

import pytest

from g60_chassis.serving import RepeatFilter, bind


def test_a_taken_port_exits_non_zero_before_anything_starts():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(SystemExit) as exited:
            bind("127.0.0.1", taken.getsockname()[1])
        assert exited.value.code == 1
    finally:
        taken.close()


def test_a_free_port_is_bound_and_listened_on_by_the_server_later():
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockname()[1] > 0
    finally:
        sock.close()


def record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)


def test_repeated_client_messages_pass_once_per_interval_then_say_how_many_were_held():
    f = RepeatFilter(interval_s=3600)
    passed = [f.filter(record("aiokafka.conn", "Unable to connect to %s")) for _ in range(1000)]
    assert passed.count(True) == 1
    assert f.filter(record("g60.outbox", "relay: publish failed")) is True  # not aiokafka's
    f.interval_s = 0.0
    summary = record("aiokafka.conn", "Unable to connect to %s")
    assert f.filter(summary) is True and "999 more like this" in str(summary.msg)


def test_idle_connections_outlast_a_client_pool_so_a_reused_one_is_never_closed_under_it(
    monkeypatch: pytest.MonkeyPatch,
):
    """uvicorn closes an idle connection after 5 s and httpx reuses one for 5 s: a request sent
    on a connection the server was closing failed with ReadError (seen in bench-flow)."""
    import httpx
    import uvicorn

    from g60_chassis.serving import serve
    from g60_chassis.settings import PlatformSettings

    configs: list[uvicorn.Config] = []

    def run(self: uvicorn.Server, sockets: list[socket.socket]) -> None:
        configs.append(self.config)
        for s in sockets:
            s.close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setenv("G60_HTTP_KEEP_ALIVE_S", "90")
    serve(object(), "127.0.0.1", 0, keep_alive_s=PlatformSettings().http_keep_alive_s)
    serve(object(), "127.0.0.1", 0)
    assert [c.timeout_keep_alive for c in configs] == [90, 75]
    client_pool_s = httpx.AsyncHTTPTransport()._pool._keepalive_expiry
    assert (
        client_pool_s is not None
        and PlatformSettings.model_fields["http_keep_alive_s"].default > 2 * client_pool_s
    )
