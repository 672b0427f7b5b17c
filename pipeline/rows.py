"""One RAW row -> a staged CLEAN candidate or a drop reason; one partition of rows -> a staged Parquet file.

This runs on the Dask workers.  Per-row checks run cheapest first and the first failing check names the reason:
invalid id (not a safe key), blocklisted URL, fetch failed, blocklisted original bytes, caption (empty /
boilerplate / too short / too long / language), image (undecodable / bomb / too small / bad aspect), blocklisted
stored bytes.  Duplicates are decided later, globally, on the client (`pipeline.dedup`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from data_schemas import CLEAN_SCHEMA, Blocklist, is_safe_key, reasons
from pipeline.captions import RANK, Caption, clean_caption
from pipeline.images import NormalisedImage, normalise

if TYPE_CHECKING:
    from pipeline.config import CleanConfig

log = logging.getLogger(__name__)

# Every CLEAN column except those decided on the client after dedup (split, dup_cluster), plus the client-side
# dedup fields, which are dropped before the shard is written.  Derived, so it can never drift from the contract.
STAGE_SCHEMA = pa.schema([f for f in CLEAN_SCHEMA if f.name not in ("split", "dup_cluster")] + [
    pa.field("caption_rank", pa.int8(), nullable=False),
    pa.field("phash_flip", pa.uint64(), nullable=False),
    pa.field("pdq", pa.binary(32), nullable=False),
    pa.field("pdq_flip", pa.binary(32), nullable=False),
    pa.field("colour", pa.binary(32), nullable=False),
    pa.field("aspect", pa.float32(), nullable=False),
])
REJECT_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("source", pa.string()),
    pa.field("page_url", pa.string()),
    pa.field("image_url", pa.string()),
    pa.field("caption_candidates", pa.string()),  # JSON, for the audit trail
    pa.field("input", pa.string()),
    pa.field("image_bytes", pa.binary()),
])


@dataclass
class Accepted:
    caption: Caption
    image: NormalisedImage
    credit: str | None


def row_reason(row: dict[str, Any], cfg: CleanConfig, blocklist: Blocklist) -> Accepted | str:
    """The per-row decision, pure: usable without Dask (the benchmark baseline calls it directly)."""
    if not is_safe_key(row.get("id")):  # it becomes the CLEAN key, which names files (exports)
        return reasons.INVALID_ID
    if blocklist.blocks_url(row.get("page_url")) or blocklist.blocks_url(row.get("image_url")):
        return reasons.BLOCKLISTED
    if cfg.roles is not None and row.get("role") is not None and row["role"] not in cfg.roles:
        return reasons.ROLE_NOT_ALLOWED
    data = row.get("image_bytes")
    if row.get("fetch_error") or not data:
        return reasons.FETCH_FAILED
    if blocklist.sha256 and blocklist.blocks_sha256(hashlib.sha256(data).hexdigest()):
        return reasons.BLOCKLISTED
    caption = clean_caption(row.get("caption_candidates") or [], cfg, page_lang=row.get("page_lang"))
    if isinstance(caption, str):
        return caption
    try:
        image = normalise(data, cfg)
    except Exception as exc:  # noqa: BLE001 - a hostile file must cost one row, never the run
        log.warning("row %s (%s): unexpected image error %r; dropped as undecodable", row.get("id"),
                    row.get("image_url"), exc)
        return reasons.IMAGE_UNDECODABLE
    if isinstance(image, str):
        return image
    if blocklist.blocks_sha256(image.sha256):
        return reasons.BLOCKLISTED
    return Accepted(caption=caption, image=image, credit=row.get("credit") or caption.credit)


def staged_record(row: dict[str, Any], acc: Accepted) -> dict[str, Any]:
    img, cap = acc.image, acc.caption
    return {
        "key": row["id"], "caption": cap.caption, "caption_origin": cap.origin, "image": img.data,
        "width": img.width, "height": img.height, "original_width": img.original_width,
        "original_height": img.original_height, "sha256": img.sha256, "phash": img.phash, "lang": cap.lang,
        "source": row["source"], "source_kind": row["source_kind"], "page_url": row["page_url"],
        "image_url": row["image_url"], "published_at": row.get("published_at"), "crawled_at": row["crawled_at"],
        "license": row.get("license"), "credit": acc.credit, "role": row.get("role"),
        "caption_rank": RANK.get(cap.origin, len(RANK)), "phash_flip": img.phash_flip, "pdq": img.pdq,
        "pdq_flip": img.pdq_flip, "colour": img.colour, "aspect": img.aspect,
    }


def iter_rows(table: pa.Table):
    """Rows as dicts, one at a time: image bytes are materialised per row, never as a Python list of all rows."""
    small = table.drop_columns(["image_bytes"]).to_pylist()
    images = table.column("image_bytes")
    for i, row in enumerate(small):
        row["image_bytes"] = images[i].as_py()
        yield row
