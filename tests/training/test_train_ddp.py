"""DDP under a real torchrun (2 processes, gloo on CPU): every sample exactly once per epoch, ranks in lockstep."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.training.trainlib import read_samples, split_keys
from training.config import TrainConfig
from training.launch import launch_torchrun


@pytest.mark.slow
def test_torchrun_two_ranks_see_each_sample_once_per_epoch(few_groups_data, tmp_path):
    # 96 train rows in 3 row groups, but 2 ranks x 2 loader workers = 4 consumers: row groups get sliced.
    cfg = TrainConfig(data=few_groups_data, out=tmp_path / "ddp", epochs=2, batch_size=8, num_workers=2,
                      ckpt_every=100, debug_samples=True, eval_at_end=False, progress=False, plot=False)
    run = launch_torchrun(cfg, 2, timeout=300)
    ranks = [read_samples(run, r) for r in (0, 1)]
    assert [len(r) for r in ranks][0] == len(ranks[1]), "both ranks ran the same number of micro-steps"
    assert [rec["step"] for rec in ranks[0]] == [rec["step"] for rec in ranks[1]]
    expected = Counter(split_keys(few_groups_data))
    orders = []
    for epoch in (0, 1):
        keys = [k for r in ranks for rec in r if rec["epoch"] == epoch for k in rec["keys"]]
        assert Counter(keys) == expected, f"epoch {epoch}: each train sample exactly once"
        orders.append([k for rec in ranks[0] if rec["epoch"] == epoch for k in rec["keys"]])
    assert orders[0] != orders[1], "a new shuffle every epoch"
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["samples_seen"] == 2 * 96
    assert (run / "model.safetensors").exists()
