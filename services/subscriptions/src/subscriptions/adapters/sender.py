"""The outbound HTTP adapter (Sender port): Standard Webhooks signing with the
`standardwebhooks` package (one `v1,` signature per active secret, space-separated, so a
receiver holding either secret verifies during a rotation), the POST through the guarded
transport, no redirects, connect and read timeouts, and at most `max_response_bytes` of the
response read."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks.webhooks import Webhook

from subscriptions.adapters.guard import GuardedBackend, guarded_transport
from subscriptions.domain.delivery import SendResult
from subscriptions.service.ports import WebhookRequest

USER_AGENT = "G60-Webhooks/1.0"


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
        self.client = httpx.AsyncClient(
            transport=guarded_transport(backend, max_connections),
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )

    async def send(self, request: WebhookRequest) -> SendResult:
        content = request.body.encode()
        start = time.perf_counter()
        try:
            async with self.client.stream(
                "POST", request.url, content=content, headers=signed_headers(request)
            ) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= self.max_response_bytes:
                        break  # the rest is not read: a receiver cannot make us buffer more
        except httpx.TimeoutException as exc:
            return self._failed(start, f"timeout ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return self._failed(start, f"{type(exc).__name__}: {exc}"[:500])
        latency = (time.perf_counter() - start) * 1000
        code = response.status_code
        error = None
        if 300 <= code < 400:
            error = f"redirect not followed (to {response.headers.get('location', '?')[:200]})"
        elif code >= 400:
            error = f"HTTP {code}"
        wait = retry_after(response.headers.get("retry-after"), time.time())
        return SendResult(status_code=code, error=error, latency_ms=latency, retry_after_s=wait)

    @staticmethod
    def _failed(start: float, error: str) -> SendResult:
        return SendResult(error=error, latency_ms=(time.perf_counter() - start) * 1000)

    async def close(self) -> None:
        await self.client.aclose()
