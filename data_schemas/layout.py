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


def scores_dir(dataset: str | Path, run_id: str) -> Path:
    return Path(dataset) / SCORES_DIR / run_id


def score_part_name(number: int) -> str:
    return f"part-{number:05d}{AUX_SUFFIX}"
