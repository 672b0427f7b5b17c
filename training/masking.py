"""Which caption tokens the image-conditioned MLM has to predict.

A ``MaskPolicy`` masks whole words (all BPE pieces of a word, so a piece never gives its sibling away).  By
default every word is as likely as any other: the objective knows no vocabulary, so it is the same on any
crawl.  A list of *focus words* (``TrainConfig.mask_focus_words``, a file; e.g. configs/mask_focus_words.visual.txt,
colours, counts, shapes and places in four languages) tilts the choice towards them by ``focus_weight``; the mask
rate stays ``prob`` of a caption's content tokens on average, the weight only moves masks from other words to focus
words.  BENCHMARKS.md ("Masking") has what each does on the demo and on the synthetic shapes.

Evaluation masks uniformly whatever the policy (``mask_folds``: every content token scored once), so the "does the
image help" numbers of runs trained with different policies stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.tokenizer import MASK, SPECIALS


@dataclass(frozen=True)
class MaskPolicy:
    prob: float
    whole_words: bool = True
    focus_weight: float = 1.0  # applies to focus_words only
    focus_words: frozenset[str] = frozenset()  # none: every word is as likely to be masked as any other

    @classmethod
    def from_config(cls, *, prob: float, whole_words: bool, focus_weight: float,
                    focus_words: str | Path | None) -> MaskPolicy:
        """``focus_words``: a UTF-8 file of words (whitespace separated, case-insensitive, ``#`` starts a comment
        line); None: no focus words (uniform whole-word masking)."""
        words = frozenset() if focus_words is None else read_words(focus_words)
        return cls(prob=prob, whole_words=whole_words, focus_weight=focus_weight, focus_words=words)


def read_words(path: str | Path) -> frozenset[str]:
    lines = Path(path).read_text(encoding="utf-8").lower().splitlines()
    return frozenset(w for line in lines if not line.lstrip().startswith("#") for w in line.split())


def word_layout(encodings, captions: list[str], policy: MaskPolicy, width: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (word index [B, L], -1 outside words; weight [B, L]) from the tokenizer's word ids and offsets."""
    words = np.full((len(captions), width), -1, dtype=np.int64)
    weights = np.ones((len(captions), width), dtype=np.float64)
    for row, (enc, caption) in enumerate(zip(encodings, captions, strict=True)):
        focus: dict[int, bool] = {}
        for t, w in enumerate(enc.word_ids[:width]):
            if w is None:
                continue
            words[row, t] = w if policy.whole_words else t
            if w not in focus:
                start, end = enc.word_to_chars(w)
                focus[w] = caption[start:end].lower() in policy.focus_words
            if focus[w]:
                weights[row, t] = policy.focus_weight
    return words, weights


def mask_words(ids: np.ndarray, valid: np.ndarray, rng: np.random.Generator, *, words: np.ndarray,
               weights: np.ndarray, prob: float, vocab_size: int, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weighted whole-word masking -> (input ids, labels with -100 where not predicted).

    A word of weight w is masked with probability ``min(1, prob * w * T / sum of the T content tokens' weights)``,
    so a caption keeps about ``prob * T`` masks.  At least one word per caption is masked (drawn by weight).
    Replacement as BERT in training (80% [MASK], 10% random, 10% kept, per token); all [MASK] in evaluation.
    """
    content = valid & (ids >= len(SPECIALS)) & (words >= 0)
    w = np.where(content, weights, 0.0)
    scale = prob * content.sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
    p_tok = np.minimum(1.0, w * scale[:, None])
    draw = rng.random((len(ids), int(words.max(initial=0)) + 1))
    chosen = content & (np.take_along_axis(draw, np.maximum(words, 0), axis=1) < p_tok)
    for row in np.flatnonzero(~chosen.any(axis=1) & content.any(axis=1)):
        cand = np.flatnonzero(content[row])
        pick = rng.choice(cand, p=w[row, cand] / w[row, cand].sum())
        chosen[row] = content[row] & (words[row] == words[row, pick])
    return _replace(ids, chosen, rng, vocab_size=vocab_size, train=train)


def mask_tokens(ids: np.ndarray, valid: np.ndarray, rng: np.random.Generator, *, prob: float, vocab_size: int,
                train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Uniform BERT masking of single tokens -> (input ids, labels); at least one content token per caption."""
    content = valid & (ids >= len(SPECIALS))
    chosen = (rng.random(ids.shape) < prob) & content
    for row in np.flatnonzero(~chosen.any(axis=1) & content.any(axis=1)):
        chosen[row, rng.choice(np.flatnonzero(content[row]))] = True
    return _replace(ids, chosen, rng, vocab_size=vocab_size, train=train)


def _replace(ids: np.ndarray, chosen: np.ndarray, rng: np.random.Generator, *, vocab_size: int,
             train: bool) -> tuple[np.ndarray, np.ndarray]:
    labels = np.where(chosen, ids, -100)
    inputs = ids.copy()
    if train:
        r = rng.random(ids.shape)
        inputs[chosen & (r < 0.8)] = MASK
        rand = chosen & (r >= 0.8) & (r < 0.9)
        inputs[rand] = rng.integers(len(SPECIALS), vocab_size, size=int(rand.sum()))
    else:
        inputs[chosen] = MASK
    return inputs, labels


def mask_folds(ids: np.ndarray, valid: np.ndarray, rng: np.random.Generator, *,
               prob: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Evaluation masks: each caption's content tokens split at random into ``round(1 / prob)`` folds, one masked
    pass per fold, so every token is scored exactly once at about the training mask rate.  One random draw of
    masks instead would make a small val set's MLM numbers swing with the draw (by +-0.01 in accuracy)."""
    k = max(1, round(1 / prob))
    content = valid & (ids >= len(SPECIALS))
    order = np.argsort(np.where(content, rng.random(ids.shape), 2.0), axis=1)  # content tokens first, shuffled
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(ids.shape[1])[None, :].repeat(len(ids), axis=0), axis=1)
    fold = (rank + rng.integers(0, k, size=(len(ids), 1))) % k  # a random start: short captions fill any fold
    return [_replace(ids, content & (fold == f), rng, vocab_size=0, train=False) for f in range(k)]
