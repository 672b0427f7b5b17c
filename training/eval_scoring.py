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
def score_batch(model: torch.nn.Module, batch: dict, folds: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                ) -> tuple[np.ndarray, np.ndarray, dict[str, dict]]:
    """-> (image embeddings, text embeddings, {condition: per-sample loss_sum/loss_weight/correct/count}).

    ``folds``: (masked ids, labels) pairs scored in turn and summed per sample; default the batch's own masks.
    """
    folds = folds or [(batch["mlm_ids"], batch["labels"])]
    score = _score_mm if isinstance(model, MMModel) else _score_seed
    img, txt, per = score(model, batch)
    totals: dict[str, dict[str, np.ndarray]] = {}
    for mlm_ids, labels in folds:
        for cond, d in per(mlm_ids, labels).items():
            for k, v in d.items():
                totals.setdefault(cond, {})[k] = totals.get(cond, {}).get(k, 0) + _np(v)
    return img, txt, totals


def _score_mm(model: MMModel, b: dict):
    tokens = model.image_tokens(b["image"])
    img = model.embed_image(None, tokens)
    txt = model.embed_text(b["ids"], b["valid"])
    contexts = _contexts(len(tokens), tokens.device)

    def per(mlm_ids: torch.Tensor, labels: torch.Tensor) -> dict[str, dict]:
        mask = labels != -100
        out = {}
        for cond, (idx, gate) in contexts.items():
            logits = model.mlm_logits(mlm_ids, b["valid"], tokens[idx], gate).float()
            ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none")
            correct = (logits.argmax(-1) == labels) & mask
            out[cond] = {"loss_sum": (ce.view_as(labels) * mask).sum(1), "loss_weight": mask.sum(1).float(),
                         "correct": correct.sum(1).float(), "count": mask.sum(1).float()}
        return out

    return _np(img), _np(txt), per


def _score_seed(model, b: dict):
    image_emb = model.image_enc(model.image_features(b["image"]))
    img = F.normalize(image_emb, dim=-1)
    txt = model.embed_text(b["ids"], b["valid"])
    target = model.text_features(b["ids"], b["valid"])
    contexts = _contexts(len(img), img.device)

    def per(_mlm_ids: torch.Tensor, labels: torch.Tensor) -> dict[str, dict]:
        mask = labels != -100
        out = {}
        for cond, (idx, gate) in contexts.items():
            recon, visible = model.reconstruct(b["ids"], b["valid"], labels, image_emb[idx], gate)
            mse = ((recon.float() - target) ** 2).mean(1)
            out[cond] = {"loss_sum": mse, "loss_weight": torch.ones_like(mse),
                         "correct": _seed_hits(recon - visible, labels, mask),
                         "count": mask.sum(1).float()}
        return out

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


def _np(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)
