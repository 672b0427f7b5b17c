"""Near-duplicate signals on real photos: the mirror hashes are the flipped picture's, borders are trimmed only
when they are borders, PDQ is Meta's PDQ hash of the reduction, and the colour layout ignores brightness."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from pipeline.config import CleanConfig
from pipeline.dedup import colour_array, colour_distance
from pipeline.images import normalise
from pipeline.phash import phash
from pipeline.signals import content_box, reduced, signals

pytestmark = pytest.mark.fixtures
CFG = CleanConfig(raw="r", out="o")


def _photos(fixtures: Path) -> dict[str, Image.Image]:
    """The fixture photos; horse.png is a black silhouette on white, a graphic rather than a photo."""
    return {p.stem: Image.open(p).convert("RGB") for p in sorted((fixtures / "images").glob("*.[pj][np]g"))
            if p.stem != "horse"}


def _bits(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def test_mirror_hashes_are_the_flipped_pictures_hashes(fixtures: Path) -> None:
    for name, img in _photos(fixtures).items():
        flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        s, f = signals(img), signals(flipped)
        if s.box is None and f.box is None:
            assert s.phash_flip == f.phash == phash(flipped), name
        assert (s.phash_flip ^ f.phash).bit_count() <= 2, name
        assert _bits(s.pdq_flip, f.pdq) <= 32, name  # of 256; distinct pictures are ~128 apart
        mirrored = colour_array([s.colour])
        assert colour_distance(mirrored, colour_array([f.colour]), mirror_a=True)[0] <= 2, name


def test_pdq_is_the_pdqhash_packages_hash_of_the_reduction(fixtures: Path) -> None:
    pdqhash = pytest.importorskip("pdqhash", reason="pdqhash is a dev dependency (pip install -e '.[dev]')")
    for name, img in _photos(fixtures).items():
        s = signals(img)
        luma = np.asarray(reduced(img.convert("L"), s.box))
        bits, _quality = pdqhash.compute(np.repeat(luma[:, :, None], 3, axis=2))
        assert np.packbits(bits.astype(bool)).tobytes() == s.pdq, name


@pytest.mark.parametrize("pad", ["white", "black", "letterbox"])
def test_uniform_borders_are_trimmed_before_hashing(fixtures: Path, pad: str) -> None:
    for name, img in _photos(fixtures).items():
        w, h = img.size
        if pad == "letterbox":
            framed = ImageOps.pad(img, (w, round(w * 9 / 16)) if w / h < 16 / 9 else (round(h * 16 / 9), h),
                                  color=(0, 0, 0))
        else:
            framed = ImageOps.expand(img, (w // 20, h // 20), fill=pad)
        original, copy = normalise(_jpeg(img), CFG), normalise(_jpeg(framed), CFG)
        assert (original.phash ^ copy.phash).bit_count() <= 4, name
        assert _bits(original.pdq, copy.pdq) <= 40, name


def test_borders_of_photos_themselves_are_left_alone(fixtures: Path) -> None:
    """A sky at the top or a dark side is no frame: only paired, equal borders are trimmed."""
    for name, img in _photos(fixtures).items():
        box = content_box(np.asarray(img.convert("L")))
        if box is not None:
            left, top, right, bottom = box
            assert abs(left - (img.width - right)) <= max(2, 0.02 * img.width), name
            assert abs(top - (img.height - bottom)) <= max(2, 0.02 * img.height), name
    sky = Image.new("L", (400, 300), 200)
    sky.paste(Image.effect_noise((400, 200), 60), (0, 100))
    assert content_box(np.asarray(sky)) is None


def test_colour_layout_ignores_brightness_but_not_colour(fixtures: Path) -> None:
    photos = _photos(fixtures)
    img = photos["coffee"]
    base = colour_array([signals(img).colour])
    brighter = colour_array([signals(ImageEnhance.Brightness(img).enhance(1.15)).colour])
    others = colour_array([signals(p).colour for n, p in photos.items() if n != "coffee"])
    assert colour_distance(base, brighter)[0] < 2
    assert colour_distance(np.repeat(base, len(others), axis=0), others).min() > 2 * colour_distance(base, brighter)[0]
