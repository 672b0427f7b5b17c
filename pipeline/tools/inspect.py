"""`mmpipe inspect`: the numbers a person needs to decide whether a dataset is what they meant to build.

All statistics run in DuckDB over the shards with only the needed columns, so inspecting a dataset never loads
its images; the HTML report and the contact sheet read exactly the images they show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.tools import _stats
from pipeline.tools._read import Dataset, ToolError, _kind_of, connect, open_dataset, query_table, rows_view

DEFAULT_THUMBS = 24
_SAMPLE_COLUMNS = {
    "clean": ["key", "split", "source", "lang", "width", "height", "caption", "page_url"],
    "raw": ["key", "source", "lang", "http_status", "fetch_error", "caption", "image_url"],
}


@dataclass
class ShardSummary:
    name: str
    rows: int
    bytes: int
    split: str = ""


@dataclass
class InspectReport:
    """What `mmpipe inspect` prints; every count is over the rows matching ``where`` (all rows without it)."""

    path: str
    kind: str  # "clean" | "raw"
    schema_version: str | None
    shards: list[ShardSummary]
    rows: int  # all rows in the files
    bytes: int
    matched: int  # rows matching ``where``
    where: str | None = None
    created_at: str | None = None
    splits: dict[str, int] = field(default_factory=dict)
    per_source: dict[str, int] = field(default_factory=dict)
    source_kinds: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    caption_origins: dict[str, int] = field(default_factory=dict)
    fetch_errors: dict[str, int] = field(default_factory=dict)  # RAW only
    funnel: list[tuple[str, int]] = field(default_factory=list)
    funnel_from: str | None = None  # "manifest" | "crawl_summary"
    caption_length: dict[str, float] = field(default_factory=dict)  # characters: p5..p95, min, max, mean
    width: dict[str, float] = field(default_factory=dict)
    height: dict[str, float] = field(default_factory=dict)
    caption_hist: list[_stats.Bin] = field(default_factory=list)
    side_hist: list[_stats.Bin] = field(default_factory=list)  # shortest side in pixels
    sample: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    html: str | None = None
    grid: str | None = None


def _shards(ds: Dataset) -> list[ShardSummary]:
    splits = {s.name: s.split for s in ds.manifest.shards} if ds.manifest else {}
    out = []
    for f in ds.files:
        rows = pq.ParquetFile(f).metadata.num_rows  # footer only
        out.append(ShardSummary(ds.rel(f), rows, f.stat().st_size, splits.get(ds.rel(f), "")))
    return out


def _funnel(ds: Dataset) -> tuple[list[tuple[str, int]], str | None]:
    if ds.manifest is not None:
        m = ds.manifest
        drops = sorted(((k, int(v)) for k, v in m.drops.items()), key=lambda kv: -kv[1])  # biggest loss first
        return [("rows_in", m.rows_in), *drops, ("rows_out", m.rows_out)], "manifest"
    summary = ds.crawl_summary
    if not summary:
        return [], None
    # The crawl summary's layout belongs to the crawler; show its top-level counts, then its drops by reason.
    steps = [(k, int(v)) for k, v in summary.items() if isinstance(v, int) and not isinstance(v, bool)]
    drops = summary.get("drops") if isinstance(summary.get("drops"), dict) else {}
    steps += [(f"dropped: {k}", int(v)) for k, v in drops.items() if isinstance(v, (int, float))]
    return steps, "crawl_summary"


def _sample(con, ds: Dataset, keys: list[str]) -> list[dict[str, Any]]:
    if not keys:
        return []
    cols = ", ".join(_SAMPLE_COLUMNS[ds.kind])
    rows = {r["key"]: r for r in query_table(con, f"SELECT {cols} FROM rows WHERE {_stats.rows_of(keys)}").to_pylist()}
    return [rows[k] for k in keys if k in rows]


def _fill_stats(con, ds: Dataset, report: InspectReport) -> None:
    report.matched = int(con.execute("SELECT count(*) FROM rows").fetchall()[0][0])
    report.per_source = _stats.counts(con, "source")
    report.source_kinds = _stats.counts(con, "source_kind")
    report.languages = _stats.counts(con, "lang", limit=30)
    report.caption_length = _stats.percentiles(con, "length(caption)")
    report.caption_hist = _stats.histogram(con, "length(caption)")
    if ds.kind == "clean":
        report.splits = _stats.counts(con, "split")
        report.caption_origins = _stats.counts(con, "caption_origin")
    else:
        report.fetch_errors = _stats.counts(con, "fetch_error")
    _stats.register_sizes(con, ds)
    report.width = _stats.percentiles(con, "width", source="sizes")
    report.height = _stats.percentiles(con, "height", source="sizes")
    report.side_hist = _stats.histogram(con, "least(width, height)", source="sizes")


def inspect_dataset(path: str | Path, *, sample: int = 0, where: str | None = None, html: str | Path | None = None,
                    grid: str | Path | None = None, thumbs: int | None = None, seed: int = 0) -> InspectReport:
    """Summarise a clean dataset, a raw crawl directory or one shard; optionally write an HTML report / a sheet.

    ``sample`` rows and ``thumbs`` images (default: ``sample`` or 24) for the HTML report and the contact sheet
    are each a random sample stratified by source (`_stats.sample_keys`, seeded by ``seed``).
    """
    ds = open_dataset(path)
    shards = _shards(ds)
    version = ds.manifest.schema_version if ds.manifest else (_kind_of(ds.files[0])[1] if ds.files else None)
    funnel, funnel_from = _funnel(ds)
    report = InspectReport(
        path=str(path), kind=ds.kind, schema_version=version, shards=shards,
        rows=sum(s.rows for s in shards), bytes=sum(s.bytes for s in shards), matched=0, where=where,
        created_at=ds.manifest.created_at if ds.manifest else None, funnel=funnel, funnel_from=funnel_from,
        extra=dict(ds.manifest.extra) if ds.manifest else {})
    if not ds.files:
        return report
    con = connect()
    try:
        rows_view(con, ds, where)
        _fill_stats(con, ds, report)
        report.sample = _sample(con, ds, _stats.sample_keys(con, sample, seed=seed))
        if html or grid:
            n = thumbs if thumbs is not None else (sample or DEFAULT_THUMBS)
            previews = _stats.load_thumbs(con, ds, _stats.sample_keys(con, n, seed=seed))
            if html:
                from pipeline.tools.report_html import write_html

                report.html = str(write_html(report, previews, Path(html)))
            if grid:
                from pipeline.tools.grid import write_grid

                report.grid = str(write_grid(previews, Path(grid)))
    finally:
        con.close()
    return report


__all__ = ["InspectReport", "ShardSummary", "ToolError", "inspect_dataset"]
