"""What near-duplicate detection sees of a picture: its content without uniform borders, hashed two ways, each
with its mirror image.

- **Borders**: a white frame, a letterbox or pillar bars move every pHash coefficient (a 5% pad alone costs ~20
  bits), so uniform border lines (one colour within `TRIM_TOLERANCE` grey levels, `TRIM_OUTLIERS` of the line
  allowed off it) are trimmed before hashing, each side on its own.  Natural photos rarely have a uniform outer
  line, so most pictures cost four line checks and nothing more.  Only the hashes see the trimmed picture; the
  stored image keeps its borders.
- **pHash** (64 bits, imagehash's definition, `pipeline.phash`) finds the candidates; its mirror (a horizontal
  flip) comes from the same coefficients.
- **A 256-bit PDQ hash** (Meta's PDQ hash function: 16x16 DCT of a 64x64 luminance picture, one bit per
  coefficient above the median), its mirror, a **colour layout** and the **aspect ratio** verify them.  The 64x64
  picture is an integer box reduction of the trimmed luminance (what Pillow's ``reduce`` does in C), not PDQ's own
  Jarosz filter on the full picture, which costs ~60 ms per megapixel in the `pdqhash` binding; on the same 64x64
  input the bits equal `pdqhash.compute`'s (tested).  PDQ sees frequencies 1-16 where pHash sees 0-7; the colour
  layout and the aspect ratio (which pHash and PDQ squash away) see what neither does.  Measured recall, false
  merges and costs: pipeline/README.md and BENCHMARKS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.phash import phash_pair

# Version 1 (until this module): imagehash's pHash of the whole canonical picture, nothing else.  Version 2: uniform
# borders trimmed first; pHash, its mirror, PDQ and its mirror.  A dataset records it (manifest parameters) so an
# incremental run never compares hashes of two definitions.
HASH_VERSION = 2
TRIM_TOLERANCE = 12  # grey levels: JPEG noise on a flat colour stays within this
TRIM_OUTLIERS = 0.01  # share of a border line's pixels that may be off its colour (specks, ringing near content)
TRIM_MAX_SHARE = 0.4  # at most this much of a side is trimmed (pillar bars of a portrait in 16:9 are ~0.34)
TRIM_ASYMMETRY = 0.02  # opposite borders may differ by this share of the side (or 2 px)
_TRIM_BLOCK = 32  # lines tested at a time, inward from the edge
_SIDE = 64  # PDQ works on 64x64 luminance; the colour layout is read from the same reduction
_GRID = 4  # colour cells per side
_CHROMA_FLOOR = 30.0  # added to R + G + B (grey-weighted): chromaticity of near-black cells is noise
# PDQ's DCT: frequencies 1..16 (no DC) of 64 samples, unnormalised (scaling does not move a median)
_D16 = np.cos(np.pi / (2 * _SIDE) * np.arange(1, 17)[:, None] * (2 * np.arange(_SIDE)[None, :] + 1))
_FLIP16 = np.where(np.arange(1, 17) % 2 == 1, -1.0, 1.0)  # a horizontal flip negates the odd frequencies


@dataclass(frozen=True)
class Signals:
    phash: int
    phash_flip: int  # pHash of the horizontally mirrored picture
    pdq: bytes  # 32 bytes
    pdq_flip: bytes
    colour: bytes  # 32 bytes: `colour_cells`; the mirror's is the same cells mirrored, so it is not stored
    aspect: float  # log(width / height) of the picture hashed (borders trimmed): pHash and PDQ squash it away
    box: tuple[int, int, int, int] | None  # the content box hashed, None when nothing was trimmed


def _border(lines: np.ndarray, *, tolerance: int, outliers: float) -> tuple[int, int]:
    """(how many leading lines of ``lines`` are one colour, that colour); (0, colour) if the first line is not."""
    colour = int(np.median(lines[0]))
    done = 0
    while done < len(lines):
        block = lines[done:done + _TRIM_BLOCK].astype(np.int16)
        off = (np.abs(block - colour) > tolerance).mean(axis=1) > outliers
        if off.any():
            return done + int(np.argmax(off)), colour
        done += len(block)
    return done, colour


def _pair(lines: np.ndarray, limit: int, **kw) -> tuple[int, int]:
    """Borders at both ends of ``lines`` (rows), kept only as a pair: the same colour and about the same width.

    Pads, letterboxes and pillar bars come in such pairs; a sky at the top, a dark corner or a product shot on
    white do not, and trimming those would move with every edit (contrast, JPEG noise) instead of undoing one."""
    (a, colour_a), (b, colour_b) = _border(lines[:limit], **kw), _border(lines[::-1][:limit], **kw)
    if not (a and b) or abs(colour_a - colour_b) > kw["tolerance"]:
        return 0, 0
    if abs(a - b) > max(2, TRIM_ASYMMETRY * len(lines)):
        return 0, 0
    return a, b


def _uniform(line: np.ndarray, *, tolerance: int, outliers: float) -> bool:
    return float((np.abs(line.astype(np.int16) - int(np.median(line))) > tolerance).mean()) <= outliers


def _framed(gray: Image.Image) -> bool:
    """Whether two opposite edge lines are uniform, read as four 1-px crops: most photos stop here, without a copy
    of their pixels."""
    w, h = gray.size

    def uniform(box: tuple[int, int, int, int]) -> bool:
        return _uniform(np.asarray(gray.crop(box)).ravel(), tolerance=TRIM_TOLERANCE, outliers=TRIM_OUTLIERS)

    return ((uniform((0, 0, w, 1)) and uniform((0, h - 1, w, h)))
            or (uniform((0, 0, 1, h)) and uniform((w - 1, 0, w, h))))


def content_box(gray: np.ndarray, *, tolerance: int = TRIM_TOLERANCE, outliers: float = TRIM_OUTLIERS,
                max_share: float = TRIM_MAX_SHARE) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of ``gray`` (h, w) without its uniform borders, or None if there are none."""
    h, w = gray.shape
    kw = {"tolerance": tolerance, "outliers": outliers}
    if not (_uniform(gray[0], **kw) and _uniform(gray[-1], **kw)) and not (
            _uniform(gray[:, 0], **kw) and _uniform(gray[:, -1], **kw)):
        return None
    top, bottom = _pair(gray, max(1, int(h * max_share)), **kw)
    left, right = _pair(np.ascontiguousarray(gray.T), max(1, int(w * max_share)), **kw)
    if not (top or left):
        return None
    return left, top, w - right, h - bottom


def _bits256(coefficients: np.ndarray) -> bytes:
    flat = np.round(coefficients, 6)[::-1, ::-1].ravel()  # pdqhash's bit order; rounding as for pHash (flat images)
    return np.packbits(flat > np.median(flat)).tobytes()


def reduced(img: Image.Image, box: tuple[int, int, int, int] | None = None) -> Image.Image:
    """``img`` (or its ``box``) as `_SIDE` x `_SIDE` pixels: an integer box reduction (whole boxes only, centred, so
    the mirrored picture reduces to the mirrored result), then a box resize."""
    left, top, right, bottom = box or (0, 0, img.width, img.height)
    factor = min(right - left, bottom - top) // _SIDE
    if factor > 1:
        dx, dy = (right - left) % factor, (bottom - top) % factor
        img = img.reduce(factor, box=(left + dx // 2, top + dy // 2, right - (dx - dx // 2), bottom - (dy - dy // 2)))
    elif box is not None:
        img = img.crop(box)
    return img.resize((_SIDE, _SIDE), Image.Resampling.BOX)


def pdq_pair(luma: np.ndarray) -> tuple[bytes, bytes]:
    """(PDQ hash, PDQ hash of the mirrored picture) of a 64x64 luminance picture."""
    c = _D16 @ luma.astype(np.float64) @ _D16.T  # rows: vertical frequency, columns: horizontal
    return _bits256(c), _bits256(c * _FLIP16)


def colour_cells(rgb: np.ndarray) -> bytes:
    """The colour layout: 4x4 cells of 64x64 RGB samples, each as chromaticity (r, g) = (R, G) / (R + G + B) in
    0..255 (85, 85 = grey).  Ratios do not move with brightness, and a dark cell is pulled to grey
    (`_CHROMA_FLOOR`) because its ratios are noise.  32 bytes, row-major cells."""
    cells = rgb.astype(np.float64).reshape(_GRID, _SIDE // _GRID, _GRID, _SIDE // _GRID, 3).mean(axis=(1, 3))
    total = cells.sum(axis=2, keepdims=True) + _CHROMA_FLOOR
    chroma = (cells[..., :2] + _CHROMA_FLOOR / 3) / total
    return np.round(chroma * 255).astype(np.uint8).tobytes()


def signals(img: Image.Image) -> Signals:
    """The near-duplicate signals of the canonical (decoded, oriented, RGB) image."""
    gray = img.convert("L")
    box = content_box(np.asarray(gray)) if _framed(gray) else None
    ph, ph_flip = phash_pair(gray.crop(box) if box else gray)
    pdq, pdq_flip = pdq_pair(np.asarray(reduced(gray, box)))
    left, top, right, bottom = box or (0, 0, img.width, img.height)
    # the colour layout averages 256 samples per cell: a grid of single pixels reads 1/100 of the picture, where a
    # box reduction of the RGB picture cost as much as the pHash itself
    samples = img.resize((_SIDE, _SIDE), Image.Resampling.NEAREST, box=(left, top, right, bottom))
    return Signals(phash=ph, phash_flip=ph_flip, pdq=pdq, pdq_flip=pdq_flip, colour=colour_cells(np.asarray(samples)),
                   aspect=float(np.log((right - left) / (bottom - top))), box=box)
