"""Everything a run needs before its first step: the run directory, the tokenizer, the model, the resume state."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import list_checkpoints, load_checkpoint, resolve_resume
from training.config import ConfigError, TrainConfig
from training.data import DatasetIndex, read_captions
from training.distributed import DistContext, barrier
from training.loader import Position
from training.stream import Layout
from training.tokenizer import TOKENIZER_NAME, load_tokenizer, train_tokenizer

log = logging.getLogger("mmpipe.train")
TOKENIZER_SAMPLE = 2_000_000  # captions used to train the BPE (plenty for a caption vocabulary)


def prepare_run_dir(cfg: TrainConfig, ctx: DistContext) -> None:
    run_dir = cfg.out
    if ctx.is_main:
        if cfg.resume is None and list_checkpoints(run_dir):
            raise ConfigError(f"{run_dir} already holds checkpoints of an earlier run; pass --resume latest to "
                              "continue it, or choose a new --out")
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.write_json(run_dir / "config.json")
    barrier(ctx)


def prepare_tokenizer(cfg: TrainConfig, index: DatasetIndex, ctx: DistContext, *, resuming: bool):
    """Rank 0 trains the BPE on the training captions (or keeps the run's own when resuming); all ranks load it."""
    path = cfg.out / TOKENIZER_NAME
    if ctx.is_main and not (resuming and path.exists()):
        from data_schemas import atomic_write_bytes

        tok = train_tokenizer(read_captions(index, TOKENIZER_SAMPLE), vocab_size=cfg.vocab_size,
                              max_len=cfg.max_text_len)
        atomic_write_bytes(path, tok.to_str().encode())
        log.info("tokenizer: %d tokens trained on %s", tok.get_vocab_size(), index.root)
    barrier(ctx)
    return load_tokenizer(path, max_len=cfg.max_text_len)


def layout_for(cfg: TrainConfig, ctx: DistContext) -> Layout:
    return Layout(rank=ctx.rank, world=ctx.world, workers=max(1, cfg.num_workers), batch_size=cfg.batch_size,
                  seed=cfg.seed, shuffle=True, buffer=cfg.shuffle_buffer)


def _layout_key(layout: Layout) -> dict[str, Any]:
    return {"world": layout.world, "workers": layout.workers, "batch_size": layout.batch_size, "seed": layout.seed,
            "buffer": layout.buffer}


def resume_state(cfg: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, layout: Layout,
                 ctx: DistContext) -> tuple[int, Position, dict[str, float]]:
    """Load the checkpoint named by ``cfg.resume`` -> (step, loader position, counters)."""
    ckpt = resolve_resume(cfg.out, cfg.resume)
    if ckpt is None:
        if cfg.resume and ctx.is_main:
            log.warning("--resume %s: no checkpoint in %s yet, starting from step 0", cfg.resume, cfg.out)
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


def checkpoint_state(step: int, pos: Position, optimizer: torch.optim.Optimizer, layout: Layout,
                     counters: dict[str, float]) -> dict[str, Any]:
    return {"step": step, "epoch": pos.epoch, "batch": pos.batch, "optimizer": optimizer.state_dict(),
            "layout": _layout_key(layout), "counters": counters}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def write_final_weights(run_dir: Path, model: torch.nn.Module) -> Path:
    import os
    import tempfile

    from safetensors.torch import save_model

    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".safetensors", dir=run_dir)
    os.close(fd)
    save_model(unwrap(model), tmp)
    final = run_dir / "model.safetensors"
    os.replace(tmp, final)
    return final
