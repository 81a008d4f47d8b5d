"""Normalised forms for search: the same functions run at import (stored ``*_search`` columns) and on
the clerk's query, so both sides always agree.

- kana: NFKC (half-width → full-width), hiragana → katakana, no spaces;
- name: variation selectors (IVS) dropped, NFKC, the tenant's old/new character table
  (髙 → 高, 﨑 → 崎; tenants/_defaults/residents.yaml), no spaces;
- address: NFKC, no spaces, 丁目/番地/番/号 and dash variants → ``-``, without the tenant's own
  prefecture and city name, so "東淀川区豊新2-1" finds "大阪市東淀川区豊新2丁目1番4号".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_HIRAGANA_TO_KATAKANA = {c: c + 0x60 for c in range(0x3041, 0x3097)}
_SPACES = re.compile(r"\s+")
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_KANA_ALLOWED = re.compile(r"^[\u30a0-\u30ff\u3041-\u3096\s・ー]*$")
# Lookbehind instead of groups: a constant replacement keeps re.sub on its fast path.
_SEPARATORS = re.compile(r"(?<=\d)(?:\s*[-‐‑‒–—―−ｰー]\s*|丁目|番地の?|番の?|の)(?=\d)")
_TRAILING_UNIT = re.compile(r"(?<=\d)(?:丁目|番地|番|号)$")


def normalize_kana(text: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).translate(_HIRAGANA_TO_KATAKANA)


def is_kana(text: str) -> bool:
    """Katakana or hiragana (any width), spaces, ・ and ー only."""
    return bool(_KANA_ALLOWED.match(unicodedata.normalize("NFKC", text)))


@lru_cache(maxsize=64)
def _variant_table(pairs: tuple[tuple[str, str], ...]) -> dict[int, str]:
    return {ord(old): new for old, new in pairs}


def variant_key(name_variants: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(name_variants.items()))


def normalize_name(text: str, variants: tuple[tuple[str, str], ...] = ()) -> str:
    folded = unicodedata.normalize("NFKC", _VARIATION_SELECTORS.sub("", text))
    return _SPACES.sub("", folded).translate(_variant_table(variants))


def normalize_address(text: str, strip_prefixes: tuple[str, ...] = ()) -> str:
    value = _SPACES.sub("", unicodedata.normalize("NFKC", text))
    for prefix in strip_prefixes:
        if prefix and value.startswith(prefix):
            value = value[len(prefix) :]
    value = _SEPARATORS.sub("-", value)
    return _TRAILING_UNIT.sub("", value)
