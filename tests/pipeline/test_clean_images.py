"""Image normalisation: hostile inputs, orientation, alpha, metadata stripping, resize modes, the pHash."""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_schemas import reasons
from pipeline.config import CleanConfig
from pipeline.images import NormalisedImage, decode, normalise, phash, resize, to_rgb
from tests.pipeline.clean_rawdata import bomb_png, jpeg, photo, png

CFG = CleanConfig(raw="r", out="o")

# imagehash 4.3.2 (scipy DCT), computed on each fixture decoded, EXIF-transposed and converted to RGB
IMAGEHASH_REFERENCE = {
    "astronaut.png": 0xC2924C5532BDDFC8, "camera.png": 0xBFF1C1C0434E8CBC, "chelsea.png": 0xB15FE6465121175E,
    "coffee.png": 0xBB8320376C0F3637, "coins.png": 0xE4D5B5A92B54523A, "horse.png": 0xAD7AD2863235B534,
    "hubble_deep_field.jpg": 0x84CC4B96BA4D333E, "ihc.png": 0xAF3225E7C9691686, "moon.png": 0xA3D9765014369C77,
    "motorcycle_left.png": 0xC507C66B9370AA73, "retina.jpg": 0xC0CC1F977AC02D4F, "rocket.jpg": 0xC0371BEC1BE51267,
}


def _gradient() -> Image.Image:
    y, x = np.mgrid[0:96, 0:128]
    arr = np.stack([(x * 2) % 256, (y * 3) % 256, ((x + y) * 5) % 256], -1).astype(np.uint8)
    return Image.fromarray(arr)


def _naive_phash(img: Image.Image) -> int:
    """The definition written out with loops: 32x32 LANCZOS grey, DCT-II rows then columns, 8x8 > median."""
    px = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)

    def dct(v: np.ndarray) -> np.ndarray:
        n = len(v)
        return np.array([2 * sum(v[i] * math.cos(math.pi * k * (2 * i + 1) / (2 * n)) for i in range(n))
                         for k in range(n)])

    rows = np.array([dct(r) for r in px])
    both = np.array([dct(c) for c in rows.T]).T
    low = both[:8, :8].ravel()
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def test_phash_matches_the_definition_and_imagehash() -> None:
    img = _gradient()
    assert phash(img) == _naive_phash(img) == 0xA803798357EC57AC  # imagehash.phash(img) gives the same


@pytest.mark.fixtures
def test_phash_matches_imagehash_on_real_photos(fixtures: Path) -> None:
    for name, expected in IMAGEHASH_REFERENCE.items():
        img = to_rgb(decode((fixtures / "images" / name).read_bytes(), max_pixels=CFG.max_pixels))
        assert phash(img) == expected, name


def test_truncated_and_non_images_are_undecodable() -> None:
    data = jpeg(photo(1))
    assert normalise(data[: len(data) // 2], CFG) == reasons.IMAGE_UNDECODABLE
    assert normalise(b"<!DOCTYPE html><html>Access denied</html>", CFG) == reasons.IMAGE_UNDECODABLE
    assert normalise(b"", CFG) == reasons.IMAGE_UNDECODABLE
    assert normalise(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, CFG) == reasons.IMAGE_UNDECODABLE


def test_decompression_bomb_is_refused_from_the_header() -> None:
    bomb = bomb_png(20_000)  # ~50 KB on the wire, 400 megapixels decoded
    assert len(bomb) < 100_000
    assert normalise(bomb, CFG) == reasons.IMAGE_DECOMPRESSION_BOMB
    small_limit = CleanConfig(raw="r", out="o", max_pixels=1_000_000)
    assert normalise(bomb_png(2_000), small_limit) == reasons.IMAGE_DECOMPRESSION_BOMB
    assert isinstance(normalise(bomb_png(2_000), CFG), NormalisedImage)


def test_size_filters() -> None:
    assert normalise(jpeg(photo(1, (300, 150))), CFG) == reasons.IMAGE_TOO_SMALL
    assert normalise(jpeg(photo(1, (1000, 300))), CFG) == reasons.IMAGE_BAD_ASPECT
    assert isinstance(normalise(jpeg(photo(1, (900, 300))), CFG), NormalisedImage)  # exactly 3:1 passes


def test_alpha_is_flattened_onto_white() -> None:
    rgba = Image.new("RGBA", (400, 300), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 200, 300))
    out = normalise(png(rgba), CFG)
    stored = Image.open(io.BytesIO(out.data))
    assert stored.mode == "RGB"
    left, right = stored.getpixel((50, 150)), stored.getpixel((350, 150))
    assert left[2] > 200 and left[0] < 50  # opaque blue kept
    assert min(right) > 240  # transparent red became white, not black or red


def _with_exif(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "ACME Camera"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 30.0)}  # GPS IFD
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=b"\0" * 200, comment=b"secret")
    return out.getvalue()


def test_exif_orientation_applied_and_all_metadata_stripped() -> None:
    src = photo(3, (600, 400))
    data = _with_exif(src, orientation=6)  # "rotate 90 CW to display"
    assert b"ACME" in data and Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    out = normalise(data, CFG)
    assert (out.original_width, out.original_height) == (400, 600)
    assert (out.width, out.height) == (341, 512)
    stored = Image.open(io.BytesIO(out.data))
    assert not stored.getexif() and "exif" not in stored.info and "icc_profile" not in stored.info
    assert "comment" not in stored.info and b"ACME" not in out.data and b"Exif" not in out.data
    # the pHash is the one of the upright picture
    assert out.phash == phash(src.transpose(Image.Transpose.ROTATE_270))


@pytest.mark.parametrize(("mode", "size_in", "size_out"), [
    ("keep_ratio_largest", (1600, 1200), (512, 384)),
    ("keep_ratio_largest", (300, 400), (300, 400)),  # never enlarged
    ("center_crop", (1600, 1200), (512, 512)),
    ("center_crop", (300, 400), (300, 300)),  # cropped, not enlarged
    ("no", (1600, 1200), (1600, 1200)),
])
def test_resize_modes(mode: str, size_in: tuple[int, int], size_out: tuple[int, int]) -> None:
    assert resize(photo(5, size_in), mode=mode, size=512).size == size_out


def test_normalise_output_and_determinism() -> None:
    data = jpeg(photo(7, (1200, 900)))
    a, b = normalise(data, CFG), normalise(data, CFG)
    assert a == b
    assert (a.width, a.height, a.original_width, a.original_height) == (512, 384, 1200, 900)
    assert Image.open(io.BytesIO(a.data)).format == "JPEG"
    assert a.sha256 == hashlib.sha256(a.data).hexdigest() and 0 <= a.phash < 2**64
    # re-encoding the same pixels as PNG: same pixels -> same exact-duplicate key and pHash
    same_pixels = png(Image.open(io.BytesIO(data)).convert("RGB"))
    c = normalise(same_pixels, CFG)
    assert (c.sha256, c.phash) == (a.sha256, a.phash)
