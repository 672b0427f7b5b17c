"""The per-row decision without Dask: check order, blocklist by URL / domain / original or stored sha256."""

from __future__ import annotations

import hashlib

from data_schemas import BlockEntry, Blocklist, reasons
from pipeline.config import CleanConfig
from pipeline.images import normalise
from pipeline.rows import Accepted, row_reason
from tests.pipeline.clean_rawdata import jpeg, photo, raw_row

CFG = CleanConfig(raw="r", out="o")


def test_check_order_and_reasons() -> None:
    data = jpeg(photo(1))
    assert isinstance(row_reason(raw_row(1, data), CFG, Blocklist()), Accepted)
    # a fetch error wins over the bytes, the caption and the image
    assert row_reason(raw_row(2, None, "x"), CFG, Blocklist()) == reasons.FETCH_FAILED
    assert row_reason(raw_row(3, data, fetch_error="timeout"), CFG, Blocklist()) == reasons.FETCH_FAILED
    # the caption is judged before the (more expensive) image
    assert row_reason(raw_row(4, b"broken", "Sunset"), CFG, Blocklist()) == reasons.CAPTION_TOO_SHORT
    assert row_reason(raw_row(5, b"broken"), CFG, Blocklist()) == reasons.IMAGE_UNDECODABLE


def test_blocklist_by_url_domain_and_both_sha256() -> None:
    data = jpeg(photo(2))
    stored = normalise(data, CFG).sha256
    row = raw_row(6, data, image_url="https://cdn.example.org/a/b.jpg")
    cases = [
        BlockEntry(kind="url", value=row["page_url"]),
        BlockEntry(kind="domain", value="example.org"),  # subdomains too
        BlockEntry(kind="sha256", value=hashlib.sha256(data).hexdigest()),  # the original bytes
        BlockEntry(kind="sha256", value=stored),  # the bytes the dataset would store
    ]
    for entry in cases:
        assert row_reason(row, CFG, Blocklist([entry])) == reasons.BLOCKLISTED, entry
    assert isinstance(row_reason(row, CFG, Blocklist([BlockEntry(kind="domain", value="other.org")])), Accepted)


def test_credit_from_the_caption_fills_an_empty_credit() -> None:
    data = jpeg(photo(3))
    got = row_reason(raw_row(7, data, "Boats in the harbour at dawn (AP Photo/Kenji Sato)"), CFG, Blocklist())
    assert (got.caption.caption, got.credit) == ("Boats in the harbour at dawn", "AP Photo/Kenji Sato")
    kept = row_reason(raw_row(8, data, "Boats in the harbour at dawn", credit="Lars Berg"), CFG, Blocklist())
    assert kept.credit == "Lars Berg"
