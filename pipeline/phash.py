"""The 64-bit perceptual hash, bit-exact with imagehash.phash but about twice as fast on large images.

imagehash.phash shrinks the whole decoded picture to 32x32 with Pillow's LANCZOS.  Pillow does that in two passes:
a horizontal pass over every full-resolution row (about 190 taps per output pixel for a 1000-px photo, in plain C),
rounded to 8 bits, then a vertical pass over the 32-column result.  The horizontal pass was the largest single
cost of the clean stage after the JPEG decode.  `thumbnail32` computes both passes as BLAS matrix products instead,
with Pillow's own fixed-point weights; every partial sum is an integer below 2**53, so float64 arithmetic is exact
whatever order BLAS adds in, and the 8-bit result equals Pillow's bit for bit.  Tests compare it with Pillow on
random images of many sizes and shapes.

The coefficients follow Pillow's ``precompute_coeffs`` and ``normalize_coeffs_8bpc`` (src/libImaging/Resample.c)
operation for operation, with the same double-precision steps, a sequential sum and C's truncating casts.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

_OUT = 32  # the hash works on a 32x32 thumbnail
_PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit images
_LANCZOS_SUPPORT = 3.0
_SLAB = 64  # picture lines converted to float64 at a time
_GROUP = 8  # output columns per matrix product: fewer wasted zero taps than one dense product, still BLAS-sized


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


def _exact_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's LANCZOS weights one double at a time, with math.sin (the C library's sin, which Pillow calls)."""
    scale = float(n_in) / n_out  # Pillow: (double)(in1 - in0) / outSize, with in0 = 0
    filterscale = max(scale, 1.0)
    support, ss, one = _LANCZOS_SUPPORT * filterscale, 1.0 / filterscale, float(1 << _PRECISION_BITS)
    starts, counts, rows = [], [], []
    for xx in range(n_out):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in) - xmin
        weights = [_lanczos((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for w in weights:  # sequential, as in C: a pairwise sum could differ in the last bit
            ww += w
        if ww != 0.0:
            weights = [w / ww for w in weights]
        rows.append([int(-0.5 + w * one) if w < 0 else int(0.5 + w * one) for w in weights])  # C truncation
        starts.append(xmin)
        counts.append(xmax)
    fixed = np.zeros((n_out, max(counts)))
    for j, row in enumerate(rows):
        fixed[j, :len(row)] = row
    return np.asarray(starts), np.asarray(counts), fixed


def _vector_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The same weights computed with numpy in ~0.7 ms instead of ~6 ms; None when a weight lies so close to a
    rounding boundary that numpy's sin (which may differ from the C library's in the last bit) could tip it."""
    scale = float(n_in) / n_out
    filterscale = max(scale, 1.0)
    support, ss, one = _LANCZOS_SUPPORT * filterscale, 1.0 / filterscale, float(1 << _PRECISION_BITS)
    center = (np.arange(n_out) + 0.5) * scale
    xmin = np.maximum((center - support + 0.5).astype(np.int64), 0)  # astype truncates toward zero, like C
    xmax = np.minimum((center + support + 0.5).astype(np.int64), n_in) - xmin
    x = np.arange(int(xmax.max()))[None, :]
    arg = ((x + xmin[:, None]).astype(np.float64) - center[:, None] + 0.5) * ss
    with np.errstate(invalid="ignore", divide="ignore"):
        arg_pi, third_pi = arg * math.pi, (arg / 3) * math.pi
        sinc = np.where(arg == 0.0, 1.0, np.sin(arg_pi) / arg_pi)
        sinc3 = np.where(arg == 0.0, 1.0, np.sin(third_pi) / third_pi)
    w = np.where((x < xmax[:, None]) & (arg >= -3.0) & (arg < 3.0), sinc * sinc3, 0.0)
    ww = np.cumsum(w, axis=1)[:, -1:]  # cumsum adds in order, like the C loop (trailing zeros change nothing)
    w = np.where(ww != 0.0, w / ww, w)
    scaled = w * one + np.where(w < 0, -0.5, 0.5)
    if np.any(np.abs(scaled - np.round(scaled)) < 1e-6):
        return None
    return xmin, xmax, np.trunc(scaled)


@lru_cache(maxsize=512)
def lanczos_taps(n_in: int, n_out: int = _OUT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first input index, tap count, integer weights padded with zeros) per output pixel, exactly as Pillow
    computes them for an 8-bit image."""
    return _vector_taps(n_in, n_out) or _exact_taps(n_in, n_out)


@lru_cache(maxsize=512)
def _groups(n_in: int) -> tuple[tuple[int, int, int, np.ndarray], ...]:
    """(first output, first input, end input, weights) blocks of `_GROUP` outputs each: a few BLAS products
    instead of one dense product that is mostly zeros."""
    starts, counts, fixed = lanczos_taps(n_in)
    groups = []
    for first in range(0, _OUT, _GROUP):
        members = range(first, min(first + _GROUP, _OUT))
        lo, hi = int(starts[first]), int(max(starts[j] + counts[j] for j in members))
        block = np.zeros((len(members), hi - lo))
        for row, j in enumerate(members):
            block[row, starts[j] - lo:starts[j] - lo + counts[j]] = fixed[j, :counts[j]]
        groups.append((first, lo, hi, block))
    return tuple(groups)


def _pass(a: np.ndarray) -> np.ndarray:
    """One 8-bit LANCZOS pass of Pillow along axis 0 of ``a`` (n_in, m) -> (32, m) float64, bit for bit.

    ``a`` may be a uint8 view of the whole picture; it is converted to float64 a slab of `_SLAB` columns at a time,
    so the float copy stays in cache instead of being a fresh 10-MB allocation per image.  Pillow adds 2**21 to the
    fixed-point sum, shifts right by 22 bits and clamps to 0..255; scaling by 2**-22 and flooring is the same
    operation, exactly, in float64.
    """
    if a.shape[0] == _OUT:  # Pillow skips a pass that keeps the size
        return a.astype(np.float64)
    groups = _groups(a.shape[0])
    sums = np.empty((_OUT, a.shape[1]))
    for c in range(0, a.shape[1], _SLAB):
        slab = a[:, c:c + _SLAB].astype(np.float64, order="K")
        for first, lo, hi, block in groups:
            np.matmul(block, slab[lo:hi], out=sums[first:first + block.shape[0], c:c + slab.shape[1]])
    sums += float(1 << (_PRECISION_BITS - 1))
    sums *= 2.0 ** -_PRECISION_BITS
    np.floor(sums, out=sums)
    return np.clip(sums, 0, 255, out=sums)


def thumbnail32(gray: Image.Image) -> np.ndarray:
    """``gray.resize((32, 32), LANCZOS)`` of an "L" image as a float64 array, bit for bit with Pillow 13.

    Each pass rounds to 8 bits, so the order of the passes matters: like Pillow 13, the rows are shrunk first
    unless the height shrinks by more than twice as many pixels as the width (earlier Pillows always went rows
    first; fixing the order here keeps the hash the same whichever Pillow is installed).  Both passes are exact:
    the weights are Pillow's integers and every partial sum is an integer below 2**53, so float64 BLAS products give
    the same sums in any order of addition.
    """
    width, height = gray.size
    pixels = np.asarray(gray)  # (height, width) uint8
    if height - _OUT > 0 and height - _OUT > (width - _OUT) * 2:
        return _pass(_pass(pixels).T).T  # columns first
    return _pass(_pass(pixels.T).T)


def _dct_matrix(n: int = _OUT, keep: int = 8) -> np.ndarray:
    """Rows of the unnormalised DCT-II (scipy.fftpack.dct type 2): y[k] = 2 sum x[i] cos(pi k (2i+1) / 2n)."""
    k = np.arange(keep)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT8 = _dct_matrix()


# A horizontal flip maps column x to 31 - x, and cos(pi u (2(31 - x) + 1) / 64) = (-1)^u cos(pi u (2x + 1) / 64):
# the mirrored picture's coefficients are these with every odd horizontal frequency negated.
_FLIP8 = np.where(np.arange(8) % 2 == 1, -1.0, 1.0)


def _bits(low: np.ndarray) -> int:
    flat = low.ravel()
    middle = np.sort(flat)[31:33]
    bits = flat > (middle[0] + middle[1]) / 2  # np.median of the 64, without its overhead
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def phash_pair(gray: Image.Image) -> tuple[int, int]:
    """(pHash, pHash of the horizontally mirrored picture) of an "L" image, from one thumbnail.

    The mirror's bits come from the same 64 coefficients with the odd horizontal frequencies negated (its median
    differs, so it is not a permutation of the first hash); it equals the pHash of the flipped picture up to
    LANCZOS rounding asymmetries (tested on real photos).
    """
    low = np.round(_DCT8 @ thumbnail32(gray) @ _DCT8.T, 6)
    return _bits(low), _bits(low * _FLIP8)


def phash(img: Image.Image) -> int:
    """imagehash.phash: L, 32x32 LANCZOS, 2-D DCT-II, top-left 8x8 > median, row-major, first bit most significant.

    Pass the canonical (fully decoded, oriented, RGB) image.  Coefficients are rounded to 1e-6 so floating-point
    noise cannot flip bits of flat images between machines.
    """
    return phash_pair(img.convert("L"))[0]
