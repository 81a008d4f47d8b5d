"""The console loop with a fake reader and the local recording server; configuration."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from madoguchi_card_agent.config import load_config
from madoguchi_card_agent.console import EXIT_FAILED, EXIT_OK, CardAgent, ConsolePrompt
from madoguchi_card_agent.errors import ConfigError, ReaderMissing
from madoguchi_card_agent.post import ReadPoster

from .card_sim import FakeConnection, SimulatedCard
from .http_recorder import Recorder, recording_server


class FakePort:
    def __init__(self, card: SimulatedCard, name: str = "Fake Reader 0") -> None:
        self.card, self.name = card, name
        self.waits: list[bool] = []
        self.connections: list[FakeConnection] = []

    def reader(self) -> str:
        return self.name

    def wait(self, reader: str, *, present: bool, timeout: float | None = None) -> bool:
        assert reader == self.name
        self.waits.append(present)
        return True

    def connect(self, reader: str) -> FakeConnection:
        conn = FakeConnection(self.card)
        self.connections.append(conn)
        return conn


class Typist:
    def __init__(self, *typed: str) -> None:
        self.typed = list(typed)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.typed.pop(0) if self.typed else ""


@pytest.fixture
def server() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


def run_once(card: SimulatedCard, server: Recorder, *typed: str) -> tuple[int, str, FakePort, Typist]:
    out = io.StringIO()
    typist = Typist(*typed)
    port = FakePort(card)
    with ReadPoster(server.url, "gobo", "tok", sleep=lambda _s: None, timeout=2.0) as poster:
        code = CardAgent(port, poster, ConsolePrompt(out, typist)).run(once=True)
    return code, out.getvalue(), port, typist


def test_one_card_read_posted_and_removed(server: Recorder) -> None:
    code, out, port, typist = run_once(SimulatedCard(name="髙橋 一郎"), server, "1234")
    assert code == EXIT_OK
    assert "残り回数: 3回" in out
    assert "送信しました（読取ID: read-1）" in out
    assert "JIS第1・第2水準にない文字" in out
    assert "髙橋" not in out
    assert "御坊市" not in out
    assert port.waits == [True, False]  # wait for the card, then for its removal
    assert all(c.closed for c in port.connections)  # disconnected before the post
    (req,) = server.requests
    assert req.json["name"] == "髙橋 一郎"
    assert req.json["outside_jis0208"] is True
    assert req.json["reader"] == "Fake Reader 0"
    assert datetime.fromisoformat(req.json["read_at"]).utcoffset() is not None
    assert len(typist.prompts) == 1


def test_wrong_pin_shows_two_tries_then_the_visitor_types_again(server: Recorder) -> None:
    card = SimulatedCard(pin="1234")
    code, out, _port, _typist = run_once(card, server, "1111", "1234")
    assert code == EXIT_OK
    assert (
        out.index("残り回数: 3回")
        < out.index("暗証番号が違います。残り回数: 2回")
        < out.rindex("残り回数: 2回")
    )
    assert len(card.verifies_sent()) == 2
    assert len(server.requests) == 1


def test_visitor_cancels_after_a_wrong_pin(server: Recorder) -> None:
    card = SimulatedCard(pin="1234")
    code, out, port, _ = run_once(card, server, "1111", "")
    assert code == EXIT_FAILED
    assert "読み取りを中止しました" in out
    assert len(card.verifies_sent()) == 1
    assert card.tries == 2
    assert server.requests == []
    assert port.waits == [True, False]


def test_one_try_left_warns(server: Recorder) -> None:
    _code, out, _port, _ = run_once(SimulatedCard(tries=1), server, "1234")
    assert "残り回数: 1回" in out
    assert "あと1回間違えると" in out


@pytest.mark.parametrize("blocked_sw", [b"\x69\x83", b"\x69\x84"])
def test_blocked_card_is_never_asked_for_a_pin(server: Recorder, blocked_sw: bytes) -> None:
    card = SimulatedCard(tries=0, blocked_sw=blocked_sw)
    code, out, _port, typist = run_once(card, server, "1234")
    assert code == EXIT_FAILED
    assert "ロックされています" in out
    assert "再設定" in out
    assert typist.prompts == []
    assert card.verifies_sent() == []
    assert server.requests == []


def test_revoked_token_stops_the_agent_with_a_message(server: Recorder) -> None:
    server.answer((401, {"title": "revoked"}))
    out = io.StringIO()
    port = FakePort(SimulatedCard())
    with ReadPoster(server.url, "gobo", "tok", sleep=lambda _s: None) as poster:
        code = CardAgent(port, poster, ConsolePrompt(out, Typist("1234"))).run(once=False)  # even in a loop
    assert code == EXIT_FAILED
    assert "デバイストークンが無効か、失効しています" in out.getvalue()
    assert port.waits == [True, False]


def test_service_down_reports_and_keeps_nothing(server: Recorder) -> None:
    server.answer(*[(503, {})] * 4)
    code, out, _port, _ = run_once(SimulatedCard(), server, "1234")
    assert code == EXIT_FAILED
    assert "サービスに接続できませんでした（4回試行）" in out


def test_missing_reader_in_once_mode() -> None:
    class NoReader(FakePort):
        def reader(self) -> str:
            raise ReaderMissing("no card reader is connected")

    out = io.StringIO()
    with ReadPoster("http://127.0.0.1:9", "gobo", "tok") as poster:
        code = CardAgent(NoReader(SimulatedCard()), poster, ConsolePrompt(out)).run(once=True)
    assert code == EXIT_FAILED
    assert "カード読取機が見つかりません" in out.getvalue()


# --- configuration -----------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "card-agent.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_config_from_file_and_env_override(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'service_url = "https://madoguchi.example.lg.jp"\ntenant = "gobo"\ndevice_token = "t1"\nreader = "Caora"\n',
    )
    config = load_config(path, env={"MADOGUCHI_CARD_AGENT_READER": "PaSoRi"})
    assert (config.service_url, config.tenant, config.device_token, config.reader) == (
        "https://madoguchi.example.lg.jp",
        "gobo",
        "t1",
        "PaSoRi",
    )
    assert "t1" not in repr(config)


def test_config_from_env_only(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "nothing"),
        "MADOGUCHI_CARD_AGENT_SERVICE_URL": "http://127.0.0.1:8080",
        "MADOGUCHI_CARD_AGENT_TENANT": "osaka",
        "MADOGUCHI_CARD_AGENT_DEVICE_TOKEN": "t2",
    }
    config = load_config(env=env)
    assert config.tenant == "osaka"
    assert config.reader is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('service_url = "http://madoguchi.example.lg.jp"\ntenant = "gobo"\ndevice_token = "t"\n', "https"),
        ('service_url = "https://x.example"\ntenant = "../admin"\ndevice_token = "t"\n', "tenant"),
        ('service_url = "https://x.example"\ntenant = "gobo"\n', "device_token"),
        ('service_url = "https://x.example"\ntenant = "gobo"\ndevice_token = "t"\nport = 1\n', "不明な項目"),
        ("service_url = [", "読めません"),
    ],
)
def test_bad_config_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), env={})


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'service_url = "https://x.example"\ntenant = "gobo"\ndevice_token = "t"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(path, env={})


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ありません"):
        load_config(tmp_path / "nope.toml", env={})
