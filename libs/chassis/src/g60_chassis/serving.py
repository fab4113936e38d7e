"""Running a service's ASGI app: the HTTP port is bound before anything starts, so a service
that cannot have its port exits non-zero at once (uvicorn alone runs the lifespan first: the
consumers would join their groups, then `address already in use` was logged and the process
kept running); logging with the broker-client noise summarised."""

from __future__ import annotations

import logging
import socket
import sys
import time
from typing import Any

import uvicorn

from g60_chassis import collector

log = logging.getLogger("g60")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RepeatFilter(logging.Filter):
    """Lets one record per (logger, message template) through every `interval_s`; the next one
    let through says how many like it were held back. A broker that is down makes aiokafka log
    each failed connection and retry: thousands of lines a second otherwise."""

    def __init__(self, interval_s: float = 10.0, prefixes: tuple[str, ...] = ("aiokafka",)) -> None:
        super().__init__()
        self.interval_s, self.prefixes = interval_s, prefixes
        self._seen: dict[tuple[str, str], tuple[float | None, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last, held = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.interval_s:
            self._seen[key] = (last, held + 1)
            return False
        if len(self._seen) > 1000:  # message templates are few; bound it anyway
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held and last is not None:
            record.msg = f"{record.msg} [{held} more like this in the last {now - last:.0f}s]"
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Root logging to stderr with the repeat filter on its handler (the filter of a handler
    sees the records of every logger under it, aiokafka's included)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    for handler in root.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or exit 1 with the reason (e.g. the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        sys.exit(1)
    sock.set_inheritable(True)
    return sock


def serve(
    app: Any, host: str, port: int, *, keep_alive_s: int = 75, **uvicorn_options: Any
) -> None:
    """`keep_alive_s` outlasts clients' idle pools (`PlatformSettings.http_keep_alive_s`)."""
    configure_logging()
    collector.serving()  # the app's lifespan settles the garbage collector once started
    sock = bind(host, port)
    config = uvicorn.Config(
        app, host=host, port=port, timeout_keep_alive=keep_alive_s, **uvicorn_options
    )
    uvicorn.Server(config).run(sockets=[sock])
