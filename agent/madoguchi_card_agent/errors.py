"""Typed errors of the card agent.

Every error carries a Japanese message for the person at the counter (``message_ja``). None of them
ever holds the PIN or the data read from the card: only counts, status words and step names.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class. ``str(error)`` is an English line for the log; ``message_ja`` is for the screen."""

    message_ja: str = "エラーが発生しました。"


# --- the card and the reader -------------------------------------------------------------------


class CardError(AgentError):
    """Something about the card or the reader."""


class ReaderMissing(CardError):
    """No PC/SC reader (or not the configured one), or the PC/SC service is not running."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.message_ja = "カード読取機が見つかりません。接続とスマートカードサービスを確認してください。"


class NoCard(CardError):
    """No card in the reader, or it was taken away while being read."""

    def __init__(self, detail: str = "no card in the reader") -> None:
        super().__init__(detail)
        self.message_ja = "カードを読み取れませんでした。カードを読取機に置いたまま、もう一度お試しください。"


class WrongPin(CardError):
    """The card refused the PIN; ``tries_left`` more wrong PINs lock the application."""

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"wrong PIN, {tries_left} tries left")
        self.tries_left = tries_left
        self.message_ja = f"暗証番号が違います。残り回数: {tries_left}回"


class CardBlocked(CardError):
    """The PIN is locked (status 69 83 or 69 84, or no tries left).

    ``by_this_attempt`` is true when the PIN just typed used the last try.
    """

    def __init__(self, detail: str = "PIN blocked", *, by_this_attempt: bool = False) -> None:
        super().__init__(detail)
        self.by_this_attempt = by_this_attempt
        lead = "暗証番号を3回続けて間違えたため、" if by_this_attempt else ""
        self.message_ja = (
            f"{lead}このカードの券面事項入力補助用暗証番号はロックされています。"
            "お住まいの市区町村の窓口で暗証番号の再設定を受けてください。"
        )


class UnexpectedStatus(CardError):
    """The card answered a status word the flow does not expect (e.g. not a My Number Card)."""

    def __init__(self, sw1: int, sw2: int, step: str) -> None:
        super().__init__(f"unexpected status {sw1:02X} {sw2:02X} at {step}")
        self.sw1 = sw1
        self.sw2 = sw2
        self.step = step
        self.message_ja = (
            "カードから予期しない応答がありました。マイナンバーカードか確認し、置き直してください。"
            f"（{step}: {sw1:02X}{sw2:02X}）"
        )


class MalformedCardData(CardError):
    """The card-face file does not have the expected TLV layout."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"malformed card data: {detail}")
        self.message_ja = "カードの記録内容を解釈できませんでした。職員にお知らせください。"


class InvalidPinFormat(CardError):
    """What was typed is not 4 digits. Nothing was sent to the card, so no try was used."""

    def __init__(self) -> None:
        super().__init__("the PIN must be 4 digits; nothing was sent to the card")
        self.message_ja = "暗証番号は数字4桁です。カードには送っていないので、残り回数は減っていません。"


# --- posting to the service --------------------------------------------------------------------


class PostError(AgentError):
    """The read could not be handed to the service. The read data was not kept anywhere."""


class DeviceTokenRejected(PostError):
    """401/403: the device token is wrong, unknown, or revoked by the administrator."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the service refused the device token (HTTP {status})")
        self.status = status
        self.message_ja = (
            "この端末のデバイストークンが無効か、失効しています。"
            "管理者に端末の登録またはトークンの再発行を依頼してください。"
            "（読み取った内容は保存していません）"
        )


class PostRejected(PostError):
    """Another 4xx, or an answer that is not 201 with an id: retrying would not help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the service rejected the read (HTTP {status}): {detail}")
        self.status = status
        self.message_ja = (
            f"サービスが読み取り結果を受け付けませんでした（HTTP {status}）。職員にお知らせください。"
        )


class ServiceUnreachable(PostError):
    """Network errors or 5xx on every attempt."""

    def __init__(self, attempts: int, last: str) -> None:
        super().__init__(f"could not reach the service after {attempts} attempts (last: {last})")
        self.attempts = attempts
        self.message_ja = (
            f"サービスに接続できませんでした（{attempts}回試行）。"
            "ネットワークを確認し、もう一度カードを置いてください。（読み取った内容は保存していません）"
        )


# --- configuration -----------------------------------------------------------------------------


class ConfigError(AgentError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.message_ja = f"設定に誤りがあります: {detail}"
