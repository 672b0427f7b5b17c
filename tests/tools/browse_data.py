"""A small RAW crawl for the browser's tests, cleaned by the real clean stage: three sources in three languages,
a hostile caption, exact and near duplicates and a few rows of each kind of trouble (so every view has content)."""

from __future__ import annotations

from pathlib import Path

from data_schemas import reasons
from tests.pipeline.clean_rawdata import jpeg, photo, raw_row, write_raw

HOSTILE = "&lt;script&gt;alert('pwned')&lt;/script&gt; Protesters &amp; police outside the harbour hall"
CAPTIONS = {
    "news-a": ("en", "A fishing boat returns to the harbour at dawn, picture {i}"),
    "mastodon": ("de", "Ein Hund läuft über die nasse Wiese im Stadtpark, Bild {i}"),
    "bluesky": ("fr", "Un vélo rouge appuyé contre un mur de briques, image {i}"),
}
SOURCES = list(CAPTIONS)
EXPECTED_DROPS = {reasons.DUPLICATE_EXACT: 1, reasons.DUPLICATE_NEAR: 1, reasons.CAPTION_TOO_SHORT: 1,
                  reasons.IMAGE_TOO_SMALL: 1, reasons.FETCH_FAILED: 1}


def _size(i: int) -> tuple[int, int]:
    return 360 + 41 * (i % 7), 280 + 29 * (i % 5)


def browse_rows(n_good: int = 30) -> list[dict]:
    rows = []
    for i in range(n_good):
        source = SOURCES[i % 3]
        lang, caption = CAPTIONS[source]
        host = f"www.{source}.test"
        rows.append(raw_row(i, jpeg(photo(i, _size(i))), HOSTILE if i == 4 else caption.format(i=i), source=source,
                            page_lang=lang, page_url=f"https://{host}/story/{i}.html",
                            image_url=f"https://cdn.{source}.test/img/{i}.jpg",
                            credit="Photo: Jane Doe" if i % 5 == 0 else None))
    s = 1000
    rows += [
        # the same bytes on another page, published later (loses), and a recompressed copy
        raw_row(s, rows[0]["image_bytes"], "The same fishing boat picture, shared again on another page",
                source="news-a", page_url="https://www.news-a.test/again/1.html",
                image_url="https://cdn.news-a.test/img/again-1.jpg", published=rows[0]["published_at"].replace(
                    year=2025)),
        raw_row(s + 1, jpeg(photo(3, _size(3)), 55), "A recompressed copy of the dog in the park picture",
                source="mastodon", page_url="https://www.mastodon.test/copy/2.html",
                image_url="https://cdn.mastodon.test/img/copy-2.jpg"),
        raw_row(s + 2, jpeg(photo(s + 2)), "Sunset", source="bluesky"),
        raw_row(s + 3, jpeg(photo(s + 3, (120, 90))), "A picture far too small to keep for training", source="news-a"),
        raw_row(s + 4, None, "A picture whose download failed", source="news-a"),
    ]
    return rows


def write_browse_raw(root: Path) -> Path:
    write_raw(root / "part-0.parquet", browse_rows(), row_group_size=8)
    return root
