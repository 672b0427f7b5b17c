"""Round-trips and error messages of the shared data contract."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_schemas import (
    CLEAN_SCHEMA,
    RAW_SCHEMA,
    RAW_VERSION,
    BlockEntry,
    Blocklist,
    Manifest,
    SchemaError,
    ShardInfo,
    atomic_write_parquet,
    atomic_write_parquet_chunks,
    file_sha256,
    row_id,
    schema_name,
    schema_version,
    validate,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def raw_row(**over):
    row = {
        "id": row_id("https://a.example/p", "https://a.example/i.jpg"),
        "source": "a", "source_kind": "news", "page_url": "https://a.example/p",
        "image_url": "https://a.example/i.jpg",
        "caption_candidates": [{"text": "A red circle", "origin": "figcaption"}],
        "title": "T", "page_lang": "en", "published_at": NOW, "crawled_at": NOW, "license": None,
        "credit": "Jane/Reuters", "image_bytes": b"\xff\xd8\xff", "image_mime": "image/jpeg", "http_status": 200,
        "fetch_error": None, "opt_out": [],
    }
    row.update(over)
    return row


def clean_row(**over):
    row = {
        "key": "k1", "caption": "A red circle on grass", "caption_origin": "figcaption", "image": b"\xff\xd8\xff",
        "width": 512, "height": 384, "original_width": 1024, "original_height": 768, "sha256": "0" * 64,
        "phash": 2**63 + 5, "lang": "en", "source": "a", "source_kind": "news", "page_url": "https://a/p",
        "image_url": "https://a/i.jpg", "published_at": None, "crawled_at": NOW, "license": None, "credit": None,
        "split": "train", "dup_cluster": "k1",
    }
    row.update(over)
    return row


def test_raw_round_trip_keeps_types_and_version(tmp_path):
    table = pa.Table.from_pylist([raw_row(), raw_row(id="x", published_at=None)], schema=RAW_SCHEMA)
    path = atomic_write_parquet(tmp_path / "raw-0.parquet", table)
    back = validate(path, RAW_SCHEMA)
    assert back.equals(table.select(RAW_SCHEMA.names))
    footer = pq.read_schema(path)
    assert schema_name(footer) == "raw" and schema_version(footer) == RAW_VERSION
    assert back.column("caption_candidates").to_pylist()[0] == [{"text": "A red circle", "origin": "figcaption"}]


def test_clean_round_trip_uint64_phash(tmp_path):
    table = pa.Table.from_pylist([clean_row()], schema=CLEAN_SCHEMA)
    path = atomic_write_parquet(tmp_path / "s.parquet", table)
    back = validate(path, CLEAN_SCHEMA)
    assert back.column("phash").to_pylist() == [2**63 + 5]


def test_missing_column_is_named(tmp_path):
    table = pa.Table.from_pylist([clean_row()], schema=CLEAN_SCHEMA).drop(["phash"])
    with pytest.raises(SchemaError, match="column 'phash': missing"):
        validate(table, CLEAN_SCHEMA)


def test_wrong_type_is_named():
    table = pa.Table.from_pylist([clean_row()], schema=CLEAN_SCHEMA)
    table = table.set_column(table.schema.get_field_index("width"), "width", pa.array([512], pa.int64()))
    with pytest.raises(SchemaError, match="column 'width': has type int64, expected int32"):
        validate(table, CLEAN_SCHEMA)


def test_null_in_required_column_and_bad_values():
    schema = pa.schema([f.with_nullable(True) for f in CLEAN_SCHEMA])
    table = pa.Table.from_pylist([clean_row(caption=None)], schema=schema)
    with pytest.raises(SchemaError, match="column 'caption': 1 null"):
        validate(table, CLEAN_SCHEMA)
    with pytest.raises(SchemaError, match="column 'split'"):
        validate(pa.Table.from_pylist([clean_row(split="test")], schema=CLEAN_SCHEMA), CLEAN_SCHEMA)
    bad_origin = raw_row(caption_candidates=[{"text": "x", "origin": "madeup"}])
    with pytest.raises(SchemaError, match="caption_candidates"):
        validate(pa.Table.from_pylist([bad_origin], schema=RAW_SCHEMA), RAW_SCHEMA)


def test_wrong_schema_and_version_in_file(tmp_path):
    raw = atomic_write_parquet(tmp_path / "raw.parquet", pa.Table.from_pylist([raw_row()], schema=RAW_SCHEMA))
    with pytest.raises(SchemaError, match="is a 'raw' table, expected 'clean'"):
        validate(raw, CLEAN_SCHEMA)
    old = CLEAN_SCHEMA.with_metadata({b"mmpipe.schema": b"clean", b"mmpipe.schema_version": b"0"})
    path = atomic_write_parquet(tmp_path / "old.parquet", pa.Table.from_pylist([clean_row()], schema=old))
    with pytest.raises(SchemaError, match="schema version 0"):
        validate(path, CLEAN_SCHEMA)


def test_malformed_parquet_names_the_file(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SchemaError, match="broken.parquet: not a readable Parquet file"):
        validate(bad, RAW_SCHEMA)


def test_row_id_is_stable_and_distinct():
    assert row_id("p", "i") == row_id("p", "i")
    assert row_id("p", "i") != row_id("p", "j") != row_id("pi", "")
    assert len(row_id("p", "i")) == 32


def test_atomic_write_leaves_no_temp_files_on_failure(tmp_path):
    with pytest.raises(Exception):  # noqa: B017 - any pyarrow error
        atomic_write_parquet(tmp_path / "x.parquet", "not a table")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_chunked_write_is_one_row_group_per_chunk_and_all_or_nothing(tmp_path):
    schema = pa.schema([("n", pa.int64())])
    chunks = [pa.table({"n": list(range(i, i + size))}, schema=schema) for i, size in ((0, 3), (3, 3), (6, 1))]
    path = atomic_write_parquet_chunks(tmp_path / "ok.parquet", schema, iter(chunks))
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 1]
    assert pq.read_table(path).column("n").to_pylist() == list(range(7))

    def failing():  # a chunk that fails while the file is being written (a row that does not validate)
        yield chunks[0]
        raise SchemaError("bad row")

    with pytest.raises(SchemaError):
        atomic_write_parquet_chunks(tmp_path / "bad.parquet", schema, failing())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.parquet"], "a partial file or temp file was left"


def test_manifest_round_trip(tmp_path):
    shard = atomic_write_parquet(tmp_path / "shards" / "train-00000.parquet",
                                 pa.Table.from_pylist([clean_row()], schema=CLEAN_SCHEMA))
    m = Manifest(rows_in=3, drops={"caption_too_short": 2}, rows_out=1, per_source={"a": 1},
                 shards=[ShardInfo("shards/train-00000.parquet", 1, shard.stat().st_size, file_sha256(shard),
                                   "train")])
    m.write(tmp_path)
    back = Manifest.read(tmp_path)
    assert back.shards[0].sha256 == file_sha256(shard) and back.drops == {"caption_too_short": 2}
    data = json.loads((tmp_path / "_manifest.json").read_text())
    data["manifest_version"] = "99"
    (tmp_path / "_manifest.json").write_text(json.dumps(data))
    with pytest.raises(SchemaError, match="manifest version 99"):
        Manifest.read(tmp_path)
    with pytest.raises(FileNotFoundError, match="no manifest"):
        Manifest.read(tmp_path / "nowhere")


def test_blocklist_matching_and_append(tmp_path):
    Blocklist.append(tmp_path, [BlockEntry("domain", "Bad.Example"), BlockEntry("url", "https://x.org/a.jpg"),
                                BlockEntry("sha256", "AB" * 32)])
    Blocklist.append(tmp_path, [BlockEntry("url", "https://y.org/p")])
    bl = Blocklist.load(tmp_path)
    assert len(bl) == 4
    assert bl.blocks_url("https://img.bad.example/x.jpg") and bl.blocks_url("http://bad.example/")
    assert not bl.blocks_url("https://notbad.example/x")
    assert bl.blocks_url("https://x.org/a.jpg") and not bl.blocks_url("https://x.org/b.jpg")
    assert bl.blocks_sha256("ab" * 32) and not bl.blocks_sha256(None)
    assert len((tmp_path / "_blocklist.jsonl").read_text().splitlines()) == 4
    (tmp_path / "_blocklist.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="_blocklist.jsonl:1"):
        Blocklist.load(tmp_path)


def test_atomic_files_are_readable_like_normal_files(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = atomic_write_parquet(tmp_path / "x.parquet", pa.Table.from_pylist([clean_row()], schema=CLEAN_SCHEMA))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
