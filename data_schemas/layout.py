"""Where things live inside a dataset directory: the one home of every name in it.

Only the shards are ``*.parquet`` files, so DuckDB's ``DATASET/**/*.parquet``, ``pyarrow.dataset``, pandas'
``read_parquet(DATASET)`` and Hugging Face ``datasets`` pointed at a dataset see exactly its rows.  Everything else
is ``_``-prefixed (pyarrow and pandas skip ``_`` and ``.`` names): the manifest, the blocklist, the takedown log
and pending file, and the directories of auxiliary tables, which end in ``.pq`` (still Parquet) so that a
``**/*.parquet`` glob never reaches them either.

Datasets written before this layout (``manifest.json``, ``index/*.parquet``, ``rejected/*.parquet``,
``blocklist.jsonl``, ``takedowns.jsonl``, ``.takedown-pending.json``) are still read.  A writer migrates them: it
writes the new file first, then removes the old one, so a process killed in between leaves both, and readers
prefer the new one.  The clean stage moves old index and rejected parts into the new directories (`migrated_name`)
when it builds a dataset's next version.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from data_schemas import storage

AUX_PREFIX = "_"  # auxiliary files and directories inside a dataset
AUX_SUFFIX = ".pq"  # auxiliary Parquet tables (never .parquet: that suffix means "a shard")
SHARD_SUFFIX = ".parquet"
SHARDS_DIR = "shards"  # DATASET/shards/{train,val}-NNNNN.parquet

MANIFEST_NAME = "_manifest.json"  # written last: its presence means every shard it lists is complete
BLOCKLIST_NAME = "_blocklist.jsonl"  # takedown entries that crawls and cleans honour
TAKEDOWN_LOG = "_takedowns.jsonl"  # one line per takedown
TAKEDOWN_PENDING = "_takedown-pending.json"  # an unfinished takedown; removed when it completes
PUBLISH_JOURNAL = ".publishing.json"  # in a dataset at a URL: the files a publish is adding (`recover_remote`)
INDEX_DIR = "_index"  # the clean stage's dedup index: DATASET/_index/part-NNNNN.pq (one per run)
REJECTED_DIR = "_rejected"  # with --write-rejected: the dropped rows and their reasons
SCORES_DIR = "_scores"  # DATASET/_scores/<run-id>/part-NNNNN.pq + scores.json
SCORE_PART_GLOB = f"part-*{AUX_SUFFIX}"
SCORES_INFO = "scores.json"  # beside the parts: the model, the settings, and whether every shard is scored
CURATE_DIR = "_curate"  # in a curated version: the alignment histogram, the extremes sheet, the cut

# The names of datasets written before this layout, read (and migrated by their writers) for compatibility.
LEGACY = {MANIFEST_NAME: "manifest.json", BLOCKLIST_NAME: "blocklist.jsonl", TAKEDOWN_LOG: "takedowns.jsonl",
          TAKEDOWN_PENDING: ".takedown-pending.json"}
_LEGACY_DIRS = {"index": INDEX_DIR, "rejected": REJECTED_DIR}


def scores_dir(dataset: str | Path, run_id: str) -> Path:
    return Path(dataset) / SCORES_DIR / run_id


def score_part_name(number: int) -> str:
    return f"part-{number:05d}{AUX_SUFFIX}"


def shard_name(split: str, number: int) -> str:
    return f"{SHARDS_DIR}/{split}-{number:05d}{SHARD_SUFFIX}"


def index_part_name(run: int, *, rehash: bool = False) -> str:
    return f"{INDEX_DIR}/{'rehash' if rehash else 'part'}-{run:05d}{AUX_SUFFIX}"


def rejected_part_name(run: int, partition: int | None) -> str:
    """A partition's dropped rows, or (``partition=None``) the rows dedup dropped in that run."""
    tail = "duplicates" if partition is None else f"p{partition:06d}"
    return f"{REJECTED_DIR}/r{run:05d}-{tail}{AUX_SUFFIX}"


def find(dataset: str | Path, name: str) -> storage.Location:
    """The file ``name`` of a dataset (a local directory or a URL): the current name when it exists, else its
    legacy name when that exists, else the current name (where a writer creates it)."""
    root = storage.location(dataset)
    new = storage.join(root, name)
    if name not in LEGACY or storage.exists(new):
        return new
    old = storage.join(root, LEGACY[name])
    return old if storage.exists(old) else new


def manifest_path(dataset: str | Path) -> storage.Location:
    return find(dataset, MANIFEST_NAME)


def has_manifest(dataset: str | Path) -> bool:
    return storage.is_file(manifest_path(dataset))


def drop_legacy(dataset: str | Path, name: str) -> None:
    """After ``name`` was written under its current name: remove the legacy file it replaces (the migration's
    second step; a crash before it leaves both, and `find` reads the current one)."""
    if name in LEGACY:
        storage.remove(storage.join(storage.location(dataset), LEGACY[name]))


def is_dataset_file(name: str) -> bool:
    """True for the files a dataset's own records name or a reader looks for (manifest, blocklist, takedown
    files, under their current or legacy names): what a clean run may find in a directory before its first run."""
    return name in LEGACY or name in LEGACY.values()


def migrated_name(name: str) -> str:
    """A file's name in this layout: ``index/part-00000.parquet`` -> ``_index/part-00000.pq`` (and
    ``rejected/...`` likewise), ``blocklist.jsonl`` -> ``_blocklist.jsonl`` (and the other `LEGACY` files); every
    other name is returned unchanged."""
    current = {old: new for new, old in LEGACY.items()}
    if name in current:
        return current[name]
    rel = PurePosixPath(name)
    if len(rel.parts) >= 2 and rel.parts[0] in _LEGACY_DIRS and rel.suffix == SHARD_SUFFIX:
        return PurePosixPath(_LEGACY_DIRS[rel.parts[0]], *rel.parts[1:-1], rel.stem + AUX_SUFFIX).as_posix()
    return name
