"""``madoguchi linkage check`` and ``madoguchi linkage poll`` as an operator runs them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from app.linkage.models import LinkageObject
from tests.conftest import madoguchi, tenant_session
from tests.linkage_support import Bucket, bucket

ZEN = "GOBO_JUKI_ZEN_20260401.csv"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return madoguchi("linkage", *args)


@pytest.fixture
def gobo_bucket() -> Iterator[Bucket]:
    with bucket("gobo-madoguchi-linkage") as made:
        yield made


def test_check_prints_a_table_and_exits_0_when_everything_passes(
    provisioned: object, gobo_bucket: Bucket
) -> None:
    gobo_bucket.put(f"juki/{ZEN}", b"ATENA_NO\n")
    done = cli("check", "gobo", "--adapter", "cokas-juki")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["OK", "cokas-juki", "settings"],
        ["OK", "cokas-juki", "endpoint"],
        ["OK", "cokas-juki", "credentials"],
        ["OK", "cokas-juki", "bucket"],
        ["OK", "cokas-juki", "prefix"],
    ]
    assert ZEN in lines[-1]


def test_check_exits_1_and_names_the_failure(provisioned: object) -> None:
    done = cli("check", "gobo", "--json")
    assert done.returncode == 1
    rows = json.loads(done.stdout)
    failed = [(r["adapter"], r["check"], r["message"]) for r in rows if not r["ok"]]
    assert failed == [
        ("cokas-juki", "bucket", "バケット「gobo-madoguchi-linkage」が見つかりません"),
        ("cokas-shikaku", "bucket", "バケット「gobo-madoguchi-linkage」が見つかりません"),
    ]


def test_check_rejects_an_unknown_adapter(provisioned: object) -> None:
    done = cli("check", "osaka", "--adapter", "cokas-juki")
    assert done.returncode == 1
    assert "アダプタ「cokas-juki」はありません（設定済み: juki-extract、shikaku-extract）" in done.stderr


def test_poll_reports_what_is_already_taken_and_what_is_new(committed: object, gobo_bucket: Bucket) -> None:
    etag = gobo_bucket.put(f"juki/{ZEN}", b"ATENA_NO\n")
    with tenant_session("gobo") as session:  # imported by an earlier poll
        session.add(
            LinkageObject(adapter="cokas-juki", object_key=f"juki/{ZEN}", etag=etag, status="imported")
        )
        session.commit()
    done = cli("poll", "gobo", "--adapter", "cokas-juki", "--json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert (result["tenant"], result["adapter"], result["listed"], result["already_taken"]) == (
        "gobo",
        "cokas-juki",
        1,
        1,
    )
    assert result["objects"] == []
    assert result["ok"]
    text = cli("poll", "gobo", "--adapter", "cokas-juki")
    assert (
        text.stdout.strip()
        == "gobo cokas-juki: 一致 1 件、今回 0 件、取込済み 1 件、新しいファイルはありません"
    )


def test_poll_exits_1_when_the_listing_fails(provisioned: object) -> None:
    done = cli("poll", "gobo", "--adapter", "cokas-shikaku")
    assert done.returncode == 1
    assert "一覧を取得できません: バケット「gobo-madoguchi-linkage」が見つかりません" in done.stdout
