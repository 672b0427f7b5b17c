"""Metric arithmetic for evaluation: retrieval recall and a bootstrap confidence interval for paired differences.

Retrieval ground truth: a caption is correct for an image when its text equals the image's own caption (after
whitespace/case normalisation).  With unique captions this is standard Recall@K; with duplicated captions (common
in synthetic and templated web data) it does not punish a model for ranking an identical twin first.
"""

from __future__ import annotations

import numpy as np


def _groups(captions: list[str]) -> np.ndarray:
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(" ".join(c.lower().split()), len(ids)) for c in captions])


def recall_at(sim: np.ndarray, correct: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    top = np.argsort(-sim, axis=1, kind="stable")[:, : max(ks)]
    hits = np.take_along_axis(correct, top, axis=1)
    return {f"R@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}


def retrieval(img: np.ndarray, txt: np.ndarray, captions: list[str], ks: tuple[int, ...] = (1, 5, 10)) -> dict:
    """img, txt: L2-normalised [N, D] embeddings of the same N pairs."""
    g = _groups(captions)
    correct = g[:, None] == g[None, :]
    sim = img.astype(np.float64) @ txt.astype(np.float64).T
    i2t, t2i = recall_at(sim, correct, ks), recall_at(sim.T, correct.T, ks)
    chance = float((correct.sum(axis=1) / len(g)).mean())
    return {"image_to_text": i2t, "text_to_image": t2i, "mean_R@1": (i2t["R@1"] + t2i["R@1"]) / 2,
            "chance_R@1": chance, "n": int(len(g)), "distinct_captions": int(g.max() + 1) if len(g) else 0}


def ratio_bootstrap(num: np.ndarray, den: np.ndarray, *, n_boot: int, seed: int) -> dict:
    """sum(num) / sum(den) with a 95% percentile bootstrap CI, resampling samples (rows) with replacement."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    stat = float(num.sum() / max(den.sum(), 1e-12))
    if len(num) < 2 or n_boot <= 0:
        return {"mean": stat, "ci95": [stat, stat], "n": int(len(num))}
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for start in range(0, n_boot, 200):  # chunked: bounded memory for large val sets
        idx = rng.integers(0, len(num), size=(min(200, n_boot - start), len(num)))
        stats[start:start + len(idx)] = num[idx].sum(axis=1) / np.maximum(den[idx].sum(axis=1), 1e-12)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return {"mean": stat, "ci95": [float(lo), float(hi)], "n": int(len(num))}


def mlm_summary(per: dict[str, dict[str, np.ndarray]], *, loss_name: str, n_boot: int, seed: int) -> dict:
    """per[condition] = {loss_sum, loss_weight, correct, count} per sample -> aggregate numbers and paired gaps.

    Gaps are oriented so that positive means "the image helps": loss(other) - loss(matched) and
    accuracy(matched) - accuracy(other).
    """
    out: dict = {"loss": loss_name, "masked_tokens": int(per["matched"]["count"].sum())}
    for cond, d in per.items():
        out[cond] = {"accuracy": float(d["correct"].sum() / max(d["count"].sum(), 1)),
                     loss_name: float(d["loss_sum"].sum() / max(d["loss_weight"].sum(), 1e-12))}
    m = per["matched"]
    for other in ("mismatched", "none"):
        o = per[other]
        out[f"gap_matched_vs_{other}"] = {
            loss_name: ratio_bootstrap(o["loss_sum"] - m["loss_sum"], m["loss_weight"], n_boot=n_boot, seed=seed),
            "accuracy": ratio_bootstrap(m["correct"] - o["correct"], m["count"], n_boot=n_boot, seed=seed + 1)}
    return out
