"""Source hashes: a full extract's unchanged records are skipped before they are decoded or parsed,
and never where that would change what is stored (another 外字 map, a changes file in between, rows
from before source hashes existed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from app.linkage import reader
from app.linkage.config import Layout
from app.linkage.reader import Record, SourceHashing, read_records
from app.residents.models import Resident
from app.tenancy.service import registry
from tests.conftest import tenant_session
from tests.linkage_files import number, person, write
from tests.test_linkage_import import family, full, layout, residents, run

KEY = b"k" * 16
COLUMNS = ("a", "b", "c")


class Known:
    """A SourceIndex holding the given hashes (position = order given)."""

    def __init__(self, hashes: list[int]):
        self.hashes = np.array(hashes, dtype=np.int64)
        self.skipped: list[int] = []

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        found = [int(np.flatnonzero(self.hashes == h)[0]) if h in self.hashes else -1 for h in hashes]
        return np.array(found, dtype=np.int64)

    def skip(self, positions: np.ndarray) -> None:
        self.skipped.extend(positions.tolist())


def read(data: bytes, index: Known | None = None) -> tuple[list[Record], SourceHashing]:
    hashing = SourceHashing(KEY)
    _, records = read_records(io.BytesIO(data), Layout(variant="t"), COLUMNS, frozenset(), None, hashing)
    hashing.index = index  # set after the header, as the importer does
    return list(records), hashing


# The second record spans three physical lines; its middle line has the very bytes of record 1.
FILE = b'a,b,c\n1,2,3\nz,y,"foo\n1,2,3\nbar"\n4,5,6\n'


# Blocks of the whole file, of about a line (the index is there from the second block on, so runs
# of known lines are skipped in bulk), and of a few bytes (lines and records span blocks).
BLOCKS = [1 << 18, 12, 5]


@pytest.mark.parametrize("block", BLOCKS)
def test_skipped_records_keep_the_numbering_and_a_quoted_line_break_is_never_split(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "BLOCK", block)
    everything, hashing = read(FILE)
    assert [(r.number, r.line, r.values) for r in everything] == [
        (1, 2, ["1", "2", "3"]),
        (2, 3, ["z", "y", "foo\n1,2,3\nbar"]),
        (3, 6, ["4", "5", "6"]),
    ]
    assert hashing.records == 3
    hashes = [r.source_hash for r in everything]
    assert all(hashes)
    assert len(set(hashes)) == 3

    index = Known([hashes[0], hashes[2]])  # hashes[0] is also the hash of line 4, mid-record
    read_now, hashing = read(FILE, index)
    assert [(r.number, r.line, r.values, r.source_hash) for r in read_now] == [
        (2, 3, ["z", "y", "foo\n1,2,3\nbar"], hashes[1])
    ]
    assert sorted(index.skipped) == [0, 1]
    assert hashing.records == 3


def test_the_header_is_part_of_a_source_hash() -> None:
    reordered = b"b,a,c\n2,1,3\n"
    first, _ = read(b"a,b,c\n2,1,3\n")
    second, _ = read(reordered)
    assert first[0].source_hash != second[0].source_hash  # same bytes, other columns


@pytest.mark.parametrize("block", [1 << 18, 200])
def test_a_nightly_full_extract_skips_what_it_applied_and_reads_what_changed(
    committed: object, tmp_path: Path, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "BLOCK", block)
    rows = family() + [person(4 + i, 910 + i, 氏名=f"住民　{i}") for i in range(10)]
    assert run("gobo", full(tmp_path, "gobo", rows)).status == "applied"
    assert all(r.source_hash is not None for r in residents("gobo").values())
    rows[4]["方書"] = "コーポ御坊 201"
    outcome = run("gobo", full(tmp_path, "gobo", rows, name="GOBO_JUKI_ZEN_20261122.csv"))
    assert outcome.status == "applied", outcome.rejections
    assert (outcome.rows_read, outcome.counts) == (
        13,
        {"inserted": 0, "updated": 1, "unchanged": 12, "missing": 0},
    )
    assert residents("gobo")[rows[4]["宛名番号"]].address_extra == "コーポ御坊 201"


def test_a_corrected_gaiji_map_reaches_rows_whose_bytes_did_not_change(
    committed: object, tmp_path: Path
) -> None:
    rows = [
        person(1, 50, 氏名="\ue000田　太郎", 住所="大阪市東淀川区豊新1丁目"),
        person(2, 51, 氏名="大阪　花子", 住所="大阪市北区梅田1丁目"),
    ]
    assert run("osaka", full(tmp_path, "osaka", rows)).status == "applied"
    assert residents("osaka")[number(1)].name == "𠮷田　太郎"
    record = registry.get("osaka")
    assert record is not None
    gaiji = registry.config(record).linkage.residents.gaiji
    before = dict(gaiji)
    gaiji["\ue000"] = "吉"  # the ward corrects its 外字 table
    try:
        rows[1]["方書"] = "梅田ハイツ 3階"  # the next night's file differs somewhere else
        outcome = run("osaka", full(tmp_path, "osaka", rows, name="JUKI_FULL_20261122.csv"))
    finally:
        gaiji.clear()
        gaiji.update(before)
    assert outcome.status == "applied", outcome.rejections
    assert outcome.counts["updated"] == 2
    assert residents("osaka")[number(1)].name == "吉田　太郎"


def test_a_row_a_changes_file_made_is_read_again_by_the_next_full_extract(
    committed: object, tmp_path: Path
) -> None:
    rows = family()
    assert run("gobo", full(tmp_path, "gobo", rows)).status == "applied"
    moved = dict(rows[2], 住所="和歌山県御坊市薗100番地", 異動事由="転居", 異動日="2026-11-20")
    changes = run("gobo", write(tmp_path / "GOBO_JUKI_IDO_20261121.csv", [moved], layout("gobo")))
    assert changes.status == "applied", changes.rejections
    assert residents("gobo")[number(3)].source_hash is None  # its values came from other bytes

    # The next full extract carries the same values for the moved child: read, nothing to update.
    rows[2] = moved
    outcome = run("gobo", full(tmp_path, "gobo", rows, name="GOBO_JUKI_ZEN_20261122.csv"))
    assert outcome.status == "applied", outcome.rejections
    assert outcome.counts == {"inserted": 0, "updated": 0, "unchanged": 3, "missing": 0}
    assert residents("gobo")[number(3)].source_hash is not None  # skipped unread from now on


def test_rows_from_before_source_hashes_get_them_without_being_counted_as_updates(
    committed: object, tmp_path: Path
) -> None:
    rows = family()
    assert run("yamaguchi", full(tmp_path, "yamaguchi", rows)).status == "applied"
    with tenant_session("yamaguchi") as session:  # as migration t0012 leaves existing rows
        session.execute(update(Resident).values(source_hash=None))
        session.commit()
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", rows[::-1], name="full-2.tsv"))
    assert outcome.status == "applied", outcome.rejections
    assert outcome.counts == {"inserted": 0, "updated": 0, "unchanged": 3, "missing": 0}
    with tenant_session("yamaguchi") as session:
        assert None not in session.scalars(select(Resident.source_hash)).all()
