"""Global deduplication on the client, vectorised with numpy: exact (same pixels), near (pHash + PDQ) and across runs.

Only a few fixed-width fields per row travel to the client (key, hashes, pixel hash, the keep-rule fields), never
image bytes, so a million rows is ~150 MB.  Near duplicates: pHash (or the pHash of the mirrored picture) within
``threshold``, found by an exact Hamming radius search (`pipeline.hamming`), then verified with the 256-bit PDQ hash
(the same way round) within ``pdq_threshold``; the rule and its measured recall and false merges are in
pipeline/README.md.  Rows equal in both hashes are one search row, so a thousand re-posts of one picture cost one
query, not a million pairs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from data_schemas import reasons

NULL_TIME = np.iinfo(np.int64).max  # nulls sort last in the keep rule


def near_pairs(hashes: np.ndarray, threshold: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Every index pair (i < j) with popcount(h[i] ^ h[j]) <= threshold, sorted and unique."""
    from pipeline.hamming import radius_pairs  # numba loads on the client only, never on the workers

    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    i, j = radius_pairs(hashes, threshold)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    pairs = np.unique(lo * max(1, hashes.size) + hi)
    return pairs // max(1, hashes.size), pairs % max(1, hashes.size)


def pdq_words(values) -> np.ndarray:
    """(n, 4) uint64 from 32-byte PDQ hashes (bytes), for vectorised distances."""
    if len(values) == 0:
        return np.empty((0, 4), np.uint64)
    return np.frombuffer(b"".join(values), dtype=">u8").astype(np.uint64).reshape(-1, 4)


GREY = bytes([85]) * 32  # the colour layout of a grey picture (every cell's chromaticity 1/3, 1/3)
GREY_TOLERANCE = 3  # a layout within this of grey everywhere is a grey picture: its colours say nothing


def colour_array(values) -> np.ndarray:
    """(n, 32) uint8 colour layouts (`pipeline.signals.colour_cells`) from their bytes."""
    return np.frombuffer(b"".join(values), dtype=np.uint8).reshape(-1, 32)


def colour_distance(a: np.ndarray, b: np.ndarray, *, mirror_a: bool = False) -> np.ndarray:
    """Mean absolute chromaticity difference per pair of (n, 32) layouts; ``mirror_a``: a's cells left-right."""
    if mirror_a:
        a = a.reshape(-1, 4, 4, 2)[:, :, ::-1].reshape(-1, 32)
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=1)


def is_grey(colour: np.ndarray) -> np.ndarray:
    return (np.abs(colour.astype(np.int16) - 85) <= GREY_TOLERANCE).all(axis=1)


def pdq_bytes(words: np.ndarray) -> list[bytes]:
    """The inverse of `pdq_words`."""
    raw = np.ascontiguousarray(words, dtype=">u8").tobytes()
    return [raw[k:k + 32] for k in range(0, len(raw), 32)]


def pdq_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a ^ b).sum(axis=1)


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
    phash_flip: np.ndarray | None = None  # uint64, pHash of the mirrored picture; None: no mirror queries
    pdq: np.ndarray | None = None  # (n, 4) uint64 (`pdq_words`); None: nothing is verified
    pdq_flip: np.ndarray | None = None
    pdq_known: np.ndarray | None = None  # bool; rows without a PDQ hash (None: all have one) match on pHash alone
    colour: np.ndarray | None = None  # (n, 32) uint8 colour layouts; None: no colour check
    aspect: np.ndarray | None = None  # float, log(width / height) hashed; NaN or None: no aspect check


@dataclass
class DedupResult:
    keep: np.ndarray  # bool per row (old rows are always kept)
    reason: np.ndarray  # object: a reasons.* name for dropped rows, "" otherwise
    cluster: np.ndarray  # object: cluster id of every row (the kept row's key, or the old cluster)


def _keep_order(x: DedupInput, label: np.ndarray, key_rank: np.ndarray) -> np.ndarray:
    """Row order in which the first row of each component is the one to keep: most pixels, best caption origin,
    earliest published_at, earliest crawled_at, smallest key (pipeline/README.md, "Keep rule")."""
    old_first = (~x.old).astype(np.int8)  # rows of earlier runs stay, whatever the rule says
    # not crawled_at: within a run it is the order in which responses happened to arrive, and a rule that read it
    # kept another copy of a tied cluster (so another key and split) on every re-crawl of the same pages
    return np.lexsort((key_rank, x.published, x.caption_rank, -x.pixels, old_first, label))


def dedup(x: DedupInput, *, threshold: int = 4, pdq_threshold: int = 256, colour_threshold: float = 255.0,
          aspect_tolerance: float = np.inf, pdq_threshold_mirrored: int | None = None) -> DedupResult:
    """Clusters = connected components of exact (same key or same pixels) and near (pHash + PDQ) edges.

    One row per cluster is kept.  A dropped row is ``duplicate_exact`` when a row with identical pixels beats it
    (exact dedup conceptually runs first and keeps the best of each identical set), else ``duplicate_near``; every
    new row in a cluster that holds a row of an earlier run is ``duplicate_previous_run``.
    """
    n = len(x.keys)
    key_order = np.argsort(x.keys, kind="stable")  # one string sort serves the key edges and the tie-break
    key_rank = np.empty(n, np.int64)
    key_rank[key_order] = np.arange(n)
    exact_edges = [_run_edges(x.keys[key_order], key_order), group_edges(x.exact)]
    mirrored = pdq_threshold if pdq_threshold_mirrored is None else pdq_threshold_mirrored
    check = _Check(x, pdq_threshold=(pdq_threshold, mirrored), colour_threshold=colour_threshold,
                   aspect_tolerance=aspect_tolerance)
    edges = [*exact_edges, *near_edges(x, threshold=threshold, check=check)]
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


def near_edges(x: DedupInput, *, threshold: int, check: _Check) -> list[tuple[np.ndarray, np.ndarray]]:
    """Near-duplicate edges: rows equal in every hash, then verified pHash (and mirrored pHash) neighbours."""
    from pipeline.hamming import radius_pairs  # numba loads on the client only, never on the workers

    colour = np.ascontiguousarray(check.colour).view(np.uint64)
    unknown = (~check.known).astype(np.uint64)[:, None]
    reps, same = _distinct(np.column_stack([x.phash, _fingerprint(check.pdq, colour, unknown)]))
    p = x.phash[reps]
    i, j = radius_pairs(p, threshold)
    edges = [same, check(reps[i], reps[j], flip=False)]
    if x.phash_flip is not None:
        qi, dj = radius_pairs(p, threshold, queries=x.phash_flip[reps])
        other = qi != dj  # a symmetric picture finds itself
        edges.append(check(reps[qi[other]], reps[dj[other]], flip=True))
    return edges


class _Check:
    """The verification of candidate pairs (a, b): PDQ within its threshold, the colour layouts within theirs
    unless either picture is grey, and the aspect ratios within their tolerance; for a mirrored candidate, a's
    mirrored PDQ (within the stricter mirrored threshold) and colour layout.  A row without a PDQ hash (older index
    rows whose image is gone) is matched on pHash alone."""

    def __init__(self, x: DedupInput, *, pdq_threshold: tuple[int, int], colour_threshold: float,
                 aspect_tolerance: float):
        n = len(x.keys)
        self.pdq = x.pdq if x.pdq is not None else np.zeros((n, 4), np.uint64)
        self.pdq_flip = x.pdq_flip if x.pdq_flip is not None else self.pdq
        self.known = x.pdq_known if x.pdq_known is not None else np.full(n, x.pdq is not None)
        self.colour = x.colour if x.colour is not None else np.full((n, 32), 85, np.uint8)
        self.grey = is_grey(self.colour)
        self.aspect = x.aspect if x.aspect is not None else np.full(n, np.nan)
        self.pdq_threshold, self.colour_threshold, self.aspect_tolerance = (pdq_threshold, colour_threshold,
                                                                            aspect_tolerance)

    def __call__(self, a: np.ndarray, b: np.ndarray, *, flip: bool) -> tuple[np.ndarray, np.ndarray]:
        pdq_a = (self.pdq_flip if flip else self.pdq)[a]
        ok = pdq_distance(pdq_a, self.pdq[b]) <= self.pdq_threshold[flip]
        ok &= (self.grey[a] | self.grey[b]
               | (colour_distance(self.colour[a], self.colour[b], mirror_a=flip) <= self.colour_threshold))
        ok &= ~(np.abs(self.aspect[a] - self.aspect[b]) > self.aspect_tolerance)  # NaN (unknown) passes
        ok |= ~(self.known[a] & self.known[b])
        return a[ok], b[ok]


def _fingerprint(*columns: np.ndarray) -> np.ndarray:
    """One 64-bit value per row of several (n, k) uint64 arrays (multiply-xorshift mixing), so finding rows equal
    in every hash sorts two columns instead of 38 (and holds 16 bytes per row, not 300).  Two rows with equal pHash
    but other hashes that differ collide with probability ~2^-64 per pair."""
    h = np.zeros(len(columns[0]), np.uint64)
    with np.errstate(over="ignore"):
        for block in columns:
            for k in range(block.shape[1]):
                h = (h ^ block[:, k]) * np.uint64(0x9E3779B97F4A7C15)
                h ^= h >> np.uint64(29)
    return h


def _distinct(values: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(the first row of each distinct value, edges joining the other rows to it); rows of (n, k) compare whole."""
    order = np.lexsort(values.T[::-1])
    ordered = values[order]
    fresh = np.ones(len(order), bool)
    fresh[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    return np.sort(order[fresh]), _run_edges(ordered, order)


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
