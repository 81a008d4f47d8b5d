"""Where a file to import comes from when given by hand: a local path or ``s3://bucket/key``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from app.config import get_settings


class SourceError(ValueError):
    """The source cannot be read; Japanese message for the operator."""


def s3_client(endpoint_url: str | None = None, region: str = "ap-northeast-1") -> object:
    return boto3.client("s3", endpoint_url=endpoint_url or get_settings().s3_endpoint_url, region_name=region)


@contextmanager
def local_copy(source: str) -> Iterator[tuple[Path, str]]:
    """(local path, file name) for a path or an s3:// URL; S3 objects are streamed to a temp file."""
    if not source.startswith("s3://"):
        path = Path(source)
        try:
            found = path.is_file()
        except OSError as exc:  # a name too long for the file system, a directory we may not enter
            raise SourceError(
                f"ファイル {source[:120]} を開けません（パスが長すぎるか、読めない場所です）"
            ) from exc
        if not found:
            raise SourceError(f"ファイル {source[:120]} が見つかりません")
        yield path, path.name
        return
    bucket, _, key = source[len("s3://") :].partition("/")
    if not bucket or not key:
        raise SourceError(f"{source} は s3://バケット/キー の形で指定してください")
    name = PurePosixPath(key).name
    with tempfile.TemporaryDirectory(prefix="madoguchi-import-") as tmp:
        target = Path(tmp) / name
        try:
            s3_client().download_file(bucket, key, str(target))  # type: ignore[attr-defined]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NoSuchBucket"):
                raise SourceError(f"{source} が見つかりません") from exc
            raise SourceError(f"{source} を取得できません（{code}）") from exc
        except BotoCoreError as exc:
            raise SourceError(f"{source} を取得できません（{type(exc).__name__}）") from exc
        yield target, name
