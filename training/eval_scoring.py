"""Per-batch scoring for evaluation: embeddings for retrieval, and masked-token scores under three conditions.

Conditions: the matched image, a mismatched image (the batch's images rolled by one: a derangement, so no caption
keeps its own image) and no image (cross-attention gated off for the main model, the image term dropped for the
seed baseline).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training.model import MMModel
from training.tokenizer import SPECIALS

CONDITIONS = ("matched", "mismatched", "none")


def _contexts(n: int, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    perm = torch.roll(torch.arange(n, device=device), 1)
    ident = torch.arange(n, device=device)
    ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)
    return {"matched": (ident, ones), "mismatched": (perm, ones), "none": (ident, zeros)}


@torch.no_grad()
def score_batch(model: torch.nn.Module, batch: dict) -> tuple[np.ndarray, np.ndarray, dict[str, dict]]:
    """-> (image embeddings, text embeddings, {condition: per-sample loss_sum/loss_weight/correct/count})."""
    if isinstance(model, MMModel):
        return _score_mm(model, batch)
    return _score_seed(model, batch)


def _score_mm(model: MMModel, b: dict):
    tokens = model.image_tokens(b["image"])
    img = model.embed_image(None, tokens)
    txt = model.embed_text(b["ids"], b["valid"])
    mask = b["labels"] != -100
    per = {}
    for cond, (idx, gate) in _contexts(len(tokens), tokens.device).items():
        logits = model.mlm_logits(b["mlm_ids"], b["valid"], tokens[idx], gate).float()
        ce = F.cross_entropy(logits.flatten(0, 1), b["labels"].flatten(), ignore_index=-100, reduction="none")
        ce = ce.view_as(b["labels"]) * mask
        correct = (logits.argmax(-1) == b["labels"]) & mask
        per[cond] = {"loss_sum": ce.sum(1), "loss_weight": mask.sum(1).float(), "correct": correct.sum(1).float(),
                     "count": mask.sum(1).float()}
    return _np(img), _np(txt), {c: {k: _np(v) for k, v in d.items()} for c, d in per.items()}


def _score_seed(model, b: dict):
    image_emb = model.image_enc(model.image_features(b["image"]))
    img = F.normalize(image_emb, dim=-1)
    txt = model.embed_text(b["ids"], b["valid"])
    target = model.text_features(b["ids"], b["valid"])
    mask = b["labels"] != -100
    per = {}
    for cond, (idx, gate) in _contexts(len(img), img.device).items():
        recon, visible = model.reconstruct(b["ids"], b["valid"], b["labels"], image_emb[idx], gate)
        mse = ((recon.float() - target) ** 2).mean(1)
        per[cond] = {"loss_sum": _np(mse), "loss_weight": np.ones(len(mse)),
                     "correct": _seed_hits(recon - visible, b["labels"], mask), "count": _np(mask.sum(1).float())}
    return _np(img), _np(txt), per


def _seed_hits(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Masked tokens found among the top-m vocabulary entries (m = masked count), multiset-matched."""
    scores = scores.float().clone()
    scores[:, : len(SPECIALS)] = -torch.inf
    hits = np.zeros(len(scores))
    for i in range(len(scores)):
        want = labels[i][mask[i]].tolist()
        top = scores[i].topk(len(want)).indices.tolist() if want else []
        pool = list(want)
        for t in top:
            if t in pool:
                pool.remove(t)
                hits[i] += 1
    return hits


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()
