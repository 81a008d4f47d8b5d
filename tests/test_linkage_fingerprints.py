"""Fingerprints: which records the reader may skip, and how often each resident was skipped."""

from __future__ import annotations

import numpy as np

from app.linkage.fingerprints import Fingerprints, atena_key, atena_of_key


def fingerprints(sources: list[int]) -> Fingerprints:
    return Fingerprints(np.array(sources, dtype=np.int64), np.zeros(0, dtype=np.int64), len(sources), 0)


def test_lookup_finds_current_rows_by_source_hash_and_never_a_row_without_one() -> None:
    found = fingerprints([0, 0, 11, 42, 97])  # sorted; 0: rows without a source hash
    assert found.lookup(np.array([42, 5, 97, 11, 98, 0], dtype=np.int64)).tolist() == [3, -1, 4, 2, -1, -1]
    assert fingerprints([]).lookup(np.array([1, 2], dtype=np.int64)).tolist() == [-1, -1]


def test_lookup_agrees_with_a_plain_search_in_any_order() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        sources = np.sort(rng.integers(1, 80, int(rng.integers(1, 40))))
        index = fingerprints(sources.tolist())
        needles = rng.integers(1, 90, int(rng.integers(0, 30))).astype(np.int64)
        found = index.lookup(needles)
        for needle, at in zip(needles.tolist(), found.tolist(), strict=True):
            assert (at >= 0) == (needle in sources)
            assert at < 0 or sources[at] == needle


def test_skips_are_counted_per_resident_up_to_255() -> None:
    index = fingerprints([11, 42, 97])
    index.skip(np.array([1, 2], dtype=np.int64))
    assert index.matched.tolist() == [0, 1, 1]
    index.skip(np.array([2] * 300 + [0], dtype=np.int64))  # one line 300 times: never wraps to 0
    assert index.matched.tolist() == [1, 1, 255]
    index.skip(np.array([2, 1], dtype=np.int64))
    assert index.matched.tolist() == [1, 2, 255]
    assert index.unchanged == 305
    assert index.people == 3


def test_atena_keys_keep_leading_zeros_apart() -> None:
    assert atena_key(" 019 ") != atena_key("19")
    assert [atena_of_key(atena_key(a)) for a in ("019", "19", "0000000000000001")] == [
        "019",
        "19",
        "0000000000000001",
    ]
    assert [atena_key(a) for a in ("", "１２", "12a", "1" * 17)] == [-1, -1, -1, -1]
