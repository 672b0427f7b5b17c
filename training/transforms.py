"""JPEG decode and augmentation, run inside DataLoader workers.

Every random choice comes from a generator passed in by the caller (seeded per batch), so a resumed run decodes
the same crops and flips as an uninterrupted one.  A row whose bytes do not decode returns ``None``: it is
counted and skipped by the loader, never fatal.
"""

from __future__ import annotations

import io
import math
import re
import warnings

import numpy as np
from PIL import Image

# A flip would make "on the left" false; captions that mention a side are never flipped.
_SIDED = re.compile(r"\b(left|right|leftmost|rightmost|left-hand|right-hand)\b", re.IGNORECASE)
MAX_PIXELS = 64_000_000  # decompression-bomb guard, well above any image the clean stage keeps
IMAGE_MEAN, IMAGE_STD = 0.45, 0.27  # the models see (pixel / 255 - IMAGE_MEAN) / IMAGE_STD


def mentions_side(caption: str) -> bool:
    return bool(_SIDED.search(caption))


def decode(data: bytes, *, min_side: int) -> Image.Image | None:
    """Decode to RGB; JPEG draft mode decodes at the smallest power-of-two scale that still covers min_side."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > MAX_PIXELS:
                return None
            if img.format == "JPEG":
                img.draft("RGB", (min_side, min_side))
            img = img.convert("RGB")
            img.load()
        return img
    except Exception:  # noqa: BLE001 - Pillow raises many types (OSError, SyntaxError, ValueError...) on bad bytes
        return None


def random_resized_crop(img: Image.Image, size: int, rng: np.random.Generator, *,
                        scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Image.Image:
    """Inception-style crop (as torchvision's RandomResizedCrop), resized straight to size x size."""
    w, h = img.size
    area = w * h
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_r))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return img.resize((size, size), Image.BILINEAR, box=(x, y, x + cw, y + ch))
    return center_crop(img, size)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    side = min(w, h)
    x, y = (w - side) // 2, (h - side) // 2
    return img.resize((size, size), Image.BILINEAR, box=(x, y, x + side, y + side))


def prepare(data: bytes, caption: str, *, size: int, rng: np.random.Generator | None,
            scale: tuple[float, float] = (0.6, 1.0)) -> np.ndarray | None:
    """bytes -> HWC uint8 array (augmented when rng is given), or None when the bytes are not an image."""
    img = decode(data, min_side=2 * size if rng is not None else size)
    if img is None:
        return None
    if rng is None:
        img = center_crop(img, size)
    else:
        img = random_resized_crop(img, size, rng, scale=scale)
        if rng.random() < 0.5 and not mentions_side(caption):
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(img, dtype=np.uint8)
