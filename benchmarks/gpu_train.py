"""GPU benchmark of the `base` preset: model-only step throughput (samples/s, step time, peak memory, TFLOP/s)
and an end-to-end ``train()`` run (loader + steps + checkpoint + eval) on generated CLEAN data.

Self-contained (torch, numpy, pillow, pyarrow, tokenizers, safetensors and this repo); prints as it goes.
Designed to finish in under 4 minutes on one H200 including data generation and (optional) compilation:

    python benchmarks/gpu_train.py                     # bf16 autocast, eager
    python benchmarks/gpu_train.py --compile           # + torch.compile
    python benchmarks/gpu_train.py --device cpu --steps 3   # CPU smoke test (tiny batch, few rows)

FLOPs are counted with torch.utils.flop_counter on one eager forward+backward (matmuls, convolutions and
attention), so TFLOP/s is model FLOPs per second ("MFU-style"), not hardware counters.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    ap.add_argument("--steps", type=int, default=None, help="timed model-only steps (default 40 GPU / 3 CPU)")
    ap.add_argument("--train-steps", type=int, default=None, help="end-to-end train() steps (default 120 / 3)")
    ap.add_argument("--batch-size", type=int, default=None, help="default 256 on GPU, 4 on CPU")
    ap.add_argument("--rows", type=int, default=None, help="generated rows (default 16384 GPU / 96 CPU)")
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default min(12, cores - 2))")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--skip-train", action="store_true", help="only the model-only benchmark")
    return ap.parse_args()


def defaults(args: argparse.Namespace, cuda: bool) -> argparse.Namespace:
    cores = len(os.sched_getaffinity(0))
    args.steps = args.steps or (40 if cuda else 3)
    args.train_steps = args.train_steps or (120 if cuda else 3)
    args.batch_size = args.batch_size or (256 if cuda else 4)
    args.rows = args.rows or (16384 if cuda else 96)
    args.workers = args.workers if args.workers is not None else max(1, min(12, cores - 2))
    return args


def make_data(root: Path, rows: int):
    from training.synthetic import SyntheticSpec, write_synthetic_clean

    # 16384 rows -> 15360 train rows = 60 row groups of 256: with 12 workers and batch 256 every batch is full, so a
    # compiled model sees one shape (a partial batch would cost a second, dynamic-shape compilation)
    spec = SyntheticSpec(rows=rows, image_size=256, rows_per_shard=2048, row_group_size=256, val_fraction=0.0625)
    data = write_synthetic_clean(root / "data", spec, processes=len(os.sched_getaffinity(0)))
    say(f"generated {rows} CLEAN rows (256-px JPEG) in {data}")
    return data


def model_bench(args, cfg, device, stream) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from training.distributed import autocast, to_device
    from training.model import build_model, count_params
    from training.stream import Feeder, Position
    from training.train import make_optimizer

    torch.manual_seed(0)
    model = build_model(cfg.model, vocab=stream.vocab, image_size=cfg.image_size, max_len=cfg.max_text_len).to(device)
    opt = make_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type == "cuda")
    feeder = iter(Feeder(stream, num_workers=args.workers, start=Position(), max_len=cfg.max_text_len,
                         pin_memory=device.type == "cuda"))
    batches = [to_device(next(feeder)[1], device) for _ in range(2)]
    feeder.close()
    say(f"base model: {count_params(model) / 1e6:.1f} M parameters, batch {args.batch_size}")

    def step(b):
        with autocast(device, "auto"):
            loss = run(b)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as fc:
        with autocast(device, "auto"):
            model(batches[0])["loss"].backward()
    opt.zero_grad(set_to_none=True)
    flops = fc.get_total_flops()
    run = torch.compile(model) if args.compile else model
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t = time.perf_counter()
    for i in range(3):  # warm-up (and compilation)
        step(batches[i % 2])
    sync()
    say(f"warm-up {'+ compile ' if args.compile else ''}took {time.perf_counter() - t:.1f}s")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(args.steps):
        t = time.perf_counter()
        step(batches[i % 2])
        sync()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    n = batches[0]["ids"].shape[0]
    out = {"params_M": count_params(model) / 1e6, "batch": n, "step_ms": med * 1e3, "samples_per_s": n / med,
           "gflop_per_step": flops / 1e9, "tflops": flops / med / 1e12,
           "peak_mem_GiB": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None}
    say("model-only: " + json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}))
    return out


def train_bench(args, data: Path, root: Path, device, gflop_per_sample: float) -> dict:
    from training.config import TrainConfig
    from training.metrics import read_jsonl
    from training.train import train

    cfg = TrainConfig(data=data, out=root / "run", preset="base", steps=args.train_steps, batch_size=args.batch_size,
                      warmup=20, num_workers=args.workers, device=device.type, compile=args.compile,
                      ckpt_every=10**6, log_every=10, progress=False, eval_at_end=True, eval_batch_size=256)
    t = time.perf_counter()
    run = train(cfg)
    wall = time.perf_counter() - t
    rates = [m["samples_per_s"] for m in read_jsonl(run / "metrics.jsonl")][2:] or [0.0]
    ev = json.loads((run / "eval.json").read_text())["model"]
    rate = statistics.median(rates)
    out = {"wall_s": wall, "samples_per_s_median": rate, "tflops": rate * gflop_per_sample / 1e3,
           "val_R@1": ev["retrieval"]["mean_R@1"],
           "mlm_acc_gap": ev["mlm"]["gap_matched_vs_mismatched"]["accuracy"]["mean"]}
    say("end-to-end train(): " + json.dumps({k: round(v, 3) for k, v in out.items()}))
    return out


def main() -> None:
    args = parse()
    import torch

    from training.distributed import pick_device

    device = pick_device(args.device)
    args = defaults(args, device.type == "cuda")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    say(f"torch {torch.__version__} on {name}; compile={args.compile}; loader workers={args.workers}")
    torch.backends.cuda.matmul.allow_tf32 = True
    root = Path(tempfile.mkdtemp(prefix="gpu-train-"))
    try:
        run_all(args, root, device)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_all(args: argparse.Namespace, root: Path, device) -> None:
    from training.config import TrainConfig
    from training.data import open_split, read_captions
    from training.stream import Layout, ShardStream
    from training.tokenizer import train_tokenizer

    data = make_data(root, args.rows)
    cfg = TrainConfig(data=data, out=root / "unused", preset="base", batch_size=args.batch_size).resolved()
    index = open_split(data)
    tok = train_tokenizer(read_captions(index), vocab_size=cfg.vocab_size, max_len=cfg.max_text_len)
    layout = Layout(workers=max(1, args.workers), batch_size=args.batch_size)
    stream = ShardStream(index, tok, layout, image_size=cfg.image_size, mask_prob=cfg.mask_prob, image_drop=0.1,
                         trim_text=False)
    result = {"model_only": model_bench(args, cfg, device, stream)}
    if not args.skip_train:
        m = result["model_only"]
        result["train"] = train_bench(args, data, root, device, m["gflop_per_step"] / m["batch"])
    say("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
