"""The evaluation entry function: ``evaluate(EvalConfig) -> path of eval.json``.

On the val split: image->text and text->image Recall@1/5/10, and "does the image help?": masked-token accuracy and
loss with the matched image, a mismatched image and no image, with bootstrap CIs for the differences.  Every content
token of a val caption is scored once (uniform masks in ``round(1 / mask_prob)`` folds, see masking.mask_folds),
whatever masking policy the run was trained with, so runs stay comparable.  With ``baseline`` the `seed` baseline
run (``<run>/baseline``, made by ``training.train.train_baseline``) is scored the same way, and eval.json gets a
side-by-side comparison.  Evaluation never trains: a missing baseline is an error that says how to make it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from data_schemas import atomic_write_json
from training.checkpoint import load_weights, run_weights
from training.config import BASELINE_DIR, EvalConfig, TrainConfig
from training.data import open_split
from training.distributed import autocast, pick_device, to_device
from training.eval_metrics import mlm_summary, retrieval
from training.eval_scoring import CONDITIONS, score_batch
from training.masking import mask_folds
from training.model import build_model, count_params
from training.stream import Layout, ShardStream
from training.tokenizer import load_tokenizer

log = logging.getLogger("mmpipe.eval")
EVAL_NAME = "eval.json"
EVAL_MASK_TAG = 7004  # keeps the evaluation masks' random stream apart from the training streams (stream.py)


def evaluate(config: EvalConfig) -> Path:
    run = Path(config.run)
    result: dict[str, Any] = {"run": str(run), "model": evaluate_run(run, config)}
    if config.baseline or config.baseline_run:
        base = Path(config.baseline_run) if config.baseline_run else run / BASELINE_DIR
        if not (base / "model.safetensors").exists():
            raise FileNotFoundError(f"{base}: no trained seed baseline there; `mmpipe eval --run {run} --baseline` "
                                    "trains it first (training.train.train_baseline)")
        result["baseline"] = evaluate_run(base, config)
        result["comparison"] = compare(result["model"], result["baseline"])
    return atomic_write_json(run / EVAL_NAME, result)


def load_run_model(run: Path, device: torch.device) -> tuple[torch.nn.Module, TrainConfig, Any]:
    if not (run / "config.json").exists():
        raise FileNotFoundError(f"{run}: not a training run (no config.json); pass the --out of `mmpipe train`")
    cfg = TrainConfig.read_json(run / "config.json").resolved()
    tok = load_tokenizer(run, max_len=cfg.max_text_len)
    model = build_model(cfg.model, vocab=tok.get_vocab_size(), image_size=cfg.image_size, max_len=cfg.max_text_len)
    weights, _step = run_weights(run)
    load_weights(weights, model, device=device)
    return model.to(device).eval(), cfg, tok


def evaluate_run(run: Path, config: EvalConfig) -> dict[str, Any]:
    device = pick_device(config.device)
    model, cfg, tok = load_run_model(run, device)
    index = open_split(config.data or cfg.data, "val")
    layout = Layout(workers=max(1, config.num_workers), batch_size=config.batch_size, seed=config.seed,
                    shuffle=False)
    stream = ShardStream(index, tok, layout, image_size=cfg.image_size, mask_prob=cfg.mask_prob, train=False,
                         max_epochs=1)
    loader = DataLoader(stream, batch_size=None, num_workers=config.num_workers)
    imgs, txts, caps, corrupt = [], [], [], 0
    per: dict[str, dict[str, list]] = {c: {} for c in CONDITIONS}
    for n_batch, batch in enumerate(loader):
        if batch.get("placeholder"):
            continue
        corrupt += len(batch["corrupt_keys"])
        if len(batch["keys"]) < 2:  # a mismatched image needs a second sample
            continue
        folds = [tuple(torch.from_numpy(a).to(device) for a in fold) for fold in mask_folds(
            batch["ids"].numpy(), batch["valid"].numpy(),
            np.random.default_rng([config.seed, n_batch, EVAL_MASK_TAG]), prob=cfg.mask_prob)]
        with autocast(device, cfg.precision):
            img, txt, scores = score_batch(model, to_device(batch, device), folds)
        imgs.append(img)
        txts.append(txt)
        caps.extend(batch["captions"])
        for cond, d in scores.items():
            for k, v in d.items():
                per[cond].setdefault(k, []).append(v)
        if len(caps) >= config.max_samples:
            break
    if not caps:
        raise ValueError(f"{index.root}: the val split has no decodable pairs to evaluate")
    n = min(len(caps), config.max_samples)
    per_np = {c: {k: np.concatenate(v) for k, v in d.items()} for c, d in per.items()}
    loss_name = "cross_entropy" if cfg.model.kind == "mm" else "mse"
    return {"preset": cfg.preset, "parameters": count_params(model), "val_samples": n, "corrupt_rows_skipped": corrupt,
            "retrieval": retrieval(np.concatenate(imgs)[:n], np.concatenate(txts)[:n], caps[:n]),
            "mlm": mlm_summary(per_np, loss_name=loss_name, n_boot=config.bootstrap, seed=config.seed)}


def compare(model: dict, baseline: dict) -> dict[str, Any]:
    r_m, r_b = model["retrieval"], baseline["retrieval"]
    acc_gap = "gap_matched_vs_mismatched"
    return {"mean_R@1": {"model": r_m["mean_R@1"], "baseline": r_b["mean_R@1"],
                         "delta": r_m["mean_R@1"] - r_b["mean_R@1"]},
            "masked_accuracy_matched": {"model": model["mlm"]["matched"]["accuracy"],
                                        "baseline": baseline["mlm"]["matched"]["accuracy"]},
            "accuracy_gap_matched_vs_mismatched": {"model": model["mlm"][acc_gap]["accuracy"]["mean"],
                                                   "baseline": baseline["mlm"][acc_gap]["accuracy"]["mean"]}}
