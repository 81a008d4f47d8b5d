"""Card reader devices, the reads they post, and matching a card to the resident record."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import Actor
from app.audit.models import AuditEntry
from app.audit.service import actor_var
from app.counter import cards
from app.counter.models import CardRead
from app.counter.service import CounterError
from app.residents.models import Resident
from app.residents.normalize import normalize_address, normalize_kana, normalize_name, variant_key
from app.tenancy.service import registry
from tests.conftest import tenant_session

TENANT = "gobo"


@pytest.fixture
def session(db: None) -> Any:
    token = actor_var.set(Actor("staff", "1", "管理 一郎", "admin-pc"))
    with tenant_session(TENANT) as s:
        yield s
    actor_var.reset(token)


def config() -> Any:
    record = registry.get(TENANT)
    assert record is not None
    return registry.config(record)


def add_resident(session: Session, atena: str, name: str, birth: str, address: str, sex: int = 1) -> Resident:
    cfg = config()
    resident = Resident(
        atena_no=atena, household_no="H" + atena, household_order=1, name=name,
        name_search=normalize_name(name, variant_key(cfg.residents.name_variants)),
        kana="ヨシダ タロウ", kana_search=normalize_kana("ヨシダ タロウ"), kana_confirmed=True,
        birth={"text": birth, "iso": birth}, birth_date=dt.date.fromisoformat(birth), sex=sex, relation="世帯主",
        address=address, address_search=normalize_address(address, (cfg.tenant.prefecture, cfg.tenant.name)),
        status="住民", kind="日本人", row_hash=0, last_batch_id=0,
    )  # fmt: skip
    session.add(resident)
    session.flush()
    return resident


def face(**overrides: Any) -> cards.CardFace:
    payload = {"name": "𠮷田　太郎", "address": "和歌山県御坊市御坊100番地 グランドハイツ101", "birth": "1980-01-02",
               "sex": "1", "read_at": "2026-11-21T10:00:00+09:00", **overrides}  # fmt: skip
    return cards.parse_card_face(payload)


def test_a_reader_token_is_shown_once_stored_hashed_and_revocable(session: Session) -> None:
    reader, token = cards.register_reader(
        session, config(), name="市民課 1番", office_id="shiyakusho", counter_id="shimin", created_by="1"
    )
    assert token.startswith("mdr_")
    assert len(token) > 40
    assert token not in reader.token_hash
    assert reader.token_prefix == token[:10]
    assert cards.authenticate_reader(session, token) is reader
    assert reader.last_seen_at is not None
    assert cards.authenticate_reader(session, token + "x") is None
    assert cards.authenticate_reader(session, "Bearer nonsense") is None
    cards.receive_read(session, reader, face())
    cards.revoke_reader(session, reader.id, "1")
    assert cards.authenticate_reader(session, token) is None
    assert session.scalars(select(CardRead)).first() is None  # its pending reads go with it
    with pytest.raises(CounterError, match="窓口「nowhere」"):
        cards.register_reader(
            session, config(), name="x", office_id="shiyakusho", counter_id="nowhere", created_by="1"
        )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"address": ""}, "address"),
        ({"name": "太郎\x00"}, "name"),
        ({"birth": "1980/01/02"}, "birth"),
        ({"sex": "3"}, "sex"),
        ({"read_at": "2026-11-21T10:00:00"}, "read_at"),
    ],
)
def test_bad_reads_name_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(CounterError) as caught:
        face(**payload)
    assert caught.value.field == field


def test_the_clerk_takes_the_newest_read_of_their_counter(session: Session) -> None:
    mine, _ = cards.register_reader(session, config(), name="市民課", office_id="shiyakusho", counter_id="shimin",
                                    created_by="1")  # fmt: skip
    other, _ = cards.register_reader(session, config(), name="税務課", office_id="shiyakusho", counter_id="zeimu",
                                     created_by="1")  # fmt: skip
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    first = cards.receive_read(session, mine, face())
    cards.receive_read(session, other, face(name="別人　花子"))
    latest = cards.latest_read(session, "shiyakusho", "shimin", since)
    assert latest is not None
    assert latest.id == first.id
    cards.claim(session, first.id, case_id=10)
    assert cards.latest_read(session, "shiyakusho", "shimin", since) is None
    with pytest.raises(CounterError, match="別の案件"):
        cards.claim(session, first.id, case_id=11)
    actions = list(session.scalars(select(AuditEntry.action)))
    assert actions.count("card.read") == 2
    details = [e.details for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "card.read"))]
    assert all("太郎" not in str(d) for d in details)  # the audit trail says a read happened, not its content


def test_matching_on_name_birth_and_address_never_guesses(session: Session) -> None:
    exact = add_resident(session, "000000000001", "𠮷田\u3000太郎", "1980-01-02", "和歌山県御坊市御坊100番地")
    moved = add_resident(
        session, "000000000002", "𠮷田\u3000太郎", "1980-01-02", "和歌山県御坊市湯川町200番地"
    )
    add_resident(session, "000000000003", "山田\u3000次郎", "1980-01-02", "和歌山県御坊市薗1番地")
    reader, _ = cards.register_reader(session, config(), name="r", office_id="shiyakusho", counter_id=None,
                                      created_by="1")  # fmt: skip
    read = cards.receive_read(session, reader, face())
    matches = cards.match(session, config(), read)
    assert [(m.resident.id, m.level) for m in matches] == [(exact.id, "一致"), (moved.id, "候補")]
    assert matches[1].reasons == ["住所が異なります（転入前・転居前の可能性）"]

    # 髙 on the card, 高 in the records: the tenant's variant table folds them.
    takahashi = add_resident(session, "000000000004", "高橋\u3000一", "1990-03-03", "和歌山県御坊市御坊5番地")
    read = cards.receive_read(
        session, reader, face(name="髙橋 一", birth="1990-03-03", address="和歌山県御坊市御坊5番地")
    )
    assert [(m.resident.id, m.level) for m in cards.match(session, config(), read)] == [
        (takahashi.id, "一致")
    ]

    # A character the record stores differently: only a candidate, with the reason shown.
    read = cards.receive_read(
        session, reader, face(name="𠮷田　大郎", outside_jis0208=True, address="和歌山県御坊市御坊100番地")
    )
    (candidate,) = cards.match(session, config(), read)
    assert candidate.level == "候補"
    assert candidate.reasons == ["氏名が異なります（券面の文字が JIS 外の可能性）"]
    read = cards.receive_read(session, reader, face(birth=None))
    assert cards.match(session, config(), read) == []
