"""Per-address rate limits for public pages, counted in Redis (fixed windows).

If Redis cannot be reached the request is refused (fail closed): a public form must not become
unlimited because a dependency is down.
"""

from __future__ import annotations

from flask import abort, g, request
from redis.exceptions import RedisError

from app.kv import get_redis


def limit_per_address(name: str, *, per_minute: int, per_hour: int) -> None:
    address = request.remote_addr or "unknown"
    tenant = g.tenant.id if g.get("tenant") is not None else "-"
    try:
        redis = get_redis()
        for window, limit in ((60, per_minute), (3600, per_hour)):
            key = f"limit:{name}:{tenant}:{address}:{window}"
            count = redis.incr(key)
            if count == 1:
                redis.expire(key, window)
            if int(count) > limit:
                abort(429)
    except RedisError:
        abort(503)
