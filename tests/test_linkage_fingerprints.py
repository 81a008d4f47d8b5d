"""Fingerprints: duplicates and missing residents by binary search agree with the numpy set reference."""

from __future__ import annotations

import numpy as np

from app.linkage.fingerprints import Fingerprints


def test_duplicates_and_missing_agree_with_set_operations() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        keys = np.unique(rng.integers(0, 60, int(rng.integers(0, 50)))).astype(np.int64)
        resident = rng.random(len(keys)) < 0.7
        fingerprints = Fingerprints(keys, np.zeros(len(keys), dtype=np.int64), resident, 0)
        chunks = [rng.integers(-1, 60, int(rng.integers(0, 20))).astype(np.int64) for _ in range(3)]
        seen = np.zeros(0, dtype=np.int64)
        for chunk in chunks:  # as changed() records them, chunk by chunk, asked in between
            fingerprints._seen.append(chunk)
            fingerprints._sorted = False
            seen = np.concatenate([seen, chunk])
            usable = seen[seen >= 0]
            values, counts = np.unique(usable, return_counts=True)
            assert fingerprints.duplicate_keys() == set(values[counts > 1].tolist())
            assert fingerprints.missing() == int(np.isin(keys[resident], seen, invert=True).sum())
