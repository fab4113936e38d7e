"""Shared by the operator CLI's tests on both shapes: run a `g60` command, walk a deal, and
look at the dashboard in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from allinone.demo import walk_deal
from g60_operator.cli import run
from g60_operator.client import Target, client

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / ".data" / "test-output"  # stable: the tests' screenshots land here
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [  # what works on these machines (no sandbox as root, closed network)
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Result:
    code: int
    out: str
    err: str


def g60(capsys: Any, *args: str) -> Result:
    capsys.readouterr()
    code = run(list(args))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def deal(target: Target) -> dict[str, Any]:
    """One deal walked to its close, as `make demo` does."""

    async def go() -> dict[str, Any]:
        async with client(target) as c:
            return await walk_deal(c, target.key, say=lambda _: None, timeout=120)

    return asyncio.run(go())


def get(target: Target, path: str) -> Any:
    async def go() -> Any:
        async with client(target) as c:
            r = await c.get(path)
            r.raise_for_status()
            return r.json()

    return asyncio.run(go())


def dashboard_screenshot(base: str, key: str, name: str) -> tuple[Path, int, str]:
    """Sign in with the key through the form, wait until every chart is drawn, save a full-page
    screenshot; returns its path, how many charts were drawn, and the page's tiles' text."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "install Debian's chromium: apt-get install -y chromium"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            blocked: list[str] = []
            page.on(
                "request",
                lambda r: blocked.append(r.url) if not r.url.startswith(base) else None,
            )
            page.goto(f"{base}/dashboard", timeout=120_000)
            page.fill("#key", key)
            page.click("#sign-in")
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            charts = int(page.evaluate("Object.keys(Chart.instances).length"))
            tiles = page.inner_text("#tiles")
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    assert blocked == [], f"the dashboard fetched from outside the platform: {blocked}"
    return path, charts, tiles


def dashboard_refuses(base: str) -> tuple[int, int]:
    """Without a session: the sign-in page (401), and no figures (401)."""
    page = httpx.get(f"{base}/dashboard", timeout=60)
    data = httpx.get(f"{base}/dashboard/stats.json", timeout=60)
    return page.status_code, data.status_code
