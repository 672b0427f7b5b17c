"""Kill -9 a training process mid-epoch (at a checkpoint's rename, through the MMPIPE_FAULT_AT hook of
`data_schemas.faults`), resume it, and get exactly the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.trainlib import read_samples
from training.checkpoint import list_checkpoints
from training.config import TrainConfig
from training.metrics import read_jsonl
from training.train import train

REPO = Path(__file__).resolve().parents[2]


def run_killed_at(cfg: TrainConfig, tmp_path: Path, point: str) -> int:
    """Train in a subprocess that SIGKILLs itself at the named kill point; returns its exit status."""
    config_json = tmp_path / "killed.json"
    cfg.write_json(config_json)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MMPIPE_FAULT_AT": point}
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.run([sys.executable, "-m", "training.train_main", "--config-json", str(config_json)],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log, timeout=300)
    return proc.returncode


@pytest.mark.slow
def test_sigkill_then_resume_latest_matches_an_uninterrupted_run(shapes_data, tmp_path):
    # 320 train rows, 2 loader workers, batch 24 -> 14 micro-batches per epoch: 18 steps cross an epoch boundary.
    base = TrainConfig(data=shapes_data, out=tmp_path / "straight", steps=18, batch_size=24, num_workers=2,
                       ckpt_every=5, keep_last=2, log_every=1, eval_at_end=False, progress=False,
                       debug_samples=True, plot=False)
    torch.set_num_threads(1)  # same BLAS reduction order as the subprocess
    straight = train(base)

    killed = replace(base, out=tmp_path / "killed")
    # killed as checkpoint 10 is renamed into place: steps 6-10 ran after checkpoint 5 and are lost work
    assert run_killed_at(killed, tmp_path, "publish:step-00000010") == -signal.SIGKILL
    assert [p.name for p in list_checkpoints(killed.out)] == ["step-00000005"]
    loader = json.loads((list_checkpoints(killed.out)[0] / "meta.json").read_text())["loader"]
    assert (loader["epoch"], loader["batch"]) == (0, 5)
    assert sorted(w["batches_done"] for w in loader["rank0_workers"]) == [2, 3]
    assert all(set(w["next_row"]) == {"shard", "row_group", "offset"} for w in loader["rank0_workers"])
    assert max(r["step"] for r in read_samples(killed.out)) == 10
    assert not (killed.out / "model.safetensors").exists()

    resumed = train(replace(killed, resume="latest"))

    assert read_samples(resumed) == read_samples(straight), "same samples, same order, same steps"
    assert [m["step"] for m in read_jsonl(resumed / "metrics.jsonl")] == list(range(1, 19))
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
    straight_loss = [m["loss"] for m in read_jsonl(straight / "metrics.jsonl")]
    resumed_loss = [m["loss"] for m in read_jsonl(resumed / "metrics.jsonl")]
    assert resumed_loss == pytest.approx(straight_loss, rel=1e-4)
