"""PC/SC through pyscard's low-level ``smartcard.scard`` module (winscard on Windows, pcsc-lite
elsewhere). pyscard is imported on first use so the rest of the agent (and its unit tests) work on a
machine without a PC/SC library.

Waiting for a card or for its removal uses SCardGetStatusChange in one-second slices, so Ctrl+C
is honoured. The card is opened exclusively (no other program can talk to it while the PIN is
verified) and unpowered on disconnect (which ends the verified state on the card).
"""

from __future__ import annotations

import logging
import time
from types import ModuleType, TracebackType
from typing import Any

from .errors import CardError, NoCard, ReaderMissing

log = logging.getLogger(__name__)

TICK_MS = 1000


def _scard() -> ModuleType:
    try:
        from smartcard import scard
    except ImportError as exc:  # pyscard missing, or no libpcsclite / winscard
        raise ReaderMissing(f"pyscard is not usable here: {exc}") from None
    module: ModuleType = scard
    return module


def _msg(scard: Any, hresult: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(hresult))
    except Exception:  # pragma: no cover - pyscard's own message lookup failed
        return f"0x{hresult & 0xFFFFFFFF:08X}"


class PcscConnection:
    """A connected card: ``transmit(apdu) -> (data, sw1, sw2)`` like pyscard's CardConnection."""

    def __init__(self, scard: Any, context: Any, reader: str) -> None:
        self._scard = scard
        hresult, self._card, protocol = scard.SCardConnect(
            context, reader, scard.SCARD_SHARE_EXCLUSIVE, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        if hresult != scard.SCARD_S_SUCCESS:
            if hresult == scard.SCARD_E_SHARING_VIOLATION:
                err = CardError(f"the card is in use by another program ({_msg(scard, hresult)})")
                err.message_ja = "他のアプリがカードを使用中です。そのアプリを閉じてから置き直してください。"
                raise err
            raise NoCard(f"connect failed: {_msg(scard, hresult)}")
        self._pci = scard.SCARD_PCI_T0 if protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        self.reader = reader

    def transmit(self, apdu: list[int]) -> tuple[list[int], int, int]:
        scard = self._scard
        hresult, response = scard.SCardTransmit(self._card, self._pci, apdu)
        if hresult != scard.SCARD_S_SUCCESS:
            # Only the PC/SC error text: the APDU (which may hold the PIN) stays out of the error.
            raise NoCard(f"transmit failed: {_msg(scard, hresult)}")
        if len(response) < 2:
            raise NoCard("response shorter than a status word")
        return list(response[:-2]), response[-2], response[-1]

    def close(self) -> None:
        if self._card is not None:
            self._scard.SCardDisconnect(self._card, self._scard.SCARD_UNPOWER_CARD)
            self._card = None

    def __enter__(self) -> PcscConnection:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Pcsc:
    """One PC/SC context and the configured reader."""

    def __init__(self, wanted_reader: str | None = None) -> None:
        self._scard = _scard()
        scard = self._scard
        hresult, self._context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderMissing(f"no PC/SC service: {_msg(scard, hresult)}")
        self._wanted = wanted_reader

    def close(self) -> None:
        if self._context is not None:
            self._scard.SCardReleaseContext(self._context)
            self._context = None

    def __enter__(self) -> Pcsc:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def readers(self) -> list[str]:
        scard = self._scard
        hresult, names = scard.SCardListReaders(self._context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderMissing(f"cannot list readers: {_msg(scard, hresult)}")
        return [str(n) for n in names]

    def reader(self) -> str:
        """The configured reader: exact name, else the one name containing it; default the first."""
        names = self.readers()
        if not names:
            raise ReaderMissing("no card reader is connected")
        wanted = self._wanted
        if not wanted:
            return names[0]
        if wanted in names:
            return wanted
        partial = [n for n in names if wanted in n]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            raise ReaderMissing(f"reader {wanted!r} not found among {names}")
        raise ReaderMissing(f"reader {wanted!r} matches several: {partial}")

    def _state(self, reader: str, current: int, timeout_ms: int) -> int | None:
        """The reader's event state, or None on timeout."""
        scard = self._scard
        hresult, states = scard.SCardGetStatusChange(self._context, timeout_ms, [(reader, current)])
        if hresult == scard.SCARD_E_TIMEOUT:
            return None
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderMissing(f"reader state: {_msg(scard, hresult)}")
        event = int(states[0][1])
        if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            raise ReaderMissing(f"reader {reader!r} went away")
        return event

    def wait(self, reader: str, *, present: bool, timeout: float | None = None) -> bool:
        """Block until a card is (``present=True``) or is no longer (False) in the reader.

        Returns False if ``timeout`` seconds pass first.
        """
        scard = self._scard
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self._state(reader, scard.SCARD_STATE_UNAWARE, 0) or 0
        while bool(state & scard.SCARD_STATE_PRESENT) != present:
            step = TICK_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                step = max(1, min(step, int(left * 1000)))
            new = self._state(reader, state & ~scard.SCARD_STATE_CHANGED, step)
            if new is not None:
                state = new
        return True

    def connect(self, reader: str) -> PcscConnection:
        return PcscConnection(self._scard, self._context, reader)
