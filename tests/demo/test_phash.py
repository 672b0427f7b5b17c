"""The demo's pHash follows the shared definition (imagehash.phash), checked against a literal implementation."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from crawlers.demo.phash import hamming, phash_bytes, phash_image


def _literal_phash(image: Image.Image) -> int:
    """scipy.fftpack.dct(scipy.fftpack.dct(x, axis=0), axis=1) written out as sums, 8x8 block only."""
    x = np.asarray(image.convert("RGB").convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    n = 32
    cols = np.array([[2 * sum(x[i, j] * math.cos(math.pi * k * (2 * i + 1) / (2 * n)) for i in range(n))
                      for j in range(n)] for k in range(8)])  # DCT along axis 0, rows 0..7
    block = np.array([[2 * sum(cols[k, j] * math.cos(math.pi * m * (2 * j + 1) / (2 * n)) for j in range(n))
                       for m in range(8)] for k in range(8)])
    bits = "".join("1" if v > np.median(block) else "0" for v in block.flatten())
    return int(bits, 2)


def test_matches_literal_definition(site):
    rows = [t for t in site.truth if t.width][:4]
    for t in rows:
        body = site.response(t.image_url)[2]
        with Image.open(io.BytesIO(body)) as im:
            im.load()
            assert phash_image(im) == _literal_phash(im) == phash_bytes(body)


def test_first_coefficient_is_the_most_significant_bit():
    image = Image.new("L", (64, 64), 0)
    image.paste(255, (0, 0, 64, 32))  # bright top half: DC and the first vertical coefficient are the largest
    h = phash_image(image)
    assert h >> 63 == 1 and h < (1 << 64)
    assert hamming(h, h ^ 0b1011) == 3
