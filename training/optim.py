"""Optimizer, learning-rate schedule, mixed precision and device moves for the train loop.

The learning rate is a pure function of the step (set on the param groups before each step) rather than a
scheduler object, so resuming restores it exactly with nothing extra to save.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float, fused: bool = False) -> torch.optim.AdamW:
    """AdamW; matrices decay, while biases, norms, position tables and the temperature do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and "pos" not in name.split(".")[-1] else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs: dict[str, Any] = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6, **kwargs)


def lr_at(step: int, *, total: int, warmup: int, base: float, final_frac: float = 0.1) -> float:
    """Linear warmup to ``base`` then cosine decay to ``final_frac * base`` at ``total`` steps."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bf16 autocast on CUDA by default (no loss scaling needed); fp32 on CPU unless bf16 is asked for."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    """The batch's tensors on ``device``; keys, captions and counters stay behind, so that torch.compile sees
    only tensors (a list of strings as input would be guarded on, and recompiled for, at every step)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
