"""`curate(config)`: model-based filters over an existing dataset, written as a new version that names its parent.

Reads the dataset's rows (key, split, source) and the scores of one model (`mmpipe score`: alignment and image
embedding per key; every shard must have current scores), then decides per row of the curated splits, in order:
``image_undecodable`` (the scorer could not decode it), ``low_alignment`` (outside the kept top fraction and/or
below the minimum alignment, as DataComp's CLIP-score filter), ``duplicate_semantic`` (SemDeDup on the image
embeddings of the rows still kept: of each group of near-identical pictures the best-aligned one stays).

The new version is built like a clean run's (``pipeline.dataset``: lock, build beside, swap in atomically):
shards without drops are hard links to the parent's, the others are rewritten without the dropped rows (by
rename, so the parent's files are untouched), then ``_curate/`` (every dropped row with its reason and score, the
alignment histogram, a sheet of the lowest- and highest-scored pairs) and the manifest, last.  Its funnel is the
parent's with this pass's drops added (``rows_in - sum(drops) == rows_out``, checked by ``mmpipe verify``);
``extra.parent`` names the parent and its manifest's sha256, ``extra.curate`` this pass's own funnel and cut.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_schemas import (
    CURATE_DIR,
    MANIFEST_NAME,
    SCORE_PART_GLOB,
    SCORES_DIR,
    SCORES_META_MODEL,
    SCORES_META_SHARD,
    SCORES_SCHEMA,
    Manifest,
    ShardInfo,
    atomic_write_parquet,
    file_sha256,
    has_manifest,
    manifest_path,
    reasons,
    validate,
)
from pipeline.config import CurateConfig
from pipeline.dataset import locked, new_work_dir, recover, swap_in
from pipeline.inputs import CleanError
from pipeline.semdedup import semantic_duplicates
from pipeline.tools._rewrite import rewrite_without

log = logging.getLogger(__name__)
DROPPED_NAME = f"{CURATE_DIR}/dropped.pq"
DROPPED_SCHEMA = pa.schema([
    pa.field("key", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("alignment", pa.float32()),
    pa.field("duplicate_of", pa.string()),  # duplicate_semantic: the kept row it is a copy of
])


@dataclass
class Rows:
    """One entry per row of the parent, in manifest shard order."""

    keys: np.ndarray
    shard: np.ndarray  # index into the parent manifest's shards
    split: np.ndarray
    source: np.ndarray
    alignment: np.ndarray  # float32, NaN where the scorer could not decode the image
    embedding: np.ndarray  # float16 [rows, dim], zeros where NaN alignment


@dataclass
class Decision:
    reason: np.ndarray  # "" = kept
    duplicate_of: np.ndarray  # key of the kept row a semantic duplicate copies, else ""
    pool: int  # rows the alignment filter ranked (decodable rows of the curated splits)
    cut: float | None  # lowest alignment kept
    clusters: int
    semantic_threshold: float | None = None  # the cosine threshold applied (see CurateConfig.semantic_max_drop)


def curate(config: CurateConfig) -> Path:
    """Write the curated version of ``config.data`` to ``config.out``; returns it once its manifest is in."""
    data = config.data.resolve()
    parent = _read_parent(data)
    scores = resolve_scores(data, config.scores)
    rows, model = load_rows(data, parent, scores)
    decision = decide(rows, config)
    out = config.out.resolve()
    with locked(out):
        recover(out)
        _check_out(out)
        work = new_work_dir(out)
        try:
            shards = _write_shards(data, parent, rows, decision, work)
            figures = _write_curate_dir(data, parent, rows, decision, work, config)
            manifest = _manifest(data, parent, rows, decision, shards, config, scores=scores, model=model,
                                 figures=figures)
            manifest.write(work)  # last
            swap_in(work, out)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    log.info("curated %s -> %s: %d of %d rows kept (%s)", data, out, manifest.rows_out, parent.rows_out,
             ", ".join(f"{k} {v}" for k, v in manifest.extra["curate"]["drops"].items()) or "nothing dropped")
    return out


def _read_parent(data: Path) -> Manifest:
    if not has_manifest(data):
        raise CleanError(f"{data}: no dataset there (no {MANIFEST_NAME}); curate a dataset written by `mmpipe clean`")
    parent = Manifest.read(data)
    if parent.rows_in - sum(parent.drops.values()) != parent.rows_out:
        raise CleanError(f"{data}: its funnel does not add up; run `mmpipe verify {data}` first")
    return parent


def resolve_scores(data: Path, scores: Path | str | None) -> Path:
    """A scores directory: the path given, a name under DATA/_scores/, or the only one there."""
    root = data / SCORES_DIR
    if scores is None:
        found = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise CleanError(f"{data}: pass --scores (scores under {root}: {names}); `mmpipe score --data {data} "
                             "--run RUN` writes them")
        return found[0]
    path = Path(scores)
    if not path.is_dir() and (root / str(scores)).is_dir():
        path = root / str(scores)
    if not path.is_dir():
        raise CleanError(f"{scores}: no scores there (neither a directory nor a name under {root})")
    return path.resolve()


def _score_tables(scores: Path, parent: Manifest) -> tuple[pa.Table, dict]:
    want = {s.name: s.sha256 for s in parent.shards}
    tables, covered, models = [], set(), set()
    for part in sorted(scores.glob(SCORE_PART_GLOB)):
        meta = pq.read_schema(part).metadata or {}
        shard = json.loads(meta.get(SCORES_META_SHARD, b"{}"))
        if want.get(shard.get("name")) != shard.get("sha256"):
            continue  # scores of a shard the dataset no longer has (or had other bytes)
        validate(part, SCORES_SCHEMA, check_values=False)
        models.add(meta[SCORES_META_MODEL].decode())
        covered.add(shard["name"])
        tables.append(pq.read_table(part, columns=["key", "alignment", "image_embedding"]))
    missing = sorted(set(want) - covered)
    if missing:
        raise CleanError(f"{scores}: no current scores for {len(missing)} shard(s) of the dataset ({missing[0]}, "
                         "...): run `mmpipe score` on it again (it scores only what is missing)")
    if len(models) > 1:
        raise CleanError(f"{scores}: parts of {len(models)} different models; run `mmpipe score` again")
    return pa.concat_tables(tables), json.loads(models.pop()) if models else {}


def load_rows(data: Path, parent: Manifest, scores: Path) -> tuple[Rows, dict]:
    table, model = _score_tables(scores, parent)
    keys, shard, split, source = [], [], [], []
    for i, info in enumerate(parent.shards):
        cols = pq.read_table(data / info.name, columns=["key", "split", "source"]).to_pydict()
        keys += cols["key"]
        split += cols["split"]
        source += cols["source"]
        shard += [i] * len(cols["key"])
    idx = pc.index_in(pa.array(keys, pa.string()), value_set=table.column("key").combine_chunks())
    if idx.null_count:
        raise CleanError(f"{scores}: {idx.null_count} row(s) of the dataset have no score; run `mmpipe score` again")
    table = table.take(idx)
    emb_col = table.column("image_embedding").combine_chunks()
    has = emb_col.is_valid().to_numpy(zero_copy_only=False)
    values = emb_col.flatten().to_numpy(zero_copy_only=False)
    dim = len(values) // max(1, int(has.sum()))
    embedding = np.zeros((len(keys), dim), dtype=np.float16)
    embedding[has] = values.reshape(-1, dim)
    alignment = table.column("alignment").to_numpy(zero_copy_only=False).astype(np.float32)
    alignment[~has] = np.nan
    return Rows(np.asarray(keys, dtype=object), np.asarray(shard, dtype=np.int64), np.asarray(split, dtype=object),
                np.asarray(source, dtype=object), alignment, embedding), model


def decide(rows: Rows, cfg: CurateConfig) -> Decision:
    """The reason, if any, each row is dropped for (see the module doc for the order)."""
    n = len(rows.keys)
    reason = np.full(n, "", dtype=object)
    duplicate_of = np.full(n, "", dtype=object)
    curated = np.isin(rows.split, list(cfg.splits))
    reason[curated & np.isnan(rows.alignment)] = reasons.IMAGE_UNDECODABLE
    pool = np.flatnonzero(curated & ~np.isnan(rows.alignment))
    order = pool[np.lexsort((rows.keys[pool].astype(str), -rows.alignment[pool]))]  # best aligned first
    keep = np.ones(len(order), dtype=bool)
    if cfg.keep_top is not None:
        keep[math.ceil(cfg.keep_top * len(order) - 1e-9):] = False
    if cfg.min_alignment is not None:
        keep &= rows.alignment[order] >= cfg.min_alignment
    reason[order[~keep]] = reasons.LOW_ALIGNMENT
    survivors = order[keep]
    clusters, applied = 0, None
    if cfg.semantic_threshold is not None and len(survivors) > 1:
        sem = semantic_duplicates(rows.embedding[survivors], np.arange(len(survivors)),
                                  threshold=cfg.semantic_threshold, cluster_size=cfg.cluster_size,
                                  iters=cfg.kmeans_iters, seed=cfg.seed, max_drop=cfg.semantic_max_drop)
        reason[survivors[sem.duplicate]] = reasons.DUPLICATE_SEMANTIC
        duplicate_of[survivors[sem.duplicate]] = rows.keys[survivors[sem.nearest[sem.duplicate]]]
        clusters, applied = sem.clusters, sem.threshold
        if applied > cfg.semantic_threshold:
            log.warning("semantic dedup: at cosine %.4f it would drop more than %.0f%% of the rows (the scorer's "
                        "image embeddings are crowded); applied %.4f instead", cfg.semantic_threshold,
                        100 * cfg.semantic_max_drop, applied)
    cut = float(rows.alignment[survivors].min()) if len(survivors) and len(survivors) < len(order) else None
    return Decision(reason, duplicate_of, len(order), cut, clusters, applied)


def _check_out(out: Path) -> None:
    if not out.exists():
        return
    if has_manifest(out) and "parent" in Manifest.read(out).extra:
        return  # an earlier curated version: replaced by this one
    if any(out.iterdir()):
        raise CleanError(f"{out} exists and is not a curated dataset version; choose a new or empty --out")


def _write_shards(data: Path, parent: Manifest, rows: Rows, decision: Decision, work: Path) -> list[ShardInfo]:
    shards = []
    for i, info in enumerate(parent.shards):
        drop = set(rows.keys[(rows.shard == i) & (decision.reason != "")])
        dst = work / info.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(data / info.name, dst)  # shards are immutable: the new version shares the parent's file
        except OSError:
            shutil.copy2(data / info.name, dst)
        if not drop:
            shards.append(info)
            continue
        rewrite_without(dst, drop)  # a new file by rename: the parent's (linked) file is untouched
        left = pq.ParquetFile(dst).metadata.num_rows
        if left == 0:
            dst.unlink()
            continue
        shards.append(ShardInfo(name=info.name, rows=left, bytes=dst.stat().st_size, sha256=file_sha256(dst),
                                split=info.split))
    return shards


def _write_curate_dir(data: Path, parent: Manifest, rows: Rows, decision: Decision, work: Path,
                      cfg: CurateConfig) -> list[str]:
    dropped = np.flatnonzero(decision.reason != "")
    alignment = rows.alignment[dropped]
    atomic_write_parquet(work / DROPPED_NAME, pa.table({
        "key": pa.array(rows.keys[dropped].tolist(), pa.string()),
        "reason": pa.array(decision.reason[dropped].tolist(), pa.string()),
        "alignment": pa.array(alignment, pa.float32(), mask=np.isnan(alignment)),
        "duplicate_of": pa.array([d or None for d in decision.duplicate_of[dropped]], pa.string()),
    }, schema=DROPPED_SCHEMA))
    if not cfg.report:
        return []
    from pipeline.curate_report import write_report

    return write_report(data, parent, rows, decision, work / CURATE_DIR, splits=cfg.splits)


def _manifest(data: Path, parent: Manifest, rows: Rows, decision: Decision, shards: list[ShardInfo],
              cfg: CurateConfig, *, scores: Path, model: dict, figures: list[str]) -> Manifest:
    kept = decision.reason == ""
    dropped = Counter(r for r in decision.reason if r)
    order = {r: i for i, r in enumerate(reasons.CURATE_REASONS)}
    this_pass = {r: int(dropped[r]) for r in sorted(dropped, key=order.get)}
    drops = Counter(parent.drops)
    drops.update(this_pass)
    curate_extra: dict[str, Any] = {
        "scores": str(scores), "model": model, "splits": list(cfg.splits), "rows_in": parent.rows_out,
        "drops": this_pass, "rows_out": int(kept.sum()), "pool": decision.pool, "alignment_cut": decision.cut,
        "keep_top": cfg.keep_top, "min_alignment": cfg.min_alignment, "semantic_threshold": cfg.semantic_threshold,
        "semantic_threshold_applied": decision.semantic_threshold, "semantic_max_drop": cfg.semantic_max_drop,
        "clusters": decision.clusters, "dropped": DROPPED_NAME, "figures": figures}
    return Manifest(schema_version=parent.schema_version, inputs=parent.inputs, parameters=cfg.parameters(),
                    rows_in=parent.rows_in, drops=dict(drops), rows_out=int(kept.sum()),
                    per_source=dict(sorted(Counter(rows.source[kept]).items())),
                    per_split=dict(sorted(Counter(rows.split[kept]).items())), shards=shards,
                    extra={"parent": {"path": str(data), "manifest_sha256": file_sha256(manifest_path(data)),
                                      "created_at": parent.created_at, "rows_out": parent.rows_out,
                                      "parameters": parent.parameters},
                           "curate": curate_extra})
