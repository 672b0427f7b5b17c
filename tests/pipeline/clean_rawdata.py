"""Helpers to build RAW tables the way the crawler writes them (tests only)."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from data_schemas import RAW_SCHEMA, atomic_write_parquet, row_id

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A photo-like synthetic image (smooth gradients + blobs + grain): distinct seeds give distant pHashes.

    Rendered at a quarter of the size and upscaled, so a 1600 px picture costs milliseconds.
    """
    rng = np.random.default_rng(seed)
    w, h = max(1, size[0] // 4), max(1, size[1] // 4)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(0.5, 4, 2) / np.array([w, h])
            ph = rng.uniform(0, 2 * np.pi)
            img[..., c] += rng.uniform(20, 60) * np.sin(2 * np.pi * (fx * x + fy * y) + ph)
        img[..., c] += rng.uniform(60, 200)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.3) * min(w, h)
        img += (((x - cx) ** 2 + (y - cy) ** 2) < r * r)[..., None] * rng.uniform(-80, 80, 3)
    img += rng.normal(0, 6, img.shape)
    small = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return small.resize(size, Image.Resampling.BICUBIC)


def jpeg(img: Image.Image, quality: int = 92, **kw) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality, **kw)
    return out.getvalue()


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def raw_row(n: int, image: bytes | None, caption: str | list[tuple[str, str]] = "A quiet street in the old town",
            *, source: str = "demo-news", page_lang: str | None = "en", published: datetime | None = None,
            fetch_error: str | None = None, credit: str | None = None, page_url: str | None = None,
            image_url: str | None = None) -> dict:
    page_url = page_url or f"http://127.0.0.1:8000/news/{n // 3}.html"
    image_url = image_url or f"http://127.0.0.1:8000/img/{n}.jpg"
    candidates = [(caption, "figcaption")] if isinstance(caption, str) else caption
    return {
        "id": row_id(page_url, image_url), "source": source, "source_kind": "news", "page_url": page_url,
        "image_url": image_url, "caption_candidates": [{"text": t, "origin": o} for t, o in candidates],
        "title": "Demo page", "page_lang": page_lang, "published_at": published or T0 + timedelta(hours=n),
        "crawled_at": T0 + timedelta(days=30, seconds=n), "license": None, "credit": credit,
        "image_bytes": image, "image_mime": "image/jpeg" if image else None,
        "http_status": 200 if image else 404, "fetch_error": fetch_error if image else (fetch_error or "http_error"),
        "opt_out": [],
    }


def write_raw(path: Path, rows: list[dict], *, row_group_size: int = 50) -> Path:
    table = pa.Table.from_pylist(rows, schema=RAW_SCHEMA)
    return atomic_write_parquet(path, table, row_group_size=row_group_size)


@lru_cache(maxsize=4)
def bomb_png(side: int) -> bytes:
    """A valid 1-bit PNG of side x side white pixels: tiny on the wire, huge once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * (side // 8)
    idat = b"".join(comp.compress(row * 500) for _ in range(side // 500)) + comp.compress(row * (side % 500))
    idat += comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
