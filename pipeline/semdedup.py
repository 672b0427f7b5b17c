"""Semantic deduplication (SemDeDup, Abbas et al. 2023) over image embeddings, in numpy.

Pictures that are the same picture to a model (re-crops, re-colourings, screenshots, the same photo re-published
under another caption) escape the pHash dedup of the clean stage.  As SemDeDup does: cluster the L2-normalised
embeddings with spherical k-means (so only rows of one cluster are compared), and inside each cluster drop every
row whose cosine to a row ranked before it exceeds the threshold.  Rows are ranked by alignment (best first, then
key), so of each group of duplicates the most aligned member stays: the copy whose caption fits the picture.

Everything is a pure function of the inputs and the seed.  Cost: k-means is O(n * k * d) per iteration on a sample
of at most ``SAMPLE_PER_CLUSTER`` rows per cluster, then one assignment pass over all rows; the comparisons are
O(n * cluster_size * d).  Measured figures are in BENCHMARKS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_PER_CLUSTER = 256  # k-means is trained on at most this many rows per centroid (as faiss does)
_CHUNK = 8192  # rows per block in the assignment products (bounds the n x k distance matrix)


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), _CHUNK):
        out[start:start + _CHUNK] = np.argmax(x[start:start + _CHUNK] @ centroids.T, axis=1)
    return out


def kmeans(x: np.ndarray, k: int, *, iters: int = 20, seed: int = 0) -> np.ndarray:
    """Spherical k-means of normalised rows -> cluster id per row.  k-means++ seeding on a sample; an empty
    cluster is re-seeded with the sample row farthest from its centroid."""
    n = len(x)
    if k <= 1 or n <= k:
        return np.zeros(n, dtype=np.int64) if k <= 1 else np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(n, size=min(n, k * SAMPLE_PER_CLUSTER), replace=False)]
    centroids = _plus_plus(sample, k, rng)
    for _ in range(iters):
        labels = _assign(sample, centroids)
        new = np.zeros_like(centroids)
        np.add.at(new, labels, sample)
        empty = np.flatnonzero(np.bincount(labels, minlength=k) == 0)
        if len(empty):
            far = np.argsort((sample * centroids[labels]).sum(axis=1))[: len(empty)]
            new[empty] = sample[far]
        new = normalise(new)
        if np.allclose(new, centroids, atol=1e-6):
            break
        centroids = new
    return _assign(x, centroids)


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centroids = [x[rng.integers(len(x))]]
    dist = 1.0 - x @ centroids[0]
    for _ in range(1, k):
        p = np.maximum(dist, 0) ** 2
        centroids.append(x[rng.choice(len(x), p=p / p.sum()) if p.sum() > 0 else rng.integers(len(x))])
        dist = np.minimum(dist, 1.0 - x @ centroids[-1])
    return np.stack(centroids)


def _best_earlier(x: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For each row j of rank-sorted rows: the row i < j most like it, and their cosine (-inf for row 0).
    Blocked over columns, so a large cluster costs rows x block floats, never rows x rows."""
    m = len(x)
    best = np.zeros(m, dtype=np.int64)
    sim = np.full(m, -np.inf, dtype=np.float32)
    for start in range(1, m, block):
        end = min(m, start + block)
        sims = x[:end] @ x[start:end].T  # rows 0..end-1 against columns start..end-1
        sims[np.arange(end)[:, None] >= np.arange(start, end)[None, :]] = -np.inf  # only i < j counts
        best[start:end] = sims.argmax(axis=0)
        sim[start:end] = sims[best[start:end], np.arange(end - start)]
    return best, sim


def semantic_duplicates(emb: np.ndarray, rank: np.ndarray, *, threshold: float, cluster_size: int = 1000,
                        iters: int = 20, seed: int = 0, max_drop: float | None = None) -> Semantic:
    """Rows to drop as duplicates of better-ranked rows (``rank``: lower is better) at cosine > ``threshold``.

    ``max_drop``: never drop more than this share of the rows.  Where the threshold would (an embedding space in
    which everything looks alike: a weak or collapsed scorer), it is raised until exactly that share goes, the rows
    most like a better-ranked one first; ``Semantic.threshold`` says which threshold was applied."""
    x = normalise(emb)
    n = len(x)
    k = max(1, -(-n // cluster_size))
    labels = kmeans(x, k, iters=iters, seed=seed)
    best = np.full(n, -1, dtype=np.int64)  # the better-ranked row of its cluster most like each row
    sim = np.full(n, -np.inf, dtype=np.float32)
    order: list[np.ndarray] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[np.argsort(rank[members], kind="stable")]
        b, v = _best_earlier(x[members])
        best[members], sim[members] = members[b], v
        order.append(members)
    applied = float(threshold)
    if max_drop is not None and n and (sim > applied).mean() > max_drop:
        applied = float(np.quantile(sim, 1.0 - max_drop, method="higher"))
    dup = sim > applied
    nearest = np.full(n, -1, dtype=np.int64)
    for members in order:  # rank order: the row a duplicate copies is resolved to its group's kept row first
        for j in members[dup[members]]:
            nearest[j] = nearest[best[j]] if dup[best[j]] else best[j]
    return Semantic(dup, nearest, int(len(order)), applied)


@dataclass
class Semantic:
    duplicate: np.ndarray  # bool per row
    nearest: np.ndarray  # the kept row each duplicate is a copy of (a duplicate of a duplicate names the kept one)
    clusters: int
    threshold: float  # the cosine threshold applied (raised above the asked one only by max_drop)
