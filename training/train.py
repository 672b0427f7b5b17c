"""The training stage's entry function: ``train(TrainConfig) -> run directory``, read top to bottom.

One run: resolve the config, start DDP when torchrun started us, index the train split, train (or reload) the
tokenizer, build the model and the optimizer, resume from a checkpoint, stream batches, step, log, checkpoint,
then write the final weights and evaluate.  Runs single-process, or as DDP when started by torchrun (see
``training.launch``).  A run directory holds: config.json, tokenizer.json, checkpoints/step-N/, metrics.jsonl +
metrics.png, model.safetensors, train_summary.json and (with eval_at_end) eval.json.

The learning rate is a pure function of the step (set on the param groups before each step) rather than a
scheduler object, so resuming restores it exactly with nothing extra to save.
"""

from __future__ import annotations

import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from data_schemas import atomic_write_bytes, atomic_write_json, storage
from training import runstore
from training.checkpoint import (
    checkpoint_state,
    list_checkpoints,
    resume_state,
    save_checkpoint,
    unwrap,
    write_final_weights,
)
from training.config import BASELINE_DIR, ConfigError, EvalConfig, TrainConfig
from training.data import DataError, DatasetIndex, open_split, read_captions
from training.distributed import DistContext, all_reduce_sum, autocast, barrier, setup, teardown, to_device
from training.masking import MaskPolicy
from training.metrics import METRICS_NAME, JsonlWriter, plot_metrics
from training.model import build_model, count_params
from training.stream import Feeder, Layout, ShardStream, micro_batches_for
from training.tokenizer import TOKENIZER_NAME, load_tokenizer, train_tokenizer

log = logging.getLogger("mmpipe.train")
TOKENIZER_SAMPLE = 2_000_000  # captions used to train the BPE (plenty for a caption vocabulary)


def train(config: TrainConfig) -> Path | str:
    """Train; returns the run directory.  A URL run directory is trained in a local mirror and published to the
    store as it goes (`training.runstore`)."""
    cfg = config.resolved()
    remote = cfg.out if storage.is_url(cfg.out) else None
    if remote:
        cfg = replace(cfg, out=runstore.mirror_dir(remote))
        runstore.pull(remote, cfg.out)
    ctx = setup(cfg.device)
    try:
        Trainer(cfg, ctx, remote=remote).run()
    finally:
        teardown(ctx)
    if ctx.is_main and cfg.eval_at_end:
        _evaluate_at_end(cfg)
    if remote and ctx.is_main:
        runstore.push_run(cfg.out, remote)
    return remote or cfg.out


def train_baseline(run: Path) -> Path:
    """The `seed` baseline of a run: same data, steps, batch size, vocabulary size; trained once into
    ``<run>/baseline``, then reused (an interrupted baseline run is finished).  Evaluation only reads it."""
    run = Path(run)
    base = run / BASELINE_DIR
    if (base / "model.safetensors").exists():
        return base
    cfg = TrainConfig.read_json(run / "config.json")
    resume = "latest" if list_checkpoints(base) else None
    seed_cfg = replace(cfg, preset="seed", model=None, out=base, resume=resume, eval_at_end=False, lr=None,
                       warmup=None, weight_decay=None, image_size=None, compile=False, debug_samples=False)
    log.info("training the seed baseline into %s", base)
    return train(seed_cfg)


def _evaluate_at_end(cfg: TrainConfig) -> None:
    from training.evaluate import evaluate

    try:
        evaluate(EvalConfig(run=cfg.out, batch_size=cfg.eval_batch_size, num_workers=min(cfg.num_workers, 2),
                            device=cfg.device, seed=cfg.seed))
    except DataError as exc:
        log.warning("skipping evaluation: %s", exc)


class Trainer:
    """The state of one run; ``__init__`` sets it up in the order below, ``run`` is the loop."""

    def __init__(self, cfg: TrainConfig, ctx: DistContext, *, remote: str | None = None):
        self.cfg, self.ctx, self.remote = cfg, ctx, remote  # remote: where each checkpoint is published
        torch.manual_seed(cfg.seed)
        _cpu_threads(cfg, ctx)
        # 1. data and run directory: both fail fast, before a worker starts or a file is written
        policy = mask_policy(cfg)
        index = open_split(cfg.data, "train")
        _prepare_run_dir(cfg, ctx)
        resuming = cfg.resume is not None
        tok = _prepare_tokenizer(cfg, index, ctx, resuming=resuming)
        # 2. model and optimizer
        model = build_model(cfg.model, vocab=tok.get_vocab_size(), image_size=cfg.image_size,
                            max_len=cfg.max_text_len, clip_weight=cfg.clip_weight).to(ctx.device)
        self.optimizer = make_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                        fused=ctx.device.type == "cuda")
        # 3. resume: weights, optimizer, counters and the loader position of the checkpoint
        self.layout = Layout(rank=ctx.rank, world=ctx.world, workers=max(1, cfg.num_workers),
                             batch_size=cfg.batch_size, seed=cfg.seed, shuffle=True, buffer=cfg.shuffle_buffer)
        self.step, self.pos, self.counters = resume_state(cfg.out, cfg.resume, model=model,
                                                          optimizer=self.optimizer, layout=self.layout, ctx=ctx)
        self.raw_model, self.model = model, self._wrap(model)
        # 4. the batch stream, starting where the checkpoint stopped
        self.stream = ShardStream(index, tok, self.layout, image_size=cfg.image_size, mask_prob=cfg.mask_prob,
                                  image_drop=cfg.image_drop if cfg.model.kind == "mm" else 0.0,
                                  crop_scale=cfg.crop_scale, trim_text=not cfg.compile, policy=policy)
        self.feeder = Feeder(self.stream, num_workers=cfg.num_workers, start=self.pos, max_len=cfg.max_text_len,
                             pin_memory=ctx.device.type == "cuda")
        self.total = cfg.steps or math.ceil(micro_batches_for(self.stream, cfg.epochs) / cfg.grad_accum)
        # 5. logs, cut back to the checkpoint's step on resume
        resume_step = self.step if resuming else None
        self.metrics = JsonlWriter(cfg.out / METRICS_NAME, resume_step=resume_step) if ctx.is_main else None
        self.samples = (JsonlWriter(cfg.out / f"samples-rank{ctx.rank}.jsonl", resume_step=resume_step)
                        if cfg.debug_samples else None)
        if ctx.is_main:
            log.info("%s: %s parameters, %d train rows, %d steps", cfg.preset, f"{count_params(model):,}",
                     index.rows, self.total)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.ctx.local_rank] if self.ctx.device.type == "cuda" else None
            model = DDP(model, device_ids=ids)
        return torch.compile(model) if self.cfg.compile else model

    def run(self) -> None:
        cfg = self.cfg
        bar = tqdm(total=self.total, initial=self.step, disable=not (self.ctx.is_main and cfg.progress),
                   unit="step", dynamic_ncols=True, desc=f"train {cfg.preset}")
        batches = iter(self.feeder)
        window = {"t": time.perf_counter(), "samples": 0, "sums": {}, "steps": 0}
        try:
            while self.step < self.total:
                self._step(batches, window)
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == self.total or self.step == 1:
                    bar.set_postfix(self._log(window))
                if self.step % cfg.ckpt_every == 0 or self.step == self.total:
                    self._checkpoint()
        finally:
            bar.close()
            batches.close()
            for w in (self.metrics, self.samples):
                if w is not None:
                    w.close()
        self._finish()

    def _step(self, batches, window: dict) -> None:
        """One optimizer step over ``grad_accum`` micro-batches; a padding batch runs with loss weight 0."""
        cfg, model = self.cfg, self.model
        set_lr(self.optimizer, lr_at(self.step, total=self.total, warmup=cfg.warmup, base=cfg.lr))
        for micro in range(cfg.grad_accum):
            pos, batch = next(batches)
            n = len(batch["keys"])
            weight = 0.0 if batch.get("padding") else n / cfg.batch_size
            last = micro == cfg.grad_accum - 1
            sync = nullcontext() if last or not self.ctx.distributed else unwrap_ddp(model).no_sync()
            with sync:
                with autocast(self.ctx.device, cfg.precision):
                    out = model(to_device(batch, self.ctx.device))
                (out["loss"] * (weight / cfg.grad_accum)).backward()
            for k, v in out.items():
                window["sums"][k] = window["sums"].get(k, 0.0) + v.detach().float() * n
            window["samples"] += n
            self.counters["samples"] += n
            self.counters["corrupt"] += len(batch["corrupt_keys"])
            if self.samples is not None:
                self.samples.write({"step": self.step + 1, "micro": micro, "rank": self.ctx.rank,
                                    "epoch": pos.epoch, "batch": pos.batch, "keys": batch["keys"]})
        window["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        window["steps"] += 1
        self.pos = pos

    def _log(self, window: dict) -> dict[str, str]:
        now = time.perf_counter()
        rate = window["samples"] * self.ctx.world / max(now - window["t"], 1e-9)
        n = max(window["samples"], 1)
        rec = {"step": self.step, "epoch": self.pos.epoch, "lr": self.optimizer.param_groups[0]["lr"],
               "samples_per_s": rate, "grad_norm": float(window["grad_norm"]),
               **{k: float(v) / n for k, v in window["sums"].items()}}
        if self.metrics is not None:
            self.metrics.write(rec)
        window.update(t=now, samples=0, sums={}, steps=0)
        return {"loss": f"{rec.get('loss', float('nan')):.3f}", "samples/s": f"{rate:.0f}"}

    def _global_counters(self) -> dict[str, float]:
        keys = sorted(self.counters)
        return dict(zip(keys, all_reduce_sum(self.ctx, [self.counters[k] for k in keys]), strict=True))

    def _checkpoint(self) -> None:
        counters = self._global_counters()  # collective: every rank calls this at the same steps
        if self.ctx.is_main:
            state = checkpoint_state(self.step, self.pos, self.optimizer, self.layout, counters)
            loader = {"epoch": self.pos.epoch, "batch": self.pos.batch,
                      "rank0_workers": self.stream.describe(self.pos.epoch, self.pos.batch)}
            path = save_checkpoint(self.cfg.out, self.step, unwrap(self.raw_model), state,
                                   {"preset": self.cfg.preset, "loader": loader}, keep_last=self.cfg.keep_last)
            if self.remote:
                runstore.push_checkpoint(path, self.remote)

    def _finish(self) -> None:
        counters = self._global_counters()
        if not self.ctx.is_main:
            return
        write_final_weights(self.cfg.out, self.raw_model)
        if self.cfg.plot:
            plot_metrics(self.cfg.out)
        atomic_write_json(self.cfg.out / "train_summary.json", {
            "preset": self.cfg.preset, "steps": self.step, "epoch": self.pos.epoch, "world_size": self.ctx.world,
            "samples_seen": int(counters["samples"]), "corrupt_rows_skipped": int(counters["corrupt"]),
            "parameters": count_params(self.raw_model)})


# --- set-up, in the order the Trainer uses it ---------------------------------------------------------------------


def _cpu_threads(cfg: TrainConfig, ctx: DistContext) -> None:
    """On CPU, leave a core to each loader worker: oversubscribed BLAS threads make every step slower.

    OMP_NUM_THREADS is respected when torch read it at import (set by the user or torchrun).  One set later did
    not reach torch and is not the user's: a Dask LocalCluster sets it to 1 in its own process (the flows clean,
    then train, in one process), which used to leave torch on all cores next to the loader workers.
    """
    if ctx.device.type != "cpu":
        return
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if wanted.isdigit() and int(wanted) == torch.get_num_threads():
        return
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, cores // ctx.world - cfg.num_workers))


def mask_policy(cfg: TrainConfig) -> MaskPolicy | None:
    """The run's MLM masking policy; None (uniform token masking) when it would mask like plain BERT."""
    if not cfg.mask_whole_words and (cfg.mask_focus_words is None or cfg.mask_focus_weight == 1.0):
        return None
    try:
        return MaskPolicy.from_config(prob=cfg.mask_prob, whole_words=cfg.mask_whole_words,
                                      focus_weight=cfg.mask_focus_weight, focus_words=cfg.mask_focus_words)
    except OSError as exc:
        raise ConfigError(f"mask_focus_words: cannot read {cfg.mask_focus_words} ({exc})") from exc


def _prepare_run_dir(cfg: TrainConfig, ctx: DistContext) -> None:
    run_dir = cfg.out
    if ctx.is_main:
        if cfg.resume is None and list_checkpoints(run_dir):
            raise ConfigError(f"{run_dir} already holds checkpoints of an earlier run; pass --resume latest to "
                              "continue it, or choose a new --out")
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.write_json(run_dir / "config.json")
    barrier(ctx)


def _prepare_tokenizer(cfg: TrainConfig, index: DatasetIndex, ctx: DistContext, *, resuming: bool):
    """Rank 0 trains the BPE on the training captions (or keeps the run's own when resuming); all ranks load it."""
    path = cfg.out / TOKENIZER_NAME
    if ctx.is_main and not (resuming and path.exists()):
        tok = train_tokenizer(read_captions(index, TOKENIZER_SAMPLE), vocab_size=cfg.vocab_size,
                              max_len=cfg.max_text_len)
        atomic_write_bytes(path, tok.to_str().encode())
        log.info("tokenizer: %d tokens trained on %s", tok.get_vocab_size(), index.root)
    barrier(ctx)
    return load_tokenizer(path, max_len=cfg.max_text_len)


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


# --- the loop's helpers -------------------------------------------------------------------------------------------


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


def unwrap_ddp(model: nn.Module) -> nn.Module:
    """The DDP wrapper (for no_sync), also when it sits under torch.compile."""
    return getattr(model, "_orig_mod", model)
