"""Run logs: ``metrics.jsonl`` (one line per logged step), its PNG plot, and the optional per-rank sample log.

Both logs are append-only JSON lines.  On resume they are cut back to the checkpoint's step, so a run that was
killed and resumed has exactly the lines an uninterrupted run would have (a line half-written at the kill is
dropped too).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "metrics.png"


def truncate_jsonl(path: Path, max_step: int) -> None:
    """Keep the complete lines whose ``step`` is <= max_step (rewritten atomically)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("step", 0) <= max_step:
            kept.append(line)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept))
    os.replace(tmp, path)


class JsonlWriter:
    def __init__(self, path: Path, *, resume_step: int | None):
        self.path = path
        if resume_step is None:
            path.unlink(missing_ok=True)
        else:
            truncate_jsonl(path, resume_step)
        self.fh = open(path, "a", buffering=1)

    def write(self, record: dict[str, Any]) -> None:
        self.fh.write(json.dumps(record, default=float) + "\n")

    def close(self) -> None:
        self.fh.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def plot_metrics(run_dir: Path) -> Path | None:
    """Loss curves and learning rate vs step, as a PNG next to metrics.jsonl."""
    path = Path(run_dir) / METRICS_NAME
    rows = read_jsonl(path) if path.exists() else []
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "mlm", "clip", "mse"):
        if key in rows[0]:
            ax_loss.plot(steps, [r[key] for r in rows], label=key)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_lr.plot(steps, [r["lr"] for r in rows], color="tab:gray")
    ax_lr.set_xlabel("step")
    ax_lr.set_ylabel("learning rate")
    ax2 = ax_lr.twinx()
    ax2.plot(steps, [r["samples_per_s"] for r in rows], color="tab:green", alpha=0.6)
    ax2.set_ylabel("samples/s", color="tab:green")
    fig.suptitle(Path(run_dir).name)
    fig.tight_layout()
    out = Path(run_dir) / PLOT_NAME
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out
