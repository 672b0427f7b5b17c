"""Helpers shared by the training tests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from torch.utils.data import DataLoader

from training.data import open_split
from training.stream import Layout, ShardStream
from training.tokenizer import train_tokenizer


def split_keys(data: Path, split: str = "train") -> list[str]:
    keys = []
    for path in sorted((data / "shards").glob(f"{split}-*.parquet")):
        keys.extend(pq.read_table(path, columns=["key"]).column("key").to_pylist())
    return keys


def make_stream(data: Path, layout: Layout, *, train: bool = True, max_epochs: int | None = 1) -> ShardStream:
    index = open_split(data, "train")
    tok = train_tokenizer(["one red circle on a blue background", "two green squares"] * 3, vocab_size=200,
                          max_len=16)
    return ShardStream(index, tok, layout, image_size=32, mask_prob=0.3, train=train, max_epochs=max_epochs)


def rank_batches(stream: ShardStream, *, epoch: int = 0, position: int = 0) -> list[dict]:
    """Real batches one rank's DataLoader delivers for one epoch from ``position`` (placeholders dropped)."""
    stream.set_start(epoch, position)
    stream.max_epochs = epoch + 1
    loader = DataLoader(stream, batch_size=None, num_workers=stream.layout.workers if stream.layout.workers > 1 else 0)
    return [b for b in loader if not b.get("placeholder")]


def read_samples(run: Path, rank: int = 0) -> list[dict]:
    return [json.loads(line) for line in (run / f"samples-rank{rank}.jsonl").read_text().splitlines()]
