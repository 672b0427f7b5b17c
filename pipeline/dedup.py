"""Global deduplication on the client, vectorised with numpy: exact (same pixels), near (pHash) and across runs.

Only a few fixed-width fields per row travel to the client (key, pHash, pixel hash, the keep-rule fields), never
image bytes, so a million rows is ~100 MB and a few seconds.  Near duplicates use pigeonhole banding: with the 64
bits cut into t+1 bands, two hashes within Hamming distance t agree exactly on at least one band, so sorting by
each band and comparing neighbours inside equal runs finds every pair (then the full distance is checked).  The
comparison walks offsets d = 1, 2, ... keeping only positions whose run is still longer than d, so the work is
proportional to the number of candidate pairs, not to n times the longest run.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import numpy as np

from data_schemas import reasons

NULL_TIME = np.iinfo(np.int64).max  # nulls sort last in the keep rule


def bands(threshold: int, bits: int = 64) -> list[tuple[int, int]]:
    """(shift, width) of t+2 contiguous bands, as even as possible."""
    n = threshold + 2
    widths = [bits // n + (1 if i < bits % n else 0) for i in range(n)]
    out, shift = [], bits
    for w in widths:
        shift -= w
        out.append((shift, w))
    return out


def _band_pair_keys(hashes: np.ndarray, threshold: int):
    """Pigeonhole keys: with t+2 bands and at most t differing bits, some *pair* of bands is identical.

    (Plain t+1 bands give 13-bit keys for t=4: a million hashes then make ~300M candidate pairs.  Pairs of t+2
    bands give ~21-bit keys: C(t+2, 2) = 15 sorts but only ~2M candidates, ten times faster overall.)  Each key is
    the two bands' bits packed into one small integer, which sorts faster than the masked 64-bit value.
    """
    for (sa, wa), (sb, wb) in itertools.combinations(bands(threshold), 2):
        a = (hashes >> np.uint64(sa)) & np.uint64((1 << wa) - 1)
        b = (hashes >> np.uint64(sb)) & np.uint64((1 << wb) - 1)
        key = (a << np.uint64(wb)) | b
        yield key.astype(np.uint32) if wa + wb <= 32 else key


def near_pairs(hashes: np.ndarray, threshold: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Every index pair (i < j) with popcount(h[i] ^ h[j]) <= threshold, found by banding; pairs are unique."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = hashes.size
    found_i, found_j = [], []
    for key in _band_pair_keys(hashes, threshold):
        order = np.argsort(key)
        sorted_key, sorted_hash = key[order], hashes[order]
        active = np.flatnonzero(sorted_key[:-1] == sorted_key[1:]) if n > 1 else np.empty(0, np.int64)
        d = 1
        while active.size:
            close = active[np.bitwise_count(sorted_hash[active] ^ sorted_hash[active + d]) <= threshold]
            a, b = order[close], order[close + d]
            found_i.append(np.minimum(a, b))
            found_j.append(np.maximum(a, b))
            d += 1
            active = active[active + d < n]
            active = active[sorted_key[active] == sorted_key[active + d]]
    if not found_i:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pairs = np.unique(np.concatenate(found_i).astype(np.int64) * n + np.concatenate(found_j))
    return pairs // n, pairs % n


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of n nodes with edges (a, b): label = the smallest node index in the component.

    Vectorised union-find: hook every edge's larger root under its smaller root, then pointer-jump to the roots;
    repeat until no edge joins two roots.  Each round removes at least one root, in practice a few rounds suffice.
    """
    parent = np.arange(n, dtype=np.int64)
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    while a.size:
        ra, rb = parent[a], parent[b]
        apart = ra != rb
        if not apart.any():
            break
        a, b, ra, rb = a[apart], b[apart], ra[apart], rb[apart]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return parent


def group_edges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining every row to the first row with an equal value (rows of an (n, k) array compare as tuples)."""
    order = np.lexsort(values.T[::-1]) if values.ndim > 1 else np.argsort(values, kind="stable")
    return _run_edges(values[order], order)


def _run_edges(sorted_values: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Given values sorted by ``order`` (stable), join each row to the first row of its run of equal values."""
    n = len(order)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    same = np.zeros(n, bool)
    eq = sorted_values[1:] == sorted_values[:-1]
    same[1:] = eq.all(axis=1) if eq.ndim > 1 else eq
    first = order[_heads(np.cumsum(~same))]
    rows = np.flatnonzero(same)
    return order[rows].astype(np.int64), first[rows].astype(np.int64)


def exact_key(sha256_hex) -> np.ndarray:
    """(n, 2) uint64 exact-duplicate keys: the first 128 bits of each image's sha256 (hex strings or bytes).

    The stored JPEG is a deterministic encoding of the normalised pixels, so equal pixels give equal bytes; the key
    is derived, never stored, so it cannot disagree with the `sha256` column it comes from."""
    heads = np.asarray(sha256_hex, dtype="S64").astype("S32")  # the first 32 hex digits of each
    return np.frombuffer(bytes.fromhex(heads.tobytes().decode()), dtype=">u8").astype(np.uint64).reshape(-1, 2)


@dataclass
class DedupInput:
    """One row per candidate: new rows first (in a deterministic order), then the previous runs' kept rows."""

    keys: np.ndarray  # str
    phash: np.ndarray  # uint64
    exact: np.ndarray  # (n, 2) uint64: the exact-duplicate key, `exact_key(sha256)`
    pixels: np.ndarray  # int64, original_width * original_height
    caption_rank: np.ndarray  # int64, index in CAPTION_PREFERENCE
    published: np.ndarray  # int64 (ns), NULL_TIME for null
    crawled: np.ndarray  # int64 (ns)
    old: np.ndarray  # bool: kept by an earlier run
    old_cluster: np.ndarray  # str: the earlier run's cluster id ("" for new rows)


@dataclass
class DedupResult:
    keep: np.ndarray  # bool per row (old rows are always kept)
    reason: np.ndarray  # object: a reasons.* name for dropped rows, "" otherwise
    cluster: np.ndarray  # object: cluster id of every row (the kept row's key, or the old cluster)


def _keep_order(x: DedupInput, label: np.ndarray, key_rank: np.ndarray) -> np.ndarray:
    """Row order in which the first row of each component is the one to keep (the brief's documented rule)."""
    old_first = (~x.old).astype(np.int8)  # rows of earlier runs stay, whatever the rule says
    return np.lexsort((key_rank, x.crawled, x.published, x.caption_rank, -x.pixels, old_first, label))


def dedup(x: DedupInput, *, threshold: int = 4) -> DedupResult:
    """Clusters = connected components of exact (same key or same pixels) and near (pHash) edges.

    One row per cluster is kept.  A dropped row is ``duplicate_exact`` when a row with identical pixels beats it
    (exact dedup conceptually runs first and keeps the best of each identical set), else ``duplicate_near``; every
    new row in a cluster that holds a row of an earlier run is ``duplicate_previous_run``.
    """
    n = len(x.keys)
    key_order = np.argsort(x.keys, kind="stable")  # one string sort serves the key edges and the tie-break
    key_rank = np.empty(n, np.int64)
    key_rank[key_order] = np.arange(n)
    exact_edges = [_run_edges(x.keys[key_order], key_order), group_edges(x.exact)]
    phash_order = np.argsort(x.phash, kind="stable")
    sorted_phash = x.phash[phash_order]
    fresh = np.ones(n, bool)
    fresh[1:] = sorted_phash[1:] != sorted_phash[:-1]
    uniq, first = sorted_phash[fresh], phash_order[fresh]  # one row per distinct pHash
    i, j = near_pairs(uniq, threshold)
    edges = [*exact_edges, _run_edges(sorted_phash, phash_order), (first[i], first[j])]
    label = components(n, *_join(edges, x.old))
    exact_label = components(n, *_join(exact_edges, x.old))
    order = _keep_order(x, label, key_rank)
    leader = np.empty(n, np.int64)  # per row: the kept row of its component
    leader[order] = order[_heads(label[order])]
    exact_best = np.zeros(n, bool)  # per row: is it the best of its identical-pixels set?
    exact_best[order[np.unique(exact_label[order], return_index=True)[1]]] = True
    keep = x.old | (leader == np.arange(n))
    cluster = np.where(x.old[leader], x.old_cluster[leader], x.keys[leader]).astype(object)
    cluster[x.old] = x.old_cluster[x.old]
    reason = np.full(n, "", dtype=object)
    reason[~keep & ~exact_best] = reasons.DUPLICATE_EXACT
    reason[~keep & exact_best] = reasons.DUPLICATE_NEAR
    reason[~keep & x.old[leader]] = reasons.DUPLICATE_PREVIOUS_RUN
    return DedupResult(keep=keep, reason=reason, cluster=cluster)


def _join(edges: list[tuple[np.ndarray, np.ndarray]], old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All edges as two arrays, without edges between two earlier-run rows (those clusters are settled)."""
    a = np.concatenate([e[0] for e in edges]).astype(np.int64)
    b = np.concatenate([e[1] for e in edges]).astype(np.int64)
    fresh = ~(old[a] & old[b])
    return a[fresh], b[fresh]


def _heads(sorted_labels: np.ndarray) -> np.ndarray:
    """For each position of a sorted label array, the position of the first element of its run."""
    n = len(sorted_labels)
    head = np.ones(n, bool)
    head[1:] = sorted_labels[1:] != sorted_labels[:-1]
    return np.flatnonzero(head)[np.cumsum(head) - 1]


def split_of(cluster: str, *, val_fraction: float, seed: int = 0) -> str:
    """Deterministic train/val by the cluster: near duplicates can never straddle the split."""
    digest = hashlib.sha256(f"{seed}:{cluster}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2.0**64 < val_fraction else "train"


def time_ns(values: np.ndarray) -> np.ndarray:
    """datetime64 / int array with NaT or nulls -> int64 ns with nulls last."""
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        out = arr.astype("datetime64[ns]").astype(np.int64)
        out[np.isnat(arr)] = NULL_TIME
        return out
    return arr.astype(np.int64)
