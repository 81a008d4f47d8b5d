"""Posting a read to a local HTTP server that records requests: contract, token errors, retries."""

from __future__ import annotations

import ast
import socket
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

import madoguchi_card_agent
from madoguchi_card_agent.card import CardFace
from madoguchi_card_agent.errors import DeviceTokenRejected, PostRejected, ServiceUnreachable
from madoguchi_card_agent.post import ReadPoster, build_payload

from .http_recorder import Recorder, recording_server

JST = timezone(timedelta(hours=9))
READ_AT = datetime(2025, 4, 1, 9, 12, 3, tzinfo=JST)
TOKEN = "dev-token-abc123"


def face(name: str = "𠮷田 花子") -> CardFace:
    return CardFace(
        name=name,
        address="和歌山県御坊市薗350番地",
        birth_yyyymmdd="19800401",
        birth=date(1980, 4, 1),
        sex="2",
        outside_jis0208_chars=("𠮷",) if "𠮷" in name else (),
    )


@pytest.fixture
def server() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def poster(url: str, sleeps: Sleeps | None = None, attempts: int = 4) -> ReadPoster:
    return ReadPoster(
        url, "gobo", TOKEN, attempts=attempts, sleep=sleeps if sleeps is not None else Sleeps(), timeout=2.0
    )


def test_201_posts_the_exact_contract(server: Recorder) -> None:
    server.answer((201, {"id": 42}))
    with poster(server.url + "/") as p:
        assert p.post(face(), "Virtual PCD 00 00", READ_AT) == "42"

    (req,) = server.requests
    assert req.path == "/api/v1/gobo/card-reads"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"] == "application/json"
    assert len(req.headers["idempotency-key"]) == 36
    assert req.json == {
        "name": "𠮷田 花子",
        "address": "和歌山県御坊市薗350番地",
        "birth": "1980-04-01",
        "sex": "2",
        "outside_jis0208": True,
        "reader": "Virtual PCD 00 00",
        "read_at": "2025-04-01T09:12:03+09:00",
    }
    assert "𠮷".encode() in req.body or b"\\ud842\\udfb7" in req.body  # UTF-8 or a JSON escape, never lossy


def test_payload_needs_an_offset() -> None:
    with pytest.raises(ValueError, match="offset"):
        build_payload(face(), "r", datetime(2025, 4, 1, 9, 0))


@pytest.mark.parametrize("status", [401, 403])
def test_token_refused_is_a_clear_japanese_message_without_retry(server: Recorder, status: int) -> None:
    server.answer((status, {"title": "invalid token"}))
    sleeps = Sleeps()
    with poster(server.url, sleeps) as p, pytest.raises(DeviceTokenRejected) as caught:
        p.post(face(), "r", READ_AT)
    assert len(server.requests) == 1
    assert sleeps == []
    message = caught.value.message_ja
    assert "デバイストークン" in message
    assert "無効" in message
    assert "失効" in message
    assert "管理者" in message
    assert "再発行" in message
    assert TOKEN not in str(caught.value)
    assert TOKEN not in message


def test_5xx_then_success_retries_with_backoff_and_one_idempotency_key(server: Recorder) -> None:
    server.answer((503, {"title": "unavailable"}), (500, b"oops"), (201, {"id": "r-7"}))
    sleeps = Sleeps()
    with poster(server.url, sleeps) as p:
        assert p.post(face(), "r", READ_AT) == "r-7"
    assert len(server.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert len({r.headers["idempotency-key"] for r in server.requests}) == 1
    assert len({r.body for r in server.requests}) == 1


def test_5xx_every_time_gives_up_with_a_message(server: Recorder) -> None:
    server.answer(*[(502, {})] * 4)
    sleeps = Sleeps()
    with poster(server.url, sleeps) as p, pytest.raises(ServiceUnreachable) as caught:
        p.post(face(), "r", READ_AT)
    assert len(server.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert "4回試行" in caught.value.message_ja
    assert "保存していません" in caught.value.message_ja


def test_network_error_retries_then_reports() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    with (
        poster(f"http://127.0.0.1:{port}", sleeps, attempts=3) as p,
        pytest.raises(ServiceUnreachable) as caught,
    ):
        p.post(face(), "r", READ_AT)
    assert sleeps == [0.5, 1.0]
    assert "ConnectError" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (422, {"title": "birth: not a date"}),
        (404, {"title": "no such tenant"}),
        (201, {"ok": 1}),
        (201, b"no json"),
    ],
)
def test_other_answers_are_rejected_without_retry(server: Recorder, status: int, body: object) -> None:
    server.answer((status, body))
    with poster(server.url) as p, pytest.raises(PostRejected):
        p.post(face(), "r", READ_AT)
    assert len(server.requests) == 1


def test_the_agent_writes_nothing_to_disk() -> None:
    """The read must live in memory only: the package opens files for reading its config and
    nothing else, and has no temp files, pickles or shelves."""
    forbidden_calls = {"write_text", "write_bytes", "mkstemp", "NamedTemporaryFile", "TemporaryFile", "dump"}
    forbidden_modules = {"tempfile", "pickle", "shelve", "sqlite3", "dbm"}
    package = Path(madoguchi_card_agent.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + (
                    [node.module] if isinstance(node, ast.ImportFrom) else []
                )
                assert not forbidden_modules & {str(n).split(".")[0] for n in names}, source
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                assert name not in forbidden_calls, f"{source.name}: {name}"
                assert name != "open", f"{source.name}: open() (the config is read with Path.read_text)"
