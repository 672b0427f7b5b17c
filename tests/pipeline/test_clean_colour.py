"""ICC profiles: tagged pixels are converted to sRGB before hashing and storing, never just stripped."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageCms

from pipeline.colour import to_srgb
from pipeline.config import CleanConfig
from pipeline.images import normalise

# sRGB's primaries adapted to D50, as an ICC matrix/TRC profile stores them
SRGB_PRIMARIES = {"r": (0.4361, 0.2225, 0.0139), "g": (0.3851, 0.7169, 0.0971), "b": (0.1431, 0.0606, 0.7141)}


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def matrix_profile(primaries: dict[str, tuple[float, float, float]], description: str) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma 2.2 curves) with the given primaries."""
    desc = description.encode() + b"\0"
    tags = {
        b"desc": b"desc" + b"\0" * 4 + struct.pack(">I", len(desc)) + desc + b"\0" * 12 + b"\0" * 67,
        b"wtpt": b"XYZ " + b"\0" * 4 + _s15(0.9642) + _s15(1.0) + _s15(0.8249),
        **{f"{c}XYZ".encode(): b"XYZ " + b"\0" * 4 + b"".join(_s15(v) for v in xyz) for c, xyz in primaries.items()},
        **{f"{c}TRC".encode(): b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0233) + b"\0\0" for c in "rgb"},
    }
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags.items():
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp"
              + b"\0" * 24 + struct.pack(">I", 0) + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


SWAPPED = matrix_profile({"r": SRGB_PRIMARIES["g"], "g": SRGB_PRIMARIES["r"], "b": SRGB_PRIMARIES["b"]},
                         "red-green swapped test profile")


def _tagged(colour: tuple[int, int, int], icc: bytes | None, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, fmt, icc_profile=icc, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def _mean_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0)


def test_profile_is_readable_by_littlecms() -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(SWAPPED))
    assert ImageCms.getProfileDescription(profile).strip() == "red-green swapped test profile"


def test_tagged_pixels_are_converted_to_srgb_not_stripped() -> None:
    cfg = CleanConfig(raw="r", out="o")
    for fmt in ("PNG", "JPEG"):
        plain = normalise(_tagged((255, 0, 0), None, fmt), cfg)
        swapped = normalise(_tagged((255, 0, 0), SWAPPED, fmt), cfg)
        r, g, _ = _mean_rgb(plain.data)
        assert r > 240 and g < 15  # untagged: read as sRGB, red stays red
        r, g, _ = _mean_rgb(swapped.data)
        assert g > 200 and r < 40, (fmt, r, g)  # "red" in the swapped space is sRGB green
        assert b"ICC_PROFILE" not in swapped.data  # converted pixels, no profile stored


def test_srgb_and_broken_profiles_leave_pixels_alone() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc in (srgb, b"not an icc profile at all", SWAPPED[:100]):
        img = Image.open(io.BytesIO(_tagged((200, 40, 30), icc)))
        img.load()
        assert to_srgb(img) is img
        assert normalise(_tagged((200, 40, 30), icc), CleanConfig(raw="r", out="o")).width == 320


def test_grey_images_with_a_profile_are_untouched() -> None:
    img = Image.new("L", (300, 300), 77)
    img.info["icc_profile"] = SWAPPED
    assert to_srgb(img) is img
