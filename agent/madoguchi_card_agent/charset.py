"""Is a name writable in JIS X 0208?

The card stores names in UTF-8 and may use characters outside JIS X 0208 (𠮷, 髙, 﨑, IVS
variation selectors ...). The clerk's screen warns for such names that the card-face image holds the
true glyph, so the agent flags them. The check encodes each character with Python's ``iso2022_jp``
codec, whose repertoire is exactly ASCII + JIS X 0201 Roman + JIS X 0208 (1978/1983) — nothing more.
The other candidates each accept characters that are not in JIS X 0208:

- ``euc_jp`` also covers JIS X 0212 (e.g. 丨 U+4E28) and half-width katakana;
- ``euc_jis_2004`` / ``shift_jis_2004`` cover JIS X 0213 (e.g. 﨑 U+FA11);
- ``cp932`` covers the NEC/IBM extensions (髙 U+9AD9, 﨑);
- ``shift_jis`` accepts half-width katakana (JIS X 0201 kana is not JIS X 0208).

ASCII letters, digits and spaces pass (names of foreign residents in Latin letters are not a glyph
problem). Note the codec follows the JIS mapping, so the cp932-style code points U+FF5E ～ and
U+FF0D － count as outside; names do not use them.
"""

from __future__ import annotations


def chars_outside_jis0208(text: str) -> list[str]:
    """The distinct characters of ``text`` that JIS X 0208 (plus ASCII) cannot represent, in order."""
    seen: list[str] = []
    for ch in text:
        if ch in seen:
            continue
        try:
            ch.encode("iso2022_jp")
        except UnicodeEncodeError:
            seen.append(ch)
    return seen


def outside_jis0208(text: str) -> bool:
    return bool(chars_outside_jis0208(text))
