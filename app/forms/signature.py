"""Signatures from the pen tablet (電子サイン): checked before they are attached to an application.

The tablet sends the canvas as a PNG data URL. Only a real, bounded, non-blank PNG is accepted: the
image is decoded (not just its header read), so a crafted file is refused here rather than inside
the PDF renderer.
"""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 512 * 1024
MAX_SIDE = 2400
MIN_INK_PIXELS = 30  # a dot or a stray touch is not a signature
_PREFIX = "data:image/png;base64,"


class SignatureError(ValueError):
    """Why a signature image was refused (Japanese, for the signer and the clerk)."""


def decode_signature(data: str | bytes) -> bytes:
    """The PNG bytes of a signature sent as a data URL (or raw PNG bytes); raises SignatureError."""
    if isinstance(data, str):
        if not data.startswith(_PREFIX):
            raise SignatureError("署名の画像形式が正しくありません（PNG のみ）")
        if len(data) > MAX_BYTES * 4 // 3 + len(_PREFIX) + 4:
            raise SignatureError("署名の画像が大きすぎます")
        try:
            raw = base64.b64decode(data[len(_PREFIX) :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError("署名の画像を読み取れません") from exc
    else:
        raw = data
    check_signature(raw)
    return raw


def check_signature(png: bytes) -> None:
    if len(png) > MAX_BYTES:
        raise SignatureError("署名の画像が大きすぎます")
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise SignatureError("署名の画像形式が正しくありません（PNG のみ）")
    try:
        # A header may claim any size: Pillow refuses huge ones while opening, before the size check
        # below can (sizes it only warns about reach that check; where warnings are errors, as in
        # the tests, the warning is the same refusal). Not a server error either way.
        opened = Image.open(io.BytesIO(png))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SignatureError("署名の画像の大きさが正しくありません") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise SignatureError("署名の画像を読み取れません") from exc
    try:
        with opened as image:
            if image.format != "PNG" or max(image.size) > MAX_SIDE or min(image.size) < 20:
                raise SignatureError("署名の画像の大きさが正しくありません")
            image.load()
            ink = _ink_pixels(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise SignatureError("署名の画像を読み取れません") from exc
    if ink < MIN_INK_PIXELS:
        raise SignatureError("署名がありません。枠の中に署名してください")


def _ink_pixels(image: Image.Image) -> int:
    """Pixels with ink: opaque and dark (the tablet draws dark strokes on a transparent canvas)."""
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A").point(lambda a: 255 if a > 64 else 0)
    dark = rgba.convert("L").point(lambda v: 255 if v < 160 else 0)
    mask = Image.composite(dark, Image.new("L", rgba.size, 0), alpha)
    return int(mask.histogram()[255])
