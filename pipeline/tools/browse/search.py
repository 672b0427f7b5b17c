"""Text-to-image search and "more like this" over a model's embeddings, handed in by the caller.

The browser is a pipeline tool and never imports training: `flows` builds the text encoder from a training run and
reads (or computes) the image embeddings that `mmpipe score` writes, and passes them here as a callable and an
array.  Embeddings are L2-normalised, so a matrix product gives the cosines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageSearch:
    keys: Sequence[str]
    embeddings: np.ndarray  # (n, d) image embeddings, one row per key
    encode_text: Callable[[str], np.ndarray]  # phrase -> (d,) text embedding in the same space
    model: str = ""  # what to call the model on the page (e.g. the run's name and step)
    _row: dict[str, int] = field(init=False, repr=False)
    _keys: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        emb = np.asarray(self.embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(self.keys):
            raise ValueError(f"image embeddings of shape {emb.shape} do not match {len(self.keys)} keys")
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        self.embeddings = emb / np.where(norms > 0, norms, 1)
        self._row = {k: i for i, k in enumerate(self.keys)}
        self._keys = np.asarray(self.keys, dtype=str)

    def _top(self, vector: np.ndarray, k: int, *, skip: str | None = None) -> list[tuple[str, float]]:
        v = np.asarray(vector, dtype=np.float32).ravel()
        v = v / (np.linalg.norm(v) or 1)
        cos = self.embeddings @ v
        order = np.lexsort((self._keys, -cos))  # ties by key: the same answer every time
        return [(self.keys[i], float(cos[i])) for i in order if self.keys[i] != skip][:k]

    def text(self, phrase: str, k: int = 24) -> list[tuple[str, float]]:
        """The ``k`` images whose embedding is closest to the phrase's (cosine, best first)."""
        return self._top(self.encode_text(phrase), k)

    def similar(self, key: str, k: int = 24) -> list[tuple[str, float]]:
        """The ``k`` images closest to this one (itself left out); empty when the image has no embedding."""
        if key not in self._row:
            return []
        return self._top(self.embeddings[self._row[key]], k, skip=key)
