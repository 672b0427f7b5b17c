"""Find, validate and index a CLEAN dataset: the manifest, each shard's footer, and its row groups.

Only footers are read here (row-group sizes and the schema metadata), so a run fails fast, before any worker
starts, when the directory is empty, the manifest is missing or a shard was written by another schema version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_schemas import CLEAN_SCHEMA, CLEAN_VERSION, MANIFEST_NAME, Manifest, SchemaError, storage, validate

READ_COLUMNS = ["key", "caption", "image"]


class DataError(ValueError):
    """The dataset cannot be trained on; the message names the path and what to do."""


@dataclass(frozen=True)
class Unit:
    """A slice of one row group: the smallest piece of data handed to one loader worker."""

    shard: int  # index into DatasetIndex.paths
    row_group: int
    rows: tuple[int, ...]  # row offsets inside the row group

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class DatasetIndex:
    root: Path | str  # a local Path or a URL (`data_schemas.storage`)
    split: str
    paths: tuple[Path | str, ...]
    units: tuple[Unit, ...]

    @property
    def rows(self) -> int:
        return sum(len(u) for u in self.units)


def _read_manifest(root: Path | str) -> Manifest:
    if not storage.exists(root):
        raise DataError(f"{root}: the data directory does not exist; run `mmpipe clean` to create it or fix --data")
    if not storage.exists(storage.join(root, MANIFEST_NAME)):
        local_empty = not storage.is_url(root) and root.is_dir() and not any(root.iterdir())
        what = "is empty" if local_empty else f"has no {MANIFEST_NAME}"
        raise DataError(f"{root}: the data directory {what}; point --data at a dataset written by `mmpipe clean` "
                        "(it is complete only once its manifest.json exists)")
    try:
        manifest = Manifest.read(root)
    except (SchemaError, FileNotFoundError) as exc:
        raise DataError(str(exc)) from exc
    if str(manifest.schema_version) != CLEAN_VERSION:
        raise DataError(f"{storage.join(root, MANIFEST_NAME)}: dataset schema version {manifest.schema_version}, "
                        f"this mmpipe trains on CLEAN version {CLEAN_VERSION}; re-run `mmpipe clean` with this "
                        "version")
    return manifest


def _shard_units(path: Path | str, shard: int, split: str, declared: str) -> list[Unit]:
    try:
        validate(path, CLEAN_SCHEMA, check_values=False)
    except SchemaError as exc:
        raise DataError(f"{exc}") from exc
    pf = storage.parquet_file(path)
    units = []
    for rg in range(pf.num_row_groups):
        n = pf.metadata.row_group(rg).num_rows
        if declared == split:
            rows = tuple(range(n))
        else:  # a shard holding several splits: keep the rows of ours
            col = pf.read_row_group(rg, columns=["split"]).column("split").to_numpy(zero_copy_only=False)
            rows = tuple(int(i) for i in np.flatnonzero(col == split))
        if rows:
            units.append(Unit(shard, rg, rows))
    return units


def open_split(root: str | Path, split: str = "train") -> DatasetIndex:
    """Index the row groups of one split; raise DataError with a clear message when there is nothing to read."""
    root = storage.location(root)
    manifest = _read_manifest(root)
    paths: list[Path | str] = []
    units: list[Unit] = []
    for info in manifest.shards:
        if info.split and info.split != split:
            continue
        path = storage.join(root, info.name)
        if not storage.exists(path):
            raise DataError(f"{path}: listed in {storage.join(root, MANIFEST_NAME)} but missing; the dataset is "
                            "damaged, re-run `mmpipe clean`")
        units.extend(_shard_units(path, len(paths), split, info.split))
        paths.append(path)
    if not units:
        raise DataError(f"{root}: no '{split}' rows in the dataset ({len(manifest.shards)} shard(s) listed); "
                        f"check the split settings of `mmpipe clean` or pass another --data")
    return DatasetIndex(root=root, split=split, paths=tuple(paths), units=tuple(units))


def read_captions(index: DatasetIndex, limit: int | None = None) -> list[str]:
    """The captions of a split (only the caption column is read), for training the tokenizer."""
    out: list[str] = []
    for shard, path in enumerate(index.paths):
        pf = storage.parquet_file(path)
        for unit in (u for u in index.units if u.shard == shard):
            col = pf.read_row_group(unit.row_group, columns=["caption"]).column("caption").to_pylist()
            out.extend(col[i] for i in unit.rows)
            if limit is not None and len(out) >= limit:
                return out[:limit]
    return out
