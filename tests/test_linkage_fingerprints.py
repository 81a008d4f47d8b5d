"""Fingerprints: duplicates and missing residents by binary search agree with the numpy set reference."""

from __future__ import annotations

import numpy as np

from app.linkage.fingerprints import Fingerprints


def test_duplicates_and_missing_agree_with_set_operations() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        keys = np.unique(rng.integers(0, 60, int(rng.integers(0, 50)))).astype(np.int64)
        resident = rng.random(len(keys)) < 0.7
        fingerprints = Fingerprints(np.zeros(len(keys), dtype=np.int64), keys, resident, 0)
        chunks = [rng.integers(-1, 60, int(rng.integers(0, 20))).astype(np.int64) for _ in range(3)]
        seen = np.zeros(0, dtype=np.int64)
        for chunk in chunks:  # as read() and skip() note them, chunk by chunk, asked in between
            fingerprints._seen.append(chunk)
            fingerprints._sorted = False
            seen = np.concatenate([seen, chunk])
            usable = seen[seen >= 0]
            values, counts = np.unique(usable, return_counts=True)
            assert fingerprints.duplicate_keys() == set(values[counts > 1].tolist())
            assert fingerprints.missing() == int(np.isin(keys[resident], seen, invert=True).sum())


def test_lookup_finds_current_rows_by_source_hash_and_skip_notes_their_keys() -> None:
    sources = np.array([0, 0, 11, 42, 97], dtype=np.int64)  # sorted; 0: rows without a source hash
    keys = np.array([500, 300, 100, 400, 200], dtype=np.int64)
    fingerprints = Fingerprints(sources, keys, np.ones(5, dtype=bool), 0)
    found = fingerprints.lookup(np.array([42, 5, 97, 11, 98], dtype=np.int64))
    assert found.tolist() == [3, -1, 4, 2, -1]
    fingerprints.skip(np.array([3, 4]))
    assert fingerprints.unchanged == 2
    assert fingerprints.seen().tolist() == [200, 400]
    assert fingerprints.missing() == 3
    empty = Fingerprints(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), 0)
    assert empty.lookup(np.array([1, 2], dtype=np.int64)).tolist() == [-1, -1]
