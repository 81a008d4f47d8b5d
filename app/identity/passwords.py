"""Password hashing with argon2id (pwdlib on argon2-cffi).

Parameters (``MADOGUCHI_ARGON2_*``; defaults chosen in docs/adr/0004-identity-and-permissions.md):
time cost 2, memory 64 MiB, parallelism 1. That is 3.4 times the memory of OWASP's minimum profile
(19 MiB, t=2) and about 0.1-0.15 s per check on one core of the 2-core machines we run on; the
argon2-cffi default (t=3, 64 MiB, p=4) took twice as long here because four lanes share two cores.
Hashes made with other parameters are replaced at the next successful login.
"""

from __future__ import annotations

from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.config import get_settings


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    s = get_settings()
    return PasswordHash(
        (
            Argon2Hasher(
                time_cost=s.argon2_time_cost,
                memory_cost=s.argon2_memory_kib,
                parallelism=s.argon2_parallelism,
            ),
        )
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new hash if the stored one uses outdated parameters)."""
    if not password_hash:
        # Spend the same time as a real check so a missing account is not observable by timing.
        _hasher().verify(password, _dummy_hash())
        return False, None
    return _hasher().verify_and_update(password, password_hash)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("not a password of anyone")
