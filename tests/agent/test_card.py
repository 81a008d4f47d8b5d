"""The APDU flow through a fake PC/SC connection: reads, PIN policy, blocked cards, TLV parsing."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from madoguchi_card_agent.card import CardSession, parse_four_items, read_card
from madoguchi_card_agent.errors import (
    CardBlocked,
    InvalidPinFormat,
    MalformedCardData,
    UnexpectedStatus,
    WrongPin,
)
from madoguchi_card_agent.tlv import encode_tlv

from .card_sim import EF_MYNUMBER, FakeConnection, SimulatedCard, four_items_file

# 54 characters x 3 bytes = 162 bytes: DF 23 needs the 81 xx length form, and so does FF 20.
LONG_ADDRESS = "和歌山県御坊市薗" + "一二三四五六七八九十" * 4 + "番地の十二御坊荘一〇一号"


class ScriptedPrompt:
    """Types the given PINs one by one (None = the visitor cancels) and records what was shown."""

    def __init__(self, *pins: str | None) -> None:
        self.pins = list(pins)
        self.shown_tries: list[int] = []
        self.refusals: list[WrongPin | InvalidPinFormat] = []

    def ask_pin(self, tries_left: int) -> str | None:
        self.shown_tries.append(tries_left)
        return self.pins.pop(0) if self.pins else None

    def pin_refused(self, error: WrongPin | InvalidPinFormat) -> None:
        self.refusals.append(error)


def hexes(card: SimulatedCard) -> list[str]:
    return [a.hex(" ").upper() for a in card.apdus]


def test_correct_read_follows_the_card_notes_and_parses_81_lengths() -> None:
    card = SimulatedCard(name="御坊 花子", address=LONG_ADDRESS, birth="19840229", sex="2")
    raw = card.file
    assert raw[:3] == bytes.fromhex("FF 20 81")  # the file itself needs the long form
    assert bytes.fromhex("DF 23 81") in raw

    face = read_card(FakeConnection(card), ScriptedPrompt("1234"))

    assert face is not None
    assert face.name == "御坊 花子"
    assert face.address == LONG_ADDRESS
    assert face.birth_yyyymmdd == "19840229"
    assert face.birth == date(1984, 2, 29)
    assert face.sex == "2"
    assert not face.outside_jis0208
    total = len(raw) - len(card.padding)
    assert hexes(card) == [
        "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08",  # SELECT AP
        "00 A4 02 0C 02 00 11",  # SELECT PIN EF
        "00 20 00 80",  # tries left
        "00 20 00 80 04 31 32 33 34",  # VERIFY (the one and only)
        "00 A4 02 0C 02 00 02",  # SELECT 4情報
        "00 B0 00 00 07",  # first bytes: tag and BER length
        f"00 B0 00 07 {total - 7:02X}",  # the rest, from offset 7
    ]
    assert card.tries == 3


def test_long_file_uses_82_length_and_reads_in_chunks() -> None:
    address = "大阪府大阪市北区" + "梅田一丁目" * 30  # 474 bytes: 82 xx xx
    card = SimulatedCard(address=address)
    assert card.file[:3] == bytes.fromhex("FF 20 82")

    face = read_card(FakeConnection(card), ScriptedPrompt("1234"))

    assert face is not None
    assert face.address == address
    total = len(card.file) - len(card.padding)
    reads = [a for a in card.apdus if a[1] == 0xB0]
    offsets = [(a[2] << 8) | a[3] for a in reads]
    assert offsets == [0, *range(7, total, 255)]  # 7 bytes, then chunks of at most 255
    assert len(reads) == 4
    assert sum(a[4] for a in reads) == total  # never past the TLV


def test_the_my_number_ef_is_never_selected() -> None:
    card = SimulatedCard()
    read_card(FakeConnection(card), ScriptedPrompt("1234"))
    assert not any(a[1] == 0xA4 and a[5:] == EF_MYNUMBER for a in card.apdus)


def test_wrong_pin_reports_two_tries_left_and_is_not_retried() -> None:
    card = SimulatedCard(pin="1234")
    prompt = ScriptedPrompt("0000", None)  # the visitor types a wrong PIN, then gives up

    assert read_card(FakeConnection(card), prompt) is None

    assert prompt.shown_tries == [3, 2]  # shown before each attempt, fresh from the card
    assert len(prompt.refusals) == 1
    assert isinstance(prompt.refusals[0], WrongPin)
    assert prompt.refusals[0].tries_left == 2
    assert "残り回数: 2回" in prompt.refusals[0].message_ja
    assert len(card.verifies_sent()) == 1  # one VERIFY for one typed PIN
    assert card.tries == 2


def test_session_never_sends_a_second_verify_on_its_own() -> None:
    card = SimulatedCard(pin="1234")
    session = CardSession(FakeConnection(card))
    session.start()
    assert session.tries_left() == 3
    with pytest.raises(WrongPin) as caught:
        session.verify("0000")
    assert caught.value.tries_left == 2
    with pytest.raises(RuntimeError, match="tries_left"):  # no count shown since: refused, nothing sent
        session.verify("1234")
    assert len(card.verifies_sent()) == 1
    assert session.tries_left() == 2  # the query itself costs nothing
    assert card.tries == 2


def test_wrong_then_right_pin_each_typed_once() -> None:
    card = SimulatedCard(pin="1234")
    prompt = ScriptedPrompt("0000", "1234")
    face = read_card(FakeConnection(card), prompt)
    assert face is not None
    assert prompt.shown_tries == [3, 2]
    assert [v[5:] for v in card.verifies_sent()] == [b"0000", b"1234"]
    assert card.tries == 3  # a right PIN resets the counter


@pytest.mark.parametrize("blocked_sw", [b"\x69\x83", b"\x69\x84"], ids=["69-83", "69-84"])
def test_blocked_card_is_refused_before_any_pin(blocked_sw: bytes) -> None:
    card = SimulatedCard(tries=0, blocked_sw=blocked_sw)
    prompt = ScriptedPrompt("1234")
    with pytest.raises(CardBlocked) as caught:
        read_card(FakeConnection(card), prompt)
    assert prompt.shown_tries == []  # never asked
    assert card.verifies_sent() == []
    assert "ロック" in caught.value.message_ja
    assert not caught.value.by_this_attempt


@pytest.mark.parametrize("blocked_sw", [b"\x69\x83", b"\x69\x84"], ids=["69-83", "69-84"])
def test_verify_answering_blocked_is_card_blocked(blocked_sw: bytes) -> None:
    class BlocksOnVerify(SimulatedCard):
        def _verify(self, p2: int, body: bytes) -> bytes:
            return super()._verify(p2, body) if not body else self.blocked_sw

    card = BlocksOnVerify(blocked_sw=blocked_sw)
    with pytest.raises(CardBlocked):
        read_card(FakeConnection(card), ScriptedPrompt("1234", "1234"))
    assert len(card.verifies_sent()) == 1


def test_tries_left_zero_is_blocked_and_nothing_is_sent() -> None:
    class CountsZero(SimulatedCard):  # a card that answers 63 C0 instead of 69 8x
        def _verify(self, p2: int, body: bytes) -> bytes:
            return b"\x63\xc0"

    card = CountsZero()
    session = CardSession(FakeConnection(card))
    session.start()
    with pytest.raises(CardBlocked):
        session.tries_left()
    with pytest.raises(CardBlocked):
        session.verify("1234")  # refused here, not sent
    assert card.verifies_sent() == []


def test_last_try_used_blocks_and_says_so() -> None:
    card = SimulatedCard(pin="1234", tries=1)
    prompt = ScriptedPrompt("9999", "1234")
    with pytest.raises(CardBlocked) as caught:
        read_card(FakeConnection(card), prompt)
    assert caught.value.by_this_attempt
    assert prompt.shown_tries == [1]
    assert len(card.verifies_sent()) == 1
    assert card.tries == 0


@pytest.mark.parametrize("typed", ["12a4", "12345", "123", "１２３４", " 1234"])
def test_pin_that_is_not_four_digits_is_not_sent(typed: str) -> None:
    card = SimulatedCard()
    prompt = ScriptedPrompt(typed, None)
    assert read_card(FakeConnection(card), prompt) is None
    assert isinstance(prompt.refusals[0], InvalidPinFormat)
    assert card.verifies_sent() == []
    assert card.tries == 3


@pytest.mark.parametrize(
    ("name", "outside"),
    [
        ("𠮷田 一郎", ["𠮷"]),  # outside the BMP
        ("髙橋 二郎", ["髙"]),  # IBM extension (cp932 has it)
        ("山﨑 三郎", ["﨑"]),  # JIS X 0213 (euc_jis_2004 has it)
        ("渡邉 四郎", []),  # in JIS X 0208
        ("SMITH JOHN", []),
    ],
)
def test_names_outside_jis0208_are_kept_exactly_and_flagged(name: str, outside: list[str]) -> None:
    card = SimulatedCard(name=name)
    face = read_card(FakeConnection(card), ScriptedPrompt("1234"))
    assert face is not None
    assert face.name == name
    assert face.name.encode("utf-8") == name.encode("utf-8")
    assert face.outside_jis0208 is bool(outside)
    assert list(face.outside_jis0208_chars) == outside


def test_card_face_repr_hides_the_data() -> None:
    face = read_card(FakeConnection(SimulatedCard(name="秘密 太郎")), ScriptedPrompt("1234"))
    assert "秘密" not in repr(face)
    assert "秘密" not in str(face)


def good_inner(**over: bytes) -> dict[int, bytes]:
    items = {
        0xDF21: b"\x00" * 4,
        0xDF22: "名前".encode(),
        0xDF23: "住所".encode(),
        0xDF24: b"19800401",
        0xDF25: b"1",
    }
    items.update({int(k[3:], 16): v for k, v in over.items()})
    return items


def build(items: dict[int, bytes], outer: int = 0xFF20) -> bytes:
    return encode_tlv(outer, b"".join(encode_tlv(t, v) for t, v in items.items()))


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (build(good_inner(), outer=0xFF21), "expected tag FF20"),
        (bytes.fromhex("FF 20 10") + encode_tlv(0xDF22, b"x"), "declares 16 bytes"),
        (bytes.fromhex("FF 20 05 DF 22 09 41 42"), "runs past the end"),
        (bytes.fromhex("FF 20 83 00 00 05"), "length form 83"),
        (bytes.fromhex("FF 20 80"), "indefinite"),
        (bytes.fromhex("FF 20 81 05"), "must be short form"),
        (bytes.fromhex("FF"), "cut short"),
        (build({k: v for k, v in good_inner().items() if k != 0xDF25}), "missing DF25"),
        (build(good_inner(tagDF24=b"19801340")), "calendar date"),
        (build(good_inner(tagDF24=b"1980-4-1")), "YYYYMMDD"),
        (build(good_inner(tagDF25=b"3")), "sex"),
        (build(good_inner(tagDF22=b"\xff\xfe")), "not UTF-8"),
        (build(good_inner(tagDF22=b"")), "empty name"),
        (build(good_inner()) + b"\xff\xff", None),  # padding after the TLV is fine
    ],
)
def test_malformed_tlv_is_a_typed_error(raw: bytes, why: str | None) -> None:
    if why is None:  # the control case parses
        assert parse_four_items(raw).name == "名前"
        return
    with pytest.raises(MalformedCardData, match=why):
        parse_four_items(raw)


def test_duplicate_tag_is_malformed() -> None:
    inner = b"".join(encode_tlv(t, v) for t, v in good_inner().items()) + encode_tlv(0xDF22, b"x")
    with pytest.raises(MalformedCardData, match="twice"):
        parse_four_items(encode_tlv(0xFF20, inner))


def test_file_shorter_than_its_declared_length_is_malformed_through_the_card() -> None:
    whole = four_items_file("名前", "住所" * 100, "19800401", "1")
    card = SimulatedCard(file_override=whole[: len(whole) - 40])
    with pytest.raises(MalformedCardData, match="file ended"):
        read_card(FakeConnection(card), ScriptedPrompt("1234"))


def test_not_a_my_number_card_is_unexpected_status() -> None:
    class OtherCard(SimulatedCard):
        def process(self, apdu: bytes) -> bytes:
            self.apdus.append(apdu)
            return b"\x6a\x82"

    with pytest.raises(UnexpectedStatus) as caught:
        read_card(FakeConnection(OtherCard()), ScriptedPrompt("1234"))
    assert (caught.value.sw1, caught.value.sw2, caught.value.step) == (0x6A, 0x82, "SELECT AP")


def test_wrong_le_and_get_response_are_followed() -> None:
    class T0Card(SimulatedCard):
        """Answers a READ BINARY with 6C xx first, and SELECT with 61 00 + GET RESPONSE."""

        def process(self, apdu: bytes) -> bytes:
            if apdu[1] == 0xC0:
                self.apdus.append(apdu)
                return b"\x90\x00"
            if apdu[1] == 0xB0 and apdu[4] == 7 and not getattr(self, "_told", False):
                self.apdus.append(apdu)
                self._told = True
                return b"\x6c\x07"
            return super().process(apdu)

    card = T0Card()
    face = read_card(FakeConnection(card), ScriptedPrompt("1234"))
    assert face is not None
    assert face.name == card.name


def test_the_pin_never_reaches_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    card = SimulatedCard(pin="4821", tries=2)
    prompt = ScriptedPrompt("7395", "4821")
    face = read_card(FakeConnection(card), prompt)
    assert face is not None
    with pytest.raises(CardBlocked) as blocked:
        read_card(FakeConnection(SimulatedCard(pin="4821", tries=1)), ScriptedPrompt("7395"))
    texts = [caplog.text, *(str(e) for e in prompt.refusals), *(repr(e) for e in prompt.refusals)]
    texts += [str(blocked.value), repr(blocked.value), blocked.value.message_ja]
    texts += [e.message_ja for e in prompt.refusals]
    for secret in ("7395", "4821", "37 33 39 35", "34 38 32 31", "37333935", "34383231"):
        assert all(secret not in t for t in texts), secret
    assert "APDU 00 20 00 80" in caplog.text  # the header is logged, the data is not
    assert face.name not in caplog.text  # nor the card data
