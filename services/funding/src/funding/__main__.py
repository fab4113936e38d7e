"""`python -m funding`: the funding service alone (port 8002 unless G60_PORT is set)."""

from __future__ import annotations

from funding.entrypoints.app import create
from g60_chassis.serving import serve
from g60_chassis.settings import PlatformSettings


def main() -> None:
    settings = PlatformSettings()
    serve(
        create(settings),
        settings.host,
        settings.port_for("funding"),
        keep_alive_s=settings.http_keep_alive_s,
    )


if __name__ == "__main__":
    main()
