"""`mmpipe score`: every row scored once, the same bytes for the same checkpoint, a killed run resumes, the scores
follow a retrained model, and the open_clip path runs a tiny open_clip model built here with random weights."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from data_schemas import SCORE_PART_GLOB, SCORES_INFO, SCORES_META_MODEL, SCORES_META_SHARD, SCORES_SCHEMA, validate
from flows.commands.train import register
from training.config import ConfigError, ScoreConfig, TrainConfig
from training.score import score
from training.train import train

REPO = Path(__file__).resolve().parents[2]
TINY_OPEN_CLIP = {"embed_dim": 32,
                  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
                  "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def scored_setup(shapes_data, tmp_path_factory):
    """A private copy of the shapes dataset (480 rows in 6 shards) and a tiny run trained 6 steps on it."""
    root = tmp_path_factory.mktemp("score")
    data = Path(shutil.copytree(shapes_data, root / "data"))
    cfg = TrainConfig(data=data, out=root / "run", steps=6, batch_size=16, num_workers=0, ckpt_every=6,
                      eval_at_end=False, progress=False, plot=False)
    return data, train(cfg), cfg


def _parts(out: Path) -> dict[str, Path]:
    """shard name -> part, from each part's own footer."""
    return {json.loads(pq.read_schema(p).metadata[SCORES_META_SHARD])["name"]: p for p in out.glob(SCORE_PART_GLOB)}


def _all_keys(data: Path) -> list[str]:
    return sorted(k for p in sorted((data / "shards").glob("*.parquet"))
                  for k in pq.read_table(p, columns=["key"]).column("key").to_pylist())


def _score_keys(out: Path) -> list[str]:
    return sorted(k for p in out.glob(SCORE_PART_GLOB) for k in pq.read_table(p).column("key").to_pylist())


def test_every_row_scored_once_and_the_same_bytes_for_the_same_checkpoint(scored_setup):
    data, run, _ = scored_setup
    a = score(ScoreConfig(data=data, run=run, name="a", num_workers=0, batch_size=16, progress=False))
    b = score(ScoreConfig(data=data, run=run, name="b", num_workers=2, batch_size=16, progress=False))
    assert a == data / "_scores" / "a"
    pa_, pb = _parts(a), _parts(b)
    assert sorted(pa_) == sorted(pb) and len(pa_) == 6
    for shard, part in pa_.items():
        assert part.read_bytes() == pb[shard].read_bytes(), shard  # workers do not change a byte
    assert _score_keys(a) == _all_keys(data)
    table = pq.read_table(next(iter(pa_.values())))
    validate(table, SCORES_SCHEMA)
    img = np.stack(table.column("image_embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    txt = np.stack(table.column("text_embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    assert img.shape == (table.num_rows, 128)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1, atol=2e-3)
    np.testing.assert_allclose((img * txt).sum(1), table.column("alignment").to_numpy(), atol=3e-3)
    model = json.loads(table.schema.metadata[SCORES_META_MODEL])
    assert model["kind"] == "mmpipe" and model["step"] == 6 and len(model["weights_sha256"]) == 64
    info = json.loads((a / SCORES_INFO).read_text())
    assert info["complete"] and info["rows"] == 480 and info["model"] == model


def test_scores_follow_the_checkpoint(scored_setup):
    data, run, cfg = scored_setup
    out = score(ScoreConfig(data=data, run=run, name="moving", num_workers=0, progress=False))
    before = {s: p.read_bytes() for s, p in _parts(out).items()}
    train(replace(cfg, steps=8, resume="latest"))  # the run learns on: its old scores are stale
    score(ScoreConfig(data=data, run=run, name="moving", num_workers=0, progress=False))
    after = _parts(out)
    assert sorted(after) == sorted(before) and _score_keys(out) == _all_keys(data)
    steps = {json.loads(pq.read_schema(p).metadata[SCORES_META_MODEL])["step"] for p in after.values()}
    assert steps == {8}
    assert all(after[s].read_bytes() != before[s] for s in before)


def test_a_killed_score_resumes_where_it_stopped(scored_setup, tmp_path):
    from data_schemas.faults import ENV_AT

    data, run, _ = scored_setup
    reference = score(ScoreConfig(data=data, run=run, name="whole", num_workers=0, batch_size=8, progress=False))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "flows.cli", "score", "--data", str(data), "--run", str(run), "--name", "killed",
           "--batch-size", "8", "--num-workers", "0", "--device", "cpu"]
    # SIGKILL right after the second part is renamed into place (the fault hook of data_schemas.faults)
    killed = subprocess.run(cmd, cwd=REPO, env={**env, ENV_AT: "published:part-00001.pq"}, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    out = data / "_scores" / "killed"
    written = _parts(out)
    assert len(written) == 2, sorted(written)
    assert not json.loads((out / SCORES_INFO).read_text())["complete"]
    kept = {s: p.read_bytes() for s, p in written.items()}

    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 already scored" in " ".join((result.stdout + result.stderr).split())
    parts = _parts(out)
    assert _score_keys(out) == _all_keys(data)  # every row once: nothing lost, nothing twice
    assert all(parts[s].read_bytes() == b for s, b in kept.items())  # finished parts were not redone
    whole = _parts(reference)
    assert all(parts[s].read_bytes() == whole[s].read_bytes() for s in whole)  # same bytes as an unkilled run
    assert json.loads((out / SCORES_INFO).read_text())["complete"]


def test_open_clip_path_with_a_tiny_random_model(scored_setup, tmp_path):
    from safetensors.torch import save_model

    from training.openclip_compat import import_open_clip

    data, _, _ = scored_setup
    open_clip = import_open_clip()
    config = tmp_path / "mmpipe-test-tiny.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(config)
    weights = tmp_path / "tiny.safetensors"
    save_model(open_clip.create_model("mmpipe-test-tiny"), str(weights))  # random weights
    app = typer.Typer()
    register(app)
    args = ["score", "--data", str(data), "--open-clip", str(config), "--device", "cpu", "--batch-size", "32"]
    result = CliRunner().invoke(app, [*args, "--pretrained", str(weights)])
    assert result.exit_code == 0, result.output
    out = data / "_scores" / "open_clip-mmpipe-test-tiny"
    assert "scored 480 rows" in " ".join(result.output.split())
    assert _score_keys(out) == _all_keys(data)
    table = pq.read_table(next(out.glob(SCORE_PART_GLOB)))
    model = json.loads(table.schema.metadata[SCORES_META_MODEL])
    assert model["kind"] == "open_clip" and model["model"] == "mmpipe-test-tiny"
    assert len(table.column("image_embedding")[0]) == 32
    assert np.isfinite(table.column("alignment").to_numpy()).all()

    # weights are never fetched: a tag or a missing file is an error naming the path
    result = CliRunner().invoke(app, [*args, "--pretrained", "openai"])
    assert result.exit_code == 1 and "never downloads" in " ".join(result.output.split())


def test_score_config_names_the_problem():
    with pytest.raises(ConfigError, match="exactly one model"):
        ScoreConfig(data=Path("d"))
    with pytest.raises(ConfigError, match="--pretrained"):
        ScoreConfig(data=Path("d"), open_clip="ViT-B-32")
