"""Put the variant files where the tenant's core system would: its S3 adapters' bucket and prefix.

Kept apart from generation so the files can be written without any object storage (tests, a
laptop) and uploaded later. Only ``kind: s3`` adapters take files; a tenant whose residents come
over ``http`` (Yamaguchi's core API) just keeps the local file.

Safety: the demo never talks to real AWS. The endpoint is the adapter's ``endpoint_url`` or
``MADOGUCHI_S3_ENDPOINT_URL`` (the local moto server); with neither, ``upload_extract`` refuses.
Credentials: the adapter's ``env:`` references when it has them, else the usual AWS environment
variables (``var/services.env`` sets test values for moto).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import get_settings
from app.linkage.config import FileKind, LinkageConfig, S3Adapter


class UploadRefused(RuntimeError):
    """No local S3 endpoint configured: the demo does not upload to real AWS."""


@dataclass(frozen=True)
class Uploaded:
    adapter: str
    bucket: str
    key: str
    bytes: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _secret(ref: str | None) -> str | None:
    if ref is None:
        return None
    scheme, _, name = ref.partition(":")
    if scheme != "env":
        raise UploadRefused(f"demo upload resolves only env: secret references, not {scheme}:")
    return os.environ.get(name)


def s3_client(adapter: S3Adapter, endpoint_url: str | None = None) -> Any:
    import boto3

    endpoint = endpoint_url or adapter.endpoint_url or get_settings().s3_endpoint_url
    if not endpoint:
        raise UploadRefused(
            "MADOGUCHI_S3_ENDPOINT_URL が未設定です（デモは実際の AWS にはアップロードしません）"
        )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=adapter.region,
        aws_access_key_id=_secret(adapter.access_key_ref),
        aws_secret_access_key=_secret(adapter.secret_key_ref),
    )


def ensure_bucket(client: Any, bucket: str, region: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        if region == "us-east-1":
            client.create_bucket(Bucket=bucket)
        else:
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def upload_extract(
    linkage: LinkageConfig, files: Mapping[FileKind, Path], *, endpoint_url: str | None = None
) -> list[Uploaded]:
    """Upload each file to every S3 adapter of its purpose (bucket created if missing)."""
    done: list[Uploaded] = []
    for adapter in linkage.adapters:
        if not isinstance(adapter, S3Adapter) or adapter.purpose not in files:
            continue
        path = files[adapter.purpose]
        client = s3_client(adapter, endpoint_url)
        ensure_bucket(client, adapter.bucket, adapter.region)
        key = adapter.prefix + path.name
        client.upload_file(str(path), adapter.bucket, key)
        done.append(Uploaded(adapter.name, adapter.bucket, key, path.stat().st_size))
    return done
