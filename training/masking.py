"""Which caption tokens the image-conditioned MLM has to predict.

Uniform BERT masking spends most predictions on words no picture can tell apart ("officials said", "on a ...
background"): a small model then learns the text prior and leaves its cross-attention unused.  A ``MaskPolicy``
masks whole words (all BPE pieces of a word, so a piece never gives its sibling away) and tilts the choice towards
*focus words*, by default a generic vocabulary of what pictures show: colours, small counts, simple shapes and
places in the frame, in the caption languages the pipeline keeps (en, fr, de, es).  The mask rate stays ``prob``
of a caption's content tokens on average; ``focus_weight`` only moves masks from other words to focus words.

Evaluation masks uniformly whatever the policy (``mask_folds``: every content token scored once), so the "does the
image help" numbers of runs trained with different policies stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.tokenizer import MASK, SPECIALS

_EN = """
red green blue yellow orange purple violet pink brown black white grey gray gold silver beige cyan magenta teal
navy turquoise maroon
one two three four five six seven eight nine ten single pair couple dozen several many
circle circles square squares triangle triangles star stars hexagon hexagons diamond diamonds rectangle rectangles
oval ovals heart hearts cross crosses dot dots line lines stripe stripes round striped
left right top bottom above below under over beneath behind front centre center middle corner corners side
upper lower near beside between inside outside
"""
_FR = """
rouge rouges vert verte verts vertes bleu bleue bleus bleues jaune jaunes noir noire noirs noires blanc blanche
blancs blanches gris grise grises orange violet violette violets violettes rose roses marron
un une deux trois quatre cinq six
cercle cercles carré carrés triangle triangles étoile étoiles hexagone hexagones losange losanges
gauche droite haut bas centre dessus dessous
"""
_DE = """
rot rote roter rotes roten blau blaue blauer blaues blauen grün grüne grüner grünes grünen gelb gelbe gelber gelbes
gelben schwarz schwarze schwarzer schwarzes schwarzen weiß weiße weißer weißes weißen grau graue grauer graues grauen
orange orangen orangene violett violette violetter violettes violetten pink braun braune brauner braunes braunen
ein eine einer einem zwei drei vier fünf
kreis kreise kreisen quadrat quadrate quadraten dreieck dreiecke dreiecken stern sterne sternen sechseck sechsecke
sechsecken raute rauten
links rechts oben unten mitte über unter
"""
_ES = """
rojo roja rojos rojas azul azules verde verdes amarillo amarilla amarillos amarillas negro negra negros negras
blanco blanca blancos blancas gris grises naranja naranjas morado morada morados moradas rosa rosas marrón marrones
uno una dos tres cuatro cinco
círculo círculos cuadrado cuadrados triángulo triángulos estrella estrellas hexágono hexágonos rombo rombos
izquierda derecha arriba abajo centro encima debajo
"""
VISUAL_WORDS = frozenset(" ".join((_EN, _FR, _DE, _ES)).split())


@dataclass(frozen=True)
class MaskPolicy:
    prob: float
    whole_words: bool = True
    focus_weight: float = 1.0  # 1.0: every word is as likely to be masked as any other
    focus_words: frozenset[str] = VISUAL_WORDS

    @classmethod
    def from_config(cls, *, prob: float, whole_words: bool, focus_weight: float,
                    focus_words: str | Path | None) -> MaskPolicy:
        """``focus_words``: a UTF-8 file of words (whitespace separated, case-insensitive); None: VISUAL_WORDS."""
        words = VISUAL_WORDS if focus_words is None else frozenset(Path(focus_words).read_text().lower().split())
        return cls(prob=prob, whole_words=whole_words, focus_weight=focus_weight, focus_words=words)


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
