"""verify: a good dataset passes; each kind of damage fails and names the shard (and the key where there is one)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from data_schemas import CLEAN_SCHEMA, Manifest, atomic_write_parquet, file_sha256
from pipeline.tools import verify_dataset
from tests.tools.tools_data import make_jpeg

TRAIN0 = "shards/train-00000.parquet"


def _edit_manifest(path, **changes):
    data = json.loads((path / "_manifest.json").read_text())
    data.update(changes)
    (path / "_manifest.json").write_text(json.dumps(data))


def _rewrite_shard(ds, name, change):
    """Change rows of a shard, then record the new file in the manifest so only the row-level check can catch it."""
    path = ds.path / name
    rows = pq.read_table(path).to_pylist()
    change(rows)
    atomic_write_parquet(path, pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA), row_group_size=4)
    m = Manifest.read(ds.path)
    info = next(s for s in m.shards if s.name == name)
    info.bytes, info.sha256, info.rows = path.stat().st_size, file_sha256(path), len(rows)
    m.write(ds.path)
    return rows


def _problems(rep):
    return [str(p) for p in rep.problems]


def test_clean_dataset_passes(clean_ds):
    rep = verify_dataset(clean_ds.path)
    assert rep.ok, _problems(rep)
    assert (rep.shards_checked, rep.rows_checked, rep.images_decoded) == (4, 36, 36)


def test_corrupted_shard_is_named(clean_ds):
    path = clean_ds.path / TRAIN0
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(64)  # damage inside the pages, same size
    path.write_bytes(bytes(data))
    rep = verify_dataset(clean_ds.path)
    assert not rep.ok
    named = [p for p in rep.problems if p.shard == TRAIN0]
    assert any("sha256" in p.message for p in named)
    assert all(p.shard == TRAIN0 for p in rep.problems), _problems(rep)  # the other shards are fine


def test_manifest_row_count_mismatch(clean_ds):
    data = json.loads((clean_ds.path / "_manifest.json").read_text())
    data["shards"][1]["rows"] += 1
    (clean_ds.path / "_manifest.json").write_text(json.dumps(data))
    rep = verify_dataset(clean_ds.path)
    name = data["shards"][1]["name"]
    assert not rep.ok
    assert any(p.shard == name and "rows, manifest says" in p.message for p in rep.problems), _problems(rep)
    assert any("rows_out" in p.message for p in rep.problems)  # the totals no longer add up either


def test_missing_and_extra_shards(clean_ds):
    (clean_ds.path / "shards" / "val-00000.parquet").rename(clean_ds.path / "shards" / "val-00099.parquet")
    (clean_ds.path / "logs").mkdir()  # a stage's own Parquet outside the shard folders is not a shard
    shutil.copy(clean_ds.path / "shards" / "train-00000.parquet", clean_ds.path / "logs" / "drops.parquet")
    (clean_ds.path / "shards" / ".train-00000.parquet.x1.tmp").write_bytes(b"half")
    rep = verify_dataset(clean_ds.path)
    msgs = {(p.shard, p.message.split(":")[0]) for p in rep.problems}
    assert msgs == {("shards/val-00000.parquet", "missing"), ("shards/val-00099.parquet", "extra shard file")}
    assert any("leftover temporary file" in w for w in rep.warnings)


def test_schema_version_and_funnel(clean_ds):
    _edit_manifest(clean_ds.path, schema_version="99", rows_in=40)
    rep = verify_dataset(clean_ds.path)
    assert any("schema_version 99" in m for m in _problems(rep))
    assert any("funnel does not add up" in m for m in _problems(rep))


def test_listed_index_must_exist(clean_ds):
    (clean_ds.path / "_index" / "phash.pq").unlink()
    rep = verify_dataset(clean_ds.path)
    assert [(p.shard, p.message.split(":")[0]) for p in rep.problems] == [("_index/phash.pq", "missing")]


def test_undecodable_image_names_key(clean_ds):
    def truncate(rows):
        rows[3]["image"] = rows[3]["image"][:200]
        rows[3]["sha256"] = hashlib.sha256(rows[3]["image"]).hexdigest()

    rows = _rewrite_shard(clean_ds, TRAIN0, truncate)
    rep = verify_dataset(clean_ds.path)
    assert [(p.shard, p.key) for p in rep.problems] == [(TRAIN0, rows[3]["key"])], _problems(rep)
    assert "does not decode" in rep.problems[0].message


def test_image_checks_sha_size_and_pixel_limit(clean_ds):
    def tamper(rows):
        rows[0]["sha256"] = "0" * 64
        rows[1]["width"] += 1
        big = Image.new("RGB", (3000, 3000))
        buf = io.BytesIO()
        big.save(buf, format="PNG")
        rows[2]["image"], rows[2]["width"], rows[2]["height"] = buf.getvalue(), 3000, 3000
        rows[2]["sha256"] = hashlib.sha256(rows[2]["image"]).hexdigest()

    rows = _rewrite_shard(clean_ds, TRAIN0, tamper)
    rep = verify_dataset(clean_ds.path, max_pixels=4_000_000)
    by_key = {p.key: p.message for p in rep.problems}
    assert "sha256 column does not match" in by_key[rows[0]["key"]]
    assert "but the row says" in by_key[rows[1]["key"]]
    assert "exceeds the pixel limit" in by_key[rows[2]["key"]]


def test_duplicate_key_across_shards(clean_ds):
    other = pq.read_table(clean_ds.path / "shards" / "val-00000.parquet").to_pylist()[0]

    def dup(rows):
        rows[0] = dict(other, split="train", image=make_jpeg(0, (64, 48)))
        rows[0]["sha256"] = hashlib.sha256(rows[0]["image"]).hexdigest()
        rows[0]["width"], rows[0]["height"] = 64, 48

    _rewrite_shard(clean_ds, TRAIN0, dup)
    rep = verify_dataset(clean_ds.path)
    dups = [p for p in rep.problems if "appears 2 times" in p.message]
    assert len(dups) == 1 and dups[0].key == other["key"]
    assert TRAIN0 in dups[0].message and "shards/val-00000.parquet" in dups[0].message


def test_not_parquet_and_raw(clean_ds, raw_dir):
    (clean_ds.path / TRAIN0).write_bytes(b"PAR1 garbage")
    rep = verify_dataset(clean_ds.path)
    assert any(p.shard == TRAIN0 and "not a readable Parquet file" in p.message for p in rep.problems)
    raw = verify_dataset(raw_dir[0])
    assert raw.ok and raw.rows_checked == 20 and raw.warnings
