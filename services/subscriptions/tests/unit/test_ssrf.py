"""SSRF: a corpus of URLs that must all be refused at registration, and the connect-time
check (a name that resolves to loopback, DNS rebinding, redirects to internal addresses)
against a real loopback server."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from subscriptions.adapters.guard import AddressGuard, GuardedBackend
from subscriptions.adapters.sender import HttpSender
from subscriptions.domain.delivery import SendResult
from subscriptions.domain.ssrf import UrlRefused, refused_address
from subscriptions.service.ports import WebhookRequest
from tests.webhook_stub import StubPartner

REFUSED = [
    "http://partner.example/hook",  # not https
    "ftp://partner.example/hook",
    "https://user:pw@partner.example/hook",
    "https://10.0.0.1/",
    "https://10.255.255.255/",
    "https://172.16.0.1/",
    "https://172.31.255.1/",
    "https://192.168.1.1/",
    "https://127.0.0.1/",
    "https://127.8.9.10/",
    "https://0.0.0.0/",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "https://100.100.100.200/",  # Alibaba Cloud metadata
    "https://100.64.0.1/",  # carrier-grade NAT
    "https://224.0.0.1/",  # multicast
    "https://240.0.0.1/",  # reserved
    "https://255.255.255.255/",
    "https://198.18.0.1/",  # benchmarking
    "https://[::1]/",
    "https://[::]/",
    "https://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "https://[::ffff:7f00:1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "https://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "https://[fe80::1]/",  # link-local
    "https://[fe80::1%25eth0]/",
    "https://[fc00::1]/",  # unique local
    "https://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "https://[ff02::1]/",  # multicast
    "https://2130706433/",  # decimal 127.0.0.1
    "https://0177.0.0.1/",  # octal
    "https://0x7f000001/",  # hexadecimal
    "https://0x7f.0.0.1/",
    "https://127.1/",  # shortened
    "https://017700000001/",
    "https://localhost/",  # resolves to loopback
    "https://internal.example/",  # resolves to 127.0.0.1 (below)
    "https://mixed.example/",  # one public and one private address
    "https://nowhere.example/",  # does not resolve
]
ALLOWED = ["https://93.184.216.34/hook", "https://partner.example/hook", "https://[2606:4700::1]/"]


async def fake_dns(host: str, port: int) -> list[str]:
    table = {
        "partner.example": ["93.184.216.34"],
        "internal.example": ["127.0.0.1"],
        "mixed.example": ["93.184.216.34", "10.0.0.5"],
        "localhost": ["127.0.0.1", "::1"],
    }
    if host not in table:
        raise OSError(f"{host}: name not known")
    return table[host]


@pytest.mark.parametrize("url", REFUSED)
async def test_refused_at_registration(url: str) -> None:
    with pytest.raises(UrlRefused):
        await AddressGuard(allow_loopback=False, resolve=fake_dns).check(url)


@pytest.mark.parametrize("url", ALLOWED)
async def test_public_https_is_allowed(url: str) -> None:
    await AddressGuard(allow_loopback=False, resolve=fake_dns).check(url)


async def test_loopback_http_only_when_the_setting_allows_it() -> None:
    allowing = AddressGuard(allow_loopback=True, resolve=fake_dns)
    await allowing.check("http://127.0.0.1:8080/hook")
    await allowing.check("http://localhost:8080/hook")
    for url in ("http://10.0.0.1/", "http://partner.example/", "https://169.254.169.254/"):
        with pytest.raises(UrlRefused):
            await allowing.check(url)


def test_every_address_form_of_loopback_is_loopback() -> None:
    for text in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::"):
        assert refused_address(ipaddress.ip_address(text)) is not None, text
        assert refused_address(ipaddress.ip_address(text), allow_loopback=True) is None, text


def _request(url: str) -> WebhookRequest:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    return WebhookRequest(url, "msg_1", datetime.now(UTC), "{}", [secret])


async def test_dns_rebinding_is_refused_at_connect() -> None:
    """Registered while the name resolved to a public address; it now resolves to loopback
    (where the stub listens): the connection is refused, the stub receives nothing."""
    stub = StubPartner()
    await stub.start()
    answers = {"now": ["93.184.216.34"]}

    async def rebinding(host: str, port: int) -> list[str]:
        return answers["now"]

    url = f"https://rebind.example:{stub.port}/hook"
    await AddressGuard(allow_loopback=False, resolve=rebinding).check(url)
    answers["now"] = ["127.0.0.1"]
    sender = HttpSender(GuardedBackend(allow_loopback=False, resolve=rebinding))
    try:
        result = await sender.send(_request(url.replace("https", "http")))
    finally:
        await sender.close()
        await stub.stop()
    assert result.status_code is None and "loopback" in (result.error or "")
    assert stub.received == []


async def _send(stub: StubPartner, urls: list[str], backend: GuardedBackend) -> list[SendResult]:
    """POST to each of `urls` through the guarded sender, with `stub` listening meanwhile."""
    await stub.start()
    sender = HttpSender(backend)
    try:
        return [await sender.send(_request(url.format(port=stub.port))) for url in urls]
    finally:
        await sender.close()
        await stub.stop()


async def test_a_name_that_resolves_to_loopback_is_refused_at_connect() -> None:
    stub = StubPartner()
    urls = ["http://localhost:{port}/hook", "http://127.0.0.1:{port}/hook"]  # system resolver
    results = await _send(stub, urls, GuardedBackend(allow_loopback=False))
    assert all(r.status_code is None for r in results)
    assert stub.received == []


async def test_a_redirect_to_an_internal_address_is_not_followed() -> None:
    stub = StubPartner(status=302, location="http://169.254.169.254/latest/meta-data/")
    [result] = await _send(stub, ["http://127.0.0.1:{port}/hook"], GuardedBackend(True))
    assert result.status_code == 302 and not result.ok
    assert "redirect not followed" in (result.error or "")
    assert len(stub.received) == 1  # the one POST, nothing followed


async def test_retry_after_and_the_signature_reach_the_wire() -> None:
    stub = StubPartner(status=503, retry_after="120")
    [result] = await _send(stub, ["http://127.0.0.1:{port}/hook"], GuardedBackend(True))
    assert result.status_code == 503 and result.retry_after_s == 120
    [got] = stub.received
    assert got.headers["webhook-id"] == "msg_1"
    assert got.headers["webhook-signature"].startswith("v1,")
