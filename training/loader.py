"""The main-process side of the stream: epochs, DataLoader workers, and padding so all DDP ranks step together.

Padding choice (documented contract): every rank runs ``steps_per_epoch`` micro-batches, the longest rank's real
batch count.  A rank that runs out of data first gets *padding* micro-batches: a dummy batch whose loss weight is
0, so it joins every collective (no hang) but contributes zero gradient, and no sample is seen twice.  We pad rather
than drop so that every sample is seen exactly once per epoch; the cost is at most one row group's worth of
idle micro-batches per rank per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from training.stream import ShardStream
from training.tokenizer import CLS, MASK, PAD, SEP


@dataclass
class Position:
    epoch: int = 0
    batch: int = 0  # micro-batches this rank consumed in `epoch` (real and padding)


def dummy_batch(image_size: int, max_len: int, *, epoch: int) -> dict[str, Any]:
    """Two all-grey images and '[CLS] [MASK] [SEP]' captions: exercises every parameter, weight 0."""
    ids = torch.full((2, max_len), PAD, dtype=torch.long)
    ids[:, 0], ids[:, 1], ids[:, 2] = CLS, MASK, SEP
    labels = torch.full_like(ids, -100)
    labels[:, 1] = CLS  # any valid id: the weight is 0
    return {"image": torch.full((2, 3, image_size, image_size), 128, dtype=torch.uint8), "ids": ids,
            "valid": ids != PAD, "mlm_ids": ids.clone(), "labels": labels, "gate": torch.ones(2), "keys": [],
            "captions": [], "corrupt_keys": [], "epoch": epoch, "worker": -1, "seq": -1, "padding": True}


class Feeder:
    """Yields (position after this batch, batch) forever; a batch with no usable rows becomes a padding batch."""

    def __init__(self, stream: ShardStream, *, num_workers: int, start: Position, pin_memory: bool = False,
                 max_len: int, prefetch: int = 4):
        self.stream, self.num_workers, self.start = stream, num_workers, start
        self.pin_memory, self.max_len, self.prefetch = pin_memory, max_len, prefetch

    def _loader(self) -> DataLoader:
        kw: dict[str, Any] = {}
        if self.num_workers:
            kw = {"prefetch_factor": self.prefetch}
        return DataLoader(self.stream, batch_size=None, num_workers=self.num_workers, pin_memory=self.pin_memory,
                          **kw)

    def __iter__(self) -> Iterator[tuple[Position, dict[str, Any]]]:
        epoch, pos = self.start.epoch, self.start.batch
        items = None
        try:
            while True:
                real, total = self.stream.rank_batches(epoch), self.stream.steps_per_epoch(epoch)
                while pos < real:
                    if items is None:  # started lazily: a rank with no data this epoch needs no workers yet
                        self.stream.set_start(epoch, pos)
                        items = iter(self._loader())
                    batch = next(items)
                    if batch.get("placeholder"):
                        continue
                    if batch["epoch"] != epoch:
                        raise RuntimeError(f"loader is in epoch {batch['epoch']}, expected {epoch}: the dataset "
                                           "changed while training; restart the run")
                    pos += 1
                    if not batch["keys"]:  # every row of the batch was corrupt
                        batch = {**dummy_batch(self.stream.image_size, self.max_len, epoch=epoch),
                                 "corrupt_keys": batch["corrupt_keys"]}
                    yield Position(epoch, pos), batch
                while pos < total:
                    pos += 1
                    yield Position(epoch, pos), dummy_batch(self.stream.image_size, self.max_len, epoch=epoch)
                epoch, pos = epoch + 1, 0
        finally:
            shutdown = getattr(items, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()


def micro_batches_for(stream: ShardStream, epochs: float) -> int:
    """Micro-batches in `epochs` epochs (a fraction counts that share of the last epoch)."""
    whole = int(epochs)
    total = sum(stream.steps_per_epoch(e) for e in range(whole))
    frac = epochs - whole
    if frac > 0:
        total += int(round(frac * stream.steps_per_epoch(whole)))
    return total
