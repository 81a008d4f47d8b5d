"""Handing a read to the service: ``POST {service}/api/v1/{tenant}/card-reads``.

Request (``Authorization: Bearer <device token>``, ``Idempotency-Key: <uuid4>`` — the same key on
every retry of one read, so a server that honours it stores the read once)::

    {"name": "...", "address": "...", "birth": "YYYY-MM-DD", "sex": "1|2|9",
     "outside_jis0208": false, "reader": "<PC/SC reader name>",
     "read_at": "2025-04-01T09:12:03+09:00"}

Answers: 201 ``{"id": ...}`` → done; 401/403 → DeviceTokenRejected (no retry); other 4xx or a
201 without an id → PostRejected (no retry); network errors, 429 and 5xx → retried with backoff,
then ServiceUnreachable. Nothing is written to disk and nothing read from the card is logged.
"""

from __future__ import annotations

import logging
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from .card import CardFace
from .errors import DeviceTokenRejected, PostRejected, ServiceUnreachable

log = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF = 0.5  # seconds before the 2nd attempt; doubles each time (0.5, 1, 2)
DEFAULT_TIMEOUT = 10.0


def build_payload(face: CardFace, reader: str, read_at: datetime) -> dict[str, Any]:
    if read_at.tzinfo is None or read_at.utcoffset() is None:
        raise ValueError("read_at must carry a UTC offset")
    return {
        "name": face.name,
        "address": face.address,
        "birth": face.birth.isoformat(),
        "sex": face.sex,
        "outside_jis0208": face.outside_jis0208,
        "reader": reader,
        "read_at": read_at.isoformat(timespec="seconds"),
    }


class ReadPoster:
    def __init__(
        self,
        service_url: str,
        tenant: str,
        device_token: str,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool | ssl.SSLContext = True,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = f"{service_url.rstrip('/')}/api/v1/{tenant}/card-reads"
        self._token = device_token
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep
        self._client = httpx.Client(
            timeout=timeout, verify=verify, transport=transport, follow_redirects=False
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ReadPoster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def post(self, face: CardFace, reader: str, read_at: datetime) -> str:
        """Send one read; return the id the service gave it."""
        payload = build_payload(face, reader, read_at)
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Idempotency-Key": str(uuid.uuid4()),
            "Accept": "application/json",
        }
        last = ""
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                self._sleep(self._backoff * 2 ** (attempt - 2))
            try:
                response = self._client.post(self.url, json=payload, headers=headers)
            except httpx.TransportError as exc:
                last = type(exc).__name__
                log.warning("card read post attempt %d/%d failed: %s", attempt, self._attempts, last)
                continue
            status = response.status_code
            if status in (401, 403):
                raise DeviceTokenRejected(status)
            if status == 429 or status >= 500:
                last = f"HTTP {status}"
                log.warning("card read post attempt %d/%d: HTTP %d", attempt, self._attempts, status)
                continue
            if status != 201:
                raise PostRejected(status, _problem_title(response))
            try:
                body = response.json()
            except ValueError:
                raise PostRejected(status, "201 without a JSON body") from None
            if not isinstance(body, dict) or body.get("id") in (None, ""):
                raise PostRejected(status, "201 without an id")
            read_id = str(body["id"])
            log.info("card read posted as %s (attempt %d)", read_id, attempt)
            return read_id
        raise ServiceUnreachable(self._attempts, last)


def _problem_title(response: httpx.Response) -> str:
    """A short reason from the answer, without echoing what we sent (it may quote the name)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "rejected"
    if isinstance(body, dict):
        for key in ("title", "message", "code"):
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
    return response.reason_phrase or "rejected"
