"""Server-side sessions in Redis, revocable one by one or per user.

The cookie carries a random id; Redis keys hold only its SHA-256, so a copy of Redis yields no usable
cookies. Each user has an index of their sessions, so disabling a user ends them all at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass

from app.config import get_settings
from app.identity.principal import Principal
from app.kv import get_redis

PREFIX = "madoguchi:session:"
USER_INDEX = "madoguchi:user-sessions:"


@dataclass(frozen=True)
class StoredSession:
    kind: str
    tenant_id: str | None
    subject_id: str
    display_name: str
    created_at: float


def _key(session_id: str) -> str:
    return PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def _index(tenant_id: str | None, subject_id: str) -> str:
    return f"{USER_INDEX}{tenant_id or '-'}:{subject_id}"


def create(principal: Principal) -> str:
    session_id = secrets.token_urlsafe(32)
    lifetime = get_settings().session_lifetime_minutes * 60
    data = StoredSession(
        principal.kind, principal.tenant_id, principal.subject_id, principal.display_name, time.time()
    )
    r = get_redis()
    pipe = r.pipeline()
    pipe.set(_key(session_id), json.dumps(asdict(data)), ex=lifetime)
    pipe.sadd(_index(principal.tenant_id, principal.subject_id), _key(session_id))
    pipe.expire(_index(principal.tenant_id, principal.subject_id), lifetime)
    pipe.execute()
    return session_id


def load(session_id: str) -> Principal | None:
    raw = get_redis().get(_key(session_id))
    if raw is None:
        return None
    data = StoredSession(**json.loads(raw))
    return Principal(data.kind, data.tenant_id, data.subject_id, data.display_name, session_id)


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
