"""Skip what did not change: a nightly full extract is ~99 % identical to the previous one.

Before staging, the importer loads the source hash of every resident: the salted hash of the
record's bytes as delivered (``app.linkage.reader.SourceHashing``), stored with the row when it was
made from them. The reader hashes each record's raw bytes before it decodes or parses them; a record
whose hash is a current row's is skipped there, so an unchanged record costs one hash and a binary
search (numpy, a block of lines at a time).

Memory is ~9 bytes per resident (the sorted hashes and a skip count each) and nothing per line of
the file: what a full extract must also know about all its records (a 宛名番号 given twice, residents
it does not mention) is settled after staging from the skip counts, the staging table and the few
rejected records, with the residents' details asked of PostgreSQL in chunks.

A row without a source hash (made by a changes file, or before source hashes existed) or one made
under other rules (another layout, 外字 map or era table: they are part of the hash's key) is read,
validated and staged again; applying it then only records its source hash when nothing changed.
"""

from __future__ import annotations

from array import array

import numpy as np
from sqlalchemy.orm import Session

from app.db import imports as sql
from app.linkage.reader import Record

MAX_DIGITS = 16  # key = 宛名番号 × 100 + length must fit a bigint


def atena_key(atena: str) -> int:
    """宛名番号 as a number that keeps leading zeros apart (019 ≠ 19); -1 if it has none usable."""
    atena = atena.strip()
    if not atena or len(atena) > MAX_DIGITS or not atena.isdigit() or not atena.isascii():
        return -1
    return int(atena) * 100 + len(atena)


def atena_of_key(key: int) -> str:
    return str(key // 100).zfill(key % 100)


class Fingerprints:
    """The tenant's residents as a full extract's import needs them.

    ``sources``: every resident's source hash, sorted (0: the row has none, never looked up);
    ``departed``: the source hashes of residents whose status is no longer 住民; ``residents``: how
    many still have status 住民.
    """

    def __init__(self, sources: np.ndarray, departed: np.ndarray, residents: int, atena_column: int):
        self.sources = sources
        self.departed = departed
        self.residents = residents
        self.atena_column = atena_column
        self.matched = np.zeros(len(sources), dtype=np.uint8)  # times skipped (at most 255 counted)
        self.unchanged = 0
        self._rejected = array("q")  # keys of the records read and rejected (usually none)
        self.duplicates: set[str] = set()  # set by settle()
        self.missing = 0

    @property
    def people(self) -> int:
        """Rows in the residents table (of any status)."""
        return len(self.sources)

    # --- SourceIndex (the reader skips what these find) ---------------------------------------

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        if not len(self.sources):
            return np.full(len(hashes), -1, dtype=np.int64)
        # Sorted needles: each binary search starts where the previous one ended, so a block's
        # searches touch the big array's cache lines in order (~3x faster at Osaka's size).
        order = np.argsort(hashes)
        needles = hashes[order]
        at = np.minimum(np.searchsorted(self.sources, needles), len(self.sources) - 1)
        found = np.empty(len(hashes), dtype=np.int64)
        found[order] = np.where((self.sources[at] == needles) & (needles != 0), at, -1)
        return found

    def skip(self, positions: np.ndarray) -> None:
        self.unchanged += len(positions)
        where, times = np.unique(positions, return_counts=True)
        self.matched[where] = np.minimum(self.matched[where].astype(np.int64) + times, 255)

    # --- records read -----------------------------------------------------------------------

    def note_rejected(self, record: Record) -> None:
        """A record read but not staged still names its person (for duplicates and missing)."""
        if self.atena_column < len(record.values):
            key = atena_key(record.values[self.atena_column])
            if key >= 0:
                self._rejected.append(key)

    def settle(self, session: Session, batch_id: int, few: bool = False) -> None:
        """After staging, before applying: find the 宛名番号 the file gives more than once and count
        the residents (status 住民) it does not mention, over skipped, staged and rejected records.
        ``few``: the records read are a small part of the residents (see ``apply_residents``)."""
        rejected = [atena_of_key(k) for k in self._rejected]
        duplicates = set(sql.staged_duplicate_atena(session, batch_id, rejected))
        twice = np.flatnonzero(self.matched >= 2)
        held_back = int(self.matched[twice].sum(dtype=np.int64))  # skipped lines of duplicates
        if len(twice):  # the very same line twice
            duplicates.update(sql.atena_with_sources(session, self.sources[twice].tolist()))
        # Residents (status 住民) the file mentions: those skipped, less those skipped who had left,
        # plus those a read record names without their line having been skipped as well.
        skipped = int(np.count_nonzero(self.matched))
        skipped_departed = 0
        if len(self.departed):
            at = self.lookup(self.departed)
            skipped_departed = int(np.count_nonzero(self.matched[at[at >= 0]]))
        named_only = 0
        for chunk in sql.residents_named(session, batch_id, sorted(set(rejected)), few):
            at = self.lookup(chunk["source"])
            times = np.zeros(len(chunk), dtype=np.int64)
            times[at >= 0] = self.matched[at[at >= 0]]
            also_skipped = times > 0  # named by a read record and by a skipped line: a duplicate
            duplicates.update(atena_of_key(int(k)) for k in chunk["key"][also_skipped])
            held_back += int(times[times == 1].sum())  # (skipped twice or more: counted above)
            named_only += int(np.count_nonzero(~also_skipped & chunk["resident"].astype(bool)))
        self.duplicates = duplicates
        self.missing = self.residents - (skipped - skipped_departed) - named_only
        self.unchanged -= held_back  # rejected with the other copies, not applied unchanged
