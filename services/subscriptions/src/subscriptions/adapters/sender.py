"""The outbound HTTP adapter (Sender port): Standard Webhooks signing with the
`standardwebhooks` package (one `v1,` signature per active secret, space-separated, so a
receiver holding either secret verifies during a rotation), the POST over httpcore connections
on the SSRF-guarded network backend (a public parameter of httpcore's pool; httpx's transport
has none, and reaching into its private `_pool` was the alternative), no redirects (httpcore
never follows one), connect and read timeouts, and at most `max_response_bytes` of the
response read.

httpcore rather than an httpx client: a webhook is one POST with headers built here, so
httpx's request model (cookies, auth, header merging, redirects: all unused) was only cost;
httpx still normalises the URL (IDNA host, percent-encoded path)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpcore
import httpx
from standardwebhooks.webhooks import Webhook

from subscriptions.adapters.connections import Connections
from subscriptions.adapters.guard import GuardedBackend
from subscriptions.domain.delivery import SendResult
from subscriptions.service.ports import WebhookRequest

USER_AGENT = "G60-Webhooks/1.0"
# what a receiver or the network can do to a request (raised by httpcore, or by httpx's URL)
FAILURES = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
    httpx.InvalidURL,
)


def sign(request: WebhookRequest) -> str:
    return " ".join(
        Webhook(secret).sign(request.message_id, request.timestamp, request.body)
        for secret in request.secrets
    )


def signed_headers(request: WebhookRequest) -> dict[str, str]:
    return {
        "webhook-id": request.message_id,
        "webhook-timestamp": str(int(request.timestamp.timestamp())),
        "webhook-signature": sign(request),
        "content-type": "application/cloudevents+json; charset=utf-8",
        "user-agent": USER_AGENT,
    }


def wire_headers(request: WebhookRequest, url: httpx.URL, length: int) -> list[tuple[bytes, bytes]]:
    """The request's headers as httpcore sends them (it adds none of its own)."""
    out = [(b"host", url.netloc), (b"content-length", str(length).encode())]
    return out + [(k.encode(), v.encode()) for k, v in signed_headers(request).items()]


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == name), None)


class HttpSender:
    def __init__(
        self,
        backend: GuardedBackend,
        *,
        connect_timeout_s: float = 5.0,
        timeout_s: float = 15.0,
        max_response_bytes: int = 64 * 1024,
        max_connections: int = 200,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self.timeouts = {"connect": connect_timeout_s, "read": timeout_s, "write": timeout_s}
        self.timeouts["pool"] = timeout_s
        self.connections = Connections(
            backend, httpx.create_ssl_context(), max_connections=max_connections
        )

    async def send(self, request: WebhookRequest) -> SendResult:
        content = request.body.encode()
        start = time.perf_counter()
        try:
            url = httpx.URL(request.url)
            target = httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            )
            headers = wire_headers(request, url, len(content))
            origin = (url.raw_scheme, url.raw_host, url.port)
            async with (
                self.connections.take(origin) as pool,
                pool.stream(
                    "POST",
                    target,
                    headers=headers,
                    content=content,
                    extensions={"timeout": self.timeouts},
                ) as response,
            ):
                read = 0
                async for chunk in response.aiter_stream():
                    read += len(chunk)
                    if read >= self.max_response_bytes:
                        break  # the rest is not read: a receiver cannot make us buffer more
        except httpcore.TimeoutException as exc:
            return self._failed(start, f"timeout ({type(exc).__name__})")
        except FAILURES as exc:
            return self._failed(start, f"{type(exc).__name__}: {exc}"[:500])
        latency = (time.perf_counter() - start) * 1000
        code = response.status
        error = None
        if 300 <= code < 400:
            location = _header(response.headers, b"location") or "?"
            error = f"redirect not followed (to {location[:200]})"
        elif code >= 400:
            error = f"HTTP {code}"
        wait = retry_after(_header(response.headers, b"retry-after"), time.time())
        return SendResult(status_code=code, error=error, latency_ms=latency, retry_after_s=wait)

    @staticmethod
    def _failed(start: float, error: str) -> SendResult:
        return SendResult(error=error, latency_ms=(time.perf_counter() - start) * 1000)

    async def close(self) -> None:
        await self.connections.aclose()
