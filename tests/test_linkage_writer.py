"""The layout writer (app.linkage.writer): a tenant's file dialect from standard-column rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from app.dates.japanese import JapaneseDate, parse
from app.linkage.config import STANDARD, ResidentsLayout
from app.linkage.writer import LayoutWriter, format_date, write_rows

IVS_KATSURAGI = "葛\U000e0100城"


def test_writer_quoting_header_and_dates(tmp_path: Path) -> None:
    layout = ResidentsLayout(
        variant="t",
        encoding="utf-8",
        delimiter="\t",
        header=False,
        date_style="wareki",
        columns={"氏名": "NAME"},
    )
    path = tmp_path / "x.tsv"
    rows = [
        {"宛名番号": "1", "氏名": 'a\tb"c', "方書": "x,y\nz", "生年月日": dt.date(2019, 5, 1)},
        {"宛名番号": "2", "生年月日": parse("昭和50年 月日不詳", "wareki"), "世帯内順": 3},
    ]
    stats = write_rows(rows, layout, path)
    assert stats.rows == 2
    table = list(csv.reader(io.StringIO(path.read_text(), newline=""), delimiter="\t"))
    assert table[0][0] == "1"
    assert table[0][3] == 'a\tb"c'
    assert table[0][12] == "x,y\nz"
    assert table[0][7] == "令和元年5月1日"
    assert table[1][7] == "昭和50年 月日不詳"
    assert table[1][2] == "3"
    assert path.read_bytes().count(b"\r\n") == 2  # CRLF between records, the LF inside a field kept


def test_writer_date_styles() -> None:
    day = dt.date(2026, 5, 1)
    assert format_date(day, "iso") == "2026-05-01"
    assert format_date(day, "wareki") == "令和8年5月1日"
    assert format_date(day, "era_code") == "R080501"
    uncertain = parse("昭和50年5月 日不詳", "wareki")
    assert format_date(uncertain, "iso") == "1975-05-01"
    assert format_date(uncertain, "era_code") == "S500500"
    assert parse(format_date(uncertain, "era_code"), "era_code").qualifier == "日不詳"
    unknown = JapaneseDate("年月日不詳", None, None, None, None, "年月日不詳", None)
    with pytest.raises(ValueError, match="ISO"):
        format_date(unknown, "iso")


def test_writer_cp932_without_gaiji_entry_is_lossy_and_says_so(tmp_path: Path) -> None:
    layout = ResidentsLayout(variant="t", encoding="cp932")
    stats = write_rows([{"氏名": "𠮷田\u3000" + IVS_KATSURAGI + "①"}], layout, tmp_path / "x.csv")
    assert (stats.replaced, stats.selectors_dropped, stats.gaiji) == (1, 1, 0)
    assert stats.path.read_bytes().decode("cp932").splitlines()[1].split(",")[3] == "〓田\u3000葛城①"


def test_writer_bom_once_and_atomic(tmp_path: Path) -> None:
    layout = STANDARD.residents.model_copy(update={"encoding": "utf-8-sig"})
    path = tmp_path / "many.csv"
    stats = write_rows(({"宛名番号": str(i)} for i in range(5000)), layout, path)
    assert path.read_bytes().count(b"\xef\xbb\xbf") == 1
    assert stats.rows == 5000
    assert not (tmp_path / "many.csv.part").exists()

    def broken() -> Any:
        yield {"宛名番号": "1"}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_rows(broken(), layout, tmp_path / "broken.csv")
    assert list(tmp_path.glob("broken*")) == []
    with LayoutWriter(STANDARD.attributes, tmp_path / "a.csv") as writer:
        writer.write({"宛名番号": "1", "項目": "国保", "値": "加入", "開始日": dt.date(2026, 4, 1)})
    assert writer.stats is not None
    assert writer.stats.rows == 1
    assert (tmp_path / "a.csv").read_text().splitlines()[1] == "1,国保,加入,2026-04-01,"


def test_text_encoder_replaces_each_unencodable_character_once_per_occurrence() -> None:
    from app.linkage.config import Layout
    from app.linkage.writer import TextEncoder

    encoder = TextEncoder(Layout(variant="t", encoding="cp932", gaiji={}))
    text = "𠮷田]^\\-𠮷😀" + IVS_KATSURAGI + "\r\n"
    assert encoder.encode(text, final=True).decode("cp932") == "〓田]^\\-〓〓葛城\r\n"
    assert (encoder.replaced, encoder.selectors_dropped) == (3, 1)
