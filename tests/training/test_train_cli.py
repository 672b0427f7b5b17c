"""`mmpipe train` and `mmpipe eval` end to end through the typer commands (in-process), on data with corrupt
rows: they are counted and skipped; a finished run is never overwritten by accident; `--resume latest` extends it."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from flows.commands.train import register


def test_cli_train_resume_eval_with_baseline(corrupt_data, tmp_path):
    app = typer.Typer()
    register(app)
    run = tmp_path / "runs" / "cli"
    config = tmp_path / "train.yaml"
    config.write_text("batch_size: 8\nnum_workers: 1\nckpt_every: 4\nkeep_last: 2\nprogress: false\nplot: false\n")
    args = ["train", "--data", str(corrupt_data), "--out", str(run), "--config", str(config), "--device", "cpu",
            "--no-eval"]
    result = CliRunner().invoke(app, [*args, "--epochs", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps lines
    # 80 train rows, 6 of them undecodable: one epoch is 10 batches of 8 rows, 74 usable samples
    assert "10 steps" in text and "74 samples, 6 corrupt row(s) skipped" in text
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000008", "step-00000010"]
    assert not (run / "eval.json").exists()

    result = CliRunner().invoke(app, [*args, "--epochs", "1"])
    assert result.exit_code == 1 and "--resume latest" in " ".join(result.output.split())
    assert "Traceback" not in result.output

    result = CliRunner().invoke(app, [*args, "--steps", "12", "--resume", "latest"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "train_summary.json").read_text())["steps"] == 12

    result = CliRunner().invoke(app, ["eval", "--run", str(run), "--baseline", "--batch-size", "10"])
    assert result.exit_code == 0, result.output
    assert "seed baseline" in result.output and "image to text" in result.output
    data = json.loads((run / "eval.json").read_text())
    assert data["model"]["retrieval"]["n"] == 20 and data["baseline"]["preset"] == "seed"
    assert json.loads((run / "baseline" / "train_summary.json").read_text())["steps"] == 12

    result = CliRunner().invoke(app, ["eval", "--run", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "not a training run" in " ".join(result.output.split())
