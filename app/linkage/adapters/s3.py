"""``kind: s3``: objects directly under a bucket prefix (AWS S3, or the moto server locally).

Only the prefix's direct children are listed (``Delimiter="/"``): core systems move processed files
into sub-folders such as ``archive/``, and taking those again would re-apply old extracts. The
ETag is the version identity; ``fetch`` sends it as ``If-Match`` so the bytes imported are exactly
the version that was listed and recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from app.config import get_settings
from app.linkage.adapters.base import CHUNK_BYTES, AdapterError, Check, LinkageAdapter, RemoteObject, register
from app.linkage.config import S3Adapter
from app.secrets import SecretError, resolve
from app.tenancy.service import TenantRecord

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

_AUTH_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId"}
)
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "403"})
_REGION_CODES = frozenset({"PermanentRedirect", "301", "AuthorizationHeaderMalformed"})
_STAGES = ("endpoint", "credentials", "bucket")


@register("s3")
class S3LinkageAdapter(LinkageAdapter[S3Adapter]):
    def __init__(self, config: S3Adapter, tenant: TenantRecord) -> None:
        super().__init__(config, tenant)
        # None → the local stand-in when one is configured, else AWS's regional endpoint.
        self.endpoint_url = config.endpoint_url or get_settings().s3_endpoint_url or None
        self._clients: dict[int, S3Client] = {}

    @property
    def where(self) -> str:
        return self.endpoint_url or f"AWS S3（{self.config.region}）"

    def _client(self, attempts: int = 3) -> S3Client:
        """A client per retry budget: checks answer fast, polls ride out a blip."""
        client = self._clients.get(attempts)
        if client is not None:
            return client
        key_id = secret = None  # None: boto3's default chain (environment, instance role)
        if self.config.access_key_ref and self.config.secret_key_ref:
            key_id, secret = resolve(self.config.access_key_ref), resolve(self.config.secret_key_ref)
        config = Config(
            region_name=self.config.region,
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": attempts},
            # Non-AWS endpoints (moto, MinIO) serve buckets as paths, not host names.
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=config,
        )
        self._clients[attempts] = client
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # --- check ----------------------------------------------------------------------------------

    def check_config(self) -> list[Check]:
        cfg = self.config
        try:
            client = self._client(attempts=1)
        except SecretError as exc:
            return [Check("settings", False, str(exc))]
        auth = "アクセスキーの参照" if cfg.access_key_ref else "既定の認証情報（インスタンスロール等）"
        checks = [
            Check(
                "settings",
                True,
                f"設定は有効です（接続先: {self.where}、バケット: {cfg.bucket}、"
                f"プレフィックス: 「{cfg.prefix}」、認証: {auth}）",
            )
        ]
        try:
            page = self._list_page(client)
        except (BotoCoreError, ClientError) as exc:
            stage, message = self._describe(exc)
            passed = {
                "endpoint": f"{self.where} に接続できました",
                "credentials": "認証に成功しました",
            }
            if not isinstance(exc, NoCredentialsError | PartialCredentialsError):  # nothing was sent
                checks += [Check(s, True, passed[s]) for s in _STAGES[: _STAGES.index(stage)]]
            return [*checks, Check(stage, False, message)]
        checks += [
            Check("endpoint", True, f"{self.where} に接続できました"),
            Check("credentials", True, "認証に成功しました"),
            Check("bucket", True, f"バケット「{cfg.bucket}」の一覧を取得できます"),
        ]
        return [*checks, self._check_prefix(client, page)]

    def _check_prefix(self, client: S3Client, page: ListObjectsV2OutputTypeDef) -> Check:
        prefix = self.config.prefix
        names = [self._name(item["Key"]) for item in page.get("Contents", [])]
        files = [n for n in names if n]
        matching = sorted(n for n in files if self.matches(n))
        if not files:
            folders = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            hint = (
                f"（サブフォルダ: {', '.join(folders[:3])}。プレフィックスを確認してください）"
                if folders
                else ""
            )
            return Check(
                "prefix",
                True,
                f"プレフィックス「{prefix}」の下にはまだファイルがありません（読み取りは可能です）{hint}",
            )
        if not matching:
            return Check(
                "prefix",
                True,
                f"プレフィックス「{prefix}」の下に {len(files)} 件ありますが、"
                f"パターン「{self.config.pattern}」に一致するファイルはありません",
            )
        try:
            client.head_object(Bucket=self.config.bucket, Key=prefix + matching[0])
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            reason = "権限がありません" if status == 403 else f"HTTP {status}"
            return Check("prefix", False, f"「{matching[0]}」を読み取れません（{reason}）")
        except BotoCoreError as exc:
            return Check("prefix", False, f"「{matching[0]}」を読み取れません: {self._describe(exc)[1]}")
        more = "以上" if page.get("IsTruncated") else ""
        return Check(
            "prefix",
            True,
            f"パターンに一致するファイル {len(matching)} 件{more}を読み取れます（例: {matching[0]}）",
        )

    # --- list and fetch -------------------------------------------------------------------------

    def list_objects(self) -> list[RemoteObject]:
        cfg = self.config
        found: list[RemoteObject] = []
        try:
            client = self._client()
            token: str | None = None
            while True:
                page = self._list_page(client, token)
                for item in page.get("Contents", []):
                    name = self._name(item["Key"])
                    if name and self.matches(name):
                        found.append(
                            RemoteObject(
                                key=item["Key"],
                                name=name,
                                etag=item["ETag"].strip('"'),
                                size=item["Size"],
                                last_modified=item["LastModified"],
                                ref=f"s3://{cfg.bucket}/{item['Key']}",
                            )
                        )
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    return found
        except SecretError as exc:
            raise AdapterError(str(exc)) from exc
        except (BotoCoreError, ClientError) as exc:
            raise AdapterError(self._describe(exc)[1]) from exc

    def fetch(self, obj: RemoteObject, dest_dir: Path) -> Path:
        try:
            response = self._client().get_object(
                Bucket=self.config.bucket, Key=obj.key, IfMatch=f'"{obj.etag}"'
            )
        except SecretError as exc:
            raise AdapterError(str(exc)) from exc
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise AdapterError(
                    f"「{obj.name}」は一覧の取得後に置き換えられました（新しい版は次回の取得で取り込みます）"
                ) from exc
            raise AdapterError(self._describe(exc)[1]) from exc
        except BotoCoreError as exc:
            raise AdapterError(self._describe(exc)[1]) from exc
        body = response["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            except (BotoCoreError, ClientError) as exc:
                raise AdapterError(f"「{obj.name}」の取得中に失敗しました: {self._describe(exc)[1]}") from exc
            finally:
                body.close()

        return self._spool(chunks(), obj, dest_dir)

    # --- helpers --------------------------------------------------------------------------------

    def _list_page(self, client: S3Client, token: str | None = None) -> ListObjectsV2OutputTypeDef:
        if token:
            return client.list_objects_v2(
                Bucket=self.config.bucket, Prefix=self.config.prefix, Delimiter="/", ContinuationToken=token
            )
        return client.list_objects_v2(Bucket=self.config.bucket, Prefix=self.config.prefix, Delimiter="/")

    def _name(self, key: str) -> str:
        """Base name of a direct child of the prefix; "" for folder markers."""
        return key[len(self.config.prefix) :].rsplit("/", 1)[-1]

    def _describe(self, exc: BotoCoreError | ClientError) -> tuple[str, str]:
        """(failed stage, Japanese message) for a boto error."""
        bucket = self.config.bucket
        if isinstance(exc, BotoConnectionError):
            return "endpoint", f"S3 エンドポイント {self.where} に接続できません（{type(exc).__name__}）"
        if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
            return "endpoint", f"S3 エンドポイント {self.where} から応答がありません（{type(exc).__name__}）"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return (
                "credentials",
                "S3 の認証情報が見つかりません（アクセスキーの参照も既定の認証情報もありません）",
            )
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _AUTH_CODES:
                return (
                    "credentials",
                    f"認証に失敗しました（{code}）: アクセスキーとシークレットキーを確認してください",
                )
            if code in ("NoSuchBucket", "404") or (status == 404 and code != "NoSuchKey"):
                return "bucket", f"バケット「{bucket}」が見つかりません"
            if code in _DENIED_CODES:
                return "bucket", f"バケット「{bucket}」を読み取る権限がありません（{code}）"
            if code in _REGION_CODES:
                return (
                    "bucket",
                    f"バケット「{bucket}」は設定と別のリージョンにあります（設定: {self.config.region}）",
                )
            return "bucket", f"S3 がエラーを返しました（{code or status}: {error.get('Message', '')}）"
        return "endpoint", f"S3 への要求に失敗しました（{type(exc).__name__}: {exc}）"
