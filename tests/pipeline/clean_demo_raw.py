"""Emulate what a correct crawl of the demo site writes (tests only): one RAW row per truth pair whose stage is not
"crawl", with the image bytes the site serves, so the clean stage can be checked against the ground truth."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from data_schemas import RAW_SCHEMA, atomic_write_parquet, row_id

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"RIFF")


def raw_rows(site, base_url: str = "http://127.0.0.1:8800") -> list[dict]:
    rows = []
    for n, t in enumerate(site.absolute_truth(base_url)):
        if t.stage == "crawl":
            continue
        parts = urlsplit(t.image_url)
        status, headers, body = site.response(parts.path + (f"?{parts.query}" if parts.query else ""))
        error = None
        if status != 200:
            error = "http_error"
        elif not body.startswith(_MAGIC):
            error = "not_image"  # the crawler sniffs the magic bytes, whatever Content-Type says
        ok = error is None
        rows.append({
            "id": row_id(t.page_url, t.image_url), "source": t.source, "source_kind": t.source_kind,
            "page_url": t.page_url, "image_url": t.image_url,
            "caption_candidates": [{"text": text, "origin": origin} for text, origin in t.caption_candidates],
            "title": None, "page_lang": t.lang, "published_at": t.published_at,
            "crawled_at": t.published_at + timedelta(days=1, seconds=n), "license": None, "credit": t.credit,
            "image_bytes": body if ok else None, "image_mime": headers.get("Content-Type") if ok else None,
            "http_status": status, "fetch_error": error, "opt_out": [],
        })
    return rows


def write_demo_raw(site, raw_dir: Path, *, rows_per_file: int = 200) -> list[dict]:
    rows = raw_rows(site)
    for k in range(0, len(rows), rows_per_file):
        table = pa.Table.from_pylist(rows[k:k + rows_per_file], schema=RAW_SCHEMA)
        atomic_write_parquet(raw_dir / f"demo-{k // rows_per_file:05d}.parquet", table, row_group_size=64)
    return rows
