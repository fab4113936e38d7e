"""`python -m projects`: the projects service alone (port 8001 unless G60_PORT is set)."""

from __future__ import annotations

import uvicorn

from g60_chassis.settings import PlatformSettings
from projects.entrypoints.app import create


def main() -> None:
    settings = PlatformSettings()
    uvicorn.run(create(settings), host=settings.host, port=settings.port_for("projects"))


if __name__ == "__main__":
    main()
