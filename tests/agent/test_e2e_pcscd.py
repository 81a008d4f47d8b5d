"""End to end: the real agent program → libpcsclite → pcscd → vsmartcard's vpcd driver → our card
emulator over TCP (vpicc protocol), and the agent's POST to a local recording server.

The agent runs as ``python -m madoguchi_card_agent --once`` in a new session (no controlling
terminal), so getpass falls back to reading the PIN from stdin, which the test feeds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import pcscd_harness
from .card_sim import EF_MYNUMBER, SimulatedCard, VirtualIcc
from .http_recorder import Recorder, recording_server

LONG_ADDRESS = "大阪府大阪市北区中之島一丁目三番二十号" + "大阪市役所本庁舎" * 6  # > 127 bytes


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pcscd_harness.Pcscd]:
    try:
        instance = pcscd_harness.start(tmp_path_factory.mktemp("pcscd"))
    except pcscd_harness.CannotStart as exc:
        pytest.skip(f"pcscd cannot be started on this machine: {exc}")
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def server() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


class AgentProcess:
    """The agent program, its stdout collected line by line."""

    def __init__(
        self,
        pcscd: pcscd_harness.Pcscd,
        server: Recorder | Any,  # anything with the service's base ``url``
        tmp_path: Path,
        stdin_text: str,
        *,
        once: bool = True,
        tenant: str = "gobo",
        token: str = "e2e-device-token",  # noqa: S107 - the recording server accepts anything
    ) -> None:
        env = {
            **os.environ,
            **pcscd.client_env(),
            "XDG_CONFIG_HOME": str(tmp_path / "no-config"),
            "MADOGUCHI_CARD_AGENT_SERVICE_URL": server.url,
            "MADOGUCHI_CARD_AGENT_TENANT": tenant,
            "MADOGUCHI_CARD_AGENT_DEVICE_TOKEN": token,
            "MADOGUCHI_CARD_AGENT_READER": pcscd_harness.READER_SLOT0,
            "PYTHONIOENCODING": "utf-8",
        }
        env.pop("MADOGUCHI_CARD_AGENT_CONFIG", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "madoguchi_card_agent",
                *(["--once"] if once else []),
                "-vv",
            ],  # -vv: APDU headers
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # no /dev/tty: getpass reads stdin
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(stdin_text.encode())
        self.proc.stdin.close()
        self.lines: list[str] = []
        self.err = b""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._collect_err, daemon=True)
        self._err_reader.start()

    def _collect_err(self) -> None:
        assert self.proc.stderr is not None
        self.err = self.proc.stderr.read()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def out(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 20.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.out.count(text) < count:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    _code, err = self.finish(timeout=0)
                    pytest.fail(f"agent never said {text!r}\nstdout:\n{self.out}\nstderr:\n{err}")
                self._changed.wait(timeout=min(left, 0.2))

    def finish(self, timeout: float = 20.0) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        self._err_reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode, self.err.decode("utf-8", "replace")


def run_agent(
    pcscd: pcscd_harness.Pcscd, server: Recorder, tmp_path: Path, card: SimulatedCard, typed: str
) -> tuple[int, str, str]:
    icc = VirtualIcc(card, pcscd.port)
    icc.insert()
    try:
        agent = AgentProcess(pcscd, server, tmp_path, typed)
        agent.wait_for("カードをお取りください。")
    finally:
        icc.remove()
    code, err = agent.finish()
    assert icc.error is None, icc.error
    return code, agent.out, err


def test_card_read_through_pcscd_and_vpcd(
    pcscd: pcscd_harness.Pcscd,
    server: Recorder,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    card = SimulatedCard(name="𠮷田 花子", address=LONG_ADDRESS, birth="19840229", sex="2", pin="2580")
    assert bytes.fromhex("DF 23 81") in card.file

    started = time.monotonic()
    code, out, err = run_agent(pcscd, server, tmp_path, card, "2580\n")
    elapsed = time.monotonic() - started

    assert code == 0, f"{out}\n{err}"
    assert "残り回数: 3回" in out
    assert "送信しました（読取ID: read-1）" in out
    (req,) = server.requests
    assert req.path == "/api/v1/gobo/card-reads"
    assert req.headers["authorization"] == "Bearer e2e-device-token"
    body = req.json
    assert body.pop("read_at")
    assert body == {
        "name": "𠮷田 花子",
        "address": LONG_ADDRESS,
        "birth": "1984-02-29",
        "sex": "2",
        "outside_jis0208": True,
        "reader": pcscd_harness.READER_SLOT0,
    }
    flow = [a.hex(" ").upper() for a in card.apdus]
    assert flow[:6] == [
        "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08",
        "00 A4 02 0C 02 00 11",
        "00 20 00 80",
        "00 20 00 80 04 32 35 38 30",
        "00 A4 02 0C 02 00 02",
        "00 B0 00 00 07",
    ]
    assert flow[6].startswith("00 B0 00 07 ")
    assert not any(a[1] == 0xA4 and a[5:] == EF_MYNUMBER for a in card.apdus)
    assert "APDU 00 20 00 80 (VERIFY)" in err  # -vv logs APDU headers ...
    scrubbed = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", "<time>", err.replace(server.url, "<url>"))
    assert "2580" not in scrubbed  # ... and never the PIN (timestamps and the server's port aside)
    assert "32 35 38 30" not in err
    assert "𠮷田" not in err  # nor the card data
    record_property("pcscd_mode", pcscd.mode)
    record_property("pcscd_startup_seconds", round(pcscd.startup_seconds, 2))
    record_property("card_read_seconds", round(elapsed, 2))


def test_wrong_pin_then_right_through_pcscd(
    pcscd: pcscd_harness.Pcscd, server: Recorder, tmp_path: Path
) -> None:
    card = SimulatedCard(pin="1234")
    code, out, err = run_agent(pcscd, server, tmp_path, card, "4321\n1234\n")
    assert code == 0, f"{out}\n{err}"
    assert (
        out.index("残り回数: 3回")
        < out.index("暗証番号が違います。残り回数: 2回")
        < out.rindex("残り回数: 2回")
    )
    assert len(card.verifies_sent()) == 2
    assert card.tries == 3
    assert len(server.requests) == 1


def test_blocked_card_through_pcscd(pcscd: pcscd_harness.Pcscd, server: Recorder, tmp_path: Path) -> None:
    card = SimulatedCard(tries=0, blocked_sw=b"\x69\x83")
    code, out, err = run_agent(pcscd, server, tmp_path, card, "1234\n")
    assert code == 1, f"{out}\n{err}"
    assert "ロックされています" in out
    assert "残り回数" not in out
    assert card.verifies_sent() == []
    assert server.requests == []


def test_the_loop_serves_one_card_after_another(
    pcscd: pcscd_harness.Pcscd, server: Recorder, tmp_path: Path
) -> None:
    first, second = SimulatedCard(name="御坊 一郎", pin="1111"), SimulatedCard(name="御坊 二郎", pin="2222")
    agent = AgentProcess(pcscd, server, tmp_path, "1111\n2222\n", once=False)
    try:
        for n, card in enumerate((first, second), start=1):
            agent.wait_for("マイナンバーカードを読取機", count=n)
            icc = VirtualIcc(card, pcscd.port)
            icc.insert()
            try:
                agent.wait_for("カードをお取りください。", count=n)
            finally:
                icc.remove()
        agent.wait_for("マイナンバーカードを読取機", count=3)  # waiting for the next visitor
        agent.proc.send_signal(signal.SIGINT)  # the clerk closes it with Ctrl+C
        code, err = agent.finish()
    finally:
        if agent.proc.poll() is None:
            agent.finish(timeout=0)
    assert code == 130, err
    assert "終了します。" in agent.out
    assert [r.json["name"] for r in server.requests] == ["御坊 一郎", "御坊 二郎"]
    assert len(first.verifies_sent()) == 1
    assert len(second.verifies_sent()) == 1
