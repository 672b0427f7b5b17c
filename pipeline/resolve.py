"""Client side of pass 3: merge the partitions' metadata with the previous runs' index, deduplicate, split."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipeline.dataset import Previous, index_arrays
from pipeline.dedup import DedupInput, dedup, exact_key, split_of
from pipeline.partition import PartitionResult

if TYPE_CHECKING:
    from pipeline.config import CleanConfig

_FIELDS = ("keys", "phash", "phash_flip", "pdq", "pdq_flip", "colour", "aspect", "pixels", "caption_rank", "published",
           "crawled", "nbytes", "sha256", "source", "row")


@dataclass
class Resolution:
    """Kept new rows in output order, plus what dedup dropped."""

    keys: np.ndarray
    sha256: np.ndarray
    phash: np.ndarray
    phash_flip: np.ndarray
    pdq: np.ndarray  # (n, 4) uint64
    pdq_flip: np.ndarray
    colour: np.ndarray  # (n, 32) uint8
    aspect: np.ndarray  # float32
    cluster: np.ndarray
    split: np.ndarray
    staged: np.ndarray  # staged file of each kept row
    rows: np.ndarray  # row number in that file
    nbytes: np.ndarray
    per_source: Counter = field(default_factory=Counter)
    dup_drops: Counter = field(default_factory=Counter)
    dup_keys: np.ndarray = field(default_factory=lambda: np.empty(0, str))
    dup_reasons: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    dup_clusters: np.ndarray = field(default_factory=lambda: np.empty(0, object))


def _concat(results: list[PartitionResult]) -> dict[str, np.ndarray]:
    """Partitions in index order; inside each, rows are sorted by key (`resolve` then sorts the kept rows by key)."""
    metas = [r.meta for r in results if r.meta]
    if not metas:
        empty = {name: np.empty(0, np.int64) for name in _FIELDS}
        empty.update(keys=np.empty(0, str), phash=np.empty(0, np.uint64), phash_flip=np.empty(0, np.uint64),
                     pdq=np.empty((0, 4), np.uint64), pdq_flip=np.empty((0, 4), np.uint64),
                     colour=np.empty((0, 32), np.uint8), aspect=np.empty(0, np.float32),
                     sha256=np.empty(0, "S64"), source=np.empty(0, object), staged=np.empty(0, object))
        return empty
    merged = {name: np.concatenate([m[name] for m in metas]) for name in _FIELDS}
    merged["staged"] = np.concatenate([np.full(len(r.meta["keys"]), r.staged, dtype=object)
                                       for r in results if r.meta])
    return merged


def _dedup_input(new: dict[str, np.ndarray], old: dict[str, np.ndarray]) -> DedupInput:
    n_new, n_old = len(new["keys"]), len(old["keys"])
    zeros = np.zeros(n_old, np.int64)
    return DedupInput(
        keys=np.concatenate([new["keys"], old["keys"]]).astype(str),
        phash=np.concatenate([new["phash"], old["phash"]]).astype(np.uint64),
        exact=exact_key(np.concatenate([new["sha256"], old["sha256"]])),
        pixels=np.concatenate([new["pixels"], zeros]),
        caption_rank=np.concatenate([new["caption_rank"], zeros]),
        published=np.concatenate([new["published"], zeros]),
        crawled=np.concatenate([new["crawled"], zeros]),
        old=np.concatenate([np.zeros(n_new, bool), np.ones(n_old, bool)]),
        old_cluster=np.concatenate([np.full(n_new, "", dtype=object), old["cluster"].astype(object)]),
        phash_flip=np.concatenate([new["phash_flip"], old["phash_flip"]]).astype(np.uint64),
        pdq=np.concatenate([new["pdq"], old["pdq"]]), pdq_flip=np.concatenate([new["pdq_flip"], old["pdq_flip"]]),
        pdq_known=np.concatenate([np.ones(n_new, bool), old["pdq_known"]]),
        colour=np.concatenate([new["colour"], old["colour"]]), aspect=np.concatenate([new["aspect"], old["aspect"]]),
    )


def resolve(results: list[PartitionResult], previous: Previous, cfg: CleanConfig) -> Resolution:
    new = _concat(results)
    old = index_arrays(previous.index)
    order = np.argsort(old["keys"], kind="stable")  # deterministic node order for the previous rows
    old = {k: v[order] for k, v in old.items()}
    outcome = dedup(_dedup_input(new, old), **cfg.dedup_rule())
    n_new = len(new["keys"])
    keep, reason, cluster = outcome.keep[:n_new], outcome.reason[:n_new], outcome.cluster[:n_new]
    kept = np.flatnonzero(keep)
    kept = kept[np.argsort(new["keys"][kept], kind="stable")]  # output order: by key (`pipeline.shards`)
    clusters = cluster[kept]
    split = np.array([split_of(c, val_fraction=cfg.val_fraction, seed=cfg.seed) for c in clusters.tolist()],
                     dtype=object)
    dropped = np.flatnonzero(~keep)
    return Resolution(
        keys=new["keys"][kept], sha256=new["sha256"][kept], phash=new["phash"][kept],
        phash_flip=new["phash_flip"][kept], pdq=new["pdq"][kept], pdq_flip=new["pdq_flip"][kept],
        colour=new["colour"][kept], aspect=new["aspect"][kept],
        cluster=clusters, split=split, staged=new["staged"][kept],
        rows=new["row"][kept], nbytes=new["nbytes"][kept], per_source=Counter(new["source"][kept].tolist()),
        dup_drops=Counter(reason[dropped].tolist()), dup_keys=new["keys"][dropped], dup_reasons=reason[dropped],
        dup_clusters=cluster[dropped],
    )
