"""Crawl -> clean -> train -> export of the demo site with every location an ``s3://`` URL on a real
S3-compatible server (moto, loopback), checked against the demo's ground truth like the local e2e run."""

from __future__ import annotations

import json
import uuid

import pytest
from e2e_lib import clean_config, crawl_config, truth_by_key

from crawlers.stage import crawl, read_summary
from data_schemas import RAW_SCHEMA, Manifest, file_sha256, storage, validate
from pipeline.clean import clean
from pipeline.tools import export_dataset
from training.config import TrainConfig
from training.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bucket(s3_server) -> str:
    name = f"e2e-{uuid.uuid4().hex[:12]}"
    fs, _ = storage.filesystem(f"s3://{name}")
    fs.mkdir(name)
    return f"s3://{name}"


def _column(files: list[str], column: str) -> list[str]:
    return [v for url in files for v in storage.parquet_file(url).read(columns=[column]).column(column).to_pylist()]


def test_crawl_clean_train_export_with_every_path_on_s3(demo, bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("MMPIPE_CRAWL_CACHE", str(tmp_path / "crawl-cache"))
    monkeypatch.setenv("MMPIPE_RUN_CACHE", str(tmp_path / "run-cache"))
    truth, site = truth_by_key(demo), demo.site

    raw = crawl(crawl_config(demo, f"{bucket}/raw"))
    assert raw == f"{bucket}/raw"
    raw_files = storage.list_files(raw, suffix=".parquet")
    for url in raw_files:
        validate(url, RAW_SCHEMA)
    ids = _column(raw_files, "id")
    assert sorted(ids) == sorted(k for k, t in truth.items() if t.stage != "crawl")
    assert read_summary(raw)["overall"]["rows"] == site.expected_raw_rows()
    fs, root = storage.filesystem(raw)
    assert not [k for k in fs.find(root) if "/." in k], "crawl state or a temporary object reached the store"

    dataset = clean(clean_config(raw, f"{bucket}/clean"))
    manifest = Manifest.read(dataset)
    assert manifest.rows_in == site.expected_raw_rows() and manifest.rows_out == site.expected_kept()
    for reason, n in site.expected_clean_drops().items():
        assert manifest.drops.get(reason, 0) == n, reason
    shards = [storage.join(dataset, s.name) for s in manifest.shards]
    assert all(file_sha256(url) == s.sha256 for url, s in zip(shards, manifest.shards, strict=True))
    assert sorted(_column(shards, "key")) == sorted(k for k, t in truth.items() if t.stage is None)

    run = train(TrainConfig(data=dataset, out=f"{bucket}/runs/tiny", preset="tiny", steps=4, batch_size=8,
                            num_workers=0, ckpt_every=2, keep_last=1, eval_at_end=False, progress=False, plot=False))
    assert run == f"{bucket}/runs/tiny"
    summary = json.loads(storage.read_text(f"{run}/train_summary.json"))
    assert summary["steps"] == 4
    assert storage.size(f"{run}/model.safetensors") > 0
    assert storage.exists(f"{run}/checkpoints/step-00000004/meta.json")

    out = export_dataset(dataset, format="webdataset", out=f"{bucket}/export", samples_per_shard=16)
    info = json.loads(storage.read_text(f"{out}/export.json"))
    assert info["samples"] == manifest.rows_out and info["source"] == dataset
    for shard in info["shards"]:
        assert file_sha256(storage.join(out, shard["name"])) == shard["sha256"]
