"""Adapters against real storage: the moto S3 server, a temporary directory, an HTTP server."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.linkage.adapters import (
    AdapterError,
    Check,
    LinkageAdapter,
    RemoteObject,
    adapter_for,
    register,
    registered_kinds,
)
from app.linkage.config import HttpAdapter, HttpAuth, LocalAdapter, S3Adapter
from app.tenancy.service import TenantRecord
from tests.linkage_support import Bucket, ExtractServer, bucket, extract_server, free_port

JUKI = r"^GOBO_JUKI_(ZEN|IDO)_\d{8}\.csv$"


@pytest.fixture
def gobo(provisioned: dict[str, TenantRecord]) -> TenantRecord:
    return provisioned["gobo"]


@pytest.fixture
def s3() -> Iterator[Bucket]:
    with bucket() as made:
        yield made


@pytest.fixture
def http() -> Iterator[ExtractServer]:
    with extract_server() as server:
        yield server


def s3_config(bucket_name: str, **changes: object) -> S3Adapter:
    values: dict[str, object] = {
        "name": "cokas-juki",
        "kind": "s3",
        "purpose": "residents",
        "bucket": bucket_name,
        "prefix": "juki/",
        "pattern": JUKI,
    }
    return S3Adapter.model_validate(values | changes)


TOKEN_ENV = "MADOGUCHI_TEST_CORE_TOKEN"


def http_config(url: str, **changes: object) -> HttpAdapter:
    values: dict[str, object] = {
        "name": "core-api",
        "kind": "http",
        "purpose": "residents",
        "url": url,
        "auth": HttpAuth(type="bearer", token_ref=f"env:{TOKEN_ENV}"),
        "timeout_seconds": 10,
    }
    return HttpAdapter.model_validate(values | changes)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def check(config: S3Adapter | LocalAdapter | HttpAdapter, tenant: TenantRecord) -> dict[str, Check]:
    with adapter_for(config, tenant) as adapter:
        return by_name(adapter.check_config())


def fetch_in_small_memory(adapter: LinkageAdapter[Any], obj: RemoteObject, dest: Path) -> Path:
    """``fetch`` with Python's allocations traced: a streamed copy never holds the object."""
    tracemalloc.start()
    try:
        path = adapter.fetch(obj, dest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"fetch held {peak:,} bytes at once"
    return path


# --- registry ---------------------------------------------------------------------------------


def test_registry_knows_the_built_in_kinds_and_refuses_a_second_s3(gobo: TenantRecord) -> None:
    assert registered_kinds() == ["http", "local", "s3"]
    assert adapter_for(s3_config("any-bucket"), gobo).kind == "s3"
    with pytest.raises(ValueError, match="already registered"):

        @register("s3")
        class Another(LinkageAdapter[S3Adapter]):
            def check_config(self) -> list[Check]:
                return []

            def list_objects(self) -> list:  # type: ignore[type-arg]
                return []

            def fetch(self, obj: object, dest_dir: Path) -> Path:
                return dest_dir


# --- S3 ---------------------------------------------------------------------------------------


def test_s3_check_passes_for_a_good_config(gobo: TenantRecord, s3: Bucket) -> None:
    s3.put("juki/GOBO_JUKI_ZEN_20260401.csv", b"ATENA_NO\n")
    checks = check(s3_config(s3.name), gobo)
    assert list(checks) == ["settings", "endpoint", "credentials", "bucket", "prefix"]
    assert all(c.ok for c in checks.values()), checks
    assert "1 件" in checks["prefix"].message
    assert "GOBO_JUKI_ZEN_20260401.csv" in checks["prefix"].message


def test_s3_check_with_credentials_from_secret_references(
    gobo: TenantRecord, s3: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = s3_config(s3.name, access_key_ref="env:GOBO_S3_KEY", secret_key_ref="env:GOBO_S3_SECRET")
    monkeypatch.delenv("GOBO_S3_KEY", raising=False)
    failed = check(config, gobo)
    assert list(failed) == ["settings"]
    assert not failed["settings"].ok
    assert "GOBO_S3_KEY" in failed["settings"].message
    monkeypatch.setenv("GOBO_S3_KEY", "testing")
    monkeypatch.setenv("GOBO_S3_SECRET", "testing")
    assert all(c.ok for c in check(config, gobo).values())


def test_s3_check_names_a_missing_bucket(gobo: TenantRecord) -> None:
    checks = check(s3_config("no-such-bucket-anywhere"), gobo)
    assert checks["endpoint"].ok
    assert checks["credentials"].ok
    assert not checks["bucket"].ok
    assert checks["bucket"].message == "バケット「no-such-bucket-anywhere」が見つかりません"
    assert "prefix" not in checks


def test_s3_check_says_so_when_the_prefix_holds_nothing(gobo: TenantRecord, s3: Bucket) -> None:
    s3.put("juki/GOBO_JUKI_ZEN_20260401.csv", b"ATENA_NO\n")
    wrong = check(s3_config(s3.name, prefix="jyuki/"), gobo)
    assert all(c.ok for c in wrong.values())  # readable, just empty: fine, but say so
    assert "プレフィックス「jyuki/」の下にはまだファイルがありません" in wrong["prefix"].message
    no_slash = check(s3_config(s3.name, prefix="juki"), gobo)
    assert "サブフォルダ: juki/" in no_slash["prefix"].message


def test_s3_check_names_an_unreachable_endpoint(gobo: TenantRecord) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    checks = check(s3_config("gobo-madoguchi-linkage", endpoint_url=endpoint), gobo)
    assert checks["settings"].ok
    assert not checks["endpoint"].ok
    assert checks["endpoint"].message.startswith(f"S3 エンドポイント {endpoint} に接続できません")
    assert "credentials" not in checks


def test_s3_lists_only_matching_files_directly_under_the_prefix(gobo: TenantRecord, s3: Bucket) -> None:
    etag = s3.put("juki/GOBO_JUKI_IDO_20260402.csv", b"2")
    s3.put("juki/GOBO_JUKI_ZEN_20260401.csv", b"1")
    s3.put("juki/readme.txt", b"not an extract")
    s3.put("juki/archive/GOBO_JUKI_ZEN_20250401.csv", b"old, already imported")
    s3.put("shikaku/GOBO_SHIKAKU_20260401.csv", b"other adapter")
    with adapter_for(s3_config(s3.name), gobo) as adapter:
        listed = sorted(adapter.list_objects(), key=lambda o: o.name)
    assert [o.name for o in listed] == ["GOBO_JUKI_IDO_20260402.csv", "GOBO_JUKI_ZEN_20260401.csv"]
    first = listed[0]
    assert (first.key, first.etag, first.size) == ("juki/GOBO_JUKI_IDO_20260402.csv", etag, 1)
    assert first.ref == f"s3://{s3.name}/juki/GOBO_JUKI_IDO_20260402.csv"
    assert first.last_modified is not None


def test_s3_fetch_streams_a_multi_megabyte_object(gobo: TenantRecord, s3: Bucket, tmp_path: Path) -> None:
    body = os.urandom(1024 * 1024) * 24  # 24 MiB
    s3.put("juki/GOBO_JUKI_ZEN_20260401.csv", body)
    with adapter_for(s3_config(s3.name), gobo) as adapter:
        (obj,) = adapter.list_objects()
        path = fetch_in_small_memory(adapter, obj, tmp_path)
    assert path.parent == tmp_path
    assert path.stat().st_size == len(body)
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(body).digest()


def test_s3_fetch_refuses_an_object_replaced_after_listing(
    gobo: TenantRecord, s3: Bucket, tmp_path: Path
) -> None:
    s3.put("juki/GOBO_JUKI_ZEN_20260401.csv", b"version 1")
    with adapter_for(s3_config(s3.name), gobo) as adapter:
        (obj,) = adapter.list_objects()
        s3.put("juki/GOBO_JUKI_ZEN_20260401.csv", b"version 2, replaced")
        with pytest.raises(AdapterError, match="置き換えられました"):
            adapter.fetch(obj, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- local directory --------------------------------------------------------------------------


def local_config(directory: Path, pattern: str = JUKI) -> LocalAdapter:
    return LocalAdapter(
        name="hand-carried", kind="local", purpose="residents", directory=str(directory), pattern=pattern
    )


def test_local_check_passes_and_names_a_missing_directory(gobo: TenantRecord, tmp_path: Path) -> None:
    (tmp_path / "GOBO_JUKI_ZEN_20260401.csv").write_bytes(b"ATENA_NO\n")
    good = check(local_config(tmp_path), gobo)
    assert all(c.ok for c in good.values()), good
    assert "1 件" in good["files"].message
    missing = check(local_config(tmp_path / "nowhere"), gobo)
    assert not missing["directory"].ok
    assert missing["directory"].message == f"ディレクトリ「{tmp_path / 'nowhere'}」が見つかりません"
    a_file = check(local_config(tmp_path / "GOBO_JUKI_ZEN_20260401.csv"), gobo)
    assert "ディレクトリではありません" in a_file["directory"].message


def test_local_lists_matching_files_only(gobo: TenantRecord, tmp_path: Path) -> None:
    (tmp_path / "GOBO_JUKI_ZEN_20260401.csv").write_bytes(b"full")
    (tmp_path / ".GOBO_JUKI_IDO_20260402.csv").write_bytes(b"hidden: still being written")
    (tmp_path / "notes.txt").write_bytes(b"no")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "GOBO_JUKI_ZEN_20250401.csv").write_bytes(b"old")
    with adapter_for(local_config(tmp_path), gobo) as adapter:
        listed = adapter.list_objects()
    assert [o.name for o in listed] == ["GOBO_JUKI_ZEN_20260401.csv"]
    stat = (tmp_path / "GOBO_JUKI_ZEN_20260401.csv").stat()
    assert listed[0].etag == f"{stat.st_mtime_ns}-{stat.st_size}"
    assert listed[0].ref == str(tmp_path / "GOBO_JUKI_ZEN_20260401.csv")


def test_local_fetch_copies_and_refuses_a_file_changed_after_listing(
    gobo: TenantRecord, tmp_path: Path
) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    out.mkdir()
    source = inbox / "GOBO_JUKI_ZEN_20260401.csv"
    source.write_bytes(b"ATENA_NO\n1\n")
    with adapter_for(local_config(inbox), gobo) as adapter:
        (obj,) = adapter.list_objects()
        assert adapter.fetch(obj, out).read_bytes() == b"ATENA_NO\n1\n"
        source.write_bytes(b"ATENA_NO\n1\n2\n")
        with pytest.raises(AdapterError, match="変更されました"):
            adapter.fetch(obj, out)
    assert len(list(out.iterdir())) == 1  # the refused copy left nothing behind


# --- HTTP -------------------------------------------------------------------------------------


@pytest.fixture
def token(http: ExtractServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MADOGUCHI_TEST_CORE_TOKEN", http.token)
    return http.token


def test_http_check_passes_with_the_right_token(gobo: TenantRecord, http: ExtractServer, token: str) -> None:
    http.body = b"ATENA_NO\n"
    http.headers = {
        "ETag": '"v1"',
        "Content-Disposition": 'attachment; filename="YAMAGUCHI_full_20260401.tsv"',
    }
    checks = check(http_config(http.url), gobo)
    assert list(checks) == ["settings", "endpoint", "credentials", "url"]
    assert all(c.ok for c in checks.values()), checks
    assert "YAMAGUCHI_full_20260401.tsv" in checks["url"].message


def test_http_check_names_a_401(
    gobo: TenantRecord, http: ExtractServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MADOGUCHI_TEST_CORE_TOKEN", "expired-token")
    checks = check(http_config(http.url), gobo)
    assert checks["endpoint"].ok
    assert not checks["credentials"].ok
    assert "認証に失敗しました（HTTP 401）" in checks["credentials"].message
    with adapter_for(http_config(http.url), gobo) as adapter, pytest.raises(AdapterError, match="401"):
        adapter.list_objects()


def test_http_check_names_an_unreachable_server_and_a_missing_secret(
    gobo: TenantRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MADOGUCHI_TEST_CORE_TOKEN", "x")
    unreachable = check(http_config(f"http://127.0.0.1:{free_port()}/extract"), gobo)
    assert not unreachable["endpoint"].ok
    assert unreachable["endpoint"].message == "127.0.0.1 に接続できません"
    monkeypatch.delenv("MADOGUCHI_TEST_CORE_TOKEN")
    no_secret = check(http_config("http://127.0.0.1:1/extract"), gobo)
    assert list(no_secret) == ["settings"]
    assert "環境変数 MADOGUCHI_TEST_CORE_TOKEN が設定されていません" in no_secret["settings"].message


@pytest.mark.parametrize(
    ("headers", "identity"),
    [
        ({"ETag": '"abc"'}, 'etag:"abc"'),
        (
            {"Last-Modified": "Wed, 01 Apr 2026 00:00:00 GMT"},
            "last-modified:Wed, 01 Apr 2026 00:00:00 GMT;size:9",
        ),
        ({}, "sha256:" + hashlib.sha256(b"ATENA_NO\n").hexdigest()),
    ],
)
def test_http_identity_from_etag_last_modified_or_content(
    gobo: TenantRecord, http: ExtractServer, token: str, headers: dict[str, str], identity: str
) -> None:
    http.body = b"ATENA_NO\n"
    http.headers = headers
    with adapter_for(http_config(http.url), gobo) as adapter:
        (obj,) = adapter.list_objects()
    assert (obj.key, obj.name, obj.etag, obj.size) == (http.url, "extract", identity, 9)


def test_http_lists_nothing_when_the_file_name_does_not_match(
    gobo: TenantRecord, http: ExtractServer, token: str
) -> None:
    http.body = b"x"
    http.headers = {"Content-Disposition": "attachment; filename*=UTF-8''%E4%BD%8F%E6%B0%91.csv"}  # 住民.csv
    with adapter_for(http_config(http.url, pattern=r"\.tsv$"), gobo) as adapter:
        assert adapter.list_objects() == []
    with adapter_for(http_config(http.url, pattern=r"^住民\.csv$"), gobo) as adapter:
        assert [o.name for o in adapter.list_objects()] == ["住民.csv"]


def test_http_fetch_streams_and_refuses_changed_content(
    gobo: TenantRecord, http: ExtractServer, token: str, tmp_path: Path
) -> None:
    http.body = os.urandom(1024 * 1024) * 12  # 12 MiB, no validators: identified by its hash
    with adapter_for(http_config(http.url), gobo) as adapter:
        (obj,) = adapter.list_objects()
        path = fetch_in_small_memory(adapter, obj, tmp_path)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == obj.etag.removeprefix("sha256:")
        http.body = b"a newer extract"
        with pytest.raises(AdapterError, match="置き換えられました"):
            adapter.fetch(obj, tmp_path)
    assert list(tmp_path.iterdir()) == [path]
