"""Choosing picture sizes, formats and scenes, and checking that distinct pictures really look distinct."""

from __future__ import annotations

import random

import numpy as np

from crawlers.demo.model import Picture
from crawlers.demo.phash import hamming, phash_image
from crawlers.demo.scenes import Scene, random_scene, render_scene

DESIGN_SIDE = 256  # long side of the cheap render whose pHash stands in for the full-size picture's
DESIGN_MIN_DISTANCE = 17  # design hashes this far apart keep full-size hashes > 8 apart (design error <= 4 each)
CHECK_DISTINCT_UP_TO = 1500  # pictures (~350 articles); above this the check is skipped (see README "Scale")
LANDSCAPE = ((3, 2), (16, 9), (4, 3))
ANY_ASPECT = ((3, 2), (4, 3), (16, 9), (1, 1), (2, 3), (3, 4))
SIZES = {  # photo_size -> {kind: long sides}
    "mixed": {"lead": (1024, 1200, 1280, 1600), "body": (480, 640, 800, 960, 1024, 1280),
              "social": (800, 1024, 1280)},
    "bench": {"lead": (1024,), "body": (800, 900, 1024), "social": (1024,)},
    "small": {"lead": (512,), "body": (400, 448, 480), "social": (400, 512)},  # short side >= 200 at 16:9
}
GRAIN = {"mixed": 0, "bench": 5, "small": 0}


def _dims(long_side: int, aspect: tuple[int, int]) -> tuple[int, int]:
    a, b = aspect
    if a >= b:
        return long_side, max(1, round(long_side * b / a))
    return max(1, round(long_side * a / b)), long_side


class PictureFactory:
    """Hands out new pictures; each gets a scene whose design hash is far from every earlier one."""

    def __init__(self, rng: random.Random, photo_size: str, *, check_distinct: bool = True):
        if photo_size not in SIZES:
            raise ValueError(f"photo_size must be one of {sorted(SIZES)}, not {photo_size!r}")
        self.rng = rng
        self.photo_size = photo_size
        self.pictures: list[Picture] = []
        self.check_distinct = check_distinct
        self._hashes = np.zeros(0, dtype=np.uint64)

    def _scene(self, width: int, height: int) -> Scene:
        while True:
            scene = random_scene(self.rng)
            if not self.check_distinct or len(self.pictures) >= CHECK_DISTINCT_UP_TO:
                return scene
            scale = min(1.0, DESIGN_SIDE / max(width, height))
            h = phash_image(render_scene(scene, max(1, round(width * scale)), max(1, round(height * scale))))
            if self._hashes.size:
                x = np.bitwise_xor(self._hashes, np.uint64(h))
                nearest = int(np.min(np.bitwise_count(x))) if hasattr(np, "bitwise_count") else min(
                    hamming(int(v), 0) for v in x)
                if nearest < DESIGN_MIN_DISTANCE:
                    continue
            self._hashes = np.append(self._hashes, np.uint64(h))
            return scene

    def add(self, width: int, height: int, fmt: str, quality: int, *, serve: str = "") -> Picture:
        grain = GRAIN[self.photo_size] if fmt != "png" else 0
        pic = Picture(pid=len(self.pictures), scene=self._scene(width, height), width=width, height=height, fmt=fmt,
                      quality=quality, grain=grain, serve=serve)
        self.pictures.append(pic)
        return pic

    def photo(self, kind: str, *, fmt: str | None = None) -> Picture:
        """A content photo for a slot kind: lead, body, social."""
        if fmt is None:
            if self.photo_size == "bench":
                fmt = "jpeg"
            elif kind == "lead":
                fmt = self.rng.choice(("webp", "jpeg", "jpeg"))
            else:
                fmt = self.rng.choices(("jpeg", "png", "webp"), weights=(75, 12, 13))[0]
        sizes = SIZES[self.photo_size][kind]
        if fmt == "png":  # graphics: PNG is slow to encode and huge for photos, so real sites keep them small
            sizes = tuple(s for s in sizes if s <= 640) or sizes[:1]
        elif fmt == "webp":
            sizes = tuple(s for s in sizes if s <= 1280) or sizes[:1]
        aspect = self.rng.choice(LANDSCAPE if kind == "lead" else ANY_ASPECT)
        width, height = _dims(self.rng.choice(sizes), aspect)
        quality = 90 if self.photo_size == "bench" else self.rng.choice((80, 85, 88))
        return self.add(width, height, fmt, quality)

    def tiny(self) -> Picture:
        width, height = self.rng.choice(((120, 90), (150, 100), (160, 160), (100, 140)))
        return self.add(width, height, self.rng.choice(("jpeg", "png")), 85)

    def wide(self) -> Picture:
        width, height = self.rng.choice(((1600, 400), (1500, 360), (1200, 300)))
        return self.add(width, height, "jpeg", 85)

    def variant(self, base: Picture, transform: str, step: int) -> Picture:
        """A near-duplicate of ``base``: re-encoded, resized or cropped; ``step`` picks a gentler setting."""
        width, height, crop = base.width, base.height, None
        quality = base.quality
        if transform == "quality":
            quality = max(50, base.quality - (20, 12, 6, 3)[min(step, 3)])
        elif transform == "resize":
            factor = (0.75, 0.85, 0.92, 0.97)[min(step, 3)]
            width, height = round(base.width * factor), round(base.height * factor)
        else:  # crop: a margin of 1% / 0.5% / 0.25% / 1px on each side (never more than 3% of a side)
            frac = (0.01, 0.005, 0.0025, 0.0)[min(step, 3)]
            dx, dy = max(1, round(base.width * frac)), max(1, round(base.height * frac))
            crop = (dx, dy, base.width - dx, base.height - dy)
            width, height = crop[2] - crop[0], crop[3] - crop[1]
        pic = Picture(pid=len(self.pictures), scene=base.scene, width=width, height=height, fmt=base.fmt,
                      quality=quality, grain=base.grain, base=base.pid, transform=transform, crop=crop)
        self.pictures.append(pic)
        return pic
