"""Secret references from tenant configuration resolve to values without ever echoing a value."""

from __future__ import annotations

import pytest

from app.secrets import SecretError, resolve


def test_env_reference_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_TEST_TOKEN", "s3cr3t-value")
    assert resolve("env:MADOGUCHI_TEST_TOKEN") == "s3cr3t-value"


def test_missing_and_empty_variables_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MADOGUCHI_TEST_TOKEN", raising=False)
    with pytest.raises(SecretError, match="環境変数 MADOGUCHI_TEST_TOKEN が設定されていません"):
        resolve("env:MADOGUCHI_TEST_TOKEN")
    monkeypatch.setenv("MADOGUCHI_TEST_TOKEN", "")
    with pytest.raises(SecretError, match="空です"):
        resolve("env:MADOGUCHI_TEST_TOKEN")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("aws-sm:prod/token", "方式「aws-sm」には対応していません"),
        ("vault:x", "方式「vault」には対応していません"),
        ("MADOGUCHI_TEST_TOKEN", "「方式:名前」"),
        ("env:", "「方式:名前」"),
        ("env:not/a-name", "環境変数名「not/a-name」が正しくありません"),
    ],
)
def test_unusable_references_are_explained(ref: str, expected: str) -> None:
    with pytest.raises(SecretError, match=expected):
        resolve(ref)


def test_errors_never_contain_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_TEST_TOKEN", "s3cr3t-value")
    with pytest.raises(SecretError) as failure:
        resolve("file:MADOGUCHI_TEST_TOKEN")
    assert "s3cr3t-value" not in str(failure.value)
