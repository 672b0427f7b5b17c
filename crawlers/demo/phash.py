"""The shared 64-bit perceptual hash, implemented with numpy so the demo site can check its own pictures.

It follows imagehash.phash exactly (the definition pipeline/phash.py implements): full decode without draft(), EXIF
transpose, RGB then "L", 32x32 LANCZOS, 2-D DCT-II along rows then columns, top-left 8x8, bits = coefficient >
median, row-major with the first coefficient as the most significant bit.  The clean stage implements the same
definition (and rounds the coefficients to 1e-6 the same way), so the distances the demo plants are the distances
the clean stage measures.

``NearIndex`` answers "is any hash of another group within distance r?" for hundreds of thousands of hashes, so
the demo can check every picture it plans against every earlier one.
"""

from __future__ import annotations

import io
from functools import lru_cache
from itertools import combinations

import numpy as np
from PIL import Image, ImageOps


@lru_cache(maxsize=4)
def _dct_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II basis, as scipy.fftpack.dct(type=2, norm=None): y_k = 2 * sum x_i cos(pi k (2i+1) / 2n)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def hashes_of(coeffs: np.ndarray) -> list[int]:
    """Hashes of rows of 64 DCT coefficients (8x8, row-major): coefficient > median, first one most significant."""
    rows = np.round(np.asarray(coeffs, dtype=np.float64).reshape(-1, 64), 6)
    ordered = np.sort(rows, axis=1)
    bits = np.packbits(rows > ((ordered[:, 31] + ordered[:, 32]) / 2)[:, None], axis=1)
    return [int.from_bytes(row.tobytes(), "big") for row in bits]


def bits_of(coeffs: np.ndarray) -> int:
    return hashes_of(coeffs)[0]


@lru_cache(maxsize=1024)
def resampler(n_in: int, n_out: int, method: int) -> np.ndarray:
    """(n_out, n_in): Pillow's 1-D resize as a matrix (found by resizing the identity)."""
    eye = Image.fromarray(np.eye(n_in, dtype=np.float32), "F").resize((n_out, n_in), method)
    return np.asarray(eye, dtype=np.float64).T


@lru_cache(maxsize=1024)
def projection(n: int) -> np.ndarray:
    """(8, n): LANCZOS from n to 32 px, then the first 8 DCT rows: pHash coefficients are P(h) @ X @ P(w).T."""
    return _dct_matrix(32)[:8] @ resampler(n, 32, Image.LANCZOS)


def phash_image(image: Image.Image) -> int:
    image = ImageOps.exif_transpose(image)
    gray = image.convert("RGB").convert("L").resize((32, 32), Image.LANCZOS)
    pixels = np.asarray(gray, dtype=np.float64)
    m = _dct_matrix(32)[:8]
    # imagehash: dct(dct(pixels, axis=0), axis=1); both axes are linear, so the order does not change the result.
    return bits_of(m @ pixels @ m.T)


def phash_bytes(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return phash_image(image)


def hamming(a: int, b: int) -> int:
    return (int(a) ^ int(b)).bit_count()


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of every uint64 (numpy >= 2 has a ufunc for it; numpy 1.26 counts bytes)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    return np.unpackbits(values.astype(np.uint64).view(np.uint8)).reshape(-1, 64).sum(axis=1)


_BAND_BITS = (13, 13, 13, 13, 12)  # two hashes within distance r agree on some band up to r // 5 bits (pigeonhole)
_TAIL = 4096  # hashes kept outside the banded index until the next merge (scanned linearly)


class NearIndex:
    """Hashes tagged with a group; ``nearest_other(h, group)`` is the distance to the closest hash of another group,
    exact whenever that distance is <= ``radius`` (otherwise some number > radius).

    Multi-index hashing: every hash is filed under each of its five bands (13 bits, the last 12), copied into one
    array sorted by (band, band value) with a table of where each band value starts; a query reads the runs of
    every band value within ``radius // 5`` bits of its own (69 runs for radius 8, about n / 8,192 hashes each), so
    it meets a few thousand contiguous hashes instead of all n.  Recent hashes sit in a short tail that is scanned
    linearly and merged in every ``_TAIL`` additions (a stable sort of two sorted runs is a linear merge).
    """

    def __init__(self, radius: int):
        self.radius = radius
        per_band = radius // len(_BAND_BITS)
        self._bands, flips, shift = [], [], 0
        for band, bits in enumerate(_BAND_BITS):
            self._bands.append((band << 13, shift, (1 << bits) - 1))
            flips.append([sum(1 << b for b in chosen) for k in range(per_band + 1)
                          for chosen in combinations(range(bits), k)])
            shift += bits
        self._flips = np.concatenate([np.asarray(f, dtype=np.int64) for f in flips])
        self._per_band = np.asarray([len(f) for f in flips])
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._groups = np.zeros(1024, dtype=np.int64)
        self._n = self._indexed = 0
        self._keys = np.zeros(0, dtype=np.int64)  # (band << 13 | band value) of every filed copy, sorted
        self._filed = np.zeros(0, dtype=np.uint64)  # the hash of each filed copy
        self._filed_groups = np.zeros(0, dtype=np.int64)
        self._starts = np.zeros(len(_BAND_BITS) * 8192 + 1, dtype=np.int64)

    def __len__(self) -> int:
        return self._n

    def _band_keys(self, hashes: np.ndarray) -> np.ndarray:
        """(n, 5): each hash's band values, tagged with the band number above bit 13."""
        return np.stack([((hashes >> np.uint64(shift)) & np.uint64(mask)).astype(np.int64) | tag
                         for tag, shift, mask in self._bands], axis=1)

    def add(self, h: int, group: int) -> None:
        if self._n == self._hashes.size:
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._groups = np.concatenate([self._groups, np.zeros_like(self._groups)])
        self._hashes[self._n], self._groups[self._n] = np.uint64(h), group
        self._n += 1
        if self._n - self._indexed >= _TAIL:
            self._merge()

    def _merge(self) -> None:
        new = slice(self._indexed, self._n)
        copies = len(_BAND_BITS)
        keys = np.concatenate([self._keys, self._band_keys(self._hashes[new]).ravel()])
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._filed = np.concatenate([self._filed, np.repeat(self._hashes[new], copies)])[order]
        self._filed_groups = np.concatenate([self._filed_groups, np.repeat(self._groups[new], copies)])[order]
        self._starts[1:] = np.cumsum(np.bincount(self._keys, minlength=self._starts.size - 1))
        self._indexed = self._n

    def nearest_other(self, h: int, group: int) -> int:
        h64 = np.uint64(h)
        best = 64
        if self._n > self._indexed:  # the tail: a plain scan of the newest hashes
            tail = popcount(self._hashes[self._indexed:self._n] ^ h64)
            tail = tail[self._groups[self._indexed:self._n] != group]
            best = int(tail.min()) if tail.size else 64
        if not self._indexed:
            return best
        own = np.asarray([((h >> shift) & mask) | tag for tag, shift, mask in self._bands], dtype=np.int64)
        probes = np.repeat(own, self._per_band) ^ self._flips
        lo, size = self._starts[probes], self._starts[probes + 1] - self._starts[probes]
        at = np.repeat(lo - np.cumsum(size) + size, size) + np.arange(int(size.sum()))
        distances = popcount(self._filed[at] ^ h64)[self._filed_groups[at] != group]
        return min(best, int(distances.min())) if distances.size else best
