"""`data_schemas.storage` against a real S3-compatible server on loopback (moto in server mode)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from data_schemas import Manifest, ShardInfo, atomic_write_json, atomic_write_parquet, storage, validate
from data_schemas.faults import ENV_AT

REPO = Path(__file__).resolve().parents[2]


def test_location_keeps_urls_whole_and_makes_paths_of_the_rest(tmp_path):
    assert storage.location("s3://bucket/a/b/") == "s3://bucket/a/b"
    assert storage.location(f"file://{tmp_path}") == tmp_path
    assert storage.location(str(tmp_path)) == tmp_path
    assert storage.join("s3://bucket/a", "x", "y.json") == "s3://bucket/a/x/y.json"
    assert storage.parent("s3://bucket/a/m.json") == "s3://bucket/a"


def test_publish_json_parquet_and_manifest_round_trip(s3_bucket):
    root = f"{s3_bucket}/ds"
    atomic_write_json(f"{root}/info.json", {"a": 1})
    assert json.loads(storage.read_text(f"{root}/info.json")) == {"a": 1}
    table = pa.table({"x": pa.array([1, 2, 3], pa.int64())})
    atomic_write_parquet(f"{root}/shards/t-0.parquet", table)
    Manifest(shards=[ShardInfo(name="shards/t-0.parquet", rows=3, bytes=1, sha256="0")]).write(root)
    assert Manifest.read(root).shards[0].rows == 3
    assert storage.list_files(root, suffix=".parquet") == [f"{root}/shards/t-0.parquet"]
    fs, path = storage.filesystem(root)
    assert not [k for k in fs.find(path) if k.endswith(".tmp")], "a temporary object was left behind"


def test_list_files_skips_hidden_and_auxiliary_names(s3_bucket):
    for rel in ("a.parquet", "sub/b.parquet", ".a.parquet.x.tmp", "_index/c.parquet", "sub/.d.parquet", "e.json"):
        fs, path = storage.filesystem(f"{s3_bucket}/r/{rel}")
        fs.pipe_file(path, b"x")
    assert storage.list_files(f"{s3_bucket}/r", suffix=".parquet") == [f"{s3_bucket}/r/a.parquet",
                                                                       f"{s3_bucket}/r/sub/b.parquet"]


def test_a_url_file_is_checked_like_a_local_one(s3_bucket, tmp_path):
    fs, path = storage.filesystem(f"{s3_bucket}/bad.parquet")
    fs.pipe_file(path, b"not parquet")
    with pytest.raises(Exception, match="not a readable Parquet file"):
        validate(f"{s3_bucket}/bad.parquet", pa.schema([pa.field("x", pa.int64())]))


def test_a_writer_killed_before_its_copy_leaves_no_object_at_the_final_key(s3_bucket):
    """The object store's commit: a reader never finds a key before its whole content was uploaded."""
    url = f"{s3_bucket}/k/manifest.json"
    script = f"from data_schemas import atomic_write_json; atomic_write_json({url!r}, {{'v': 1}})"
    env = {**os.environ, ENV_AT: "publish:manifest.json", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not storage.exists(url)
    fs, path = storage.filesystem(f"{s3_bucket}/k")
    assert [k.rsplit("/", 1)[-1].startswith(".manifest.json.") for k in fs.find(path)] == [True]


def test_an_s3_url_without_a_reachable_endpoint_fails_at_once(monkeypatch):
    """Outside `s3_server` the tests' endpoint is a closed loopback port: nothing can reach AWS."""
    monkeypatch.setenv(storage.ENV_S3_ENDPOINT, "http://127.0.0.1:9")
    with pytest.raises(Exception):  # noqa: B017 - botocore's connection error class depends on its version
        storage.read_bytes("s3://nowhere/x")
