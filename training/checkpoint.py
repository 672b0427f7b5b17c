"""Atomic checkpoints: ``checkpoints/step-NNNNNNNN/`` = model.safetensors + state.pt + meta.json.

A checkpoint is written into a hidden temporary directory and renamed into place, so a run killed at any instant
leaves either the complete checkpoint or none; ``latest`` only ever sees complete ones.  Optimizer and loader state
go through ``torch.save`` and are read back with ``weights_only=True`` (tensors and plain containers only).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from data_schemas import fault_point

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
