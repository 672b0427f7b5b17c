"""Finding and removing rows for a takedown: in the shards, the dedup index and the rejected/ audit files.

Matching always ends in `data_schemas.Blocklist`, the same class crawl and clean consult, so "taken down" means the
same thing everywhere. Arrow kernels first narrow the rows to a superset of the matches; only those rows get the
exact per-row test.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_schemas import Blocklist, atomic_write_parquet, layout


def candidates(batch: pa.RecordBatch, *, urls: list[str], domains: list[str], sha256: list[str]) -> pa.Array:
    """A vectorised superset of the matches: exact URL / sha256 sets, and URLs that contain a domain at all."""
    mask = pa.array([False] * batch.num_rows)
    if sha256 and "sha256" in batch.schema.names:
        mask = pc.is_in(batch.column("sha256"), value_set=pa.array(sha256, pa.string()))
    for col in ("page_url", "image_url"):
        values = batch.column(col)
        mask = pc.or_(mask, pc.is_in(values, value_set=pa.array(urls, pa.string())))
        for domain in domains:
            mask = pc.or_(mask, pc.match_substring(values, domain, ignore_case=True))
    return pc.fill_null(mask, False)


def blocked(row: dict, blocklist: Blocklist) -> bool:
    return (blocklist.blocks_url(row.get("page_url")) or blocklist.blocks_url(row.get("image_url"))
            or blocklist.blocks_sha256(row.get("sha256")))


def rewrite_without(path: Path, drop: set[str], *, key_column: str = "key") -> int:
    """Rewrite one Parquet file without the ``drop`` keys, same row-group size and codec; returns rows removed.

    Filtering row group by row group (single-threaded, no pre-buffering) keeps the peak near the size of the
    kept rows instead of several copies of the whole shard. The new file replaces the old one by rename, so a
    hard link to the old version (the clean stage links shards between versions) keeps the old content intact.
    """
    pf = pq.ParquetFile(path, pre_buffer=False)
    meta = pf.metadata
    drop_keys = pa.array(sorted(drop), pa.string())
    parts = []
    for i in range(meta.num_row_groups):
        rg = pf.read_row_group(i, use_threads=False)
        parts.append(rg.filter(pc.invert(pc.fill_null(pc.is_in(rg.column(key_column), value_set=drop_keys),
                                                      False))))
    kept = pa.concat_tables(parts) if parts else pf.schema_arrow.empty_table()
    removed = meta.num_rows - kept.num_rows
    if removed:
        rg0 = meta.row_group(0)
        codec = rg0.column(0).compression.lower()
        atomic_write_parquet(path, kept.replace_schema_metadata(pf.schema_arrow.metadata),
                             row_group_size=rg0.num_rows, compression="none" if codec == "uncompressed" else codec)
    return removed


def rejected_matches(root: Path, blocklist: Blocklist, *, urls: list[str], domains: list[str],
                     sha256: list[str]) -> dict[str, list[str]]:
    """The ids to remove from each ``_rejected/*.pq`` (and legacy ``rejected/*.parquet``; by name relative to
    ``root``): a takedown must not leave
    the content in an audit file.  Found before anything is rewritten, so a resumed takedown removes (and counts)
    exactly the same rows.

    Those rows carry page/image URLs and, optionally, the original image bytes (matched by their sha256).
    """
    found = {}
    parts = [*sorted((root / layout.REJECTED_DIR).glob(f"*{layout.AUX_SUFFIX}")),
             *sorted((root / "rejected").glob(f"*{layout.SHARD_SUFFIX}"))]  # the clean stage's audit trail
    for path in parts:
        names = pq.read_schema(path).names
        if not {"id", "page_url", "image_url"} <= set(names):
            continue
        hash_bytes = bool(sha256) and "image_bytes" in names
        columns = ["id", "page_url", "image_url"] + (["image_bytes"] if hash_bytes else [])
        drop = set()
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024, columns=columns, use_threads=False):
            if not hash_bytes:
                batch = batch.filter(candidates(batch, urls=urls, domains=domains, sha256=[]))
            for row in batch.to_pylist():
                if hash_bytes and row["image_bytes"] is not None:
                    row["sha256"] = hashlib.sha256(row.pop("image_bytes")).hexdigest()
                if blocked(row, blocklist):
                    drop.add(row["id"])
        if drop:
            found[path.relative_to(root).as_posix()] = sorted(drop)
    return found
