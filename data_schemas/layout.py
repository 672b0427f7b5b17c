"""Where things live inside a dataset directory.

Only the shards are ``*.parquet`` files, so DuckDB's ``DATASET/**/*.parquet``, ``pyarrow.dataset`` and Hugging
Face ``datasets`` pointed at a dataset see exactly its rows.  Every auxiliary table (scores, and later the dedup
index and the rejected rows) lives under a ``_``-prefixed directory and ends in ``.pq`` (still Parquet).
"""

from __future__ import annotations

from pathlib import Path

AUX_PREFIX = "_"  # auxiliary directories inside a dataset
AUX_SUFFIX = ".pq"  # auxiliary Parquet tables (never .parquet: that suffix means "a shard")
SCORES_DIR = "_scores"  # DATASET/_scores/<run-id>/part-NNNNN.pq + scores.json
SCORE_PART_GLOB = f"part-*{AUX_SUFFIX}"
SCORES_INFO = "scores.json"  # beside the parts: the model, the settings, and whether every shard is scored
CURATE_DIR = "_curate"  # in a curated version: the alignment histogram, the extremes sheet, the cut


def raw_files_below(directory: str | Path) -> list[Path]:
    """The RAW inputs in a directory, the one rule the clean stage reads by and the flows' clean cache keys on:
    every ``*.parquet`` file below it (sorted), except under a hidden (``.``) or ``_``-prefixed name (temporary
    files being written, auxiliary tables)."""
    directory = Path(directory)
    hidden = (".", AUX_PREFIX)
    return sorted(p for p in directory.rglob("*.parquet")
                  if p.is_file() and not any(part.startswith(hidden) for part in p.relative_to(directory).parts))


def scores_dir(dataset: str | Path, run_id: str) -> Path:
    return Path(dataset) / SCORES_DIR / run_id


def score_part_name(number: int) -> str:
    return f"part-{number:05d}{AUX_SUFFIX}"
