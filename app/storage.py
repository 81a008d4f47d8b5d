"""Object storage for documents the service produces (printed applications, signatures, reports).

One bucket per deployment (``MADOGUCHI_DOCUMENTS_BUCKET``); every key starts with the tenant id, and
keys are only ever built by services that already hold the tenant's session, so one city's
documents cannot be addressed from another's request.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from app.config import get_settings


@lru_cache(maxsize=4)
def _client(endpoint_url: str | None) -> Any:
    return boto3.client("s3", endpoint_url=endpoint_url, region_name="ap-northeast-1")


def client() -> Any:
    return _client(get_settings().s3_endpoint_url)


def bucket() -> str:
    return get_settings().documents_bucket


_ensured: set[str] = set()


def ensure_bucket() -> None:
    """Create the documents bucket on the local stand-in (production buckets come from Terraform)."""
    name = bucket()
    if name in _ensured:
        return
    try:
        client().head_bucket(Bucket=name)
    except ClientError:
        client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
        )
    _ensured.add(name)


def tenant_key(tenant_id: str, *parts: str) -> str:
    return "/".join((tenant_id, *parts))


def put(key: str, data: bytes, content_type: str) -> None:
    ensure_bucket()
    client().put_object(Bucket=bucket(), Key=key, Body=data, ContentType=content_type)


def get(key: str) -> bytes:
    return client().get_object(Bucket=bucket(), Key=key)["Body"].read()  # type: ignore[no-any-return]
