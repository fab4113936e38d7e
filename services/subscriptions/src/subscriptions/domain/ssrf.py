"""Which webhook URLs and addresses the platform may call (server-side request forgery).

Pure rules; the adapter resolves names and applies `refused_address` to every address it is
about to connect to, so a name that resolves to a public address at registration and to an
internal one later (DNS rebinding) is still refused at connect time."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# cloud metadata services that are not already link-local (169.254.169.254 is)
METADATA = frozenset(
    {
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud
    }
)
# hosts written as a number in a form that inet_aton accepts but a reader would not:
# decimal (2130706433), octal (0177.0.0.1), hexadecimal (0x7f.1), shortened (127.1)
_ODD_NUMERIC = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}\.?$", re.I)


class UrlRefused(ValueError):
    """A URL or address the platform will not call; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


def _unwrap(ip: IP) -> IP:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4, Teredo), else `ip`."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def refused_address(ip: IP, allow_loopback: bool = False) -> str | None:
    """Why the platform must not connect to `ip`, or None when it may."""
    target = _unwrap(ip)  # an IPv6 form that carries an IPv4 address reaches that address
    if target.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if target in METADATA:
        return f"{ip} is a cloud metadata address"
    if target.is_link_local:
        return f"{ip} is link-local (cloud metadata lives there)"
    if target.is_multicast:
        return f"{ip} is a multicast address"
    if target.is_unspecified:
        return f"{ip} is unspecified"
    if target.is_private or target.is_reserved or not target.is_global:
        return f"{ip} is a private or reserved address"
    return None


def parse_target(url: str, *, allow_http_loopback: bool) -> Target:
    """Syntax rules: https (http only for a loopback host when allowed), no credentials, no
    numeric host in an ambiguous form. Raises UrlRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a URL: {exc}") from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("https", "http"):
        raise UrlRefused("the URL must be https")
    if not host:
        raise UrlRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not allowed; the signature authenticates")
    literal = literal_ip(host)
    if literal is None and _ODD_NUMERIC.match(host):
        raise UrlRefused(f"{host!r} is a number in a non-standard form; write the address")
    if scheme == "http":
        loopback = host == "localhost" or (literal is not None and literal.is_loopback)
        if not (allow_http_loopback and loopback):
            raise UrlRefused("the URL must be https (http only for loopback, when allowed)")
    return Target(scheme, host, port or (443 if scheme == "https" else 80))


def literal_ip(host: str) -> IP | None:
    """The address when `host` is a canonical IPv4 or IPv6 literal, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
