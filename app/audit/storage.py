"""Object storage for seals and archives: one bucket per deployment, one prefix per tenant schema.

Layout under ``<audit_prefix><schema>/`` (e.g. ``audit/t_302058/``)::

    seals/<seq, 12 digits>-<hash>.json          signed chain head (app.audit.sealing)
    archive/<first>-<last>.jsonl.gz             archived entries (app.audit.archive)
    archive/<first>-<last>.manifest.json        its signed manifest

A seal's key carries its seq and hash, so verification learns every seal from a listing (1,000 keys
per request) and downloads only the ones it must check the signature of.

Every object is written with an Object Lock retention (``audit_object_lock_mode``, until the
tenant's retention plus a year): in production the bucket has Object Lock and versioning on
(COMPLIANCE: nobody can delete or overwrite a version before its date, root included), so a seal
once written cannot be taken back. Development and tests use the local moto server with
GOVERNANCE mode; the bucket is created there on first use. Production buckets come from Terraform
and are never created by the application.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from app.config import get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_SEAL_KEY = re.compile(r"(\d{12})-([0-9a-f]{64})\.json")


class StorageError(Exception):
    """Object storage failed; the message is Japanese."""


@dataclass(frozen=True)
class SealRef:
    seq: int
    hash: str
    key: str


class AuditStore:
    def __init__(self, client: S3Client, bucket: str, root: str, lock_mode: str | None) -> None:
        self.client = client
        self.bucket = bucket
        self.root = root
        self.lock_mode = lock_mode
        self._bucket_checked = False

    @classmethod
    def from_settings(cls, root: str | None = None, bucket: str | None = None) -> AuditStore:
        import boto3
        from botocore.config import Config

        settings = get_settings()
        endpoint = settings.s3_endpoint_url or None
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            config=Config(
                region_name=settings.audit_region,
                connect_timeout=5,
                read_timeout=60,
                retries={"mode": "standard", "max_attempts": 3},
                s3={"addressing_style": "path"} if endpoint else None,
            ),
        )
        return cls(
            client,
            bucket or settings.audit_bucket,
            settings.audit_prefix if root is None else root,
            settings.audit_object_lock_mode,
        )

    # --- keys -------------------------------------------------------------------------------------

    def tenant_prefix(self, schema: str) -> str:
        return f"{self.root}{schema}/"

    def seal_key(self, schema: str, seq: int, hash_: str) -> str:
        return f"{self.tenant_prefix(schema)}seals/{seq:012d}-{hash_}.json"

    def archive_key(self, schema: str, first: int, last: int) -> str:
        return f"{self.tenant_prefix(schema)}archive/{first:012d}-{last:012d}.jsonl.gz"

    @staticmethod
    def manifest_key(archive_key: str) -> str:
        return archive_key.removesuffix(".jsonl.gz") + ".manifest.json"

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # --- objects ----------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Outside production: create the bucket with Object Lock on the local endpoint."""
        if self._bucket_checked:
            return
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if get_settings().env == "production":
                raise StorageError(f"監査ログ用バケット {self.bucket} にアクセスできません") from exc
            region = get_settings().audit_region
            extra: dict[str, Any] = (
                {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            )
            self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True, **extra)
        self._bucket_checked = True

    def put(self, key: str, body: bytes | IO[bytes], content_type: str, retain_years: int) -> None:
        self.ensure_bucket()
        options: dict[str, Any] = {}
        if self.lock_mode:
            until = dt.datetime.now(dt.UTC) + dt.timedelta(days=366 * (retain_years + 1))
            options = {"ObjectLockMode": self.lock_mode, "ObjectLockRetainUntilDate": until}
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **options
            )
        except Exception as exc:
            raise StorageError(f"{self.where(key)} に書き込めません（{type(exc).__name__}）") from exc

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise StorageError(f"{self.where(key)} を読めません（{type(exc).__name__}）") from exc

    def download(self, key: str, target: IO[bytes]) -> None:
        try:
            self.client.download_fileobj(self.bucket, key, target)
        except Exception as exc:
            raise StorageError(f"{self.where(key)} を読めません（{type(exc).__name__}）") from exc

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        self.ensure_bucket()
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            pages = (
                paginator.paginate(Bucket=self.bucket, Prefix=prefix, StartAfter=start_after)
                if start_after
                else paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    yield obj["Key"]
        except Exception as exc:
            raise StorageError(
                f"{self.where(prefix)} の一覧を取得できません（{type(exc).__name__}）"
            ) from exc

    def seals(self, schema: str, from_seq: int = 0) -> tuple[list[SealRef], list[str]]:
        """Seals (from ``from_seq`` on) in seq order, and keys under seals/ that are not seals.

        Keys sort by seq (12 digits), so a listing can start right before ``from_seq``.
        """
        prefix = f"{self.tenant_prefix(schema)}seals/"
        start = f"{prefix}{from_seq - 1:012d}~" if from_seq > 0 else None  # "~" sorts after "-<hash>"
        refs, strays = [], []
        for key in self.keys(prefix, start):
            m = _SEAL_KEY.fullmatch(key[len(prefix) :])
            if m:
                refs.append(SealRef(int(m.group(1)), m.group(2), key))
            else:
                strays.append(key)
        refs.sort(key=lambda r: (r.seq, r.key))
        return refs, strays
