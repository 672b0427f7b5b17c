"""The dataset directory's life cycle: lock, previous version, build beside it, swap atomically, recover.

A run builds the complete new version in ``.<name>.tmp-<id>/`` next to the dataset: hard links to the previous
version's files (shards are immutable, so this costs nothing), the new shards, index and manifest (last).  The two
directories are then exchanged in one ``renameat2(RENAME_EXCHANGE)`` call where the file system supports it, else
with two renames and a recovery step at the next start.  A run killed at any point leaves the previous dataset
readable and complete.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas import MANIFEST_NAME, Manifest, atomic_write_parquet
from pipeline.inputs import CleanError

log = logging.getLogger(__name__)

INDEX_SCHEMA = pa.schema([
    pa.field("key", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("phash", pa.uint64(), nullable=False),
    pa.field("cluster", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("run", pa.int32(), nullable=False),
])
_ALLOWED_BEFORE_FIRST_RUN = {"blocklist.jsonl"}


@dataclass
class Previous:
    manifest: Manifest | None = None
    index: pa.Table = field(default_factory=INDEX_SCHEMA.empty_table)

    @property
    def run(self) -> int:
        return len(self.manifest.extra.get("runs", [])) if self.manifest else 0


@contextmanager
def locked(out: Path):
    """One run per dataset at a time: a second concurrent run fails fast instead of racing the swap."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.parent / f".{out.name}.lock"
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CleanError(f"{out}: another clean run is writing this dataset (lock {lock_path})") from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def recover(out: Path) -> None:
    """Finish or undo what a killed run left: restore a half-swapped dataset, delete abandoned build dirs."""
    backups = sorted(out.parent.glob(f".{out.name}.old-*"))
    if not out.exists():  # killed between the two renames of the fallback swap
        for backup in backups:
            if (backup / MANIFEST_NAME).exists():
                log.warning("%s: restoring the previous dataset from %s (a run was killed mid-swap)", out, backup)
                os.rename(backup, out)
                break
    for stale in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.old-*")]:
        log.info("removing %s left by an interrupted run", stale)
        shutil.rmtree(stale, ignore_errors=True)


def load_previous(out: Path) -> Previous:
    if not out.exists():
        return Previous()
    if not (out / MANIFEST_NAME).exists():
        extra = {p.name for p in out.iterdir()} - _ALLOWED_BEFORE_FIRST_RUN
        if extra:
            raise CleanError(f"{out} exists but holds no dataset (no {MANIFEST_NAME}; found {sorted(extra)[:5]}); "
                             "choose a new or empty --out directory")
        return Previous()
    manifest = Manifest.read(out)
    if "parent" in manifest.extra:
        raise CleanError(f"{out} is a curated version of {manifest.extra['parent'].get('path')} (`mmpipe curate`); "
                         "clean into that dataset and curate it again")
    parts = [pq.read_table(out / name, schema=INDEX_SCHEMA) for name in manifest.extra.get("index", [])]
    return Previous(manifest=manifest, index=pa.concat_tables(parts) if parts else INDEX_SCHEMA.empty_table())


def new_work_dir(out: Path) -> Path:
    work = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    (work / "_staging").mkdir(parents=True)
    return work


def link_previous(out: Path, work: Path) -> None:
    """Carry the previous version's files into the new one (hard links; a copy where links are impossible)."""
    if not out.exists():
        return
    for src in sorted(out.rglob("*")):
        rel = src.relative_to(out)
        if src.is_dir() or rel.as_posix() == MANIFEST_NAME:
            continue
        dst = work / rel
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def write_index(work: Path, run: int, table: pa.Table) -> str:
    name = f"index/part-{run:05d}.parquet"
    atomic_write_parquet(work / name, table.cast(INDEX_SCHEMA), row_group_size=100_000)
    return name


def index_arrays(index: pa.Table) -> dict[str, np.ndarray]:
    return {"keys": np.asarray(index.column("key").to_pylist(), dtype=str),
            "phash": index.column("phash").to_numpy().astype(np.uint64),
            "sha256": np.asarray(index.column("sha256").to_pylist(), dtype="S64"),
            "cluster": np.asarray(index.column("cluster").to_pylist(), dtype=str)}


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def swap_in(work: Path, out: Path) -> None:
    shutil.rmtree(work / "_staging", ignore_errors=True)
    if not out.exists():
        os.rename(work, out)
    elif _exchange(work, out):
        shutil.rmtree(work)  # now the previous version; every file lives on through the hard links
    else:
        backup = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
        os.rename(out, backup)
        os.rename(work, out)  # a kill between the two renames is undone by `recover` at the next start
        shutil.rmtree(backup)
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
