"""Training on an ``s3://`` dataset into an ``s3://`` run directory (a real S3-compatible server on loopback):
checkpoints are published as they are written, and a run killed mid-publish resumes from the store alone (a
fresh local mirror) to exactly the uninterrupted local run."""

from __future__ import annotations

import signal
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load
from test_train_resume import run_killed_at

from data_schemas import storage
from training import runstore
from training.checkpoint import list_checkpoints
from training.config import TrainConfig
from training.metrics import read_jsonl
from training.train import train

pytestmark = pytest.mark.slow


def _remote_jsonl(url: str) -> list[dict]:
    import json

    return [json.loads(line) for line in storage.read_text(url).splitlines()]


def test_s3_run_killed_while_publishing_a_checkpoint_resumes_from_the_store(shapes_data, s3_bucket, tmp_path,
                                                                            monkeypatch):
    data = f"{s3_bucket}/data"
    storage.upload_tree(shapes_data, data)
    base = TrainConfig(data=shapes_data, out=tmp_path / "straight", steps=12, batch_size=24, num_workers=2,
                       ckpt_every=5, keep_last=1, log_every=1, eval_at_end=False, progress=False,
                       debug_samples=True, plot=False)
    torch.set_num_threads(1)  # same BLAS reduction order as the subprocess
    straight = train(base)

    run = f"{s3_bucket}/runs/r1"
    monkeypatch.setenv(runstore.ENV_CACHE, str(tmp_path / "cache-a"))
    killed = replace(base, data=data, out=run)
    # the second checkpoint (step 10) is uploaded but its meta.json is not: the store holds step 5 only
    assert run_killed_at(killed, tmp_path, "publish:meta.json@2") == -signal.SIGKILL
    assert runstore._remote_checkpoints(run) == ["step-00000005"]
    assert not storage.exists(f"{run}/model.safetensors")

    monkeypatch.setenv(runstore.ENV_CACHE, str(tmp_path / "cache-b"))  # another machine: nothing local
    assert train(replace(killed, resume="latest")) == run
    assert _remote_jsonl(f"{run}/samples-rank0.jsonl") == read_jsonl(straight / "samples-rank0.jsonl")
    assert [m["step"] for m in _remote_jsonl(f"{run}/metrics.jsonl")] == list(range(1, 13))
    a = load((straight / "model.safetensors").read_bytes())
    b = load(storage.read_bytes(f"{run}/model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
    # keep_last=1: the store holds what the local run keeps, the older ones and the killed upload are removed
    assert runstore._remote_checkpoints(run) == [p.name for p in list_checkpoints(straight)]
    fs, root = storage.filesystem(f"{run}/checkpoints")
    assert len(fs.ls(root)) == 1
    fs, root = storage.filesystem(run)
    assert not [k for k in fs.find(root) if k.rsplit("/", 1)[-1].startswith(".")], "temporary objects left"
