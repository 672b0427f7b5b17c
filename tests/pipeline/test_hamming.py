"""The Hamming radius search is exact: it equals brute force at every threshold the stage may use, with queries."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.hamming import BRUTE_MAX, plan, radius_pairs


def _neighbours(rng: np.random.Generator, base: np.ndarray, distance: int) -> np.ndarray:
    flips = np.zeros(len(base), np.uint64)
    short = np.arange(len(base))
    while short.size:
        flips[short] |= np.uint64(1) << rng.integers(0, 64, short.size).astype(np.uint64)
        short = short[np.bitwise_count(flips[short]) < distance]
    return base ^ flips


def _hashes(seed: int) -> np.ndarray:
    """Random hashes plus neighbours at every distance 0..14 of some of them, repeats and extreme values."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64 - 1, 1500, dtype=np.uint64, endpoint=True)
    parts = [base] + [_neighbours(rng, base[:300], d) for d in range(15)]
    parts.append(np.array([0, 0, 2**64 - 1, 1, 3, 2**63], np.uint64))
    return np.concatenate(parts)


def _brute(data: np.ndarray, queries: np.ndarray | None, t: int) -> set[tuple[int, int]]:
    q = data if queries is None else queries
    close = np.bitwise_count(q[:, None] ^ data[None, :]) <= t
    if queries is None:
        close = np.triu(close, 1)
    return set(zip(*(a.tolist() for a in np.nonzero(close)), strict=True))


@pytest.mark.parametrize("t", [0, 2, 4, 8, 10, 12])
def test_self_search_equals_brute_force(t: int) -> None:
    data = _hashes(t)
    assert len(data) > BRUTE_MAX  # the multi-index path, not the brute-force one
    i, j = radius_pairs(data, t)
    found = list(zip(i.tolist(), j.tolist(), strict=True))
    assert len(found) == len(set(found)), "a pair came out twice"
    assert set(found) == _brute(data, None, t)


@pytest.mark.parametrize("t", [4, 8, 11])
def test_query_search_equals_brute_force(t: int) -> None:
    data = _hashes(100 + t)
    queries = np.concatenate([data[::3] ^ np.uint64(0b1011), data[:2500][::-1]])
    qi, dj = radius_pairs(data, t, queries=queries)
    found = list(zip(qi.tolist(), dj.tolist(), strict=True))
    assert len(found) == len(set(found))
    assert set(found) == _brute(data, queries, t)


def test_plan_covers_every_pair_by_the_pigeonhole() -> None:
    for t in range(0, 16):
        for n in (10**4, 10**6, 10**7):
            substrings = plan(t, n)
            assert sum(w for _, w, _ in substrings) == 64
            assert sum(r + 1 for _, _, r in substrings) > t  # some substring is within its radius
