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

from pipeline.tools import ExportConfig, ToolError, export_dataset
from training.openclip_compat import import_torchvision


def _open_clip_pipeline(urls):
    """The decoding steps of open_clip's `get_wds_dataset` (decode pilrgb, rename image/text, to_tuple)."""
    return (wds.WebDataset(urls, shardshuffle=False)
            .decode("pilrgb")
            .rename(image="jpg;png;jpeg;webp", text="txt", meta="json")
            .to_tuple("__key__", "image", "text", "meta"))


def test_webdataset_writes_train_and_val_sets_of_at_least_min_shards(clean_ds, tmp_path):
    out = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "wds", samples_per_shard=8)
    info = json.loads((out / "export.json").read_text())
    assert set(info["sets"]) == {"train", "val"} and info["samples"] == 36
    for split, want in (("train", [4, 4, 4, 4, 4, 4, 3, 3]), ("val", [1] * 6)):  # 30 and 6 rows
        rows = [r for r in clean_ds.rows if r["split"] == split]
        tars = sorted((out / split).glob("*.tar"))
        assert [t.name for t in tars] == [f"{i:05d}.tar" for i in range(len(want))]
        sizes = json.loads((out / split / "sizes.json").read_text())
        assert list(sizes.values()) == want and sum(sizes.values()) == len(rows)
        samples = list(_open_clip_pipeline([str(t) for t in tars]))
        assert [s[0] for s in samples] == [r["key"] for r in rows]  # every row of the split, once, in order
        by_key = {r["key"]: r for r in rows}
        for key, image, text, meta in samples:
            row = by_key[key]
            assert text == row["caption"] and image.size == (row["width"], row["height"])
            assert meta["sha256"] == row["sha256"] and meta["url"] == row["image_url"] and meta["split"] == split
    assert "note" not in info["sets"]["train"]
    assert "fewer than --min-shards 8" in info["sets"]["val"]["note"]  # 6 samples: 6 shards, and it says so


def test_webdataset_meets_open_clips_rules(clean_ds, tmp_path):
    """open_clip's own code reads the sizes and shards of the command line export.json gives, and its
    --workers never exceeds the shard count (open_clip asserts shards >= workers * world size)."""
    out = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "wds", samples_per_shard=1000)
    info = json.loads((out / "export.json").read_text())
    command = info["open_clip"].split()
    assert command[:3] == ["python", "-m", "open_clip_train.main"]
    args = dict(zip(command[3::2], command[4::2], strict=False))
    train = args["--train-data"].strip("'")
    assert train == f"{out.resolve()}/train/{{00000..00007}}.tar"  # 30 samples, at least 8 shards
    assert int(args["--train-num-samples"]) == 30 and int(args["--val-num-samples"]) == 6
    assert int(args["--workers"]) <= 8
    import_torchvision()  # open_clip_train imports torchvision (training/openclip_compat.py)
    data = pytest.importorskip("open_clip_train.data", reason="open_clip's training package (open-clip-torch)")
    assert data.get_dataset_size(train) == (30, 8)  # open_clip reads sizes.json beside the shards
    assert 8 >= int(args["--workers"])  # its get_wds_dataset: "number of shards must be >= total workers"
    assert data.get_dataset_size(args["--val-data"].strip("'")) == (6, 6)


def test_every_export_names_a_sample_by_its_key(clean_ds, tmp_path):
    wds_out = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "wds")
    pq_out = export_dataset(clean_ds.path, format="img2dataset-parquet", out=tmp_path / "pq")
    con = duckdb.connect()
    for split in ("train", "val"):
        tar_keys = [s["__key__"] for s in wds.WebDataset(sorted(str(t) for t in (wds_out / split).glob("*.tar")),
                                                         shardshuffle=False)]
        files = sorted(str(f) for f in (pq_out / split).glob("*.parquet"))
        pq_keys = [k for f in files for k in pq.read_table(f, columns=["key"])["key"].to_pylist()]
        assert tar_keys == pq_keys == [r["key"] for r in clean_ds.rows if r["split"] == split]
        joined = con.execute("SELECT count(*) FROM read_parquet(?) p JOIN (SELECT unnest(?) AS key) w USING (key)",
                             [files, tar_keys]).fetchone()[0]
        assert joined == len(tar_keys) > 0  # #19: a join on key matched 0 of 173


def test_webdataset_image_bytes_are_unchanged(clean_ds, tmp_path):
    out = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "wds", split="val", min_shards=1)
    raw = list(wds.WebDataset(str(out / "val" / "00000.tar"), shardshuffle=False))
    val = [r for r in clean_ds.rows if r["split"] == "val"]
    assert len(raw) == len(val) == 6 and not (out / "train").exists()
    assert [hashlib.sha256(s["jpg"]).hexdigest() for s in raw] == [r["sha256"] for r in val]
    again = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "again", split="val", min_shards=1)
    assert (again / "val" / "00000.tar").read_bytes() == (out / "val" / "00000.tar").read_bytes()  # reproducible


def test_img2dataset_parquet(clean_ds, tmp_path):
    out = export_dataset(clean_ds.path, format="img2dataset-parquet", out=tmp_path / "pq", split="all",
                         samples_per_shard=20, min_shards=1)
    files = sorted((out / "all").glob("*.parquet"))
    assert [f.name for f in files] == ["00000.parquet", "00001.parquet"]
    table = pq.read_table(files[0])
    assert table.column_names[:11] == ["url", "caption", "key", "status", "error_message", "width", "height",
                                       "original_width", "original_height", "exif", "sha256"]
    assert "jpg" not in table.column_names
    first = table.slice(0, 1).to_pylist()[0]
    row = clean_ds.rows[0]
    assert first["key"] == row["key"] and first["url"] == row["image_url"]
    assert first["status"] == "success" and first["error_message"] is None and first["caption"] == row["caption"]
    stats = json.loads((out / "all" / "00000_stats.json").read_text())
    assert stats["successes"] == stats["count"] == 18  # 36 rows in two even shards
    con = duckdb.connect()
    got = con.execute("SELECT source, count(*) FROM read_parquet(?) GROUP BY source ORDER BY source",
                      [[str(f) for f in files]]).fetchall()
    assert got == [("bluesky", 12), ("mastodon", 12), ("news-a", 12)]
    distinct = con.execute("SELECT count(DISTINCT key) FROM read_parquet(?)", [[str(f) for f in files]]).fetchone()
    assert distinct == (36,)


def test_img2dataset_parquet_with_images(clean_ds, tmp_path):
    out = export_dataset(clean_ds.path, format="img2dataset-parquet", out=tmp_path / "pq", with_images=True,
                         split="val", min_shards=1)
    table = pq.read_table(out / "val" / "00000.parquet")
    assert table.column_names[-1] == "jpg" and table.num_rows == 6
    for rec in table.to_pylist():
        assert hashlib.sha256(rec["jpg"]).hexdigest() == rec["sha256"]
        assert Image.open(io.BytesIO(rec["jpg"])).size == (rec["width"], rec["height"])


def test_refuses_to_mix_with_an_old_export(clean_ds, tmp_path):
    out = tmp_path / "wds"
    export_dataset(clean_ds.path, format="webdataset", out=out, samples_per_shard=5)
    with pytest.raises(ToolError, match="already holds an export"):
        export_dataset(clean_ds.path, format="webdataset", out=out)
    export_dataset(clean_ds.path, format="webdataset", out=out, split="val", overwrite=True, min_shards=1)
    assert [p.relative_to(out).as_posix() for p in sorted(out.rglob("*.tar"))] == ["val/00000.tar"]  # old gone
    assert not list(out.rglob(".*.tmp"))
    with pytest.raises(ToolError, match="unknown export format"):
        export_dataset(clean_ds.path, format="tfrecord", out=tmp_path / "x")


def test_a_config_and_its_fields_as_keywords_export_the_same(clean_ds, tmp_path):
    """The typed config is the entry; keyword fields (the older calling style) build the same config."""
    by_config = export_dataset(clean_ds.path, ExportConfig(format="webdataset", out=tmp_path / "a", split="val",
                                                           min_shards=2))
    by_fields = export_dataset(clean_ds.path, format="webdataset", out=tmp_path / "b", split="val", min_shards=2)
    sets = [json.loads((out / "export.json").read_text())["sets"] for out in (by_config, by_fields)]
    assert sets[0] == sets[1] and len(sets[0]["val"]["shards"]) == 2
    with pytest.raises(TypeError, match="either a config or its fields"):
        export_dataset(clean_ds.path, ExportConfig(format="webdataset", out=tmp_path / "c"), min_shards=3)
