"""Ed25519 signatures on seals and archive manifests.

The key comes from the secret reference ``MADOGUCHI_AUDIT_SEAL_KEY_REF`` (``env:NAME``; production
reads it from the secret store). The secret is any string of at least 32 characters; the Ed25519
seed is its SHA-256, so a random password-style value is enough. A signed document carries
``alg``, ``key_id`` (the first 16 hex digits of SHA-256 over the raw public key) and ``sig``
(base64 of the signature over the canonical encoding of every other field,
``app.audit.canonical``). Anybody holding the public key can verify; after a key rotation the old
public keys go to ``MADOGUCHI_AUDIT_SEAL_PUBLIC_KEYS`` so old seals still verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.audit.canonical import canonical_bytes
from app.config import get_settings
from app.secrets import SecretError, resolve

ALG = "Ed25519"
MIN_SECRET_CHARS = 32


class SigningKeyError(Exception):
    """No usable seal key; the message is Japanese and names the reference, never the value."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SealKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, document: Mapping[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in document.items() if k != "sig"}
        body.update(alg=ALG, key_id=self.key_id)
        signature = self.private.sign(canonical_bytes(body))
        return {**body, "sig": base64.b64encode(signature).decode("ascii")}


def key_from_secret(secret: str) -> SealKey:
    if len(secret) < MIN_SECRET_CHARS:
        raise SigningKeyError(f"封印用の鍵は{MIN_SECRET_CHARS}文字以上にしてください")
    return SealKey(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(secret.encode("utf-8")).digest()))


@lru_cache(maxsize=4)
def _key_for(ref: str) -> SealKey:
    try:
        return key_from_secret(resolve(ref))
    except SecretError as exc:
        raise SigningKeyError(f"封印用の鍵を読み込めません: {exc}") from exc


def signing_key() -> SealKey:
    return _key_for(get_settings().audit_seal_key_ref)


def public_keys() -> dict[str, Ed25519PublicKey]:
    """Every key that may verify: the current seal key's and the listed older public keys."""
    keys: dict[str, Ed25519PublicKey] = {}
    for item in get_settings().audit_seal_public_keys.split(","):
        if item.strip():
            try:
                public = Ed25519PublicKey.from_public_bytes(base64.b64decode(item.strip(), validate=True))
            except (ValueError, binascii.Error) as exc:
                raise SigningKeyError("MADOGUCHI_AUDIT_SEAL_PUBLIC_KEYS に読めない公開鍵があります") from exc
            keys[key_id(public)] = public
    try:
        current = signing_key()
    except SigningKeyError:
        if not keys:
            raise
    else:  # an auditor may hold the public keys only
        keys[current.key_id] = current.public
    return keys


def public_key_text(key: SealKey) -> str:
    """The public key as MADOGUCHI_AUDIT_SEAL_PUBLIC_KEYS lists it (base64 of the raw 32 bytes)."""
    return base64.b64encode(key.public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def verify_document(document: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None when the signature is good, else why not (Japanese)."""
    if document.get("alg") != ALG:
        return f"署名方式が {ALG} ではありません"
    public = keys.get(str(document.get("key_id")))
    if public is None:
        return f"鍵 {document.get('key_id')} は登録されていません"
    try:
        signature = base64.b64decode(str(document.get("sig", "")), validate=True)
        body = {k: v for k, v in document.items() if k != "sig"}
        public.verify(signature, canonical_bytes(body))
    except (InvalidSignature, ValueError, binascii.Error):
        return "署名が一致しません"
    return None
