"""`python -m subscriptions`: the subscriptions service alone (port 8004 unless G60_PORT is
set)."""

from __future__ import annotations

from g60_chassis.serving import serve
from g60_chassis.settings import PlatformSettings
from subscriptions.entrypoints.app import create


def main() -> None:
    settings = PlatformSettings()
    serve(
        create(settings),
        settings.host,
        settings.port_for("subscriptions"),
        keep_alive_s=settings.http_keep_alive_s,
    )


if __name__ == "__main__":
    main()
