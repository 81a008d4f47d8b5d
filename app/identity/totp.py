"""TOTP (RFC 6238, pyotp) with reuse prevention.

pyotp's ``verify`` accepts the same code again for its whole window; we store the last accepted
time step per account and accept only later steps, so a code read over a shoulder or replayed is
refused. One step of clock drift either way is allowed.

Secrets are stored encrypted (Fernet) with a key derived from the application secret, so a copy of
the database alone does not yield working second factors. Rotating ``MADOGUCHI_SECRET_KEY`` therefore
requires re-enrolling TOTP (documented in the manual).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from functools import lru_cache
from typing import Protocol
from urllib.parse import quote

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.config import get_settings

DIGITS = 6
INTERVAL = 30


class TotpAccount(Protocol):
    totp_secret: str | None
    totp_last_step: int | None


def application_secret() -> bytes:
    settings = get_settings()
    value = settings.secret_key.get_secret_value()
    if not value:
        if settings.env == "production":
            raise RuntimeError("MADOGUCHI_SECRET_KEY must be set in production")
        value = "development-only-secret"
    return value.encode()


@lru_cache(maxsize=4)
def _fernet(secret: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"madoguchi totp secrets").derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def new_secret() -> str:
    return pyotp.random_base32()


def seal(secret: str) -> str:
    return _fernet(application_secret()).encrypt(secret.encode()).decode()


def unseal(sealed: str) -> str | None:
    try:
        return _fernet(application_secret()).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=quote(account, safe=""), issuer_name=issuer
    )


def current_step(now: dt.datetime | None = None) -> int:
    return pyotp.TOTP(pyotp.random_base32()).timecode(now or dt.datetime.now(dt.UTC))


def matching_step(
    secret: str, code: str, last_step: int | None, now: dt.datetime | None = None
) -> int | None:
    """The time step ``code`` belongs to (now ±1), if it is later than ``last_step``."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    step = totp.timecode(now or dt.datetime.now(dt.UTC))
    for candidate in (step - 1, step, step + 1):
        if last_step is not None and candidate <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def verify(account: TotpAccount, code: str, now: dt.datetime | None = None) -> bool:
    """Check a code against the account's enrolled secret; on success remember its step."""
    if not account.totp_secret:
        return False
    secret = unseal(account.totp_secret)
    if secret is None:
        return False
    step = matching_step(secret, code, account.totp_last_step, now)
    if step is None:
        return False
    account.totp_last_step = step
    return True
