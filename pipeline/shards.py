"""Plan the output shards on the client, write each one on a worker.

Rows are ordered by key within each split and run: keys name a pair by its address without the port
(`data_schemas.row_id`), so the order depends neither on how the crawl's responses happened to arrive (which decides
the RAW files' row order and so the partitions) nor on where the site listened, and two runs over the same content
write byte-identical shards.  A shard closes at ``shard_rows`` rows or ``shard_bytes`` image bytes, whichever
comes first; inside it, row groups hold exactly ``row_group_rows`` rows (the last one fewer), the unit a streaming
reader fetches.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas import CLEAN_SCHEMA, ShardInfo, file_sha256
from data_schemas.layout import shard_name


@dataclass
class ShardPlan:
    name: str  # relative to the dataset directory
    split: str
    pieces: list[tuple[str, list[int], list[str]]]  # (staged file, row numbers, dup_cluster per row)
    order: list[int] | None = None  # output row i is row order[i] of the pieces concatenated; None: as they come


def plan_shards(staged: np.ndarray, rows: np.ndarray, nbytes: np.ndarray, split: np.ndarray, cluster: np.ndarray,
                *, shard_rows: int, shard_bytes: int, first_number: dict[str, int]) -> list[ShardPlan]:
    """Cut kept rows (already in output order) into shards per split; numbering continues after earlier runs."""
    plans: list[ShardPlan] = []
    for name in ("train", "val"):
        idx = np.flatnonzero(split == name)
        if not idx.size:
            continue
        cum = np.cumsum(nbytes[idx])
        start, number = 0, first_number.get(name, 0)
        while start < idx.size:
            base = cum[start - 1] if start else 0
            by_bytes = int(np.searchsorted(cum, base + shard_bytes, side="right"))
            end = max(start + 1, min(start + shard_rows, by_bytes))
            plans.append(_plan(shard_name(name, number), name, idx[start:end], staged, rows, cluster))
            start, number = end, number + 1
    return plans


def _plan(name: str, split: str, idx: np.ndarray, staged: np.ndarray, rows: np.ndarray,
          cluster: np.ndarray) -> ShardPlan:
    by_file: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
    files: list[str] = []
    slot: list[tuple[str, int]] = []  # per output row: its file and its position among that file's rows
    for i in idx:
        path = staged[i]
        if path not in by_file:
            files.append(path)
        slot.append((path, len(by_file[path][0])))
        by_file[path][0].append(int(rows[i]))
        by_file[path][1].append(str(cluster[i]))
    start, offset = 0, {}
    for path in files:
        offset[path], start = start, start + len(by_file[path][0])
    order = [offset[path] + n for path, n in slot]
    return ShardPlan(name=name, split=split, pieces=[(p, *by_file[p]) for p in files],
                     order=None if order == sorted(order) else order)


def _clean_rows(piece: tuple[str, list[int], list[str]], split: str) -> pa.Table:
    path, rows, clusters = piece
    names = [f.name for f in CLEAN_SCHEMA if f.name not in ("split", "dup_cluster")]
    table = pq.read_table(path, columns=names).take(pa.array(rows, pa.int64()))
    table = table.append_column("split", pa.array([split] * len(rows), pa.string()))
    table = table.append_column("dup_cluster", pa.array(clusters, pa.string()))
    return table.cast(CLEAN_SCHEMA)


def _ordered(plan: ShardPlan, chunk_rows: int):
    """The shard's rows as tables in the plan's order.  Rows from several staged files interleave (a split's
    rows come from every partition), so the shard's rows are read first, one read per staged file, and emitted
    in order a row group at a time: memory holds one shard (at most ``shard_bytes`` of images)."""
    if plan.order is None:
        for piece in plan.pieces:
            yield _clean_rows(piece, plan.split)
        return
    rows = pa.concat_tables([_clean_rows(piece, plan.split) for piece in plan.pieces])
    for start in range(0, len(plan.order), chunk_rows):
        yield rows.take(pa.array(plan.order[start:start + chunk_rows], pa.int64()))


def write_shard(plan: ShardPlan, dataset_dir: str, *, row_group_rows: int) -> ShardInfo:
    """Worker task: stream the pieces into exact-size row groups under a temporary name, then rename."""
    final = Path(dataset_dir) / plan.name
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    buffer: list[pa.Table] = []
    buffered = written = 0
    with pq.ParquetWriter(tmp, CLEAN_SCHEMA, compression="zstd", write_statistics=True) as writer:
        for table in _ordered(plan, row_group_rows):
            buffer.append(table)
            buffered += table.num_rows
            while buffered >= row_group_rows:
                merged = pa.concat_tables(buffer)
                writer.write_table(merged.slice(0, row_group_rows), row_group_size=row_group_rows)
                written += row_group_rows
                rest = merged.slice(row_group_rows)
                buffer, buffered = [rest], rest.num_rows
        if buffered:
            writer.write_table(pa.concat_tables(buffer), row_group_size=row_group_rows)
            written += buffered
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return ShardInfo(name=plan.name, rows=written, bytes=final.stat().st_size, sha256=file_sha256(final),
                     split=plan.split)
