"""Choosing picture sizes, formats and scenes, and making sure distinct pictures really look distinct.

At every site size each picture gets a *design hash*, the pHash its served bytes will have, and must be at least
DESIGN_MIN_DISTANCE from the design hash of every picture of another duplicate group (else its light field is
redrawn).  A ``NearIndex`` keeps that O(n log n) for the 200,000 pictures of a 50,000-article site.

The design hash is exact, not an estimate, because the scene's light field is *tuned*: pHash reads the 64 DCT
coefficients of a 32x32 grey picture and sets a bit when a coefficient is above their median, so only coefficients
near the median can flip between a cheap render and the full-size photo (grain, JPEG / PNG / WebP, full decode).
Tuning moves every coefficient at least MARGIN standard deviations away from the median by adding a few grey levels
to the light field's 8x8 grid (largest offset: median 11, 90th percentile 21); design-vs-photo perturbations stay
below 0.22 standard deviations in 99.9 % of coefficients, so the served picture has the design hash (19,896 of
19,899 images of a 5,000-article site; 3 off by 2 bits; README "Scale").  9 keeps distinct pictures beyond the
clean stage's near-duplicate candidates (<= 8; it verifies those with other signals), and their near-duplicate
copies, which share the base's tuned light field (crops and mirror images are checked on their own), out of other
clusters.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from PIL import Image

from crawlers.demo.images import PAD_SHARE
from crawlers.demo.model import Picture
from crawlers.demo.phash import NearIndex, bits_of, hamming, hashes_of, projection, resampler
from crawlers.demo.scenes import Scene, grid_rgb, light_grid, random_scene, render_grey, render_shapes

DESIGN_SIDE = 128  # long side of the design render of a picture's shapes
SUPERSAMPLE = 2  # ... drawn at this multiple and reduced: anti-aliased, as a full-size photo looks at 32 x 32
MARGIN = 0.25  # every design coefficient this many standard deviations (of the 63 AC ones) from the median
DESIGN_MIN_DISTANCE = 9  # between design hashes of different duplicate groups
NEAR_DESIGN_MAX = 2  # a cropped near-duplicate's design hash stays this close to its base's (else a gentler crop)
TUNE_ROUNDS, TUNE_LIMIT = 10, 100  # light-field tuning: rounds, largest offset of a grid point (grey levels)
BATCH = 256  # pictures tuned together (numpy work per picture is tiny, per call it is not); <= 256, see _layers
MAX_DRAWS = 1000  # light fields tried for one picture before giving up (a second is rarely needed)
LANDSCAPE = ((3, 2), (16, 9), (4, 3))
ANY_ASPECT = ((3, 2), (4, 3), (16, 9), (1, 1), (2, 3), (3, 4))
SIZES = {  # photo_size -> {kind: long sides}
    "mixed": {"lead": (1024, 1200, 1280, 1600), "body": (480, 640, 800, 960, 1024, 1280),
              "social": (800, 1024, 1280)},
    "bench": {"lead": (1024,), "body": (800, 900, 1024), "social": (1024,)},
    "small": {"lead": (512,), "body": (400, 448, 480), "social": (400, 512)},  # short side >= 200 at 16:9
}
GRAIN = {"mixed": 0, "bench": 5, "small": 0}
CROP_MARGINS = (0.01, 0.005, 0.0025, 0.0)  # share of each side a crop variant removes, by step (0.0: one pixel)

_DCT8 = projection(32)  # LANCZOS 32 -> 32 is the identity: the first 8 DCT rows
_FLIP8 = np.where(np.arange(8) % 2 == 1, -1.0, 1.0)  # a mirror image negates the odd horizontal frequencies
_B32 = resampler(8, 32, Image.BICUBIC)  # the light field's 8 grid rows spread over pHash's 32 rows
_LUMA = np.array([0.299, 0.587, 0.114])
# Row (k, i) of _LIGHT: how grid row i reaches DCT row k through the 32 pHash rows.  _A_INV inverts the light field's
# map from grid to coefficients when no shape hides it; the shapes' cover makes tuning take another round or two.
_LIGHT = (_DCT8[:, None, :] * _B32.T[None, :, :]).reshape(64, 32)
_A_INV = np.kron(*[np.linalg.inv(_DCT8 @ _B32)] * 2)  # uncovered: coefficients = (Q kron Q) grid, Q = DCT8 B32


def _dims(long_side: int, aspect: tuple[int, int]) -> tuple[int, int]:
    a, b = aspect
    if a >= b:
        return long_side, max(1, round(long_side * b / a))
    return max(1, round(long_side * a / b)), long_side


def design_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, DESIGN_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _layers(pics: list[Picture]) -> tuple[np.ndarray, np.ndarray]:
    """For n pictures: the shapes' 64 coefficients (n, 64) and the share of each of pHash's 32x32 pixels they leave
    to the light field (n, 32, 32).  Pictures of one design size share one canvas, so Pillow and numpy run once."""
    shapes, cover = np.zeros((len(pics), 64)), np.zeros((len(pics), 32, 32))
    groups: dict[tuple[int, int], list[int]] = {}
    for i, pic in enumerate(pics):
        groups.setdefault(design_size(pic.width, pic.height), []).append(i)
    for (w, h), members in groups.items():
        n = len(members)
        paint, mask = render_shapes([pics[i].scene for i in members], SUPERSAMPLE * w, SUPERSAMPLE * h)
        # (h, n, w) @ (w, 8): h products of at most 256 x 128 x 8, below OpenBLAS's threading threshold (threads
        # spinning on a busy machine cost more than they save on products this small)
        cols = np.asarray(paint.reduce(SUPERSAMPLE), dtype=np.float64).reshape(h, n, w) @ projection(w).T
        shapes[members] = (projection(h) @ cols.transpose(1, 0, 2)).reshape(n, 64)
        boxed = np.asarray(mask.resize((32 * n, 32), Image.BOX), dtype=np.float64)
        cover[members] = 1.0 - boxed.reshape(32, n, 32).transpose(1, 0, 2) / 255
    return shapes, cover


def _coefficients(shapes: np.ndarray, cover: np.ndarray, grid: np.ndarray, tune: np.ndarray) -> np.ndarray:
    """pHash coefficients (n, 64) of n pictures: shapes plus the light field (grid (n, 64, 3) + tune) they leave.

    The light field is smooth, so its 32x32 picture is the bicubic spread of the grid's grey levels."""
    grey = np.floor(np.clip(grid + tune[:, :, None], 0, 255)) @ _LUMA  # grid_rgb's uint8 levels, as L
    light = _B32 @ grey.reshape(-1, 8, 8) @ _B32.T
    return shapes + (_DCT8 @ (cover * light) @ _DCT8.T).reshape(-1, 64)


def _weak(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distance of each coefficient from its row's median, MARGIN in coefficient units, too-close mask)."""
    ordered = np.sort(c, axis=1)
    gap = c - ((ordered[:, 31] + ordered[:, 32]) / 2)[:, None]
    bound = MARGIN * c[:, 1:].std(axis=1)
    weak = np.abs(gap) < bound[:, None]
    weak[:, 0] = False  # the DC coefficient is always far above the median
    return gap, bound, weak


def _tuned(scene: Scene, tune: np.ndarray) -> Scene:
    return replace(scene, tune=tune.astype(np.int8).tobytes() if tune.any() else b"")


def _tune(pics: list[Picture]) -> list[tuple[Scene, int] | None]:
    """(tuned scene, design hash) for n pictures, or None where TUNE_ROUNDS rounds find no tuning.

    Each round pushes the weak coefficients out to 1.2 * MARGIN, all pictures at once, through the inverse of the
    light field's map as if no shape hid it; the shapes' cover and clipped grid points make that inexact, and the
    next round corrects.  Pictures still weak after that (mostly white or black backgrounds, whose grids clip at 255
    or 0) get as many rounds one by one with the exact map and the smallest offsets through unclipped channels."""
    shapes, cover = _layers(pics)
    grid = np.clip(light_grid([p.scene for p in pics]), 0, 255)
    tune, out = np.zeros((len(pics), 64)), [None] * len(pics)
    todo = np.arange(len(pics))
    for round_ in range(TUNE_ROUNDS + 1):
        c = _coefficients(shapes[todo], cover[todo], grid[todo], tune[todo])
        gap, bound, weak = _weak(c)
        ok = ~weak.any(axis=1)
        for i, h in zip(todo[ok], hashes_of(c[ok]), strict=True):
            out[i] = (_tuned(pics[i].scene, tune[i]), h)
        todo, gap, bound, weak = todo[~ok], gap[~ok], bound[~ok], weak[~ok]
        if not todo.size or round_ == TUNE_ROUNDS:
            break
        need = np.where(weak, np.where(gap >= 0, 1.2, -1.2) * bound[:, None] - gap, 0.0)
        step = np.einsum("nj,ij->ni", need, _A_INV)  # not one big BLAS product (threads, see _layers)
        tune[todo] = np.clip(np.round(tune[todo] + step), -TUNE_LIMIT, TUNE_LIMIT)
    for i in todo:
        found = _tune_clipped(shapes[i], cover[i], grid[i], tune[i])
        out[i] = None if found is None else (_tuned(pics[i].scene, found[0]), found[1])
    return out


def _tune_clipped(shapes: np.ndarray, cover: np.ndarray, grid: np.ndarray,
                  tune: np.ndarray) -> tuple[np.ndarray, int] | None:
    a = (_LIGHT @ cover @ _LIGHT.T).reshape(8, 8, 8, 8).transpose(0, 2, 1, 3).reshape(64, 64)
    for _ in range(TUNE_ROUNDS + 1):
        c = _coefficients(shapes[None], cover[None], grid[None], tune[None])
        gap, bound, weak = (v[0] for v in _weak(c))
        if not weak.any():
            return tune, bits_of(c)
        level = grid + tune[:, None]
        rows = a[weak] * (((level >= 0) & (level <= 255)) @ _LUMA)[None, :]
        need = np.where(gap[weak] >= 0, 1.2, -1.2) * bound - gap[weak]
        gram = rows @ rows.T
        step = rows.T @ np.linalg.solve(gram + 1e-9 * np.trace(gram) * np.eye(len(gram)), need)
        tune = np.clip(np.round(tune + step), -TUNE_LIMIT, TUNE_LIMIT)
    return None


def design_hash(scene: Scene, width: int, height: int, *, crop: tuple[int, int, int, int] | None = None,
                mirrored: bool = False) -> int:
    """The pHash of ``scene`` at ``width`` x ``height`` as the design sees it (of the ``crop`` box, in full-size
    px: a grey render at twice the design size, cut and resized as pHash would); ``mirrored``: of its mirror image
    (the same coefficients with the odd horizontal frequencies negated)."""
    if crop is None:
        shapes, cover = _layers([Picture(pid=0, scene=scene, width=width, height=height, fmt="", quality=0)])
        grid = grid_rgb(scene).reshape(1, 64, 3).astype(np.float64)
        c = _coefficients(shapes, cover, grid, np.zeros((1, 64)))
        return bits_of(c.reshape(8, 8) * _FLIP8 if mirrored else c)
    w, h = (2 * v for v in design_size(width, height))
    grey, _mask = render_grey(scene, w, h)
    sx, sy = w / width, h / height
    small = grey.resize((32, 32), Image.LANCZOS, box=(crop[0] * sx, crop[1] * sy, crop[2] * sx, crop[3] * sy))
    return bits_of(_DCT8 @ np.asarray(small, dtype=np.float64) @ _DCT8.T)


class PictureFactory:
    """Hands out new pictures; their scenes' light fields are tuned and checked in batches (see the module).

    A picture's content (background, shapes, their layout) is drawn from ``rng`` at once, so captions and every
    later draw do not depend on the check; the light field of a picture too close to another group's is redrawn
    from a seed derived from its own, so the result does not depend on where batches start either.
    """

    def __init__(self, rng: random.Random, photo_size: str, *, check_distinct: bool = True):
        if photo_size not in SIZES:
            raise ValueError(f"photo_size must be one of {sorted(SIZES)}, not {photo_size!r}")
        self.rng = rng
        self.photo_size = photo_size
        self.check_distinct = check_distinct
        self.index = NearIndex(DESIGN_MIN_DISTANCE - 1)  # design hashes, tagged with their duplicate group
        self.redrawn = 0  # light fields drawn again (too close to another group, or no tuning found)
        self._pictures: list[Picture] = []
        self._pending: list[Picture] = []

    @property
    def pictures(self) -> list[Picture]:
        """Every picture so far, each with its final (tuned, checked) scene."""
        self._settle()
        return self._pictures

    def far_enough(self, h: int, group: int) -> bool:
        return self.index.nearest_other(h, group) >= DESIGN_MIN_DISTANCE

    def _settle(self) -> None:
        pending, self._pending = self._pending, []
        for pic, result in zip(pending, _tune(pending) if pending else [], strict=True):
            for attempt in range(1, MAX_DRAWS + 1):
                if result is not None and self.far_enough(result[1], pic.pid):
                    break
                self.redrawn += 1
                seed = random.Random(f"{pic.scene.seed}:{attempt}").getrandbits(32)
                result = _tune([replace(pic, scene=replace(pic.scene, seed=seed))])[0]
            else:
                raise RuntimeError(f"no light field puts picture {pic.pid} far enough from {len(self.index)} others")
            self.index.add(result[1], pic.pid)
            pic.scene = result[0]

    def add(self, width: int, height: int, fmt: str, quality: int, *, serve: str = "",
            scene: Scene | None = None) -> Picture:
        grain = GRAIN[self.photo_size] if fmt != "png" else 0
        pic = Picture(pid=len(self._pictures), scene=scene or random_scene(self.rng), width=width, height=height,
                      fmt=fmt, quality=quality, grain=grain, serve=serve)
        self._pictures.append(pic)
        if self.check_distinct:
            self._pending.append(pic)
            if len(self._pending) >= BATCH:
                self._settle()
        return pic

    def photo(self, kind: str, *, fmt: str | None = None, scene: Scene | None = None) -> Picture:
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
        return self.add(width, height, fmt, quality, scene=scene)

    def tiny(self) -> Picture:
        width, height = self.rng.choice(((120, 90), (150, 100), (160, 160), (100, 140)))
        return self.add(width, height, self.rng.choice(("jpeg", "png")), 85)

    def wide(self) -> Picture:
        width, height = self.rng.choice(((1600, 400), (1500, 360), (1200, 300)))
        return self.add(width, height, "jpeg", 85)

    def reshoot(self, base: Picture, kind: str) -> Picture:
        """Another photo of ``base``'s scene: the same shapes, colours and places, its own light field, jitter, size
        and format.  To pHash it is a distinct picture (tuned and checked like any other), to a model nearly the
        same one: what semantic dedup is for."""
        seed = random.Random(f"{base.scene.seed}:reshoot:{len(self._pictures)}").getrandbits(32)
        pic = self.photo(kind, fmt="jpeg", scene=replace(base.scene, seed=seed, tune=b""))
        pic.scene_of = base.pid
        return pic

    def variant(self, base: Picture, transform: str, step: int) -> Picture:
        """A near-duplicate of ``base``: re-encoded, resized, cropped, mirrored, framed or rotated; ``step`` picks a
        gentler setting.

        Re-encoded, resized and framed copies keep their base's pHash (same tuned scene, same framing once the
        clean stage trims the frame).  A crop reframes it, so its own design hash must stay within NEAR_DESIGN_MAX
        of the base's and DESIGN_MIN_DISTANCE from other groups; when no crop from ``step`` on does, the copy is
        re-encoded instead.  A mirrored copy's hash is the base's mirrored design hash, which must be as far from
        other groups (else the copy is re-encoded).  Rotations are checked on the rendered bytes (plan_trouble).
        """
        self._settle()
        width, height, crop = base.width, base.height, None
        quality = base.quality
        if transform == "crop":
            crop = self._crop(base, step)
            if crop is None:
                transform, step = "quality", 3
        if transform == "flip" and self.check_distinct:
            mirrored = design_hash(base.scene, base.width, base.height, mirrored=True)
            if not self.far_enough(mirrored, base.pid):
                transform, step = "quality", 3
            else:
                self.index.add(mirrored, base.pid)
        if transform == "pad":
            width = base.width + 2 * max(1, round(base.width * PAD_SHARE))
            height = base.height + 2 * max(1, round(base.height * PAD_SHARE))
        if transform in ("flip", "pad", "rotate"):
            pass
        elif transform == "quality":
            quality = max(50, base.quality - (20, 12, 6, 3)[min(step, 3)])
        elif transform == "resize":
            factor = (0.75, 0.85, 0.92, 0.97)[min(step, 3)]
            width, height = round(base.width * factor), round(base.height * factor)
        else:
            width, height = crop[2] - crop[0], crop[3] - crop[1]
        pic = Picture(pid=len(self._pictures), scene=base.scene, width=width, height=height, fmt=base.fmt,
                      quality=quality, grain=base.grain, base=base.pid, transform=transform, crop=crop, step=step)
        self._pictures.append(pic)
        return pic

    def _crop(self, base: Picture, step: int) -> tuple[int, int, int, int] | None:
        """The box of the first crop from ``step`` on (a margin of 1% / 0.5% / 0.25% / 1 px per side) that keeps
        the copy near its base and far from everything else, by design hash."""
        base_hash = design_hash(base.scene, base.width, base.height) if self.check_distinct else 0
        for frac in CROP_MARGINS[min(step, 3):]:
            dx, dy = max(1, round(base.width * frac)), max(1, round(base.height * frac))
            crop = (dx, dy, base.width - dx, base.height - dy)
            if not self.check_distinct:
                return crop
            h = design_hash(base.scene, base.width, base.height, crop=crop)
            if hamming(h, base_hash) <= NEAR_DESIGN_MAX and self.far_enough(h, base.pid):
                self.index.add(h, base.pid)
                return crop
        return None
