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
    news = [s for s in r.sample if s["source"] == "news-a"]
    assert news and all(s["caption"].startswith("A crowd gathers") for s in news)


def test_single_shard(clean_ds):
    shard = clean_ds.path / "shards" / "val-00000.parquet"
    r = inspect_dataset(shard, sample=2)
    assert (r.kind, r.rows, len(r.shards), r.splits) == ("clean", 6, 1, {"val": 6})
    assert r.funnel == []  # no manifest for a lone shard


def test_not_a_dataset(tmp_path):
    with pytest.raises(ToolError, match="no _manifest.json and no .parquet"):
        inspect_dataset(tmp_path)
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ToolError, match="not a readable Parquet file"):
        inspect_dataset(bad)


def test_html_report_is_self_contained_and_escaped(clean_ds, tmp_path):
    out = tmp_path / "report.html"
    r = inspect_dataset(clean_ds.path, html=out, thumbs=36)  # every row: the hostile one too
    page = out.read_text()
    assert r.html == str(out)
    assert "<script" not in page.lower()  # the hostile caption is shown, never executed
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;police&lt;/b&gt;" in page and HOSTILE not in page
    assert not re.search(r"""(src|href)=['"](?!data:)""", page)  # nothing loaded from outside the file
    thumbs = re.findall(r"src='data:image/jpeg;base64,([^']+)'", page)
    assert len(thumbs) == 36
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
    # the first cell shows the sample's first row: its mean colour is that generated image's background
    i = [row["key"] for row in clean_ds.rows].index(r.sample[0]["key"])
    w, h = clean_ds.rows[i]["width"], clean_ds.rows[i]["height"]
    iw, ih = round(w * min(200 / w, 200 / h)), round(h * min(200 / w, 200 / h))
    ox, oy = 8 + (200 - iw) // 2, 8 + (200 - ih) // 2  # grid.py: CELL 200, PAD 8; lower right: no ellipse
    box = (ox + int(0.7 * iw), oy + int(0.7 * ih), ox + int(0.9 * iw), oy + int(0.9 * ih))
    first = img.crop(box).convert("RGB").resize((1, 1)).getpixel((0, 0))
    want = ((37 * i) % 256, (91 * i) % 256, (53 * i + 80) % 256)  # tools_data.make_jpeg
    assert max(abs(a - b) for a, b in zip(first, want, strict=True)) < 30


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


def _skewed(root):
    """40 rows: the first shard holds a small source (10 rows), the second the source of 75% of the rows."""
    import pyarrow as pa
    from tools_data import clean_row

    from data_schemas import CLEAN_SCHEMA, Manifest, ShardInfo, atomic_write_parquet, file_sha256

    rows = [{**clean_row(i), "source": "small" if i < 10 else "big", "split": "train"} for i in range(40)]
    manifest = Manifest(rows_in=40, rows_out=40, per_split={"train": 40}, per_source={"small": 10, "big": 30})
    for n, chunk in enumerate((rows[:10], rows[10:])):
        name = f"shards/train-{n:05d}.parquet"
        path = atomic_write_parquet(root / name, pa.Table.from_pylist(chunk, schema=CLEAN_SCHEMA), row_group_size=4)
        manifest.shards.append(ShardInfo(name, len(chunk), path.stat().st_size, file_sha256(path), "train"))
    manifest.write(root)
    return rows


def test_sample_is_seeded_random_and_stratified_by_source(tmp_path):
    rows = _skewed(tmp_path / "ds")
    r = inspect_dataset(tmp_path / "ds", sample=8)
    assert Counter(s["source"] for s in r.sample) == {"big": 6, "small": 2}  # in proportion, not the first 8
    assert [s["key"] for s in r.sample] != [row["key"] for row in rows[:8]]
    again = inspect_dataset(tmp_path / "ds", sample=8)
    assert [s["key"] for s in again.sample] == [s["key"] for s in r.sample]  # the same seed, the same rows
    other = inspect_dataset(tmp_path / "ds", sample=8, seed=1)
    assert {s["key"] for s in other.sample} != {s["key"] for s in r.sample}
    assert Counter(s["source"] for s in inspect_dataset(tmp_path / "ds", sample=3).sample) == {"big": 2, "small": 1}


def test_html_report_and_sheet_show_the_stratified_sample(tmp_path):
    rows = _skewed(tmp_path / "ds")
    source = {row["key"]: row["source"] for row in rows}
    r = inspect_dataset(tmp_path / "ds", html=tmp_path / "r.html", thumbs=8)
    shown = [k for k in source if k in (tmp_path / "r.html").read_text()]
    assert Counter(source[k] for k in shown) == {"big": 6, "small": 2}
    assert r.sample == []  # thumbnails only: no table sample was asked for
