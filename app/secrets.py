"""Resolve secret references (``env:NAME``) from tenant configuration into values.

Tenant files hold references only (``tenants/README.md``), so a secret can rotate without a
configuration change and never lands in git or ``control.tenants``. Values are returned to the
caller and never logged; error messages name the reference, not the value. Only ``env:`` is
implemented; the configuration schema also reserves ``aws-sm:`` and ``file:``, which fail here with
a clear message until an environment needs them.
"""

from __future__ import annotations

import os
import re

SUPPORTED_SCHEMES = ("env",)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretError(Exception):
    """A reference that cannot be resolved; the message is Japanese and never contains a value."""


def resolve(ref: str) -> str:
    """Return the secret value behind ``ref`` (e.g. ``env:YAMAGUCHI_CORE_API_TOKEN``)."""
    scheme, sep, name = ref.partition(":")
    if not sep or not scheme or not name:
        raise SecretError(
            f"秘密情報の参照「{ref}」は「方式:名前」（例: env:API_TOKEN）の形式で指定してください"
        )
    if scheme not in SUPPORTED_SCHEMES:
        raise SecretError(
            f"秘密情報の参照方式「{scheme}」には対応していません（参照 {ref}、使用できる方式: "
            f"{', '.join(SUPPORTED_SCHEMES)}）"
        )
    if not _ENV_NAME.fullmatch(name):
        raise SecretError(f"環境変数名「{name}」が正しくありません（参照 {ref}）")
    value = os.environ.get(name)
    if value is None:
        raise SecretError(f"環境変数 {name} が設定されていません（参照 {ref}）")
    if not value:
        raise SecretError(f"環境変数 {name} が空です（参照 {ref}）")
    return value
