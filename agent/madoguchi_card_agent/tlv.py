"""BER-TLV as the card-face files use it: multi-byte tags (FF 20, DF 21 ...) and definite lengths
in short form (< 0x80) or long form 81 xx / 82 xx xx. Anything else is malformed."""

from __future__ import annotations

from collections.abc import Iterator

from .errors import MalformedCardData


def read_tag(buf: bytes, pos: int) -> tuple[int, int]:
    """Return (tag as an integer of its bytes, position after the tag)."""
    if pos >= len(buf):
        raise MalformedCardData("tag expected, data ended")
    first = buf[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:  # tag number in the following bytes, b8 = "more follows"
        while True:
            if pos >= len(buf):
                raise MalformedCardData("multi-byte tag cut short")
            b = buf[pos]
            tag = (tag << 8) | b
            pos += 1
            if not b & 0x80:
                break
            if tag > 0xFFFFFF:
                raise MalformedCardData("tag longer than 3 bytes")
    return tag, pos


def read_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Return (length, position after the length field)."""
    if pos >= len(buf):
        raise MalformedCardData("length expected, data ended")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    if first == 0x81:
        if pos + 2 > len(buf):
            raise MalformedCardData("81 length cut short")
        value = buf[pos + 1]
        if value < 0x80:
            raise MalformedCardData("81 length below 0x80 (must be short form)")
        return value, pos + 2
    if first == 0x82:
        if pos + 3 > len(buf):
            raise MalformedCardData("82 length cut short")
        value = (buf[pos + 1] << 8) | buf[pos + 2]
        if value < 0x100:
            raise MalformedCardData("82 length below 0x100 (must be 81 or short form)")
        return value, pos + 3
    if first == 0x80:
        raise MalformedCardData("indefinite length is not used on the card")
    raise MalformedCardData(f"length form {first:02X} is not supported")


def header_size(buf: bytes) -> tuple[int, int]:
    """For the start of a TLV: (size of tag + length fields, length of the value)."""
    _tag, pos = read_tag(buf, 0)
    length, pos = read_length(buf, pos)
    return pos, length


def iter_tlv(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """Each (tag, value) in ``buf``, which must be exactly a sequence of TLVs."""
    pos = 0
    while pos < len(buf):
        tag, pos = read_tag(buf, pos)
        length, pos = read_length(buf, pos)
        end = pos + length
        if end > len(buf):
            raise MalformedCardData(f"value of tag {tag:X} runs past the end ({length} bytes at {pos})")
        yield tag, buf[pos:end]
        pos = end


def parse_single(buf: bytes, expected_tag: int) -> bytes:
    """The value of the one TLV in ``buf`` (bytes after it are ignored: files may be padded)."""
    tag, pos = read_tag(buf, 0)
    if tag != expected_tag:
        raise MalformedCardData(f"expected tag {expected_tag:X}, found {tag:X}")
    length, pos = read_length(buf, pos)
    if pos + length > len(buf):
        raise MalformedCardData(f"tag {tag:X} declares {length} bytes, {len(buf) - pos} present")
    return buf[pos : pos + length]


def encode_length(n: int) -> bytes:
    """BER definite length (used by the tests' card emulator and fakes)."""
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return bytes([0x82, n >> 8, n & 0xFF])
    raise ValueError("length above 65535")


def encode_tlv(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    return tag_bytes + encode_length(len(value)) + value
