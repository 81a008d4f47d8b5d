"""Issue 5 figures: login latency with the chosen argon2id parameters.

A full password login (POST /gobo/login: rate-limit check on Redis, account row lock, argon2id
verify, operation-log insert, session in Redis) against a bare Flask endpoint in the same process,
and argon2id verify alone for the chosen parameters and two reference profiles (argon2-cffi's
default and OWASP's minimum), so the choice in ADR 0004 can be re-checked on any machine.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import delete, select

from bench.common import percentile, save

LOGIN = "bench-login"
PASSWORD = "bench-password-1234"  # noqa: S105 - benchmark account on the benchmark database


def _timings(fn: Any, n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(samples, 0.5), 1), "p95_ms": round(percentile(samples, 0.95), 1)}


def run(quick: bool = False) -> None:
    from argon2 import PasswordHasher
    from flask import Flask

    from app import create_app
    from app.config import get_settings
    from app.db.session import session_scope
    from app.identity.models import StaffUser
    from app.identity.service import create_user
    from app.tenancy.provisioning import sync
    from app.tenancy.service import registry

    n = 10 if quick else 50
    settings = get_settings()
    chosen = (settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    sync()
    record = registry.get("gobo")
    assert record is not None
    with session_scope(record.binding) as session:
        session.execute(delete(StaffUser).where(StaffUser.login == LOGIN))
        create_user(session, LOGIN, "ベンチ ログイン", PASSWORD, groups=("窓口職員",))

    app = create_app()
    client = app.test_client()
    page = client.get("/gobo/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]

    def login() -> None:
        response = client.post(
            "/gobo/login", data={"login": LOGIN, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302, response.status_code

    bare_app = Flask("bare")
    bare_app.add_url_rule("/ping", "ping", lambda: "ok", methods=["POST"])
    bare_client = bare_app.test_client()
    logins = _timings(login, n)
    bare = _timings(lambda: bare_client.post("/ping"), n * 10, warmup=20)

    profiles = {
        "chosen": chosen,
        "argon2-cffi default": (3, 65536, 4),
        "OWASP minimum": (2, 19456, 1),
    }
    verify: dict[str, dict[str, Any]] = {}
    for name, (t, m, p) in profiles.items():
        hasher = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p)
        digest = hasher.hash(PASSWORD)
        verify[name] = {
            "params": f"t={t}, m={m // 1024} MiB, p={p}",
            **_summary(_timings(lambda h=hasher, d=digest: h.verify(d, PASSWORD), n)),
        }

    with session_scope(record.binding) as session:
        session.execute(delete(StaffUser).where(StaffUser.login == LOGIN))
        assert session.scalar(select(StaffUser.id).where(StaffUser.login == LOGIN)) is None

    figures = {
        "argon2id": verify["chosen"]["params"],
        "login": _summary(logins),
        "bare_endpoint": _summary(bare),
        "verify": verify,
        "login_minus_verify_p50_ms": round(percentile(logins, 0.5) - verify["chosen"]["p50_ms"], 1),
    }
    rows = "\n".join(
        f"| argon2id verify alone, {k} ({v['params']}), p50 / p95 | {v['p50_ms']} / {v['p95_ms']} ms | |"
        for k, v in verify.items()
    )
    md = f"""## Login latency (issue 5)

Full password login through the app (`POST /gobo/login`: rate-limit check on Redis, account row
lock, argon2id verify, operation-log insert, Redis session), {n} logins after warm-up; baseline a bare
Flask endpoint in the same process. Chosen parameters: argon2id {figures["argon2id"]}
(ADR 0004).

| figure | result | goal |
|---|---|---|
| password login, p50 / p95 | {figures["login"]["p50_ms"]} / {figures["login"]["p95_ms"]} ms | p95 < 500 ms |
| bare Flask endpoint (baseline), p50 / p95 | {figures["bare_endpoint"]["p50_ms"]} / {figures["bare_endpoint"]["p95_ms"]} ms | |
| login without the argon2 verify, p50 | {figures["login_minus_verify_p50_ms"]} ms | |
{rows}
"""
    save("identity", figures, md)
    print(md)
