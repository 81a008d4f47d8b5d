"""``kind: http``: a core system that serves its current extract at a URL (GET returns the file).

The URL yields at most one object. Its version identity is the ``ETag``, else ``Last-Modified``
(with the length), else a SHA-256 of the body — a server without validators therefore costs one
full download per poll, streamed through the hash and never held in memory. ``fetch`` compares the
identity of what it downloaded with the one listed and refuses a file that changed in between.
The file name is the ``Content-Disposition`` file name, else the last segment of the final URL.
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.utils
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import httpx

from app.linkage.adapters.base import CHUNK_BYTES, AdapterError, Check, LinkageAdapter, RemoteObject, register
from app.linkage.config import HttpAdapter
from app.secrets import SecretError, resolve
from app.tenancy.service import TenantRecord

_STAGES = ("endpoint", "credentials", "url")


class _Failure(AdapterError):
    """An AdapterError that also knows which check stage failed."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def _validator(response: httpx.Response) -> str | None:
    etag = response.headers.get("etag")
    if etag:
        return f"etag:{etag}"
    modified = response.headers.get("last-modified")
    if modified:
        length = response.headers.get("content-length")
        return f"last-modified:{modified}" + (f";size:{length}" if length else "")
    return None


def _size(response: httpx.Response) -> int | None:
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def _last_modified(response: httpx.Response) -> dt.datetime | None:
    value = response.headers.get("last-modified")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _file_name(response: httpx.Response) -> str:
    disposition = response.headers.get("content-disposition")
    if disposition:
        header = email.message.Message()
        header["content-disposition"] = disposition
        name = header.get_filename()  # handles RFC 2231 filename*=UTF-8''...
        if name:
            return PurePosixPath(name.replace("\\", "/")).name
    return PurePosixPath(response.url.path).name or "extract"


@register("http")
class HttpLinkageAdapter(LinkageAdapter[HttpAdapter]):
    def __init__(self, config: HttpAdapter, tenant: TenantRecord) -> None:
        super().__init__(config, tenant)
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self._http is not None:
            return self._http
        auth = self.config.auth
        headers = {"User-Agent": "madoguchi-linkage", "Accept-Encoding": "identity"}  # bytes as served
        basic: httpx.BasicAuth | None = None
        if auth.type == "bearer" and auth.token_ref:
            headers["Authorization"] = f"Bearer {resolve(auth.token_ref)}"
        elif auth.type == "basic" and auth.username and auth.password_ref:
            basic = httpx.BasicAuth(auth.username, resolve(auth.password_ref))
        self._http = httpx.Client(
            headers=headers,
            auth=basic,
            timeout=httpx.Timeout(self.config.timeout_seconds, connect=10),
            follow_redirects=True,  # httpx drops Authorization when a redirect leaves the origin
        )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    @property
    def host(self) -> str:
        return httpx.URL(self.config.url).host

    # --- check ----------------------------------------------------------------------------------

    def check_config(self) -> list[Check]:
        try:
            client = self._client()
        except SecretError as exc:
            return [Check("settings", False, str(exc))]
        auth = {"none": "なし", "bearer": "Bearer トークン", "basic": "Basic 認証"}[self.config.auth.type]
        checks = [Check("settings", True, f"設定は有効です（URL: {self.config.url}、認証: {auth}）")]
        passed = {
            "endpoint": f"{self.host} に接続できました",
            "credentials": "認証に成功しました"
            if self.config.auth.type != "none"
            else "認証は設定されていません",
        }
        try:
            with self._get(client) as response:
                if response.status_code == 204:
                    found = "現在提供されている抽出ファイルはありません（HTTP 204）"
                else:
                    found = self._describe_found(response)
        except _Failure as exc:
            checks += [Check(s, True, passed[s]) for s in _STAGES[: _STAGES.index(exc.stage)]]
            return [*checks, Check(exc.stage, False, str(exc))]
        checks += [Check(s, True, passed[s]) for s in ("endpoint", "credentials")]
        return [*checks, Check("url", True, found)]

    def _describe_found(self, response: httpx.Response) -> str:
        name = _file_name(response)
        validator = _validator(response)
        if validator is None:
            how = "ETag も Last-Modified もないため、取得のたびに全体を読んで内容のハッシュで識別します"
        else:
            how = f"識別: {validator.split(':', 1)[0]}"
        if not self.matches(name):
            return (
                f"読み取れますが、ファイル名「{name}」はパターン「{self.config.pattern}」に"
                "一致しないため取り込みません"
            )
        size = _size(response)
        return f"読み取れます（ファイル名: {name}、{f'{size:,} バイト、' if size is not None else ''}{how}）"

    # --- list and fetch -------------------------------------------------------------------------

    def list_objects(self) -> list[RemoteObject]:
        try:
            client = self._client()
        except SecretError as exc:
            raise AdapterError(str(exc)) from exc
        with self._get(client) as response:
            if response.status_code == 204:
                return []
            name = _file_name(response)
            if not self.matches(name):
                return []
            identity = _validator(response)
            size = _size(response)
            if identity is None:  # no validators: the content itself is the identity
                digest = hashlib.sha256()
                size = 0
                for chunk in self._body(response):
                    digest.update(chunk)
                    size += len(chunk)
                identity = f"sha256:{digest.hexdigest()}"
            return [
                RemoteObject(
                    key=self.config.url,
                    name=name,
                    etag=identity,
                    size=size,
                    last_modified=_last_modified(response),
                    ref=self.config.url,
                )
            ]

    def fetch(self, obj: RemoteObject, dest_dir: Path) -> Path:
        try:
            client = self._client()
        except SecretError as exc:
            raise AdapterError(str(exc)) from exc
        changed = AdapterError(
            f"「{obj.name}」は一覧の取得後に置き換えられました（新しい版は次回の取得で取り込みます）"
        )
        with self._get(client) as response:
            if response.status_code == 204:
                raise changed
            if not obj.etag.startswith("sha256:"):
                if _validator(response) != obj.etag:
                    raise changed
                return self._spool(self._body(response), obj, dest_dir)
            digest = hashlib.sha256()

            def hashed() -> Iterator[bytes]:
                for chunk in self._body(response):
                    digest.update(chunk)
                    yield chunk
                if f"sha256:{digest.hexdigest()}" != obj.etag:
                    raise changed

            return self._spool(hashed(), obj, dest_dir)

    # --- helpers --------------------------------------------------------------------------------

    @contextmanager
    def _get(self, client: httpx.Client) -> Iterator[httpx.Response]:
        """A streamed GET (redirects followed); transport errors and error statuses become ``_Failure``."""
        try:
            response = client.send(client.build_request("GET", self.config.url), stream=True)
        except httpx.HTTPError as exc:
            raise self._fail_for(exc) from exc
        try:
            if response.status_code >= 300:
                raise self._fail_status(response.status_code)
            yield response
        finally:
            response.close()

    def _body(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(CHUNK_BYTES)
        except httpx.HTTPError as exc:
            raise AdapterError(f"{self.host} からの受信が途中で失敗しました（{type(exc).__name__}）") from exc

    def _fail_for(self, exc: httpx.HTTPError) -> _Failure:
        if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
            tls = "（TLS 証明書を確認してください）" if "CERTIFICATE" in str(exc).upper() else ""
            return _Failure("endpoint", f"{self.host} に接続できません{tls}")
        if isinstance(exc, httpx.TimeoutException):
            return _Failure("url", f"{self.host} から応答がありません（{self.config.timeout_seconds} 秒）")
        return _Failure("endpoint", f"{self.host} への要求に失敗しました（{type(exc).__name__}）")

    def _fail_status(self, status: int) -> _Failure:
        if status == 401:
            return _Failure(
                "credentials", "認証に失敗しました（HTTP 401）: トークン・パスワードを確認してください"
            )
        if status == 403:
            return _Failure("credentials", "アクセスが拒否されました（HTTP 403）: 権限を確認してください")
        if status == 404:
            return _Failure("url", f"URL が見つかりません（HTTP 404）: {self.config.url}")
        return _Failure("url", f"サーバーがエラーを返しました（HTTP {status}）")
