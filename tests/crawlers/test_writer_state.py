"""The RAW writer and the crawl store without Scrapy: page accounting, dedupe by id, crash recovery, failures."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from crawlers.extract.records import ImageRef
from crawlers.fetch import ImageResult, PageCtx, make_row, sniff_image
from crawlers.state import CrawlState
from crawlers.writer import RawWriter, read_stored_image
from data_schemas import RAW_SCHEMA, validate


def _writer(out: Path, **kw) -> tuple[RawWriter, CrawlState]:
    state = CrawlState(out / ".state" / "s.sqlite", out_dir=out)
    defaults = dict(rows_per_file=3, bytes_per_file=10**9, flush_seconds=1e9)
    return RawWriter(out_dir=out, source="s", state=state, **{**defaults, **kw}), state


def _row(page: str, image: str, body: bytes | None = b"\xff\xd8\xff jpeg"):
    ctx = PageCtx(url=page, title="t", published_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    ref = ImageRef(image, [("a red square on a table", "alt")])
    return make_row(source="s", kind="news", ctx=ctx, ref=ref,
                    result=ImageResult(body, "image/jpeg" if body else None, 200, None if body else "http_error"))


def test_pages_are_done_only_when_all_their_rows_are_published(tmp_path):
    writer, state = _writer(tmp_path)
    writer.expect("p1", 2)
    writer.expect("p2", 2)
    writer.add(_row("p1", "i1"), first_fetch=True)
    writer.add(_row("p2", "i2"), first_fetch=True)
    writer.add(_row("p1", "i3"), first_fetch=True)  # third row: a file is published
    writer.flush(wait=True)
    assert state.page_done("p1") and not state.page_done("p2")  # p2 still waits for one pair
    writer.drop("p2")  # its second image was dropped with a reason
    writer.close()
    assert state.page_done("p2")
    files = sorted(tmp_path.glob("*.parquet"))
    assert len(files) == 1 and validate(files[0], RAW_SCHEMA).num_rows == 3  # the last flush had no rows
    loc = state.image_location("i3")
    assert read_stored_image(*loc)["image_bytes"] == b"\xff\xd8\xff jpeg"


def test_rows_already_published_are_skipped(tmp_path):
    writer, state = _writer(tmp_path, rows_per_file=10)
    writer.expect("p1", 1)
    writer.add(_row("p1", "i1"), first_fetch=True)
    writer.close()
    writer2, _ = _writer(tmp_path, rows_per_file=10)  # a resumed run produces the same pair again
    writer2.expect("p1", 1)
    writer2.add(_row("p1", "i1"), first_fetch=True)
    writer2.close()
    ids = [i for f in tmp_path.glob("*.parquet") for i in pq.read_table(f, columns=["id"]).column(0).to_pylist()]
    assert len(ids) == 1 and writer2.duplicates_skipped == 1


def test_pending_files_are_confirmed_or_rolled_back(tmp_path):
    state = CrawlState(tmp_path / ".state" / "s.sqlite", out_dir=tmp_path)
    state.begin_file("a.parquet", row_ids=["r1"], images=[("i1", 0)], pages=[("p1", 1)], nbytes=1)
    state.begin_file("b.parquet", row_ids=["r2"], images=[("i2", 0)], pages=[("p2", 1)], nbytes=1)
    (tmp_path / "a.parquet").write_bytes(b"renamed before the kill")  # b was never renamed
    state.close()
    state = CrawlState(tmp_path / ".state" / "s.sqlite", out_dir=tmp_path)
    assert state.page_done("p1") and state.known_ids(["r1", "r2"]) == {"r1"}
    assert not state.page_done("p2") and state.image_location("i2") is None
    assert state.files() == ["a.parquet"]


def test_a_failed_write_is_reported_and_pages_stay_unfinished(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output directory should be")
    failures = []
    state = CrawlState(tmp_path / "state.sqlite", out_dir=blocker)
    writer = RawWriter(out_dir=blocker, source="s", state=state, rows_per_file=1, bytes_per_file=10**9,
                       flush_seconds=1e9, on_failure=failures.append)
    writer.expect("p1", 1)
    writer.add(_row("p1", "i1"), first_fetch=True)
    writer.close()
    assert failures and isinstance(failures[0], OSError)
    state = CrawlState(tmp_path / "state.sqlite", out_dir=blocker)  # the next run sees nothing done
    assert not state.page_done("p1") and not state.known_ids([_row("p1", "i1")["id"]])


def test_sniffing_magic_bytes():
    assert sniff_image(b"\xff\xd8\xff\xe0" + os.urandom(10)) == "image/jpeg"
    assert sniff_image(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image(b"\x00\x00\x00\x1cftypavif") == "image/avif"
    assert sniff_image(b"GIF89a") == "image/gif"
    assert sniff_image(b"<!DOCTYPE html><html>") is None
    assert sniff_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
