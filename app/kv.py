"""Redis connections (jobs, sessions, rate limits), one client per URL per process.

redis-py's pool notices a fork by pid and reconnects, so forked workers need nothing special.
"""

from __future__ import annotations

from redis import Redis

from app.config import get_settings

_clients: dict[str, Redis] = {}


def get_redis(url: str | None = None) -> Redis:
    url = url or get_settings().redis_url
    client = _clients.get(url)
    if client is None:
        client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
        _clients[url] = client
    return client
