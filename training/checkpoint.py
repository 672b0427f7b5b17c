"""The checkpoint format: ``checkpoints/step-NNNNNNNN/`` = model.safetensors + state.pt + meta.json, the resume
state read back from it, and the run's final ``model.safetensors``.

A checkpoint is written into a hidden temporary directory and renamed into place, so a run killed at any instant
leaves either the complete checkpoint or none; ``latest`` only ever sees complete ones.  Optimizer and loader state
go through ``torch.save`` and are read back with ``weights_only=True`` (tensors and plain containers only).  The
loader state is (epoch, micro-batches consumed): the batch order is a pure function of the layout, which is saved
too and must match on resume.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from data_schemas import fault_point
from training.config import ConfigError
from training.distributed import DistContext
from training.stream import Layout, Position

log = logging.getLogger("mmpipe.train")

CKPT_DIR = "checkpoints"
_PREFIX = "step-"


def ckpt_name(step: int) -> str:
    return f"{_PREFIX}{step:08d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and (p / "meta.json").exists()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_resume(run_dir: Path, resume: str | None) -> Path | None:
    """'latest' -> newest complete checkpoint (None when there is none yet: a fresh start); a path -> that one."""
    if resume is None:
        return None
    if resume == "latest":
        return latest_checkpoint(run_dir)
    path = Path(resume)
    if not (path / "meta.json").exists():
        raise FileNotFoundError(f"{path}: not a complete checkpoint directory (no meta.json); use --resume latest "
                                f"or one of {[p.name for p in list_checkpoints(run_dir)]}")
    return path


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, state: dict[str, Any], meta: dict[str, Any],
                    *, keep_last: int) -> Path:
    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / ckpt_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
    try:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps({"step": step, **meta}, indent=2, default=str))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():  # re-saving a step after a resume: move the old one aside first
            old = root / f".{final.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        fault_point(f"publish:{final.name}")  # the crash tests' kill points (data_schemas.faults)
        os.replace(tmp, final)
        fault_point(f"published:{final.name}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(root, keep_last)
    return final


def _prune(root: Path, keep_last: int) -> None:
    for old in list_checkpoints(root.parent)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(f".{_PREFIX}*.tmp"):  # left by a killed writer
        if stale.stat().st_mtime < time.time() - 3600:
            shutil.rmtree(stale, ignore_errors=True)


def load_checkpoint(path: Path, model: torch.nn.Module, *, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load weights into ``model`` (strict) and return the saved training state."""
    load_weights(Path(path) / "model.safetensors", model, device=device)
    return torch.load(Path(path) / "state.pt", map_location=device, weights_only=True)


def load_weights(path: Path, model: torch.nn.Module, *, device: torch.device | str = "cpu") -> None:
    missing, unexpected = load_model(model, str(path), strict=False, device=str(device))
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the model (missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}); was it written with another preset?")


def _layout_key(layout: Layout) -> dict[str, Any]:
    return {"world": layout.world, "workers": layout.workers, "batch_size": layout.batch_size, "seed": layout.seed,
            "buffer": layout.buffer}


def checkpoint_state(step: int, pos: Position, optimizer: torch.optim.Optimizer, layout: Layout,
                     counters: dict[str, float]) -> dict[str, Any]:
    """What ``state.pt`` holds besides the weights."""
    return {"step": step, "epoch": pos.epoch, "batch": pos.batch, "optimizer": optimizer.state_dict(),
            "layout": _layout_key(layout), "counters": counters}


def resume_state(run_dir: Path, resume: str | None, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 layout: Layout, ctx: DistContext) -> tuple[int, Position, dict[str, float]]:
    """Load the checkpoint named by ``resume`` into model and optimizer -> (step, loader position, counters)."""
    ckpt = resolve_resume(run_dir, resume)
    if ckpt is None:
        if resume and ctx.is_main:
            log.warning("--resume %s: no checkpoint in %s yet, starting from step 0", resume, run_dir)
        return 0, Position(), {"samples": 0.0, "corrupt": 0.0}
    state = load_checkpoint(ckpt, model, device=ctx.device)
    saved = state["layout"]
    if saved != _layout_key(layout):
        raise ConfigError(f"{ckpt}: saved with loader layout {saved}, this run has {_layout_key(layout)}; an exact "
                          "resume needs the same number of processes, loader workers, batch size, seed and buffer")
    optimizer.load_state_dict(state["optimizer"])
    counters = {k: float(v) if ctx.is_main else 0.0 for k, v in state["counters"].items()}
    if ctx.is_main:
        log.info("resumed from %s (step %d, epoch %d, batch %d)", ckpt, state["step"], state["epoch"],
                 state["batch"])
    return int(state["step"]), Position(int(state["epoch"]), int(state["batch"])), counters


def run_weights(run_dir: Path) -> tuple[Path, int]:
    """(weights file, training step) of a run: its final ``model.safetensors``, else its newest checkpoint's."""
    run_dir = Path(run_dir)
    final = run_dir / "model.safetensors"
    if final.exists():
        summary = run_dir / "train_summary.json"
        step = json.loads(summary.read_text()).get("steps", -1) if summary.exists() else -1
        return final, int(step)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir}: no model.safetensors and no checkpoint; train it first")
    return ckpt / "model.safetensors", int(json.loads((ckpt / "meta.json").read_text())["step"])


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model under torch.compile and DDP wrappers (their state dicts carry prefixes)."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def write_final_weights(run_dir: Path, model: torch.nn.Module) -> Path:
    """``<run>/model.safetensors``, written under a temporary name and renamed."""
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".safetensors", dir=run_dir)
    os.close(fd)
    save_model(unwrap(model), tmp)
    final = Path(run_dir) / "model.safetensors"
    os.replace(tmp, final)
    return final
