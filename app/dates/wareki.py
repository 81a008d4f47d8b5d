"""和暦 formatting from the era table (``eras.yaml``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

ERAS_FILE = Path(__file__).with_name("eras.yaml")


@dataclass(frozen=True)
class Era:
    name: str
    letter: str
    start: dt.date


@lru_cache(maxsize=1)
def eras() -> tuple[Era, ...]:
    rows = yaml.safe_load(ERAS_FILE.read_text(encoding="utf-8"))
    table = tuple(Era(r["name"], r["letter"], dt.date.fromisoformat(r["start"])) for r in rows)
    if list(table) != sorted(table, key=lambda e: e.start):
        raise ValueError(f"{ERAS_FILE}: eras must be in date order")
    return table


def era_of(day: dt.date) -> tuple[Era, int]:
    """(era, year within the era) for a Gregorian date on or after 明治元年."""
    for era in reversed(eras()):
        if day >= era.start:
            return era, day.year - era.start.year + 1
    raise ValueError(f"{day.isoformat()} is before the first era in the table")


def format_wareki(day: dt.date, *, gannen: bool = True, weekday: bool = False) -> str:
    """令和8年11月21日 (元年 for year 1 unless ``gannen=False``), optionally with （土）."""
    era, year = era_of(day)
    year_text = "元" if year == 1 and gannen else str(year)
    text = f"{era.name}{year_text}年{day.month}月{day.day}日"
    if weekday:
        text += "（" + "月火水木金土日"[day.weekday()] + "）"
    return text
