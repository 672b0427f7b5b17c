"""Training-stage benchmark: is the data loader fast enough to keep the `tiny` train step fed on CPU?

Measures, in one run on the same generated CLEAN data (256-px JPEGs, like the clean stage's small output):
  * loader-only samples/s: the real Feeder (DataLoader workers: read Parquet, JPEG decode + random resized crop +
    flip, tokenize, mask), consuming batches and doing nothing else;
  * train-step samples/s: forward + backward + AdamW on batches already in memory (no loading);
  * end-to-end samples/s of a real ``train()`` run (loader and steps overlapped), from its metrics.jsonl.
Medians over rounds; the ratio loader/step must be >= 3 so the model, not the loader, is the bottleneck.

    python benchmarks/bench_train.py [--rows 1200] [--workers 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.config import TrainConfig  # noqa: E402
from training.data import open_split  # noqa: E402
from training.metrics import read_jsonl  # noqa: E402
from training.model import build_model, count_params  # noqa: E402
from training.stream import Feeder, Layout, Position, ShardStream  # noqa: E402  # noqa: E402
from training.synthetic import SyntheticSpec, write_synthetic_clean  # noqa: E402
from training.tokenizer import train_tokenizer  # noqa: E402
from training.train import (
    make_optimizer,  # noqa: E402
    train,  # noqa: E402
)


def loader_rate(stream: ShardStream, workers: int, batches: int, rounds: int) -> list[float]:
    rates = []
    for r in range(rounds):
        feeder = iter(Feeder(stream, num_workers=workers, start=Position(epoch=r), max_len=24))
        next(feeder)  # worker start-up is not throughput
        t0, n = time.perf_counter(), 0
        for _ in range(batches):
            n += len(next(feeder)[1]["keys"])
        rates.append(n / (time.perf_counter() - t0))
        feeder.close()
    return rates


def step_rate(cfg: TrainConfig, stream: ShardStream, steps: int, rounds: int) -> tuple[list[float], int]:
    model = build_model(cfg.model, vocab=stream.vocab, image_size=cfg.image_size, max_len=cfg.max_text_len)
    opt = make_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay)
    feeder = iter(Feeder(stream, num_workers=cfg.num_workers, start=Position(), max_len=cfg.max_text_len))
    batches = [next(feeder)[1] for _ in range(4)]
    feeder.close()
    rates = []
    for r in range(rounds + 1):
        t0, n = time.perf_counter(), 0
        for i in range(steps):
            b = batches[i % len(batches)]
            model(b)["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            n += len(b["keys"])
        if r:  # round 0 warms up the allocator and kernels
            rates.append(n / (time.perf_counter() - t0))
    return rates, count_params(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        run_all(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_all(args: argparse.Namespace, tmp: Path) -> None:
    t0 = time.perf_counter()
    data = write_synthetic_clean(tmp / "data", SyntheticSpec(rows=args.rows, image_size=256, rows_per_shard=400,
                                                             row_group_size=100))
    print(f"generated {args.rows} rows of 256-px JPEG in {time.perf_counter() - t0:.1f}s -> {data}", flush=True)
    cfg = TrainConfig(data=data, out=tmp / "run", preset="tiny", num_workers=args.workers).resolved()
    index = open_split(data)
    tok = train_tokenizer(["one red circle on a blue background"] * 4, vocab_size=200, max_len=24)
    layout = Layout(workers=max(1, args.workers), batch_size=cfg.batch_size)
    stream = ShardStream(index, tok, layout, image_size=cfg.image_size, mask_prob=cfg.mask_prob, image_drop=0.1)

    loads = loader_rate(stream, args.workers, batches=20, rounds=args.rounds)
    print(f"loader only ({args.workers} workers): median {statistics.median(loads):8.1f} samples/s  "
          f"(rounds: {', '.join(f'{x:.0f}' for x in loads)})", flush=True)
    # the thread count train() uses: a core per loader worker, the rest for the step (see training/train.py)
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) - args.workers))
    steps, params = step_rate(cfg, stream, steps=8, rounds=args.rounds)
    print(f"train step (tiny, {params:,} params, batch {cfg.batch_size}, {torch.get_num_threads()} threads): "
          f"median {statistics.median(steps):8.1f} samples/s  (rounds: {', '.join(f'{x:.0f}' for x in steps)})",
          flush=True)
    ratio = statistics.median(loads) / statistics.median(steps)
    print(f"ratio loader/step = {ratio:.1f}x  ({'OK' if ratio >= 3 else 'LOADER TOO SLOW'}: must be >= 3x)",
          flush=True)

    run = train(TrainConfig(data=data, out=tmp / "run", preset="tiny", steps=60, num_workers=args.workers,
                            log_every=10, eval_at_end=False, progress=False, plot=False))
    rates = [m["samples_per_s"] for m in read_jsonl(run / "metrics.jsonl")[1:]]
    print(f"end-to-end train() (loader + steps overlapped): median {statistics.median(rates):8.1f} samples/s "
          f"= {statistics.median(rates) / statistics.median(steps):.2f} of the step-only rate", flush=True)


if __name__ == "__main__":
    main()
