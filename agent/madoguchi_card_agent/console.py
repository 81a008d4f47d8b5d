"""The counter PC's front end: a console loop in Japanese.

    wait for a card → SELECT, show 残り回数, ask the PIN (getpass) → read → post → wait for removal

Messages address the visitor, who types the PIN. Nothing read from the card is printed: the
clerk's screen shows it. The read lives only in memory until it is posted (or the post fails).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import ssl
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, TextIO

from . import __version__
from .card import CardFace, Transmitter, read_card
from .config import AgentConfig, load_config
from .errors import (
    AgentError,
    CardError,
    DeviceTokenRejected,
    InvalidPinFormat,
    PostError,
    ReaderMissing,
    WrongPin,
)
from .post import ReadPoster

log = logging.getLogger("madoguchi_card_agent")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
READER_RETRY_SECONDS = 5.0


class ReaderPort(Protocol):
    """What the loop needs from PC/SC (``pcsc.Pcsc`` in production, a fake in tests)."""

    def reader(self) -> str: ...

    def wait(self, reader: str, *, present: bool, timeout: float | None = None) -> bool: ...

    def connect(self, reader: str) -> AbstractContextManager[Transmitter]: ...


class Poster(Protocol):
    def post(self, face: CardFace, reader: str, read_at: datetime) -> str: ...


class ConsolePrompt:
    """Shows the tries left before every attempt and reads the PIN without echo."""

    def __init__(self, out: TextIO, read_secret: Callable[[str], str] = getpass.getpass) -> None:
        self.out = out
        self._read_secret = read_secret

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def ask_pin(self, tries_left: int) -> str | None:
        self.say(f"暗証番号の残り回数: {tries_left}回")
        if tries_left == 1:
            self.say("※ あと1回間違えると暗証番号がロックされ、市区町村の窓口での再設定が必要になります。")
        typed = self._read_secret(
            "券面事項入力補助用の暗証番号（数字4桁）を入力して Enter（空のまま Enter で中止）: "
        )
        typed = typed.strip()
        return typed or None

    def pin_refused(self, error: WrongPin | InvalidPinFormat) -> None:
        self.say(error.message_ja)


class CardAgent:
    def __init__(
        self,
        port: ReaderPort,
        poster: Poster,
        prompt: ConsolePrompt,
        *,
        now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self.port = port
        self.poster = poster
        self.prompt = prompt
        self.now = now

    def handle_card(self, reader: str) -> bool:
        """One card that is on the reader: read it and post it. True when the service has it."""
        say = self.prompt.say
        try:
            with self.port.connect(reader) as connection:
                face = read_card(connection, self.prompt)
        except CardError as exc:  # blocked, removed, not a My Number Card, malformed
            log.warning("card not read: %s", exc)
            say(exc.message_ja)
            return False
        # The card is disconnected (and unpowered) from here on.
        if face is None:
            say("読み取りを中止しました。")
            return False
        if face.outside_jis0208:
            say("※ 氏名にJIS第1・第2水準にない文字があります。職員の画面でカード券面の文字を確認します。")
        say("読み取りました。送信しています…")
        try:
            read_id = self.poster.post(face, reader, self.now())
        except DeviceTokenRejected:
            raise
        except PostError as exc:
            log.error("post failed: %s", exc)
            say(exc.message_ja)
            return False
        finally:
            del face
        say(f"送信しました（読取ID: {read_id}）。職員の画面に表示されます。")
        return True

    def run(self, *, once: bool = False) -> int:
        say = self.prompt.say
        while True:
            try:
                reader = self.port.reader()
                say(f"マイナンバーカードを読取機（{reader}）に置いてください。")
                self.port.wait(reader, present=True)
                try:
                    ok = self.handle_card(reader)
                except DeviceTokenRejected as exc:
                    log.error("%s", exc)
                    say(exc.message_ja)
                    say("カードをお取りください。")
                    self.port.wait(reader, present=False)
                    return EXIT_FAILED
                say("カードをお取りください。")
                self.port.wait(reader, present=False)
            except ReaderMissing as exc:
                log.warning("%s", exc)
                say(exc.message_ja)
                if once:
                    return EXIT_FAILED
                time.sleep(READER_RETRY_SECONDS)
                continue
            if once:
                return EXIT_OK if ok else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="madoguchi-card-agent",
        description="マイナンバーカード読取エージェント（券面事項入力補助AP の4情報を窓口支援システムへ送信）",
    )
    p.add_argument(
        "--config", help="設定ファイル (TOML)。既定は MADOGUCHI_CARD_AGENT_CONFIG または利用者の設定フォルダ"
    )
    p.add_argument("--once", action="store_true", help="カード1枚を処理し、取り外されたら終了する")
    p.add_argument("--list-readers", action="store_true", help="接続されている読取機の名前を表示して終了する")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="ログを詳しく (-vv で APDU の見出しまで)"
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    # Ctrl+C is how the clerk closes the agent: honour it even when a launcher started us with
    # SIGINT ignored (Python then installs no handler of its own).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from .pcsc import Pcsc  # pyscard is needed from here on

    try:
        if args.list_readers:
            with Pcsc() as pcsc:
                for name in pcsc.readers():
                    print(name, file=out)
            return EXIT_OK
        config = load_config(args.config)
        return _run(config, once=args.once, out=out)
    except AgentError as exc:
        log.error("%s", exc)
        print(exc.message_ja, file=out, flush=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\n終了します。", file=out, flush=True)
        return EXIT_INTERRUPTED


def _run(config: AgentConfig, *, once: bool, out: TextIO) -> int:
    from .pcsc import Pcsc

    verify: bool | ssl.SSLContext = (
        ssl.create_default_context(cafile=config.ca_file) if config.ca_file else True
    )
    with (
        Pcsc(config.reader) as pcsc,
        ReadPoster(config.service_url, config.tenant, config.device_token, verify=verify) as poster,
    ):
        agent = CardAgent(pcsc, poster, ConsolePrompt(out))
        return agent.run(once=once)
