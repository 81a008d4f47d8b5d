"""Server-side sessions in Redis, revocable one by one or per user, with idle and absolute timeouts.

The cookie carries a random id; Redis keys hold only its SHA-256, so a copy of Redis yields no usable
cookies. Each user has an index of their sessions, so disabling a user ends them all at once.

A session ends when it has not been used for ``idle_seconds`` (the key's TTL, renewed on use) or
``absolute_seconds`` after sign-in, whichever comes first; both come from the tenant's
``security.yaml`` at sign-in.

Pending logins (password accepted, TOTP code still to come) are kept apart under their own prefix
with a five-minute lifetime; they are never sessions.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from app.config import get_settings
from app.identity.principal import Principal
from app.kv import get_redis

PREFIX = "madoguchi:session:"
USER_INDEX = "madoguchi:user-sessions:"
PENDING = "madoguchi:pending-login:"
PENDING_SECONDS = 300
# Renewing the idle timer is a write; skip it when the last renewal is this recent.
TOUCH_EVERY_SECONDS = 15


@dataclass(frozen=True)
class StoredSession:
    kind: str
    tenant_id: str | None
    subject_id: str
    display_name: str
    created_at: float
    last_seen: float = 0.0
    idle_seconds: int = 0
    absolute_seconds: int = 0
    auth_method: str = "password"


def _key(session_id: str) -> str:
    return PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def _index(tenant_id: str | None, subject_id: str) -> str:
    return f"{USER_INDEX}{tenant_id or '-'}:{subject_id}"


def create(
    principal: Principal,
    *,
    idle_seconds: int | None = None,
    absolute_seconds: int | None = None,
    auth_method: str = "password",
) -> str:
    session_id = secrets.token_urlsafe(32)
    absolute = absolute_seconds or get_settings().session_lifetime_minutes * 60
    idle = min(idle_seconds or absolute, absolute)
    now = time.time()
    data = StoredSession(
        principal.kind,
        principal.tenant_id,
        principal.subject_id,
        principal.display_name,
        now,
        now,
        idle,
        absolute,
        auth_method,
    )
    r = get_redis()
    pipe = r.pipeline()
    pipe.set(_key(session_id), json.dumps(asdict(data)), ex=idle)
    pipe.sadd(_index(principal.tenant_id, principal.subject_id), _key(session_id))
    pipe.expire(_index(principal.tenant_id, principal.subject_id), absolute)
    pipe.execute()
    return session_id


def load(session_id: str) -> Principal | None:
    r = get_redis()
    key = _key(session_id)
    raw = r.get(key)
    if raw is None:
        return None
    data = StoredSession(**json.loads(raw))
    now = time.time()
    absolute_end = data.created_at + (data.absolute_seconds or get_settings().session_lifetime_minutes * 60)
    idle = data.idle_seconds or int(absolute_end - data.created_at)
    if now >= absolute_end or (data.last_seen and now - data.last_seen >= idle):
        revoke(session_id)
        return None
    if now - data.last_seen >= TOUCH_EVERY_SECONDS:
        renewed = StoredSession(**{**asdict(data), "last_seen": now})
        ttl = max(1, int(min(idle, absolute_end - now)))
        r.set(key, json.dumps(asdict(renewed)), ex=ttl, xx=True)
    return Principal(
        data.kind,
        data.tenant_id,
        data.subject_id,
        data.display_name,
        session_id,
        auth_method=data.auth_method,
    )


def revoke(session_id: str) -> None:
    raw = get_redis().get(_key(session_id))
    pipe = get_redis().pipeline()
    pipe.delete(_key(session_id))
    if raw is not None:
        data = json.loads(raw)
        pipe.srem(_index(data["tenant_id"], data["subject_id"]), _key(session_id))
    pipe.execute()


def revoke_all(tenant_id: str | None, subject_id: str) -> int:
    """End every session of one user; returns how many there were."""
    r = get_redis()
    index = _index(tenant_id, subject_id)
    keys = [k.decode() if isinstance(k, bytes) else str(k) for k in r.smembers(index)]
    pipe = r.pipeline()
    for key in keys:
        pipe.delete(key)
    pipe.delete(index)
    pipe.execute()
    return len(keys)


# --- pending logins (between password and TOTP) -------------------------------------------------


@dataclass
class PendingLogin:
    kind: str  # "staff" | "provider"
    tenant_id: str | None
    account_id: int
    login: str
    next_url: str | None = None
    enroll_secret: str | None = None  # encrypted; set while the account enrols its first TOTP
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _pending_key(token: str) -> str:
    return PENDING + hashlib.sha256(token.encode()).hexdigest()


def start_pending(pending: PendingLogin) -> str:
    token = secrets.token_urlsafe(32)
    get_redis().set(_pending_key(token), json.dumps(asdict(pending)), ex=PENDING_SECONDS)
    return token


def load_pending(token: str | None) -> PendingLogin | None:
    if not token:
        return None
    raw = get_redis().get(_pending_key(token))
    return PendingLogin(**json.loads(raw)) if raw is not None else None


def save_pending(token: str, pending: PendingLogin) -> None:
    get_redis().set(_pending_key(token), json.dumps(asdict(pending)), ex=PENDING_SECONDS, xx=True)


def drop_pending(token: str | None) -> None:
    if token:
        get_redis().delete(_pending_key(token))
