"""Card reads reach the service: device registration by the administrator, the agent's POST with its
token (idempotent), revocation, other cities' tokens, and the real agent through pcscd end to end."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.counter.models import CardRead
from tests.agent import pcscd_harness
from tests.agent.card_sim import SimulatedCard, VirtualIcc
from tests.agent.test_e2e_pcscd import AgentProcess
from tests.browser_support import LiveServer
from tests.conftest import csrf_token, login, make_staff, tenant_session

TENANT = "gobo"
READ = {"name": "御坊 一郎", "address": "和歌山県御坊市薗350番地", "birth": "1980-04-02", "sex": "1",
        "outside_jis0208": False, "reader": "Virtual PCD 00 00", "read_at": "2026-11-21T10:00:00+09:00"}  # fmt: skip


def admin(app: Flask, tenant: str = TENANT) -> FlaskClient:
    login_id = f"a{uuid.uuid4().hex[:8]}"
    make_staff(tenant, login_id, groups=("管理者",))
    client = app.test_client()
    login(client, tenant, login_id)
    return client


def register(client: FlaskClient, name: str = "市民課 3番", counter: str = "shiyakusho/shimin") -> str:
    page = f"/{TENANT}/admin/card-readers"
    response = client.post(
        page, data={"csrf_token": csrf_token(client, page), "name": name, "counter": counter}
    )
    match = re.search(r'<code class="secret">(mdr_[^<]+)</code>', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[-2000:]
    return match.group(1)


def reads() -> int:
    with tenant_session(TENANT) as session:
        return int(session.scalar(select(func.count()).select_from(CardRead)) or 0)


def test_the_agent_posts_with_its_device_token(app: Flask, committed: object) -> None:
    client = admin(app)
    token = register(client)
    assert token not in client.get(f"/{TENANT}/admin/card-readers").get_data(as_text=True)  # shown once
    agent = app.test_client()
    url = f"/api/v1/{TENANT}/card-reads"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    created = agent.post(url, json=READ, headers=headers)
    assert created.status_code == 201
    again = agent.post(url, json=READ, headers=headers)  # the agent's retry after a timeout
    assert again.get_json()["id"] == created.get_json()["id"]
    assert reads() == 1

    bad = agent.post(url, json={**READ, "birth": "1980/04/02"}, headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 422
    assert "YYYY-MM-DD" in bad.get_json()["message"]
    assert agent.post(url, data="not json", headers={"Authorization": f"Bearer {token}"}).status_code == 422

    unknown = agent.post(url, json=READ, headers={"Authorization": "Bearer mdr_nonsense"})
    anonymous = agent.post(url, json={"garbage": True})
    assert unknown.status_code == anonymous.status_code == 401
    assert unknown.get_json() == anonymous.get_json()  # the body is not even read without a device
    other_city = agent.post(
        "/api/v1/osaka/card-reads", json=READ, headers={"Authorization": f"Bearer {token}"}
    )
    assert other_city.status_code == 401
    assert other_city.get_json() == unknown.get_json()  # indistinguishable from an unknown token

    page = f"/{TENANT}/admin/card-readers"
    listing = client.get(page).get_data(as_text=True)
    reader_id = re.search(r'name="reader_id" value="(\d+)"', listing)
    assert reader_id
    client.post(
        page,
        data={"csrf_token": csrf_token(client, page), "action": "revoke", "reader_id": reader_id.group(1)},
    )
    assert agent.post(url, json=READ, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert reads() == 0  # a revoked reader's pending reads are gone with it


def test_a_clerk_cannot_register_devices(app: Flask, committed: object) -> None:
    login_id = f"c{uuid.uuid4().hex[:8]}"
    make_staff(TENANT, login_id)
    clerk = app.test_client()
    login(clerk, TENANT, login_id)
    assert clerk.get(f"/{TENANT}/admin/card-readers").status_code == 403
    osaka_admin = admin(app, "osaka")
    assert osaka_admin.get(f"/{TENANT}/admin/card-readers").status_code == 404


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pcscd_harness.Pcscd]:
    try:
        instance = pcscd_harness.start(tmp_path_factory.mktemp("pcscd-service"))
    except pcscd_harness.CannotStart as exc:
        pytest.fail(f"pcscd cannot be started: {exc}")
    try:
        yield instance
    finally:
        instance.stop()


def test_the_real_agent_reads_a_card_into_the_service(
    app: Flask, committed: object, live_server: LiveServer, pcscd: pcscd_harness.Pcscd, tmp_path: Path
) -> None:
    token = register(admin(app))
    card = SimulatedCard(
        name="𠮷田 花子", address="和歌山県御坊市御坊100番地", birth="19840229", sex="2", pin="2580"
    )
    icc = VirtualIcc(card, pcscd.port)
    icc.insert()
    try:
        agent = AgentProcess(pcscd, live_server, tmp_path, "2580\n", tenant=TENANT, token=token)
        agent.wait_for("カードをお取りください。")
    finally:
        icc.remove()
    code, err = agent.finish()
    assert code == 0, f"{agent.out}\n{err}"
    assert "送信しました（読取ID:" in agent.out
    with tenant_session(TENANT) as session:
        (read,) = session.scalars(select(CardRead))
        assert read.name == "𠮷田 花子"
        assert read.outside_jis0208
        assert str(read.birth) == "1984-02-29"
