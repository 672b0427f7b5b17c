"""Helpers of the end-to-end tests: the settings every e2e crawl and clean uses, and readers of their outputs.

The tests cross the stage boundary only through files (RAW Parquet, crawl_summary.json, CLEAN shards, manifest,
rejected audit files), exactly as the stages themselves do.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from crawlers.config import CrawlConfig, demo_sources
from data_schemas import RAW_SCHEMA, Manifest, row_id, validate
from pipeline.config import CleanConfig

CLEAN_COLUMNS = ["key", "caption", "caption_origin", "credit", "lang", "sha256", "source", "source_kind",
                 "page_url", "image_url", "split", "dup_cluster", "width", "height"]


def crawl_config(demo, out: Path, **overrides: Any) -> CrawlConfig:
    """The demo crawl over loopback: no AutoThrottle ramp-up, short back-off, all three sources at once."""
    settings = dict(allow_private=True, autothrottle=False, per_domain_concurrency=16, parallel_sources=3,
                    rows_per_file=64, download_timeout=30, backoff_base=0.2, log_level="WARNING")
    return CrawlConfig(sources=demo_sources(demo.base_url), out=out, **{**settings, **overrides})


def clean_config(raw: Path, out: Path, **overrides: Any) -> CleanConfig:
    """Defaults of the clean stage (a LocalCluster of its own), plus the rejected-rows audit the tests read."""
    return CleanConfig(raw=raw, out=out, **{"progress": False, "write_rejected": True, **overrides})


def read_clean(dataset: Path, columns: list[str] | None = None) -> list[dict]:
    """Every row of the shards the manifest lists (nothing else counts as the dataset)."""
    manifest = Manifest.read(dataset)
    cols = columns or CLEAN_COLUMNS
    tables = [pq.read_table(dataset / s.name, columns=cols) for s in manifest.shards]
    return pa.concat_tables(tables).to_pylist() if tables else []


def read_raw(raw: Path | list[Path]) -> list[dict]:
    """RAW rows (of a crawl directory or of the files given) without their image bytes, each file checked against
    the RAW schema."""
    rows: list[dict] = []
    for path in sorted(Path(raw).glob("*.parquet")) if isinstance(raw, Path) else raw:
        table = validate(path, RAW_SCHEMA)
        rows.extend(table.drop(["image_bytes"]).to_pylist())
    return rows


def read_rejected(dataset: Path, manifest: Manifest) -> list[dict]:
    """The audit rows of the clean runs (`write_rejected`): id, reason and, for duplicates, dup_cluster."""
    rows: list[dict] = []
    for name in manifest.extra.get("rejected", []):
        table = pq.read_table(Path(dataset) / name)
        cols = [c for c in ("id", "reason", "dup_cluster") if c in table.column_names]
        rows.extend(table.select(cols).to_pylist())
    return rows


def truth_by_key(demo) -> dict[str, Any]:
    """The demo's ground truth (absolute URLs of the running server) keyed like RAW `id` / CLEAN `key`."""
    return {row_id(t.page_url, t.image_url): t for t in demo.truth}


@dataclass
class PipelineRun:
    """One crawl + clean of the demo site, and what each stage wrote (read once, shared by the tests)."""

    demo: Any
    raw: Path
    clean: Path
    summary: dict
    raw_rows: list[dict]
    manifest: Manifest
    rows: list[dict]
    rejected: list[dict]
    truth: dict[str, Any]


def copy_run(raw: Path, dataset: Path, dest: Path) -> tuple[Path, Path]:
    """A private copy of a crawl output (with its resume/incremental state) and of a dataset, under `dest`."""
    shutil.copytree(raw, dest / "raw", symlinks=True)
    shutil.copytree(dataset, dest / "clean", symlinks=True)
    return dest / "raw", dest / "clean"
