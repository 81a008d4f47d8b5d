"""Reading the four card-face items (氏名・住所・生年月日・性別) from a My Number Card.

The flow is the one in shared/domain/mynumber-card.md for the 券面事項入力補助AP (card-face
input-support application):

    SELECT AP       00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08
    SELECT PIN EF   00 A4 02 0C 02 00 11
    tries left      00 20 00 80            -> 63 Cn (n tries left; uses no try)
    VERIFY          00 20 00 80 04 <PIN>   -> 90 00, or 63 Cn
    SELECT 4情報    00 A4 02 0C 02 00 02
    READ BINARY     00 B0 00 00 07, BER length, then 00 B0 <offset> <Le> for the rest
    layout          FF 20 { DF 21 header, DF 22 name, DF 23 address, DF 24 birth, DF 25 sex }

The My Number (個人番号, EF 00 01) is never selected nor read: matching a visitor uses the four
items only (shared/domain/residents.md), and the number is 特定個人情報 that this agent has no
legal need to touch. There is deliberately no code path for it.

PIN policy, enforced here and not left to the front end:

- ``CardSession.verify`` sends exactly one VERIFY per call and never repeats it;
- it refuses to run unless ``tries_left()`` was asked since the previous VERIFY (so the front end
  has the count to show before each attempt), and refuses when that count is 0;
- status 69 83 / 69 84 or a count of 0 raise ``CardBlocked``;
- the PIN is never logged, never put into an exception, and only leaves this module inside the
  VERIFY APDU. APDUs are logged (DEBUG) by header only, responses by status word only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from .charset import chars_outside_jis0208
from .errors import (
    CardBlocked,
    InvalidPinFormat,
    MalformedCardData,
    UnexpectedStatus,
    WrongPin,
)
from .tlv import header_size, iter_tlv, parse_single

log = logging.getLogger(__name__)

AID_CARD_FACE_INPUT_SUPPORT = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
EF_PIN = bytes.fromhex("0011")  # 券面事項入力補助用暗証番号 (4 digits)
EF_FOUR_ITEMS = bytes.fromhex("0002")  # 基本4情報

TAG_FOUR_ITEMS = 0xFF20
TAG_HEADER = 0xDF21
TAG_NAME = 0xDF22
TAG_ADDRESS = 0xDF23
TAG_BIRTH = 0xDF24
TAG_SEX = 0xDF25

FIRST_READ = 7  # enough for FF 20 + a 3-byte length
MAX_CHUNK = 0xFF  # Le per READ BINARY (0xFF, not 00 = 256, which some readers mishandle)
MAX_FILE = 0x1000  # the 4-items file is a few hundred bytes; refuse absurd lengths

SW_OK = (0x90, 0x00)
BLOCKED_SWS = {(0x69, 0x83), (0x69, 0x84)}
SEXES = {"1", "2", "9"}  # ISO 5218 as the card uses it: male, female, not applicable


class Transmitter(Protocol):
    """What the agent needs from a PC/SC connection: pyscard's ``CardConnection.transmit`` shape."""

    def transmit(self, apdu: list[int]) -> tuple[list[int], int, int]: ...


@dataclass(frozen=True)
class CardFace:
    """The four items. ``repr`` hides them so they never reach a log or a traceback by accident."""

    name: str
    address: str
    birth_yyyymmdd: str
    birth: date
    sex: str
    outside_jis0208_chars: tuple[str, ...] = field(default=())

    @property
    def outside_jis0208(self) -> bool:
        return bool(self.outside_jis0208_chars)

    def __repr__(self) -> str:
        return "CardFace(<redacted>)"

    __str__ = __repr__


def _hdr(apdu: Sequence[int]) -> str:
    return " ".join(f"{b:02X}" for b in apdu[:4])


class CardSession:
    """One card, one connection. Methods map to the steps of the flow; see the module docstring."""

    def __init__(self, connection: Transmitter) -> None:
        self._conn = connection
        self._tries_known: int | None = None  # set by tries_left(), consumed by verify()
        self._verified = False

    # -- transport ------------------------------------------------------------------------------
    def _send(self, apdu: list[int], step: str) -> tuple[bytes, int, int]:
        log.debug("APDU %s (%s)", _hdr(apdu), step)
        data, sw1, sw2 = self._conn.transmit(apdu)
        if sw1 == 0x61:  # T=0: more response bytes waiting
            out = bytes(data)
            while sw1 == 0x61:
                more, sw1, sw2 = self._conn.transmit([0x00, 0xC0, 0x00, 0x00, sw2])
                out += bytes(more)
            log.debug("SW %02X %02X (%s)", sw1, sw2, step)
            return out, sw1, sw2
        log.debug("SW %02X %02X (%s)", sw1, sw2, step)
        return bytes(data), sw1, sw2

    def _select(self, p1: int, ident: bytes, step: str) -> None:
        _data, sw1, sw2 = self._send([0x00, 0xA4, p1, 0x0C, len(ident), *ident], step)
        if (sw1, sw2) != SW_OK:
            raise UnexpectedStatus(sw1, sw2, step)

    # -- steps ----------------------------------------------------------------------------------
    def start(self) -> None:
        """SELECT the card-face input-support AP and its PIN EF."""
        self._select(0x04, AID_CARD_FACE_INPUT_SUPPORT, "SELECT AP")
        self._select(0x02, EF_PIN, "SELECT PIN EF")

    def tries_left(self) -> int:
        """VERIFY without data: the card answers 63 Cn and counts nothing."""
        _data, sw1, sw2 = self._send([0x00, 0x20, 0x00, 0x80], "tries left")
        if (sw1, sw2) in BLOCKED_SWS:
            self._tries_known = 0
            raise CardBlocked(f"tries-left query answered {sw1:02X} {sw2:02X}")
        if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
            n = sw2 & 0x0F
            self._tries_known = n
            if n == 0:
                raise CardBlocked("no tries left")
            return n
        raise UnexpectedStatus(sw1, sw2, "tries left")

    def verify(self, pin: str) -> None:
        """One VERIFY with the PIN the user typed. Raises WrongPin, CardBlocked or InvalidPinFormat."""
        if not (len(pin) == 4 and pin.isascii() and pin.isdigit()):
            raise InvalidPinFormat()
        if self._tries_known is None:
            raise RuntimeError("tries_left() must be asked (and shown) before each VERIFY")
        if self._tries_known == 0:
            raise CardBlocked("refusing to VERIFY with no tries left")
        self._tries_known = None  # the next attempt needs a fresh count
        _data, sw1, sw2 = self._send([0x00, 0x20, 0x00, 0x80, 0x04, *pin.encode("ascii")], "VERIFY")
        if (sw1, sw2) == SW_OK:
            self._verified = True
            return
        if (sw1, sw2) in BLOCKED_SWS:
            raise CardBlocked(f"VERIFY answered {sw1:02X} {sw2:02X}")
        if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
            n = sw2 & 0x0F
            if n == 0:
                raise CardBlocked("the last try was used", by_this_attempt=True)
            raise WrongPin(n)
        raise UnexpectedStatus(sw1, sw2, "VERIFY")

    def read_four_items_file(self) -> bytes:
        """SELECT the 4-items EF and READ BINARY all of its TLV, in chunks."""
        self._select(0x02, EF_FOUR_ITEMS, "SELECT 4情報")
        head = self._read_binary(0, FIRST_READ)
        hdr, length = header_size(head)
        total = hdr + length
        if total > MAX_FILE:
            raise MalformedCardData(f"declared length {length} is implausible")
        buf = bytearray(head[:total])
        while len(buf) < total:
            chunk = self._read_binary(len(buf), min(MAX_CHUNK, total - len(buf)))
            if not chunk:
                raise MalformedCardData(f"file ended at {len(buf)} of {total} bytes")
            buf += chunk[: total - len(buf)]
        return bytes(buf)

    def _read_binary(self, offset: int, le: int) -> bytes:
        if offset > 0x7FFF:
            raise MalformedCardData("offset beyond READ BINARY's 15 bits")
        apdu = [0x00, 0xB0, offset >> 8, offset & 0xFF, le]
        data, sw1, sw2 = self._send(apdu, "READ BINARY")
        if sw1 == 0x6C:  # wrong Le: the card tells the right one; asking again costs nothing
            data, sw1, sw2 = self._send([*apdu[:4], sw2], "READ BINARY")
        if (sw1, sw2) == SW_OK or (sw1, sw2) == (0x62, 0x82):  # 62 82: end of file before Le
            return data
        if (sw1, sw2) == (0x6B, 0x00) and offset > 0:  # offset past the end of the file
            return b""
        raise UnexpectedStatus(sw1, sw2, "READ BINARY")

    def read_face(self) -> CardFace:
        if not self._verified:
            raise RuntimeError("VERIFY must succeed before reading the card face")
        return parse_four_items(self.read_four_items_file())


def parse_four_items(file_bytes: bytes) -> CardFace:
    """FF 20 { DF 21 header, DF 22 氏名, DF 23 住所, DF 24 生年月日, DF 25 性別 } → CardFace."""
    inner = parse_single(file_bytes, TAG_FOUR_ITEMS)
    items: dict[int, bytes] = {}
    for tag, value in iter_tlv(inner):
        if tag in items:
            raise MalformedCardData(f"tag {tag:X} appears twice")
        items[tag] = value
    missing = [f"{t:X}" for t in (TAG_NAME, TAG_ADDRESS, TAG_BIRTH, TAG_SEX) if t not in items]
    if missing:
        raise MalformedCardData(f"missing {', '.join(missing)}")

    def text(tag: int, what: str) -> str:
        try:
            return items[tag].decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedCardData(f"{what} is not UTF-8") from None

    name = text(TAG_NAME, "name")
    address = text(TAG_ADDRESS, "address")
    birth_raw = text(TAG_BIRTH, "birth date")
    sex = text(TAG_SEX, "sex")
    if not name:
        raise MalformedCardData("empty name")
    if not (len(birth_raw) == 8 and birth_raw.isascii() and birth_raw.isdigit()):
        raise MalformedCardData("birth date is not YYYYMMDD")
    try:
        birth = date(int(birth_raw[:4]), int(birth_raw[4:6]), int(birth_raw[6:]))
    except ValueError:
        raise MalformedCardData("birth date is not a calendar date") from None
    if sex not in SEXES:
        raise MalformedCardData("sex is not 1, 2 or 9")
    return CardFace(
        name=name,
        address=address,
        birth_yyyymmdd=birth_raw,
        birth=birth,
        sex=sex,
        outside_jis0208_chars=tuple(chars_outside_jis0208(name)),
    )


class PinPrompt(Protocol):
    """The front end's part: show the count and ask (``None`` = the visitor gave up)."""

    def ask_pin(self, tries_left: int) -> str | None: ...

    def pin_refused(self, error: WrongPin | InvalidPinFormat) -> None: ...


def read_card(connection: Transmitter, prompt: PinPrompt) -> CardFace | None:
    """The whole flow for one card. Every VERIFY uses a PIN the visitor has just typed.

    Returns None when the visitor cancels. Raises CardBlocked (before asking, or when the last
    try is used), UnexpectedStatus, MalformedCardData, or the transport's NoCard.
    """
    session = CardSession(connection)
    session.start()
    while True:
        tries = session.tries_left()  # raises CardBlocked at 0: no prompt, no VERIFY
        pin = prompt.ask_pin(tries)
        if pin is None:
            return None
        try:
            session.verify(pin)
        except (WrongPin, InvalidPinFormat) as refused:
            prompt.pin_refused(refused)
            continue  # back to a fresh count and a new PIN from the visitor
        return session.read_face()
