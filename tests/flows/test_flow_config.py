"""The pipeline config model, its conversion to the stage configs, and the flows' skip/cache bookkeeping."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from data_schemas import Manifest, ShardInfo, atomic_write_bytes, file_sha256
from flows import state
from flows.config import FlowConfigError, PipelineConfig
from flows.convert import crawl_key, to_clean_config, to_crawl_config, to_eval_config, to_train_config

REPO = Path(__file__).resolve().parents[2]
SOURCE = {"name": "site", "kind": "news", "start_urls": ["http://127.0.0.1:9/"]}


def _config(tmp_path: Path, **sections) -> PipelineConfig:
    data = {"data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"),
            "crawl": {"sources": [SOURCE], "allow_private": True}}
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return PipelineConfig.model_validate(data)


def test_example_config_loads_and_converts_to_every_stage(tmp_path):
    cfg = PipelineConfig.from_yaml(REPO / "configs" / "flow.example.yaml")
    cfg.data_dir, cfg.runs_dir = tmp_path / "data", tmp_path / "runs"
    crawl = to_crawl_config(cfg)
    assert [s.name for s in crawl.sources] == ["example-news", "example-mastodon"]
    assert crawl.out == tmp_path / "data" / "raw" and crawl.download_delay == 0.5
    assert crawl.blocklist == tmp_path / "data" / "clean", "crawls honour the dataset's takedown blocklist"
    clean = to_clean_config(cfg)
    assert (clean.raw, clean.out, clean.image_size) == (tmp_path / "data" / "raw", tmp_path / "data" / "clean", 512)
    train = to_train_config(cfg)
    assert (train.data, train.out, train.steps, train.resume) == (clean.out, tmp_path / "runs" / "main", 300, "latest")
    assert train.eval_at_end is False, "the flow evaluates in its own task"
    ev = to_eval_config(cfg, train.out)
    assert ev.run == train.out and ev.data == clean.out


def test_unset_fields_keep_the_stage_defaults(tmp_path):
    from pipeline.config import CleanConfig

    clean = to_clean_config(_config(tmp_path))
    assert clean.image_size == CleanConfig.image_size and clean.val_fraction == CleanConfig.val_fraction
    assert to_train_config(_config(tmp_path, train={"resume": False})).resume is None


def test_bad_configs_fail_with_the_field_named(tmp_path):
    with pytest.raises(FlowConfigError, match=r"clean\.options: unknown field\(s\) jpeg_qualty"):
        to_clean_config(_config(tmp_path, clean={"options": {"jpeg_qualty": 80}}))
    with pytest.raises(FlowConfigError, match="crawl: no sources configured"):
        to_crawl_config(_config(tmp_path, crawl={"sources": []}))
    with pytest.raises(FlowConfigError, match="source 'x'"):
        to_crawl_config(_config(tmp_path, crawl={"sources": [{"name": "x", "kind": "news"}]}))
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  preset: huge\n  stepz: 3\n")
    with pytest.raises(FlowConfigError, match=r"bad\.yaml: train\.preset: .*train\.stepz: Extra inputs"):
        PipelineConfig.from_yaml(bad)
    with pytest.raises(FlowConfigError, match="not found"):
        PipelineConfig.from_yaml(tmp_path / "missing.yaml")


def test_crawl_key_changes_with_what_the_crawl_would_fetch(tmp_path):
    base = to_crawl_config(_config(tmp_path))
    same = to_crawl_config(_config(tmp_path, crawl={"options": {"log_level": "DEBUG"}}))
    other = to_crawl_config(_config(tmp_path, crawl={"options": {"download_delay": 2.0}}))
    assert crawl_key(base, "site") == crawl_key(same, "site") != crawl_key(other, "site")


def test_reusable_crawl_needs_same_key_and_fresh_marker(tmp_path):
    record = state.record_crawl(tmp_path, "site", "k1", {"source": "site", "pages": 3})
    assert state.reusable_crawl(tmp_path, "site", "k1", fresh_hours=1)["pages"] == 3
    assert state.reusable_crawl(tmp_path, "site", "k2", fresh_hours=1) is None
    assert state.reusable_crawl(tmp_path, "site", "k1", fresh_hours=0) is None
    marker = json.loads(record.read_text())
    record.write_text(json.dumps({**marker, "finished": time.time() - 2 * 3600}))  # two hours old
    assert state.reusable_crawl(tmp_path, "site", "k1", fresh_hours=1) is None
    assert state.reusable_crawl(tmp_path, "site", "k1", fresh_hours=3) is not None
    state.record_crawl(tmp_path, "site", "k1", {"source": "site", "files_written": ["site-0.parquet"]})
    assert state.reusable_crawl(tmp_path, "site", "k1", fresh_hours=1, out=tmp_path) is None, "its RAW file is gone"
    (tmp_path / "site-0.parquet").write_bytes(b"x")
    assert state.reusable_crawl(tmp_path, "site", "k1", fresh_hours=1, out=tmp_path) is not None


def _dataset(out: Path) -> Manifest:
    shard = atomic_write_bytes(out / "shards" / "train-00000.parquet", b"x" * 100)
    manifest = Manifest(rows_in=3, rows_out=2, drops={"caption_empty": 1},
                        shards=[ShardInfo(name="shards/train-00000.parquet", rows=2, bytes=100,
                                          sha256=file_sha256(shard), split="train")])
    manifest.write(out)
    return manifest


def test_clean_cache_hits_only_while_inputs_params_and_dataset_are_unchanged(tmp_path):
    raw, out, flow_state = tmp_path / "raw", tmp_path / "clean", tmp_path / ".flow"
    atomic_write_bytes(raw / "a.parquet", b"a")
    _dataset(out)
    params = {"image_size": 512}
    key = state.clean_key(raw, params, [])
    state.record_clean(flow_state, out, key)
    assert state.cached_clean(flow_state, out, key) is not None
    assert state.clean_key(raw, params, []) == key, "deterministic"
    assert state.clean_key(raw, {"image_size": 256}, []) != key, "a parameter changed"
    block = tmp_path / "_blocklist.jsonl"
    block.write_text("{}\n")
    assert state.clean_key(raw, params, [block]) != key, "the takedown list changed"
    atomic_write_bytes(raw / "b.parquet", b"b")
    assert state.clean_key(raw, params, []) != key, "a new RAW file"
    (raw / "b.parquet").unlink()
    os.utime(raw / "a.parquet", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert state.clean_key(raw, params, []) != key, "a RAW file was rewritten"


def test_clean_cache_misses_when_the_dataset_is_damaged_or_replaced(tmp_path):
    out, flow_state = tmp_path / "clean", tmp_path / ".flow"
    _dataset(out)
    state.record_clean(flow_state, out, "k")
    (out / "shards" / "train-00000.parquet").write_bytes(b"short")
    assert state.cached_clean(flow_state, out, "k") is None
    assert "bytes, the manifest says 100" in state.intact_dataset(out)
    _dataset(out)  # rewritten by someone else: a new manifest (new created_at)
    assert state.cached_clean(flow_state, out, "k") is None
    state.record_clean(flow_state, out, "k")
    (out / "shards" / "train-00000.parquet").unlink()
    assert state.cached_clean(flow_state, out, "k") is None
    (out / "_manifest.json").unlink()
    assert "no manifest" in state.intact_dataset(out)


def test_demo_replaces_only_its_own_output(tmp_path):
    from flows.demo import DEMO_MARKER, DemoError, prepare_workdir

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.parquet").write_bytes(b"x")
    with pytest.raises(DemoError, match="did not write"):
        prepare_workdir(tmp_path)
    assert (tmp_path / "data" / "precious.parquet").exists()
    demo = tmp_path / "demo"
    prepare_workdir(demo)
    (demo / "runs" / "old").mkdir(parents=True)
    prepare_workdir(demo)
    assert (demo / "data" / DEMO_MARKER).exists() and not (demo / "runs").exists()


def test_steps_per_run_continues_past_the_latest_checkpoint(tmp_path):
    cfg = _config(tmp_path, train={"steps_per_run": 10, "steps": 5})
    assert to_train_config(cfg).steps == 10, "no checkpoint yet: a fresh run of steps_per_run"
    ckpt = tmp_path / "runs" / "main" / "checkpoints" / "step-00000040"
    ckpt.mkdir(parents=True)
    (ckpt / "meta.json").write_text(json.dumps({"step": 40}))
    assert to_train_config(cfg).steps == 50
    cfg.train.resume = False
    assert to_train_config(cfg).steps == 10


def test_form_help_texts_hold_no_html_like_placeholders():
    """The Prefect UI renders a field's description as markup: `<data_dir>` vanished ("RAW files go to /raw")."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            text = node.get("description")
            if isinstance(text, str) and re.search(r"<[A-Za-z_/][^>]*>", text):
                found.append((path, text))
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(PipelineConfig.model_json_schema(), "PipelineConfig")
    assert not found, found
    assert "raw/ folder" in PipelineConfig.model_fields["data_dir"].description


def test_training_metrics_artifact_keeps_every_row_and_column():
    from flows.artifacts import metrics_description, metrics_rows

    metrics = [{"step": i, "loss": 1.0 / (i + 1)} for i in range(30)] + [{"step": 30, "loss": 0.1, "clip": 0.2}]
    rows = metrics_rows(metrics)
    assert len(rows) == 31 and all(set(r) == {"step", "loss", "clip"} for r in rows)  # #19: 25 of 31 shown
    many = [{"step": i} for i in range(5000)]
    thinned = metrics_rows(many)
    assert len(thinned) == 2000 and thinned[-1] == {"step": 4999}
    assert "2000 evenly spaced rows of 5000" in metrics_description("runs/x", 5000, 2000)


def test_flow_sections_leave_defaults_to_the_stages_and_accept_old_key_names(tmp_path):
    from crawlers.config import CrawlConfig
    from training.config import EvalConfig, TrainConfig

    cfg = _config(tmp_path)
    assert to_crawl_config(cfg).parallel_sources == CrawlConfig(sources=[], out=tmp_path).parallel_sources
    train = to_train_config(cfg)
    default = TrainConfig(data=tmp_path, out=tmp_path)
    assert (train.preset, train.device) == (default.preset, default.device)
    assert to_eval_config(cfg, train.out).baseline is EvalConfig(run=tmp_path).baseline
    with pytest.warns(FutureWarning, match=r"crawl\.parallel is deprecated; use crawl\.parallel_sources"):
        old = _config(tmp_path, crawl={"parallel": 3})
    assert old.crawl.parallel_sources == 3 and to_crawl_config(old).parallel_sources == 3


def test_the_clean_cache_keys_on_exactly_the_files_the_clean_stage_reads(tmp_path):
    from pipeline.inputs import discover

    raw = tmp_path / "raw"
    for name in ("a.parquet", "sub/b.parquet", ".c.parquet", "_tmp/d.parquet", "_e.parquet", ".hidden/f.parquet"):
        atomic_write_bytes(raw / name, b"x")
    (raw / "dir.parquet").mkdir()
    read = discover(raw)
    assert [p.relative_to(raw.resolve()).as_posix() for p in read] == ["a.parquet", "sub/b.parquet"]
    assert [p.resolve() for p in state.raw_files(raw)] == read
    key = state.clean_key(raw, {}, [])
    atomic_write_bytes(raw / "_tmp" / "g.parquet", b"being written")  # a temporary file the stage would not read
    assert state.clean_key(raw, {}, []) == key
