"""Datasets whose dedup index was made with other near-duplicate hashes: refuse to mix, or re-hash on request.

A dataset records what its index's hashes mean (`pipeline.signals.HASH_VERSION`, manifest parameter
``dedup_hashes``; datasets from before it have version 1: pHash of the whole picture, nothing else).  Comparing a
new run's hashes with an index of another version would silently miss duplicates (borders, flips) or invent them,
so an incremental run stops with a message naming ``--rehash-index``.  With it, every index row is re-hashed from
its stored image (one Dask task per shard) and the new version's index lists the re-hashed rows in place of the old
parts.  The stored image is the resized, re-encoded copy, not the original, so its hashes differ from a fresh run's
by a bit or two; rows whose image is gone (taken down) keep their pHash, get no other hash, and so match on pHash
alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from data_schemas import Manifest, atomic_write_parquet, member_path, storage
from data_schemas.layout import index_part_name
from pipeline.dataset import INDEX_SCHEMA, Previous, read_table
from pipeline.images import decode, to_rgb
from pipeline.inputs import CleanError
from pipeline.progress import gather
from pipeline.signals import HASH_VERSION, signals

if TYPE_CHECKING:
    from pipeline.config import CleanConfig


def index_version(previous: Previous) -> int:
    return int(previous.manifest.parameters.get("dedup_hashes", 1)) if previous.manifest else HASH_VERSION


def prepare_index(client, cfg: CleanConfig, previous: Previous, *, out) -> pa.Table | None:
    """The re-hashed index when it must and may be rebuilt (None when it is current); raises when it may not."""
    version = index_version(previous)
    if version == HASH_VERSION or not previous.index.num_rows:
        return None
    if not cfg.rehash_index:
        raise CleanError(f"{out}: its dedup index holds near-duplicate hashes of version {version}, this mmpipe "
                         f"computes version {HASH_VERSION} (borders trimmed, mirrored pHash, PDQ, colour); comparing "
                         "them would miss or invent duplicates.  Re-run with --rehash-index (CleanConfig."
                         "rehash_index) to re-hash the index from the stored images first, or clean into a new --out")
    shards = [str(member_path(out, s.name)) for s in previous.manifest.shards]
    tasks = client.map(shard_signals, shards, max_pixels=cfg.max_pixels, pure=False)
    parts = gather(client, tasks, "re-hash index", progress=cfg.progress)
    fresh = {key: row for part in parts for key, row in part.items()}
    rows = previous.index.to_pylist()
    for row in rows:
        row.update(fresh.get(row["key"], {"phash_flip": None, "pdq": None, "pdq_flip": None, "colour": None,
                                           "aspect": None}))
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def shard_signals(path: str, *, max_pixels: int) -> dict[str, dict]:
    """Worker task: key -> the index's hash columns, from each stored image of one shard."""
    table = read_table(storage.location(path), columns=["key", "image"])
    out = {}
    for key, data in zip(table.column("key").to_pylist(), table.column("image").to_pylist(), strict=True):
        img = decode(data, max_pixels=max_pixels)
        if isinstance(img, str):
            continue
        s = signals(to_rgb(img))
        out[key] = {"phash": s.phash, "phash_flip": s.phash_flip, "pdq": s.pdq, "pdq_flip": s.pdq_flip,
                    "colour": s.colour, "aspect": s.aspect}
    return out


def list_rehashed(manifest: Manifest, work, run: int, table: pa.Table) -> None:
    """Write the re-hashed rows as their own index part and list it in place of the parts it supersedes (which
    stay on disk, unlisted); this run's own part follows it."""
    name = index_part_name(run, rehash=True)
    atomic_write_parquet(work / name, table.cast(INDEX_SCHEMA), row_group_size=100_000)
    manifest.extra["index"] = [name, manifest.extra["index"][-1]]
