"""The RAW set with planted trouble shared by the clean-stage tests, and its expected funnel (tests only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from data_schemas import BlockEntry, Blocklist, reasons
from tests.pipeline.clean_rawdata import T0, bomb_png, jpeg, photo, png, raw_row


@dataclass
class Planted:
    raw: Path
    rows: list[dict]
    funnel: Counter  # expected drops
    kept_captions: dict[str, str]  # key -> expected clean caption
    blocklist: Blocklist


def planted_rows(start: int = 0, n_good: int = 24) -> tuple[list[dict], Counter, dict[str, str]]:
    """Distinct photos with clean captions plus one of every kind of trouble; the expected funnel is by design."""
    rows, drops, captions = [], Counter(), {}
    good = []
    for i in range(start, start + n_good):
        size = (480 + 37 * (i % 9), 360 + 23 * (i % 7))
        cap = f"Picture number {i} of the harbour at dawn, officials said."
        row = raw_row(i, jpeg(photo(i, size)), cap)
        rows.append(row)
        good.append(row)
        captions[row["id"]] = cap
    s = start + 1000
    # credit, mojibake and markup are cleaned, the row is kept
    credit = raw_row(s, jpeg(photo(s)), "Crowds gather in the main square. Photo: Jane Doe/Reuters")
    moji = raw_row(s + 1, jpeg(photo(s + 1)), "The café in Málaga opens its terrace again".encode().decode("cp1252"))
    markup = raw_row(s + 2, png(photo(s + 2)), [("Council &amp; <b>residents</b> meet at https://x.org", "alt"),
                                                ("Untitled", "figcaption")])
    rows += [credit, moji, markup]
    captions[credit["id"]] = "Crowds gather in the main square."
    captions[moji["id"]] = "The café in Málaga opens its terrace again"
    captions[markup["id"]] = "Council & residents meet at"
    # duplicates: same bytes elsewhere (published later -> loses), a re-encode, a smaller copy
    exact = raw_row(s + 3, good[0]["image_bytes"], "The same harbour picture on another page today",
                    published=T0 + timedelta(days=400))
    near = raw_row(s + 4, jpeg(photo(start + 1, (480 + 37 * ((start + 1) % 9), 360 + 23 * ((start + 1) % 7))), 60),
                   "A recompressed copy of the harbour picture")
    smaller = raw_row(s + 5, jpeg(photo(start + 2, (400, 300))), "A smaller copy of the harbour picture")
    rows += [exact, near, smaller]
    drops.update([reasons.DUPLICATE_EXACT, reasons.DUPLICATE_NEAR, reasons.DUPLICATE_NEAR])
    trouble = [
        (raw_row(s + 6, None), reasons.FETCH_FAILED),
        (raw_row(s + 7, jpeg(photo(s + 7))[:3000]), reasons.IMAGE_UNDECODABLE),
        (raw_row(s + 8, b"<html>not an image</html>"), reasons.IMAGE_UNDECODABLE),
        (raw_row(s + 9, jpeg(photo(s + 9, (150, 120)))), reasons.IMAGE_TOO_SMALL),
        (raw_row(s + 10, jpeg(photo(s + 10, (1200, 300)))), reasons.IMAGE_BAD_ASPECT),
        (raw_row(s + 11, bomb_png(20_000)), reasons.IMAGE_DECOMPRESSION_BOMB),
        (raw_row(s + 12, jpeg(photo(s + 12)), [("IMG_4032.JPG", "figcaption"), ("image", "alt")]),
         reasons.CAPTION_BOILERPLATE),
        (raw_row(s + 13, jpeg(photo(s + 13)), "Sunset"), reasons.CAPTION_TOO_SHORT),
        (raw_row(s + 14, jpeg(photo(s + 14)), []), reasons.CAPTION_EMPTY),
        (raw_row(s + 15, jpeg(photo(s + 15)), "word " * 300), reasons.CAPTION_TOO_LONG),
        (raw_row(s + 16, jpeg(photo(s + 16)), "A taken down picture of the harbour",
                 image_url="http://blocked.example/img/1.jpg"), reasons.BLOCKLISTED),
    ]
    for row, reason in trouble:
        rows.append(row)
        drops[reason] += 1
    return rows, drops, captions


def seed_blocklist(out: Path, planted: Planted) -> None:
    """A takedown list in the (not yet existing) dataset directory, before the first run."""
    out.mkdir(parents=True, exist_ok=True)
    Blocklist.append(out, [BlockEntry(kind="domain", value=d) for d in planted.blocklist.domains])
