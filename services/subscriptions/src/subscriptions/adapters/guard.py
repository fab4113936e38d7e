"""SSRF protection at the socket: a httpcore network backend that resolves the host itself,
refuses the connection when any resolved address is internal, connects to a vetted address
and checks the peer it actually connected to. Every connection httpx opens goes through it,
so a name that resolved to a public address at registration and resolves to 127.0.0.1 now
(DNS rebinding) is refused at connect time. TLS still verifies the certificate against the
URL's host name (httpcore passes it as `server_hostname`).

The sender uses an httpcore connection pool directly, whose public `network_backend` parameter
takes this backend (httpx 0.28's transport has no such parameter)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable

import httpcore

from subscriptions.domain.ssrf import UrlRefused, literal_ip, parse_target, refused_address

Resolve = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def vet(addresses: Iterable[str], allow_loopback: bool) -> list[str]:
    """The addresses, if every one may be called; else UrlRefused naming the first bad one."""
    out = list(addresses)
    if not out:
        raise UrlRefused("the host resolves to no address")
    for address in out:
        reason = refused_address(ipaddress.ip_address(address.split("%")[0]), allow_loopback)
        if reason:
            raise UrlRefused(reason)
    return out


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allow_loopback: bool, resolve: Resolve = system_resolve) -> None:
        self.allow_loopback, self.resolve = allow_loopback, resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            literal = literal_ip(host)
            found = [str(literal)] if literal else await self.resolve(host, port)
            addresses = vet(found, self.allow_loopback)
        except (UrlRefused, OSError) as exc:
            raise httpcore.ConnectError(f"refused {host}: {exc}") from exc
        error: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            peer = stream.get_extra_info("server_addr")
            try:
                vet([str(peer[0])] if peer else [], self.allow_loopback)
            except UrlRefused as exc:
                await stream.aclose()
                raise httpcore.ConnectError(f"refused {host}: connected to {exc}") from exc
            return stream
        raise error or httpcore.ConnectError(f"could not connect to {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class AddressGuard:
    """The registration-time check (UrlGuard port): URL rules, then every address the host
    resolves to. The connect-time check is `GuardedBackend`'s."""

    def __init__(self, allow_loopback: bool, resolve: Resolve = system_resolve) -> None:
        self.allow_loopback, self.resolve = allow_loopback, resolve

    async def check(self, url: str) -> None:
        target = parse_target(url, allow_http_loopback=self.allow_loopback)
        literal = literal_ip(target.host)
        if literal is not None:
            vet([str(literal)], self.allow_loopback)
            return
        try:
            found = await self.resolve(target.host, target.port)
        except OSError as exc:
            raise UrlRefused(f"the host {target.host!r} does not resolve ({exc})") from exc
        vet(found, self.allow_loopback)
