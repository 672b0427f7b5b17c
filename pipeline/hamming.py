"""Exact Hamming radius search over 64-bit hashes: every pair within distance t, for t up to ~12, at 10M hashes.

Multi-index hashing (Norouzi et al.): cut the 64 bits into m substrings and give substring s a radius r_s with
sum(r_s) >= t - m + 1.  Two hashes within t then lie within r_s on at least one substring s (else the distance would
be at least sum(r_s + 1) > t), so looking up every key within r_s of a query's substring, in a direct-address table
of all data keys, finds every pair; each candidate is checked with the full distance, and a pair is reported only
from the first substring that can find it, so no pair comes out twice and nothing needs a set.

The work is intrinsically large: for random hashes at t=8 (three ~21-bit substrings, radius 2) every query probes
~700 buckets and checks ~n/3000 candidates, billions at 10M hashes.  That is a tight loop over memory that numpy
cannot express without materialising every candidate, so the kernel is compiled with numba (``nogil``, so blocks of
queries run in parallel threads).  Queries go in order of their substring key, so the buckets they probe move
through memory in step.  Small inputs take a brute-force numpy path (no compilation).  Measured figures (against
the earlier banded search and faiss's IndexBinaryMultiHash) are in BENCHMARKS.md.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

BRUTE_MAX = 2048  # below this many data or query hashes, one numpy broadcast beats a table (and needs no compile)
_BLOCKS_PER_THREAD = 8  # query blocks per thread: a few more than threads, so one slow block does not idle the rest
_MAX_WIDTH = 24  # bits of a direct-address table (2^24 int64 offsets = 128 MB); so m >= 3 for 64-bit hashes
_PROBE_COST, _CHECK_COST = 3.0, 1.0  # relative cost of visiting a bucket and of checking one candidate in it


@njit(inline="always")
def _popcount(x):
    # LLVM turns this into one popcnt instruction on x86-64
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(nogil=True, cache=True)
def _bucket_sort(keys, width):
    """Counting sort of substring keys: (offsets of each of the 2^width buckets, positions in bucket order)."""
    offsets = np.zeros((1 << width) + 1, np.int64)
    for k in keys:
        offsets[k + 1] += 1
    for b in range(1 << width):
        offsets[b + 1] += offsets[b]
    fill = offsets[:-1].copy()
    order = np.empty(keys.size, np.int64)
    for i in range(keys.size):
        order[fill[keys[i]]] = i
        fill[keys[i]] += 1
    return offsets, order


@njit(nogil=True, cache=True)
def _probe(queries, query_ids, start, stop, shift, width, offsets, table_hashes, table_ids, flips, t,
           prior_shift, prior_width, prior_radius, upper_only):
    """Pairs (query id, data id) within t for queries[start:stop], found through one substring's table."""
    mask = np.uint64((1 << width) - 1)
    cap = 1024
    out_q = np.empty(cap, np.int64)
    out_d = np.empty(cap, np.int64)
    n = 0
    for a in range(start, stop):
        h = queries[a]
        qid = query_ids[a]
        key = np.int64((h >> np.uint64(shift)) & mask)
        for f in flips:
            k = key ^ f
            for p in range(offsets[k], offsets[k + 1]):
                x = h ^ table_hashes[p]
                if _popcount(x) > t:
                    continue
                j = table_ids[p]
                if upper_only and j <= qid:
                    continue
                seen = False  # an earlier substring's table reports this pair
                for s in range(prior_shift.size):
                    sub = (x >> np.uint64(prior_shift[s])) & np.uint64((1 << prior_width[s]) - 1)
                    if _popcount(sub) <= prior_radius[s]:
                        seen = True
                        break
                if seen:
                    continue
                if n == cap:
                    cap *= 2
                    grown_q, grown_d = np.empty(cap, np.int64), np.empty(cap, np.int64)
                    grown_q[:n], grown_d[:n] = out_q[:n], out_d[:n]
                    out_q, out_d = grown_q, grown_d
                out_q[n] = qid
                out_d[n] = j
                n += 1
    return out_q[:n], out_d[:n]


def _volume(bits: int, radius: int) -> int:
    return sum(math.comb(bits, k) for k in range(radius + 1))


def plan(t: int, n: int) -> list[tuple[int, int, int]]:
    """(shift, width, radius) per substring, for the number of substrings with the least modelled work."""
    best, best_cost = [], math.inf
    for m in range(math.ceil(64 / _MAX_WIDTH), 9):
        widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
        share, extra = divmod(max(0, t - m + 1), m)
        radii = [share + (1 if i < extra else 0) for i in range(m)]
        cost = sum(_volume(w, r) * (_PROBE_COST + _CHECK_COST * n / 2**w) for w, r in zip(widths, radii, strict=True))
        if cost < best_cost:
            shifts = np.cumsum([0, *widths[:-1]]).tolist()
            best, best_cost = list(zip(shifts, widths, radii, strict=True)), cost
    return best


def _flips(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for k in range(1, radius + 1):
        masks.extend(sum(1 << b for b in bits) for bits in itertools.combinations(range(width), k))
    return np.array(masks, dtype=np.int64)


def _brute(data: np.ndarray, queries: np.ndarray | None, t: int) -> tuple[np.ndarray, np.ndarray]:
    q = data if queries is None else queries
    out_q, out_d = [], []
    for start in range(0, len(q), 256):  # 256 x n distances at a time
        close = np.bitwise_count(q[start:start + 256, None] ^ data[None, :]) <= t
        a, b = np.nonzero(close)
        a += start
        if queries is None:
            a, b = a[b > a], b[b > a]
        out_q.append(a)
        out_d.append(b)
    if not out_q:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_q).astype(np.int64), np.concatenate(out_d).astype(np.int64)


def radius_pairs(data: np.ndarray, t: int, *, queries: np.ndarray | None = None,
                 threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every (query index, data index) with popcount(queries[q] ^ data[d]) <= t, each pair once, in no set order.

    Without ``queries`` the data is searched against itself and only pairs q < d come back.
    """
    data = np.ascontiguousarray(data, dtype=np.uint64)
    if queries is not None:
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
    nq = len(data) if queries is None else len(queries)
    if not len(data) or not nq:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if min(len(data), nq) <= BRUTE_MAX:
        return _brute(data, queries, t)
    threads = threads or max(1, os.cpu_count() or 1)
    found_q, found_d = [], []
    substrings = plan(t, len(data))
    with ThreadPoolExecutor(threads) as pool:
        for s, (shift, width, radius) in enumerate(substrings):
            q, d = _search_substring(pool, data, queries, substrings[:s], shift=shift, width=width, radius=radius,
                                     t=t, blocks=threads * _BLOCKS_PER_THREAD)
            found_q.extend(q)
            found_d.extend(d)
    return np.concatenate(found_q), np.concatenate(found_d)


def _keys(hashes: np.ndarray, shift: int, width: int) -> np.ndarray:
    return ((hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)


def _search_substring(pool, data, queries, prior, *, shift, width, radius, t, blocks):
    """One substring: its table over the data, then every query block probed in the thread pool."""
    keys = _keys(data, shift, width)
    offsets, order = _bucket_sort(keys, width)
    table_hashes = data[order]
    if queries is None:
        query_hashes, query_ids = table_hashes, order
    else:
        query_offsets, query_ids = _bucket_sort(_keys(queries, shift, width), width)
        del query_offsets
        query_hashes = queries[query_ids]
    prior_shift = np.array([p[0] for p in prior], np.int64)
    prior_width = np.array([p[1] for p in prior], np.int64)
    prior_radius = np.array([p[2] for p in prior], np.int64)
    flips = _flips(width, radius)
    bounds = np.linspace(0, len(query_hashes), blocks + 1).astype(np.int64)
    futures = [pool.submit(_probe, query_hashes, query_ids, bounds[b], bounds[b + 1], shift, width, offsets,
                           table_hashes, order, flips, t, prior_shift, prior_width, prior_radius, queries is None)
               for b in range(blocks)]
    results = [f.result() for f in futures]
    return [r[0] for r in results], [r[1] for r in results]
