"""boto3 clients for the report sources: one factory, so tests can hand in stubbed clients.

``MADOGUCHI_AWS_ENDPOINT_URL`` points every client at a local stand-in (moto in server mode) in
development and tests; production leaves it unset and uses the task role's credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from app.config import get_settings

GLOBAL_REGION = {"ce": "us-east-1", "iam": "us-east-1"}  # Cost Explorer and IAM answer from us-east-1
_RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)

ClientFactory = Callable[[str], Any]


def default_clients(service: str) -> Any:
    settings = get_settings()
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=settings.aws_endpoint_url,
        region_name=GLOBAL_REGION.get(service, settings.aws_region),
        config=_RETRIES,
    )


class Clients:
    """Clients made once per report run (``factory(service)``), cached by service name."""

    def __init__(self, factory: ClientFactory = default_clients) -> None:
        self.factory = factory
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self.factory(service)
        return self._made[service]
