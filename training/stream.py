"""Streaming, resumable dataset over the row groups of CLEAN shards, and the main-process ``Feeder`` that runs it
epoch after epoch and pads DDP ranks so they step together.

Layout of one epoch (all a deterministic function of (seed, epoch) and the layout, never of timing):
  1. The split's row groups ("units") are permuted with the epoch's seed and strided across the
     ``world * workers`` consumers (consumer = rank * workers + worker), as nanochat strides row groups across
     ranks.  With fewer row groups than consumers, row groups are first cut into row slices, so no worker idles.
  2. Each consumer streams its units through a shuffle buffer; the buffer's choices are drawn from a generator
     seeded by (seed, epoch, consumer), so the order is a pure function of metadata: it is computed up front from
     row counts, and rows are read (one row group at a time, only the rows still needed) when first emitted.
  3. Consecutive ``batch_size`` rows of that order form a consumer's batch s.  Every worker yields the same
     number of items per epoch (its real batches, then cheap placeholders), so the in-order DataLoader's
     round-robin delivers the rank's batches in the fixed grid order (s, worker) - whatever the timing - and one
     DataLoader (one set of worker processes) serves every epoch of the run.

Resume: the only state is (epoch, position) = micro-batches this rank consumed in the epoch.  From row counts alone
we know which grid item comes next, so each worker skips the batches it had already delivered (without reading or
decoding them) and workers are rotated so the round-robin restarts at the worker that was next.  Corrupt rows
shrink a batch but never change which rows form it, so the position stays exact.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from data_schemas import storage
from training.data import READ_COLUMNS, DatasetIndex, Unit
from training.masking import MaskPolicy, mask_tokens, mask_words, word_layout
from training.tokenizer import CLS, MASK, PAD, SEP, to_arrays
from training.transforms import prepare

# Tags that keep the random streams apart: each generator is seeded with (seed, epoch, [consumer, batch,] TAG), so
# the unit permutation, a consumer's shuffle buffer and a batch's masks and crops never share draws.
UNIT_ORDER_TAG = 7001
SHUFFLE_TAG = 7002
BATCH_TAG = 7003


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Layout:
    rank: int = 0
    world: int = 1
    workers: int = 1  # DataLoader workers per rank (1 when the loader runs in the main process)
    batch_size: int = 32
    seed: int = 0
    shuffle: bool = True
    buffer: int = 1000

    @property
    def consumers(self) -> int:
        return self.world * self.workers


def _split_units(units: list[Unit], n: int) -> list[Unit]:
    """Cut row groups into about 2n equal slices (only used when there are fewer row groups than 2n)."""
    target = max(1, math.ceil(sum(len(u) for u in units) / (2 * n)))
    out = []
    for u in units:
        for part in np.array_split(np.asarray(u.rows), math.ceil(len(u) / target)):
            out.append(Unit(u.shard, u.row_group, tuple(int(i) for i in part)))
    return out


def assign_units(units: tuple[Unit, ...], layout: Layout, epoch: int) -> list[list[Unit]]:
    """Units of every consumer for this epoch: permuted by the epoch seed, then each to the least-loaded consumer.

    With equal-sized row groups this is exactly nanochat's striding (unit i -> consumer i mod n); with unequal ones
    it keeps ranks within one row group of each other, which keeps DDP padding small.
    """
    units_l = list(units)
    n = layout.consumers
    if len(units_l) < 2 * n:
        units_l = _split_units(units_l, n)
    order = (np.random.default_rng([layout.seed, epoch, UNIT_ORDER_TAG]).permutation(len(units_l)) if layout.shuffle
             else np.arange(len(units_l)))
    out: list[list[Unit]] = [[] for _ in range(n)]
    heap = [(0, c) for c in range(n)]  # (rows so far, consumer): ties go to the lowest consumer
    for i in order:
        rows, c = heapq.heappop(heap)
        out[c].append(units_l[i])
        heapq.heappush(heap, (rows + len(units_l[i]), c))
    return out


def consumer_order(units: list[Unit], layout: Layout, *, epoch: int, consumer: int) -> list[tuple[int, int]]:
    """(unit, row) references in the order a shuffle buffer of ``layout.buffer`` rows would emit them."""
    refs = [(u, r) for u, unit in enumerate(units) for r in range(len(unit))]
    if not layout.shuffle or layout.buffer <= 1 or len(refs) <= 1:
        return refs
    rng = np.random.default_rng([layout.seed, epoch, consumer, SHUFFLE_TAG])
    size = min(layout.buffer, len(refs))
    buf, out = refs[:size], []
    picks = (rng.random(len(refs) - size) * size).astype(np.int64)
    for ref, j in zip(refs[size:], picks, strict=True):
        out.append(buf[j])
        buf[j] = ref
    out.extend(buf[i] for i in rng.permutation(size))
    return out


def worker_batches(assignment: list[list[Unit]], layout: Layout, rank: int) -> list[int]:
    return [math.ceil(sum(len(u) for u in assignment[rank * layout.workers + w]) / layout.batch_size)
            for w in range(layout.workers)]


def resume_item(counts: list[int], position: int) -> int:
    """Index, in the rank's (s, worker) item grid, of the first real batch not consumed after ``position``.

    Every worker yields ``max(counts)`` items per epoch (real batches, then placeholders), so the grid has
    ``workers * max(counts)`` items and item i is batch ``i // workers`` of worker ``i % workers``.
    """
    workers = len(counts)
    taken = 0
    for i in range(workers * max(counts, default=0)):
        if i // workers < counts[i % workers]:
            if taken == position:
                return i
            taken += 1
    return workers * max(counts, default=0)


class ShardStream(IterableDataset):
    """Yields ready batches (dicts of tensors, plus keys and bookkeeping); use with DataLoader(batch_size=None)."""

    def __init__(self, index: DatasetIndex, tokenizer, layout: Layout, *, image_size: int, mask_prob: float,
                 train: bool = True, image_drop: float = 0.0, crop_scale: tuple[float, float] = (0.6, 1.0),
                 trim_text: bool = True, max_epochs: int | None = None, policy: MaskPolicy | None = None):
        """``policy``: how MLM targets are chosen (see training.masking); None: uniform token masking."""
        self.index, self.tok, self.layout, self.policy = index, tokenizer, layout, policy
        self.image_size, self.mask_prob, self.train = image_size, mask_prob, train
        self.image_drop, self.crop_scale, self.trim_text = image_drop, crop_scale, trim_text
        self.vocab = tokenizer.get_vocab_size()
        self.max_epochs = max_epochs
        self.epoch, self.position = 0, 0
        self._plans: dict[tuple[int, int], tuple[list[list[Unit]], list[int]]] = {}

    def set_start(self, epoch: int, position: int) -> None:
        """Where the next iterator starts: ``position`` micro-batches into ``epoch`` for this rank."""
        self.epoch, self.position = epoch, position

    def plan(self, epoch: int, rank: int | None = None) -> tuple[list[list[Unit]], list[int]]:
        """(units of every consumer, batches of each of ``rank``'s workers) for an epoch."""
        rank = self.layout.rank if rank is None else rank
        if (epoch, rank) not in self._plans:
            assignment = assign_units(self.index.units, self.layout, epoch)
            self._plans = {k: v for k, v in self._plans.items() if k[0] >= epoch - 1}  # bounded cache
            self._plans[(epoch, rank)] = assignment, worker_batches(assignment, self.layout, rank)
        return self._plans[(epoch, rank)]

    def rank_batches(self, epoch: int, rank: int | None = None) -> int:
        return sum(self.plan(epoch, rank)[1])

    def steps_per_epoch(self, epoch: int) -> int:
        """Micro-batches every rank runs this epoch: the longest rank's count (shorter ranks pad)."""
        return max(self.rank_batches(epoch, r) for r in range(self.layout.world))

    def describe(self, epoch: int, position: int) -> list[dict]:
        """Human-readable position for checkpoints: per worker, batches done and the (shard, row group, offset) of
        the next row.  Informational: a resume needs only (epoch, position), the order being deterministic."""
        assignment, counts = self.plan(epoch)
        start, workers, bs = resume_item(counts, position), self.layout.workers, self.layout.batch_size
        out = []
        for v in range(workers):
            consumer = self.layout.rank * workers + v
            units = assignment[consumer]
            done = min(max(0, ceil_div(start - v, workers)), counts[v])
            entry: dict = {"worker": v, "batches_done": done, "batches": counts[v]}
            if done < counts[v]:
                u, r = consumer_order(units, self.layout, epoch=epoch, consumer=consumer)[done * bs]
                entry["next_row"] = {"shard": storage.name(self.index.paths[units[u].shard]),
                                     "row_group": units[u].row_group, "offset": units[u].rows[r]}
            out.append(entry)
        return out

    def __iter__(self):
        """Yields real batches and placeholders ({"placeholder": True}) epoch after epoch, in grid order."""
        info = get_worker_info()
        workers = self.layout.workers
        if (info.num_workers if info is not None else 1) != workers:
            raise RuntimeError(f"layout expects {workers} loader worker(s), got {info.num_workers if info else 0}")
        start = resume_item(self.plan(self.epoch)[1], self.position)
        v = ((info.id if info is not None else 0) + start) % workers  # rotation: constant for the whole stream
        first = max(0, ceil_div(start - v, workers))  # this worker's batches before the resume item
        epoch = self.epoch
        while self.max_epochs is None or epoch < self.max_epochs:
            yield from self._epoch(epoch, v, first if epoch == self.epoch else 0)
            epoch += 1

    def _epoch(self, epoch: int, v: int, first: int):
        assignment, counts = self.plan(epoch)
        consumer = self.layout.rank * self.layout.workers + v
        units = assignment[consumer]
        order = consumer_order(units, self.layout, epoch=epoch, consumer=consumer)
        bs = self.layout.batch_size
        reader = _RowReader(self.index, units, order[first * bs:])
        for s in range(first, max(counts, default=0)):
            if s >= counts[v]:
                yield {"placeholder": True, "epoch": epoch}
                continue
            items = [reader.take(ref) for ref in order[s * bs:(s + 1) * bs]]
            rng = np.random.default_rng([self.layout.seed, epoch, consumer, s, BATCH_TAG])
            yield self._batch(items, rng, epoch=epoch, worker=v, seq=s)

    def _batch(self, items: list[tuple[str, str, bytes]], rng: np.random.Generator, *, epoch: int, worker: int,
               seq: int):
        images, keys, caps, bad = [], [], [], []
        for key, caption, data in items:
            arr = prepare(data, caption, size=self.image_size, rng=rng if self.train else None,
                          scale=self.crop_scale)
            if arr is None:
                bad.append(key)
                continue
            images.append(arr)
            keys.append(key)
            caps.append(caption)
        batch = {"keys": keys, "captions": caps, "corrupt_keys": bad, "epoch": epoch, "worker": worker, "seq": seq}
        if not keys:
            return batch
        encodings = self.tok.encode_batch(caps)
        ids, valid = to_arrays(encodings)
        if self.trim_text:  # drop all-padding columns: compute scales with the longest caption in the batch
            width = max(3, int(valid.sum(axis=1).max()))
            ids, valid = ids[:, :width], valid[:, :width]
        mlm_ids, labels = self._mask(ids, valid, rng, encodings, caps)
        gate = (rng.random(len(keys)) >= self.image_drop) if self.train else np.ones(len(keys), dtype=bool)
        batch.update(image=torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
                     ids=torch.from_numpy(ids), valid=torch.from_numpy(valid), mlm_ids=torch.from_numpy(mlm_ids),
                     labels=torch.from_numpy(labels), gate=torch.from_numpy(gate.astype(np.float32)))
        return batch

    def _mask(self, ids, valid, rng, encodings, captions):
        if self.policy is None:
            return mask_tokens(ids, valid, rng, prob=self.mask_prob, vocab_size=self.vocab, train=self.train)
        words, weights = word_layout(encodings, captions, self.policy, ids.shape[1])
        return mask_words(ids, valid, rng, words=words, weights=weights, prob=self.policy.prob,
                          vocab_size=self.vocab, train=self.train)


class _RowReader:
    """Reads each needed row group once, keeps only the rows still to be emitted, and drops them when emitted."""

    def __init__(self, index: DatasetIndex, units: list[Unit], remaining: list[tuple[int, int]]):
        self.index, self.units = index, units
        self.needed: dict[int, list[int]] = defaultdict(list)
        for u, r in remaining:
            self.needed[u].append(r)
        self.rows: dict[tuple[int, int], tuple[str, str, bytes]] = {}
        self.files: dict[int, pq.ParquetFile] = {}

    def take(self, ref: tuple[int, int]) -> tuple[str, str, bytes]:
        if ref not in self.rows:
            self._load(ref[0])
        return self.rows.pop(ref)

    def _load(self, u: int) -> None:
        unit = self.units[u]
        if unit.shard not in self.files:
            self.files[unit.shard] = storage.parquet_file(self.index.paths[unit.shard])
        wanted = self.needed.pop(u)
        table = self.files[unit.shard].read_row_group(unit.row_group, columns=READ_COLUMNS)
        table = table.take(pa.array([unit.rows[r] for r in wanted], type=pa.int64()))
        for r, key, cap, data in zip(wanted, *(table.column(c).to_pylist() for c in READ_COLUMNS), strict=True):
            self.rows[(u, r)] = (key, cap, data)


# --- the main-process side: epochs, DataLoader workers, and padding so all DDP ranks step together --------------
#
# Padding choice (documented contract): every rank runs ``steps_per_epoch`` micro-batches, the longest rank's real
# batch count.  A rank that runs out of data first gets *padding* micro-batches: a dummy batch whose loss weight is
# 0, so it joins every collective (no hang) but contributes zero gradient, and no sample is seen twice.  We pad rather
# than drop so that every sample is seen exactly once per epoch; the cost is at most one row group's worth of
# idle micro-batches per rank per epoch.


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
