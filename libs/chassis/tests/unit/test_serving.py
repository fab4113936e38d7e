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
