"""Small but real datasets for the tools' tests: generated JPEGs, several sources, train/val shards, a manifest.

The CLEAN builder writes exactly what the clean stage's contract says (CLEAN_SCHEMA with its metadata, shards
listed in a Manifest with true sha256/rows/bytes, a funnel that adds up, an `index/` with keys), so the tools are
tested against the contract rather than against whatever the clean stage happens to write today.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from data_schemas import (
    CLEAN_SCHEMA,
    RAW_SCHEMA,
    Manifest,
    ShardInfo,
    atomic_write_parquet,
    file_sha256,
    row_id,
    validate,
)
from data_schemas import reasons as R

HOSTILE = '<script>alert("pwned")</script> Protesters & <b>police</b> outside "city hall"'
# (source, source_kind, page URL pattern, image URL pattern, language, caption pattern)
SOURCES = [
    ("news-a", "news", "https://www.news-a.test/2024/story-{i}.html", "https://cdn.news-a.test/img/{i}.jpg", "en",
     "A crowd gathers near the harbour on a windy afternoon, picture number {i}"),
    ("mastodon", "mastodon", "https://social.example/@user{i}/1{i:04d}", "https://files.social.example/m/{i}.jpg",
     "de", "Ein Hund läuft über die nasse Wiese im Park, Bild {i}"),
    ("bluesky", "bluesky", "https://bsky.app/profile/u{i}.bsky.social/post/{i}", "https://cdn.bsky.test/i/{i}.jpg",
     "fr", "Un vélo rouge appuyé contre un mur de briques, image {i}"),
]
ROW_GROUP = 4
SHARD_ROWS = 10


def make_jpeg(i: int, size: tuple[int, int]) -> bytes:
    img = Image.new("RGB", size, ((37 * i) % 256, (91 * i) % 256, (53 * i + 80) % 256))
    draw = ImageDraw.Draw(img)
    draw.ellipse([size[0] // 4, size[1] // 4, size[0] // 2 + i % 20, size[1] // 2 + i % 15], fill=(250, 250, 250))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def clean_row(i: int) -> dict:
    source, kind, page, image, lang, caption = SOURCES[i % len(SOURCES)]
    page_url, image_url = page.format(i=i), image.format(i=i)
    size = (64 + 4 * i, 48 + 2 * (i % 7))
    data = make_jpeg(i, size)
    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    return {
        "key": row_id(page_url, image_url), "caption": HOSTILE if i == 0 else caption.format(i=i),
        "caption_origin": "figcaption" if kind == "news" else "social_alt", "image": data,
        "width": size[0], "height": size[1], "original_width": size[0] * 2, "original_height": size[1] * 2,
        "sha256": hashlib.sha256(data).hexdigest(), "phash": (i * 0x9E3779B97F4A7C15) % 2**64, "lang": lang,
        "source": source, "source_kind": kind, "page_url": page_url, "image_url": image_url,
        "published_at": t0 + timedelta(hours=i), "crawled_at": t0 + timedelta(days=1, minutes=i),
        "license": None, "credit": "Photo: Jane Doe" if i % 4 == 0 else None,
        "split": "val" if i % 6 == 5 else "train", "dup_cluster": f"c{i:04d}",
    }


@dataclass
class Built:
    path: Path
    rows: list[dict]
    shards: dict[str, list[dict]] = field(default_factory=dict)  # shard name -> rows

    def by(self, **match) -> list[dict]:
        return [r for r in self.rows if all(r[k] == v for k, v in match.items())]


def build_clean(root: Path, n: int = 36) -> Built:
    rows = [clean_row(i) for i in range(n)]
    built = Built(root, rows)
    manifest = Manifest(rows_in=n + 9, drops={R.CAPTION_TOO_SHORT: 5, R.DUPLICATE_EXACT: 3, R.IMAGE_TOO_SMALL: 1},
                        rows_out=n, inputs=[{"path": "raw/part-0.parquet", "rows": n + 9}],
                        parameters={"min_side": 32})
    for split in ("train", "val"):
        split_rows = [r for r in rows if r["split"] == split]
        for j in range(0, len(split_rows), SHARD_ROWS):
            name = f"shards/{split}-{j // SHARD_ROWS:05d}.parquet"
            chunk = split_rows[j:j + SHARD_ROWS]
            path = atomic_write_parquet(root / name, pa.Table.from_pylist(chunk, schema=CLEAN_SCHEMA),
                                        row_group_size=ROW_GROUP)
            manifest.shards.append(ShardInfo(name, len(chunk), path.stat().st_size, file_sha256(path), split))
            built.shards[name] = chunk
        manifest.per_split[split] = len(split_rows)
    for r in rows:
        manifest.per_source[r["source"]] = manifest.per_source.get(r["source"], 0) + 1
    index = pa.table({"key": [r["key"] for r in rows], "phash": pa.array([r["phash"] for r in rows], pa.uint64())})
    atomic_write_parquet(root / "_index" / "phash.pq", index)
    manifest.extra.update(index=["_index/phash.pq"], rejected=[write_rejected(root)])
    manifest.write(root)
    for name in built.shards:
        validate(root / name, CLEAN_SCHEMA)
    return built


# The clean stage's optional audit trail of dropped rows (its REJECT_SCHEMA): URLs and maybe the original bytes.
REJECT_SCHEMA = pa.schema([("id", pa.string()), ("reason", pa.string()), ("source", pa.string()),
                           ("page_url", pa.string()), ("image_url", pa.string()),
                           ("caption_candidates", pa.string()), ("input", pa.string()), ("image_bytes", pa.binary())])
REJECTED_BYTES = make_jpeg(99, (20, 20))


def write_rejected(root: Path) -> str:
    rows = [
        ("https://www.news-a.test/2024/old.html", "https://cdn.news-a.test/img/old.jpg", None),
        ("https://social.example/@x/9", "https://files.social.example/m/small.jpg", REJECTED_BYTES),
        ("https://other.test/p", "https://other.test/i.jpg", None),
    ]
    table = pa.Table.from_pylist([{"id": row_id(p, i), "reason": R.IMAGE_TOO_SMALL, "source": "x", "page_url": p,
                                   "image_url": i, "caption_candidates": "[]", "input": "raw/part-0.parquet",
                                   "image_bytes": b} for p, i, b in rows], schema=REJECT_SCHEMA)
    name = "_rejected/r00000-p000000.pq"
    atomic_write_parquet(root / name, table)
    return name


def raw_row(i: int) -> dict:
    source, kind, page, image, lang, caption = SOURCES[i % len(SOURCES)]
    page_url, image_url = page.format(i=i), image.format(i=i)
    failed = i % 5 == 4
    return {
        "id": row_id(page_url, image_url), "source": source, "source_kind": kind, "page_url": page_url,
        "image_url": image_url,
        "caption_candidates": [{"text": "", "origin": "alt"}, {"text": caption.format(i=i), "origin": "figcaption"},
                               {"text": "Site title", "origin": "title"}],
        "title": "Site title", "page_lang": lang, "published_at": None,
        "crawled_at": datetime(2024, 5, 2, tzinfo=timezone.utc), "license": None, "credit": None,
        "image_bytes": None if failed else make_jpeg(i, (40 + i, 30 + i)),
        "image_mime": None if failed else "image/jpeg",
        "http_status": 404 if failed else 200, "fetch_error": "http_error" if failed else None, "opt_out": [],
    }


def build_raw(root: Path, n: int = 20) -> list[dict]:
    rows = [raw_row(i) for i in range(n)]
    half = n // 2
    for part, chunk in enumerate((rows[:half], rows[half:])):
        atomic_write_parquet(root / f"part-{part:04d}.parquet", pa.Table.from_pylist(chunk, schema=RAW_SCHEMA),
                             row_group_size=5)
    (root / "crawl_summary.json").write_text(json.dumps({"pages": 12, "rows": n, "drops": {R.ROBOTS_DISALLOWED: 2,
                                                                                           R.OPT_OUT_PAGE: 1}}))
    return rows


def read_all(path: Path) -> pa.Table:
    files = [path] if path.is_file() else sorted(path.glob("shards/*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])
