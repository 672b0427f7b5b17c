"""Image normalisation: safe decode, orientation, RGB, size filters, perceptual hash, resize, clean re-encode.

One canonical decode (full decode, EXIF orientation, ICC profile -> sRGB, RGB) feeds the pHash, so near-duplicate
detection never depends on the resize settings.  The exact-duplicate key is the hash of the stored (normalised)
image: the same canonical pixels always give the same stored bytes, and two images whose pixels differ only in what
the resize and the JPEG encoder discard are near-duplicates at distance 0 anyway.  Hashing the stored ~50 KB instead
of the canonical megapixels saves ~3.5 ms per 1000-px photo (a pixel copy plus sha256 of ~4 MB).

Pillow's ``draft()`` (DCT-domain scaling) would make a *second* decode for the resize path cheaper, but the full
decode already exists at that point and ``Image.reduce`` on it is cheaper than any second decode (1400 px JPEG ->
512 px on this machine: draft decode + LANCZOS 15.8 ms, reduce + LANCZOS on the existing decode 13.0 ms), so the
resize path shrinks the canonical decode by an integer box reduction (``reducing_gap=1``), then resamples with
LANCZOS.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image, ImageFile, ImageOps

from data_schemas import reasons
from pipeline.colour import to_srgb
from pipeline.phash import phash as phash  # re-exported: the canonical pHash of a decoded image
from pipeline.signals import signals

if TYPE_CHECKING:
    from pipeline.config import CleanConfig

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is a drop reason, never half a grey image
_WHITE = (255, 255, 255)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, ZeroDivisionError,
                  MemoryError, RuntimeError, AttributeError)


@dataclass(frozen=True)
class NormalisedImage:
    data: bytes  # the stored JPEG: RGB, resized, no metadata
    width: int
    height: int
    original_width: int  # after EXIF orientation
    original_height: int
    sha256: str  # of ``data``
    phash: int  # 64-bit perceptual hash of the canonical decode without uniform borders (`pipeline.signals`)
    phash_flip: int  # ... of its mirror image
    pdq: bytes  # 256-bit PDQ hash of the same picture, the second signal near duplicates are verified with
    pdq_flip: bytes
    colour: bytes  # 4x4 colour layout (chromaticity), the third signal
    aspect: float  # log(width / height) of what was hashed, the fourth


def decode(data: bytes, *, max_pixels: int) -> Image.Image | str:
    """Full decode, or a drop reason.  The pixel count is checked from the header, before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                return reasons.IMAGE_DECOMPRESSION_BOMB
            if width <= 0 or height <= 0:
                return reasons.IMAGE_UNDECODABLE
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return reasons.IMAGE_DECOMPRESSION_BOMB
    except _DECODE_ERRORS:  # UnidentifiedImageError is an OSError; truncated data raises OSError too
        return reasons.IMAGE_UNDECODABLE
    return img


def orient(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a corrupt EXIF block leaves the image as stored rather than dropping it."""
    try:
        if img.getexif().get(0x0112, 1) in (0, 1):  # the common case: no copy of the decoded pixels
            return img
        return ImageOps.exif_transpose(img) or img
    except _DECODE_ERRORS:
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB with any transparency flattened onto white (black would turn logos and cut-outs into black blobs)."""
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        img = img.point(lambda v: v / 256) if img.mode != "F" else img
        img = img.convert("L")
    return img if img.mode == "RGB" else img.convert("RGB")


def size_reason(width: int, height: int, *, min_side: int, max_aspect: float) -> str | None:
    if min(width, height) < min_side:
        return reasons.IMAGE_TOO_SMALL
    if max(width, height) > max_aspect * min(width, height):
        return reasons.IMAGE_BAD_ASPECT
    return None


def resize(img: Image.Image, *, mode: str, size: int) -> Image.Image:
    """Shrink only, never enlarge.  keep_ratio_largest: the longer side becomes ``size``; center_crop: the shorter
    side becomes ``size`` (if larger) and the centre square is kept; no: unchanged."""
    width, height = img.size
    if mode == "no":
        return img
    if mode == "keep_ratio_largest":
        scale = size / max(width, height)
    elif mode == "center_crop":
        scale = size / min(width, height)
    else:
        raise ValueError(f"unknown resize mode '{mode}'")
    if scale < 1.0:
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=1.0)
    if mode == "center_crop":
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        if img.size != (side, side):
            img = img.crop((left, top, left + side, top + side))
    return img


def encode_jpeg(img: Image.Image, *, quality: int) -> bytes:
    """Nothing from the source file: no EXIF (GPS), XMP, ICC or comment (Pillow copies a source comment unless
    told otherwise)."""
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, optimize=False, progressive=False, exif=b"", icc_profile=None, comment=b"",
             xmp=b"", dpi=(0, 0), extra=b"")
    return out.getvalue()


def normalise(data: bytes, cfg: CleanConfig) -> NormalisedImage | str:
    """Bytes -> `NormalisedImage`, or a ``reasons.*`` drop reason."""
    img = decode(data, max_pixels=cfg.max_pixels)
    if isinstance(img, str):
        return img
    try:
        img = to_rgb(to_srgb(orient(img)))
    except _DECODE_ERRORS:
        return reasons.IMAGE_UNDECODABLE
    width, height = img.size
    reason = size_reason(width, height, min_side=cfg.min_side, max_aspect=cfg.max_aspect)
    if reason:
        return reason
    hashed = signals(img)
    small = resize(img, mode=cfg.resize_mode, size=cfg.image_size)
    stored = encode_jpeg(small, quality=cfg.jpeg_quality)
    digest = hashlib.sha256(stored).digest()
    return NormalisedImage(data=stored, width=small.width, height=small.height, original_width=width,
                           original_height=height, sha256=digest.hex(), phash=hashed.phash,
                           phash_flip=hashed.phash_flip, pdq=hashed.pdq, pdq_flip=hashed.pdq_flip,
                           colour=hashed.colour, aspect=hashed.aspect)
