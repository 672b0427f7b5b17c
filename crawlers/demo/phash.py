"""The shared 64-bit perceptual hash, implemented with numpy so the demo site can check its own pictures.

It follows imagehash.phash exactly (the definition in the project brief): full decode without draft(), EXIF
transpose, RGB then "L", 32x32 LANCZOS, 2-D DCT-II along rows then columns, top-left 8x8, bits = coefficient >
median, row-major with the first coefficient as the most significant bit.  The clean stage implements the same
definition, so the distances the demo plants are the distances the clean stage measures.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps


@lru_cache(maxsize=4)
def _dct_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II basis, as scipy.fftpack.dct(type=2, norm=None): y_k = 2 * sum x_i cos(pi k (2i+1) / 2n)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def phash_image(image: Image.Image) -> int:
    image = ImageOps.exif_transpose(image)
    gray = image.convert("RGB").convert("L").resize((32, 32), Image.LANCZOS)
    pixels = np.asarray(gray, dtype=np.float64)
    m = _dct_matrix(32)
    # imagehash: dct(dct(pixels, axis=0), axis=1); both axes are linear, so the order does not change the result.
    coeffs = m @ pixels @ m.T
    low = coeffs[:8, :8]
    bits = (low > np.median(low)).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def phash_bytes(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return phash_image(image)


def hamming(a: int, b: int) -> int:
    return (int(a) ^ int(b)).bit_count()
