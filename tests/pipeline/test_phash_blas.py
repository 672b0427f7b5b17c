"""The BLAS pHash thumbnail against Pillow's own LANCZOS resize: equal bit for bit, whatever the size or content."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.phash import _exact_taps, _vector_taps, phash, thumbnail32


def _contents(rng: np.random.Generator, height: int, width: int) -> list[np.ndarray]:
    """Noise, hard black/white edges (sums near the clamps), a smooth walk (sums near rounding steps), flat."""
    walk = np.cumsum(rng.normal(0, 6, (height, width)), axis=1) + 128
    return [rng.integers(0, 256, (height, width), dtype=np.uint8),
            (rng.random((height, width)) > 0.5).astype(np.uint8) * 255,
            np.clip(walk, 0, 255).astype(np.uint8),
            np.full((height, width), int(rng.integers(0, 256)), np.uint8)]


def _sizes(rng: np.random.Generator) -> list[tuple[int, int]]:
    edge = [(w, h) for w in (1, 5, 31, 32, 33, 100) for h in (1, 31, 32, 33, 500)]  # Pillow skips or upsamples
    tall = [(int(rng.integers(20, 300)), int(rng.integers(300, 3000))) for _ in range(12)]  # columns-first pass
    wide = [(int(rng.integers(300, 3000)), int(rng.integers(20, 300))) for _ in range(6)]
    photos = [(1024, 768), (768, 1024), (800, 533), (1600, 1067), (4000, 3000), (99, 232), (232, 99)]
    return edge + tall + wide + photos + [(int(rng.integers(2, 2500)), int(rng.integers(2, 2500))) for _ in range(30)]


def test_thumbnail_equals_pillow_resize_bit_for_bit() -> None:
    rng = np.random.default_rng(20261129)
    checked = 0
    for width, height in _sizes(rng):
        for pixels in _contents(rng, height, width):
            gray = Image.fromarray(pixels, "L")
            expected = np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
            got = thumbnail32(gray)
            assert got.shape == (32, 32)
            assert np.array_equal(got, expected), (width, height, int(np.abs(got - expected).max()))
            checked += 1
    assert checked > 300


def test_tall_pictures_shrink_columns_first_like_pillow() -> None:
    """Pillow 13 runs the vertical pass first when the height shrinks more than twice as much as the width; the
    8-bit rounding between passes makes the order visible, so the other order must give a different answer."""
    rng = np.random.default_rng(7)
    gray = Image.fromarray(rng.integers(0, 256, (746, 142), dtype=np.uint8), "L")
    rows_first = gray.resize((32, 746), Image.Resampling.LANCZOS).resize((32, 32), Image.Resampling.LANCZOS)
    assert not np.array_equal(np.asarray(rows_first), np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS)))
    assert np.array_equal(thumbnail32(gray), np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS)))


def test_vectorised_weights_equal_the_scalar_c_order_weights() -> None:
    """numpy's sin may differ from the C library's in the last bit; the fast weights must still round to the same
    integers, or say they can't (None) and let the scalar version decide."""
    compared = 0
    for n_in in [*range(2, 400, 3), *range(400, 9000, 97)]:
        fast = _vector_taps(n_in, 32)
        if fast is None:
            continue
        starts, counts, fixed = _exact_taps(n_in, 32)
        assert np.array_equal(fast[0], starts) and np.array_equal(fast[1], counts), n_in
        assert np.array_equal(fast[2][:, :fixed.shape[1]], fixed), n_in
        compared += 1
    assert compared > 150


@pytest.mark.parametrize("size", [(1024, 683), (300, 900), (640, 640)])
def test_phash_equals_the_pillow_definition(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(size[0])
    walk = np.cumsum(rng.normal(0, 9, (size[1], size[0], 3)), axis=1) + 128
    img = Image.fromarray(np.clip(walk, 0, 255).astype(np.uint8), "RGB")
    px = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    n = np.arange(32)
    dct = 2.0 * np.cos(np.pi * np.arange(8)[:, None] * (2 * n[None, :] + 1) / 64)
    low = np.round(dct @ px @ dct.T, 6).ravel()
    expected = int("".join("1" if b else "0" for b in low > np.median(low)), 2)
    assert phash(img) == expected
