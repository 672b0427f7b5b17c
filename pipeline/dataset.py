"""The dataset directory's life cycle: lock, previous version, build beside it, swap atomically, recover.

A run builds the complete new version in ``.<name>.tmp-<id>/`` next to the dataset: hard links to the previous
version's files (shards are immutable, so this costs nothing), the new shards, index and manifest (last).  The two
directories are then exchanged in one ``renameat2(RENAME_EXCHANGE)`` call where the file system supports it, else
by moving the new files into the dataset directory, the manifest last (`_merge_in`).  A run killed at any point
leaves the previous dataset readable and complete, and the directory never goes missing.

A dataset at a URL (`data_schemas.storage`: an object store, where nothing renames atomically) is built in a local
work directory, then published: a journal object listing the new files, every new file (names the previous
manifest never lists: new shard numbers, index and rejected parts of the new run), the manifest last (one PUT:
the commit point), then the journal is removed.  `recover_remote` deletes what a killed publish left unlisted.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas import (
    MANIFEST_NAME,
    Manifest,
    atomic_write_json,
    atomic_write_parquet,
    fault_point,
    member_path,
    storage,
)
from pipeline.dedup import GREY, colour_array, pdq_words
from pipeline.inputs import CleanError

log = logging.getLogger(__name__)

INDEX_SCHEMA = pa.schema([
    pa.field("key", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("phash", pa.uint64(), nullable=False),
    pa.field("cluster", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("run", pa.int32(), nullable=False),
    # hashes v2 (`pipeline.signals`); null in indexes written before them, and for rows re-hashed by
    # --rehash-index whose image is gone (taken down): those match on pHash alone
    pa.field("phash_flip", pa.uint64()),
    pa.field("pdq", pa.binary(32)),
    pa.field("pdq_flip", pa.binary(32)),
    pa.field("colour", pa.binary(32)),
    pa.field("aspect", pa.float32()),
])
_ALLOWED_BEFORE_FIRST_RUN = {"blocklist.jsonl"}
_JOURNAL = ".merging.json"  # in a build dir: the files `_merge_in` moves into the dataset (for `recover`)


@dataclass
class Previous:
    manifest: Manifest | None = None
    index: pa.Table = field(default_factory=INDEX_SCHEMA.empty_table)

    @property
    def run(self) -> int:
        return len(self.manifest.extra.get("runs", [])) if self.manifest else 0


@contextmanager
def locked(out: Path | str):
    """One run per dataset at a time: a second concurrent run fails fast instead of racing the swap.  For a URL
    the lock is a local file named after it: it guards this machine only (an object store has no lock; run one
    clean per remote dataset)."""
    if storage.is_url(out):
        digest = uuid.uuid5(uuid.NAMESPACE_URL, out).hex
        lock_path = Path(tempfile.gettempdir()) / "mmpipe-locks" / f"{digest}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    else:
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
    """Finish or undo what a killed run left: restore a half-swapped dataset (the two-rename swap of older
    versions), remove what a killed `_merge_in` moved in before its manifest, delete abandoned build dirs."""
    backups = sorted(out.parent.glob(f".{out.name}.old-*"))
    if not out.exists():  # killed between the two renames of an older version's fallback swap
        for backup in backups:
            if (backup / MANIFEST_NAME).exists():
                log.warning("%s: restoring the previous dataset from %s (a run was killed mid-swap)", out, backup)
                os.rename(backup, out)
                break
    for journal in out.parent.glob(f".{out.name}.tmp-*/{_JOURNAL}"):
        _undo_merge(out, json.loads(journal.read_text()))
    for stale in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.old-*")]:
        log.info("removing %s left by an interrupted run", stale)
        shutil.rmtree(stale, ignore_errors=True)


def load_previous(out: Path | str) -> Previous:
    if not storage.exists(out):
        return Previous()
    if not storage.exists(storage.join(out, MANIFEST_NAME)):
        extra = {storage.name(p) for p in _members(out)} - _ALLOWED_BEFORE_FIRST_RUN
        if extra:
            raise CleanError(f"{out} exists but holds no dataset (no {MANIFEST_NAME}; found {sorted(extra)[:5]}); "
                             "choose a new or empty --out directory")
        return Previous()
    manifest = Manifest.read(out)
    if "parent" in manifest.extra:
        raise CleanError(f"{out} is a curated version of {manifest.extra['parent'].get('path')} (`mmpipe curate`); "
                         "clean into that dataset and curate it again")
    parts = [read_table(member_path(out, name), schema=INDEX_SCHEMA) for name in manifest.extra.get("index", [])]
    return Previous(manifest=manifest, index=pa.concat_tables(parts) if parts else INDEX_SCHEMA.empty_table())


def _members(out: Path | str) -> list:
    if storage.is_url(out):
        fs, path = storage.filesystem(out)
        return fs.ls(path, detail=False)
    return list(Path(out).iterdir())


def read_table(loc: Path | str, **kwargs) -> pa.Table:
    """`pq.read_table` of a local path or a URL."""
    afs, path = storage.arrow_filesystem(loc)
    return pq.read_table(path, filesystem=afs, **kwargs)


def new_work_dir(out: Path | str) -> Path:
    if storage.is_url(out):  # built on local disk, published to the store at the end (`publish_remote`)
        base = os.environ.get("DASK_TEMPORARY_DIRECTORY")
        if base:
            os.makedirs(base, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="mmpipe-clean-", dir=base))
        (work / "_staging").mkdir()
        return work
    work = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    (work / "_staging").mkdir(parents=True)
    return work


def link_previous(out: Path, work: Path) -> None:
    """Carry the previous version's files into the new one (hard links; a copy where links are impossible)."""
    if not out.exists():
        return
    for src in sorted(out.rglob("*")):
        rel = src.relative_to(out)
        # not the manifest (the new one is written last), nor hidden files: a pending takedown (finished before
        # any run starts), temporary files of an interrupted write
        if src.is_dir() or rel.as_posix() == MANIFEST_NAME or any(p.startswith(".") for p in rel.parts):
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
    phash = index.column("phash").to_numpy().astype(np.uint64)
    flip = index.column("phash_flip")
    pdq, pdq_flip = index.column("pdq"), index.column("pdq_flip")
    known = pdq.is_valid().to_numpy(zero_copy_only=False) & pdq_flip.is_valid().to_numpy(zero_copy_only=False)
    zero = bytes(32)
    return {"keys": np.asarray(index.column("key").to_pylist(), dtype=str), "phash": phash,
            "phash_flip": np.where(flip.is_valid().to_numpy(zero_copy_only=False),
                                   flip.fill_null(0).to_numpy().astype(np.uint64), phash),
            "pdq": pdq_words([v or zero for v in pdq.to_pylist()]),
            "pdq_flip": pdq_words([v or zero for v in pdq_flip.to_pylist()]), "pdq_known": known,
            "colour": colour_array([v or GREY for v in index.column("colour").to_pylist()]),
            "aspect": index.column("aspect").fill_null(np.nan).to_numpy().astype(np.float32),
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
    fault_point("clean.swap")
    if not out.exists():
        os.rename(work, out)
    elif _exchange(work, out):
        shutil.rmtree(work)  # now the previous version; every file lives on through the hard links
    else:
        _merge_in(work, out)
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _merge_in(work: Path, out: Path) -> None:
    """The swap where RENAME_EXCHANGE is missing: move the new version's files into the dataset directory, then
    its manifest (one rename).  The new files have names the previous manifest does not list (new shard numbers,
    index and rejected parts), and every file it lists is a hard link already in place, so readers of the old
    manifest see the old dataset until the new manifest replaces it.  A journal of the moves lets `recover`
    take out what a killed merge moved in."""
    moves = []
    for src in sorted(work.rglob("*")):
        rel = src.relative_to(work)
        if src.is_dir() or rel.as_posix() in (MANIFEST_NAME, _JOURNAL):
            continue
        dst = out / rel
        if not (dst.exists() and os.path.samefile(src, dst)):
            moves.append(rel.as_posix())
    atomic_write_json(work / _JOURNAL, {"moves": moves})
    for rel in moves:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / rel, out / rel)
        fault_point(f"clean.merged:{Path(rel).name}")
    os.replace(work / MANIFEST_NAME, out / MANIFEST_NAME)
    fault_point("clean.merged:manifest")
    shutil.rmtree(work)


def _undo_merge(out: Path, journal: dict) -> None:
    """Remove the files a killed `_merge_in` moved in that the dataset's manifest does not list."""
    manifest = Manifest.read(out) if (out / MANIFEST_NAME).exists() else Manifest()
    listed = {s.name for s in manifest.shards} | {n for key in ("index", "rejected")
                                                  for n in manifest.extra.get(key, [])}
    for rel in journal.get("moves", []):
        path = member_path(out, rel)
        if rel not in listed and path.suffix == ".parquet" and path.is_file():
            log.warning("removing %s: moved in by a run killed before its manifest", path)
            path.unlink()


_REMOTE_JOURNAL = ".publishing.json"  # in a remote dataset: the files a publish is adding (for `recover_remote`)


def publish_remote(work: Path, out: str) -> None:
    """The swap for a dataset at a URL: journal, the new files, the manifest (the commit point), no journal."""
    shutil.rmtree(work / "_staging", ignore_errors=True)
    adds = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    adds = [rel for rel in adds if rel != MANIFEST_NAME]
    atomic_write_json(storage.join(out, _REMOTE_JOURNAL), {"moves": adds})
    fault_point("clean.swap")
    for rel in adds:
        storage.publish_file(work / rel, member_path(out, rel))
    storage.publish_file(work / MANIFEST_NAME, storage.join(out, MANIFEST_NAME))
    storage.remove(storage.join(out, _REMOTE_JOURNAL))
    shutil.rmtree(work, ignore_errors=True)


def recover_remote(out: str) -> None:
    """Delete what a publish killed before its manifest left: the files its journal names that the manifest does
    not list, and temporary objects; the previous version is untouched throughout."""
    journal_path = storage.join(out, _REMOTE_JOURNAL)
    if storage.exists(journal_path):
        journal = json.loads(storage.read_text(journal_path))
        manifest = Manifest.read(out) if storage.exists(storage.join(out, MANIFEST_NAME)) else Manifest()
        listed = {s.name for s in manifest.shards} | {n for key in ("index", "rejected")
                                                      for n in manifest.extra.get(key, [])}
        for rel in journal.get("moves", []):
            if rel not in listed:
                log.warning("removing %s: published by a run killed before its manifest", rel)
                storage.remove(member_path(out, rel))
        storage.remove(journal_path)
    if storage.exists(out):
        fs, path = storage.filesystem(out)
        for key in fs.find(path):
            base = key.rsplit("/", 1)[-1]
            if base.startswith(".") and base.endswith(".tmp"):
                fs.rm(key)
