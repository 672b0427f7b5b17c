"""inspect: the numbers are right, --where/--sample work, raw dirs and single shards work, reports are safe."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_schemas import CLEAN_VERSION
from pipeline.tools import ToolError, inspect_dataset
from tests.tools.tools_data import HOSTILE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_counts_match_the_data(clean_ds):
    r = inspect_dataset(clean_ds.path)
    assert (r.kind, r.schema_version, r.rows, r.matched) == ("clean", CLEAN_VERSION, 36, 36)
    assert len(r.shards) == 4 and r.bytes == sum((clean_ds.path / s.name).stat().st_size for s in r.shards)
    assert r.splits == dict(Counter(row["split"] for row in clean_ds.rows))
    assert r.per_source == dict(Counter(row["source"] for row in clean_ds.rows))
    assert r.languages == {"en": 12, "de": 12, "fr": 12}
    assert r.funnel[0] == ("rows_in", 45) and r.funnel[-1] == ("rows_out", 36)
    assert dict(r.funnel[1:-1]) == {"caption_too_short": 5, "duplicate_exact": 3, "image_too_small": 1}
    widths = sorted(row["width"] for row in clean_ds.rows)
    assert r.width["min"] == widths[0] and r.width["max"] == widths[-1]
    lengths = sorted(len(row["caption"]) for row in clean_ds.rows)
    assert r.caption_length["max"] == lengths[-1] and r.caption_length["p50"] == pytest.approx(
        (lengths[17] + lengths[18]) / 2)
    assert sum(b.count for b in r.caption_hist) == 36 and sum(b.count for b in r.side_hist) == 36


def test_where_filters_and_sample_shows_rows(clean_ds):
    r = inspect_dataset(clean_ds.path, where="lang = 'de' AND width > 100", sample=5)
    expected = [row for row in clean_ds.rows if row["lang"] == "de" and row["width"] > 100]
    assert r.matched == len(expected) and r.rows == 36
    assert r.per_source == {"mastodon": len(expected)}
    assert len(r.sample) == 5 and {s["key"] for s in r.sample} <= {row["key"] for row in expected}
    assert "image" not in r.sample[0]  # the table never carries image bytes


def test_bad_where_names_the_columns(clean_ds):
    with pytest.raises(ToolError, match="Columns: .*caption"):
        inspect_dataset(clean_ds.path, where="no_such_column = 1")
    with pytest.raises(ToolError):
        inspect_dataset(clean_ds.path, where="1=1; DROP TABLE rows")


def test_raw_dir_with_crawl_summary(raw_dir):
    path, rows = raw_dir
    r = inspect_dataset(path, sample=3, where="fetch_error IS NULL")
    ok = [row for row in rows if row["fetch_error"] is None]
    assert (r.kind, r.rows, r.matched) == ("raw", 20, len(ok))
    assert r.funnel_from == "crawl_summary" and ("dropped: robots_disallowed", 2) in r.funnel
    assert r.width["max"] == max(40 + i for i, row in enumerate(rows) if row["fetch_error"] is None)
    # RAW rows show the caption the clean stage would try first (figcaption before title; empty alt skipped)
    assert r.sample[0]["caption"].startswith("A crowd gathers")


def test_single_shard(clean_ds):
    shard = clean_ds.path / "shards" / "val-00000.parquet"
    r = inspect_dataset(shard, sample=2)
    assert (r.kind, r.rows, len(r.shards), r.splits) == ("clean", 6, 1, {"val": 6})
    assert r.funnel == []  # no manifest for a lone shard


def test_not_a_dataset(tmp_path):
    with pytest.raises(ToolError, match="no manifest.json and no .parquet"):
        inspect_dataset(tmp_path)
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ToolError, match="not a readable Parquet file"):
        inspect_dataset(bad)


def test_html_report_is_self_contained_and_escaped(clean_ds, tmp_path):
    out = tmp_path / "report.html"
    r = inspect_dataset(clean_ds.path, html=out, thumbs=8)
    page = out.read_text()
    assert r.html == str(out)
    assert "<script" not in page.lower()  # the hostile caption is shown, never executed
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;police&lt;/b&gt;" in page and HOSTILE not in page
    assert not re.search(r"""(src|href)=['"](?!data:)""", page)  # nothing loaded from outside the file
    thumbs = re.findall(r"src='data:image/jpeg;base64,([^']+)'", page)
    assert len(thumbs) == 8
    assert all(Image.open(io.BytesIO(base64.b64decode(t))).size[0] > 0 for t in thumbs)
    assert page.count("<svg") == 2 and "rows_in" in page and "caption_too_short" in page
    if not CHROMIUM:
        pytest.skip("chromium not installed: the screenshot check needs /usr/bin/chromium (apt-get install chromium)")
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        f"--screenshot={shot}", "--window-size=1280,2000", out.as_uri()],
                       check=True, capture_output=True, timeout=120, env={**os.environ, "HOME": profile})
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 2000)
    colours = img.resize((64, 100)).getcolors(64 * 100)
    assert len(colours) > 20  # rendered thumbnails, bars and text, not a blank page


def test_contact_sheet(clean_ds, tmp_path):
    out = tmp_path / "sheet.png"
    r = inspect_dataset(clean_ds.path, grid=out, sample=7)
    img = Image.open(out)
    assert r.grid == str(out) and img.format == "PNG"
    assert img.width > 3 * 200 and img.height > 3 * 200  # 7 cells: 3 columns x 3 rows
    # the first cell shows the first row's image: its mean colour is the generated image's background
    first = img.crop((150, 140, 200, 175)).convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert max(abs(a - b) for a, b in zip(first, (0, 0, 80), strict=True)) < 30


def test_summary_never_reads_image_bytes(clean_ds):
    """Wreck every image column chunk of a shard: the summary (with --where and --sample) must not notice."""
    path = clean_ds.path / "shards" / "train-00000.parquet"
    meta = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    idx = meta.schema.to_arrow_schema().get_field_index("image")
    for i in range(meta.num_row_groups):
        col = meta.row_group(i).column(idx)
        start = min(x for x in (col.dictionary_page_offset, col.data_page_offset) if x is not None)
        data[start:start + col.total_compressed_size] = b"\xff" * col.total_compressed_size
    path.write_bytes(bytes(data))
    with pytest.raises(Exception):  # noqa: B017 - proof that the image column really is unreadable now
        pq.read_table(path, columns=["image"])
    r = inspect_dataset(clean_ds.path, where="split = 'train'", sample=3)
    assert (r.rows, r.matched, len(r.sample)) == (36, 30, 3)
    assert r.width["max"] == max(x["width"] for x in clean_ds.rows if x["split"] == "train")
