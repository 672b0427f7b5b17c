"""export: webdataset tars read back with the `webdataset` library as open_clip does; parquet with pyarrow/DuckDB."""

from __future__ import annotations

import hashlib
import io
import json

import duckdb
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from pipeline.tools import ToolError, export_dataset


def _open_clip_pipeline(urls):
    """The decoding steps of open_clip's `get_wds_dataset` (decode pilrgb, rename image/text, to_tuple)."""
    return (wds.WebDataset(urls, shardshuffle=False)
            .decode("pilrgb")
            .rename(image="jpg;png;jpeg;webp", text="txt", meta="json")
            .to_tuple("__key__", "image", "text", "meta"))


def test_webdataset_train_split(clean_ds, tmp_path):
    out = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "wds", split="train",
                         samples_per_shard=8)
    train = [r for r in clean_ds.rows if r["split"] == "train"]
    tars = sorted(out.glob("*.tar"))
    assert [t.name for t in tars] == ["00000.tar", "00001.tar", "00002.tar", "00003.tar"]
    assert json.loads((out / "sizes.json").read_text()) == {"00000.tar": 8, "00001.tar": 8, "00002.tar": 8,
                                                            "00003.tar": 6}
    samples = list(_open_clip_pipeline([str(t) for t in tars]))
    by_key = {r["key"]: r for r in train}
    assert [s[0] for s in samples] == [r["key"] for r in train]  # every train row, in shard order, once
    for key, image, text, meta in samples:
        row = by_key[key]
        assert text == row["caption"] and image.size == (row["width"], row["height"])
        assert meta["sha256"] == row["sha256"] and meta["url"] == row["image_url"] and meta["split"] == "train"
    info = json.loads((out / "export.json").read_text())
    assert info["samples"] == 30 and info["split"] == "train" and len(info["shards"]) == 4


def test_webdataset_image_bytes_are_unchanged(clean_ds, tmp_path):
    out = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "wds", split="val")
    raw = list(wds.WebDataset(str(out / "00000.tar"), shardshuffle=False))
    val = [r for r in clean_ds.rows if r["split"] == "val"]
    assert len(raw) == len(val) == 6
    assert [hashlib.sha256(s["jpg"]).hexdigest() for s in raw] == [r["sha256"] for r in val]
    again = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "again", split="val")
    assert (again / "00000.tar").read_bytes() == (out / "00000.tar").read_bytes()  # reproducible byte for byte


def test_img2dataset_parquet(clean_ds, tmp_path):
    out = export_dataset(clean_ds.path, format="img2dataset-parquet", out=tmp_path / "pq", samples_per_shard=20)
    files = sorted(out.glob("*.parquet"))
    assert [f.name for f in files] == ["00000.parquet", "00001.parquet"]
    table = pq.read_table(files[0])
    assert table.column_names[:11] == ["url", "caption", "key", "status", "error_message", "width", "height",
                                       "original_width", "original_height", "exif", "sha256"]
    assert "jpg" not in table.column_names
    first = table.slice(0, 1).to_pylist()[0]
    row = clean_ds.rows[0]
    assert first["key"] == "0000000" and first["mmpipe_key"] == row["key"] and first["url"] == row["image_url"]
    assert first["status"] == "success" and first["error_message"] is None and first["caption"] == row["caption"]
    second_shard_first_key = pq.read_table(files[1]).column("key")[0].as_py()
    assert second_shard_first_key == "0000100"  # img2dataset: shard id, then the index within the shard
    stats = json.loads((out / "00000_stats.json").read_text())
    assert stats["successes"] == stats["count"] == 20
    con = duckdb.connect()
    got = con.execute("SELECT source, count(*) FROM read_parquet(?) GROUP BY source ORDER BY source",
                      [[str(f) for f in files]]).fetchall()
    assert got == [("bluesky", 12), ("mastodon", 12), ("news-a", 12)]
    assert con.execute("SELECT count(DISTINCT key), count(DISTINCT mmpipe_key) FROM read_parquet(?)",
                       [[str(f) for f in files]]).fetchone() == (36, 36)


def test_img2dataset_parquet_with_images(clean_ds, tmp_path):
    out = export_dataset(clean_ds.path, format="img2dataset-parquet", out=tmp_path / "pq", with_images=True,
                         split="val")
    table = pq.read_table(out / "00000.parquet")
    assert table.column_names[-1] == "jpg" and table.num_rows == 6
    for rec in table.to_pylist():
        assert hashlib.sha256(rec["jpg"]).hexdigest() == rec["sha256"]
        assert Image.open(io.BytesIO(rec["jpg"])).size == (rec["width"], rec["height"])


def test_refuses_to_mix_with_an_old_export(clean_ds, tmp_path):
    out = tmp_path / "wds"
    export_dataset(clean_ds.path, format="webdataset", out=out, samples_per_shard=5)
    with pytest.raises(ToolError, match="already holds an export"):
        export_dataset(clean_ds.path, format="webdataset", out=out)
    export_dataset(clean_ds.path, format="webdataset", out=out, split="val", overwrite=True)
    assert [p.name for p in sorted(out.glob("*.tar"))] == ["00000.tar"]  # the 8 old shards are gone
    assert not list(out.glob(".*.tmp"))
    with pytest.raises(ToolError, match="unknown export format"):
        export_dataset(clean_ds.path, format="tfrecord", out=tmp_path / "x")
