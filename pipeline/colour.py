"""Colour management: pixels tagged with an ICC profile are converted to sRGB before anything else sees them.

The stored JPEG carries no metadata (no ICC profile), and every consumer then reads its pixels as sRGB.  Stripping a
Display P3, Adobe RGB or camera profile without converting would shift every colour of such a photo (reds turn
orange, greens dull), so the conversion happens on the canonical decode: the pHash and the stored pixels both see
what a colour-managed browser shows.  Profiles that already describe sRGB are skipped (most tagged web images carry
one and the transform would cost ~3 ms per megapixel for nothing), transforms are cached per distinct profile, and
a profile that littlecms cannot read leaves the pixels as they are: a broken tag is no reason to lose a photo.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache

from PIL import Image, ImageCms

log = logging.getLogger(__name__)
_CONVERTIBLE = ("RGB", "CMYK")  # modes a display profile describes; grey and palette images keep their pixels


@lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=64)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The cached transform for one profile, or None when the profile is sRGB already or unusable."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = (ImageCms.getProfileDescription(profile) or "").strip()
        if description.lower().startswith("srgb"):
            return None
        return ImageCms.buildTransform(profile, _srgb(), mode, "RGB",
                                       renderingIntent=ImageCms.Intent.PERCEPTUAL)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        log.debug("ICC profile ignored (%s)", exc)
        return None


def to_srgb(img: Image.Image) -> Image.Image:
    """``img`` converted from its embedded ICC profile to sRGB (mode RGB), or unchanged when there is nothing to do."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in _CONVERTIBLE:
        return img
    transform = _transform(bytes(icc), img.mode)
    if transform is None:
        return img
    try:
        return ImageCms.applyTransform(img, transform)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        log.debug("ICC conversion failed (%s); pixels kept as decoded", exc)
        return img
