"""A simulated My Number Card (券面事項入力補助AP only) answering the APDUs of the card notes.

Used two ways: behind ``FakeConnection`` (the unit tests' stand-in for a pyscard connection) and
behind ``VirtualIcc`` (a vpicc client that vsmartcard's vpcd driver in pcscd talks to over TCP).
The PIN counter lives on the card and survives power cycles, like the real one.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

from madoguchi_card_agent.tlv import encode_tlv

AID = bytes.fromhex("D3921000310001010408")
EF_PIN, EF_FOUR, EF_MYNUMBER = bytes.fromhex("0011"), bytes.fromhex("0002"), bytes.fromhex("0001")
ATR = bytes.fromhex("3B80800101")  # minimal T=1 ATR (TCK = 01)

OK = b"\x90\x00"


def four_items_file(name: str, address: str, birth: str, sex: str, header: bytes = b"\x00" * 8) -> bytes:
    inner = (
        encode_tlv(0xDF21, header)
        + encode_tlv(0xDF22, name.encode("utf-8"))
        + encode_tlv(0xDF23, address.encode("utf-8"))
        + encode_tlv(0xDF24, birth.encode("ascii"))
        + encode_tlv(0xDF25, sex.encode("ascii"))
    )
    return encode_tlv(0xFF20, inner)


@dataclass
class SimulatedCard:
    name: str = "御坊 太郎"
    address: str = "和歌山県御坊市薗350番地"
    birth: str = "19800401"
    sex: str = "1"
    pin: str = "1234"
    tries: int = 3
    blocked_sw: bytes = b"\x69\x84"  # what a locked AP answers (real cards: 69 83 or 69 84)
    file_override: bytes | None = None  # raw 4-items file (for malformed data)
    padding: bytes = b"\xff" * 16  # bytes after the TLV in the EF, as on a real file
    max_tries: int = 3
    apdus: list[bytes] = field(default_factory=list)
    selected_ap: bool = False
    current_ef: bytes | None = None
    verified: bool = False

    @property
    def file(self) -> bytes:
        if self.file_override is not None:
            return self.file_override
        return four_items_file(self.name, self.address, self.birth, self.sex) + self.padding

    def power_cycle(self) -> None:
        self.selected_ap, self.current_ef, self.verified = False, None, False

    def verifies_sent(self) -> list[bytes]:
        """VERIFY commands that carried a PIN (the tries-left query carries none)."""
        return [a for a in self.apdus if a[1] == 0x20 and len(a) > 4]

    def process(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        if len(apdu) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        if cla != 0x00:
            return b"\x6e\x00"
        if ins == 0xA4:
            return self._select(p1, p2, body)
        if ins == 0x20:
            return self._verify(p2, body)
        if ins == 0xB0:
            return self._read_binary(p1, p2, body)
        return b"\x6d\x00"

    def _select(self, p1: int, p2: int, body: bytes) -> bytes:
        if not body or len(body) != 1 + body[0]:
            return b"\x67\x00"
        data = body[1:]
        if p1 == 0x04:
            if data != AID:
                return b"\x6a\x82"
            self.selected_ap, self.current_ef, self.verified = True, None, False
            return OK
        if p1 == 0x02 and p2 == 0x0C:
            if not self.selected_ap or data not in (EF_PIN, EF_FOUR, EF_MYNUMBER):
                return b"\x6a\x82"
            self.current_ef = data
            return OK
        return b"\x6a\x86"

    def _verify(self, p2: int, body: bytes) -> bytes:
        if self.current_ef != EF_PIN or p2 != 0x80:
            return b"\x69\x86"
        if self.tries == 0:
            return self.blocked_sw
        if not body:  # tries-left query: no try used
            return OK if self.verified else bytes([0x63, 0xC0 | self.tries])
        if len(body) != 1 + body[0]:
            return b"\x67\x00"
        if body[1:] == self.pin.encode("ascii"):
            self.tries, self.verified = self.max_tries, True
            return OK
        self.tries -= 1
        self.verified = False
        return bytes([0x63, 0xC0 | self.tries])

    def _read_binary(self, p1: int, p2: int, body: bytes) -> bytes:
        if self.current_ef is None:
            return b"\x69\x86"
        if self.current_ef != EF_FOUR or not self.verified:
            return b"\x69\x82"  # security status not satisfied (the My Number EF always, here)
        if len(body) != 1:
            return b"\x67\x00"
        offset, le = (p1 << 8) | p2, body[0] or 256
        content = self.file
        if offset >= len(content):
            return b"\x6b\x00"
        chunk = content[offset : offset + le]
        return chunk + (OK if len(chunk) == le else b"\x62\x82")


class FakeConnection:
    """pyscard's ``transmit(apdu) -> (data, sw1, sw2)`` over a SimulatedCard."""

    def __init__(self, card: SimulatedCard) -> None:
        self.card = card
        card.power_cycle()
        self.closed = False

    def transmit(self, apdu: list[int]) -> tuple[list[int], int, int]:
        assert all(0 <= b <= 0xFF for b in apdu)
        response = self.card.process(bytes(apdu))
        return list(response[:-2]), response[-2], response[-1]

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.closed = True
        self.card.power_cycle()  # SCARD_UNPOWER_CARD


class VirtualIcc:
    """The card side of vsmartcard's vpcd/vpicc protocol: connect to vpcd's TCP port, then answer
    each message (2-byte big-endian length + payload). One-byte payloads are control messages:
    00 power off, 01 power on, 02 reset (no answer), 04 get ATR (answer: the ATR); anything else
    is a command APDU answered with the response APDU. Connected = card inserted; closing the
    socket = card removed."""

    def __init__(self, card: SimulatedCard, port: int, host: str = "127.0.0.1") -> None:
        self.card = card
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def insert(self, timeout: float = 10.0) -> None:
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self._sock.settimeout(None)
        self.card.power_cycle()
        self._thread = threading.Thread(target=self._serve, args=(self._sock,), daemon=True)
        self._thread.start()

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                head = _recv_exact(sock, 2)
                if head is None:
                    return
                (length,) = struct.unpack(">H", head)
                payload = _recv_exact(sock, length) if length else b""
                if payload is None:
                    return
                if length == 1:
                    ctrl = payload[0]
                    if ctrl in (0x00, 0x01, 0x02):
                        self.card.power_cycle()
                    elif ctrl == 0x04:
                        sock.sendall(struct.pack(">H", len(ATR)) + ATR)
                    continue
                response = self.card.process(payload)
                sock.sendall(struct.pack(">H", len(response)) + response)
        except OSError as exc:
            if self._sock is not None:  # not our own remove()
                self.error = exc


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            return None
        buf += part
    return buf
