"""Pictures whose captions are true: a scene is a background plus one or two groups of coloured shapes.

The caption generators in ``captions.py`` describe exactly what ``render_scene`` draws (counts, colours, shapes,
their relation, the background), so a model trained on the demo data can really learn retrieval.  Each scene also
carries a smooth random light field over its background: it makes perceptual hashes of different scenes
effectively independent, so distinct pictures stay far apart in pHash space even when their shapes agree.

Everything is drawn in proportion to the picture (outlines included, and without Pillow's half-pixel overdraw), so
a small render looks to pHash like the full-size photo; ``pictures.py`` plans every picture's pHash on such renders
and stores a small *tuning* of the light field in the scene that keeps every pHash bit clear of its threshold.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (208, 40, 40), "blue": (40, 80, 210), "green": (40, 150, 60), "yellow": (235, 205, 40),
    "black": (25, 25, 25), "white": (245, 245, 245), "grey": (128, 128, 128), "orange": (240, 130, 30),
    "purple": (130, 50, 170), "pink": (240, 130, 180), "brown": (120, 75, 40),
}
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "diamond")
RELATIONS = ("above", "below", "left", "right")
POSITIONS = ("centre", "top-left", "top-right", "bottom-left", "bottom-right")
OUTLINE = 0.0045  # outline thickness as a share of the short side (3 px on a 683 px short side)
_PAINT_GROWTH = 0.5  # px: Pillow fills polygons and ellipses with inclusive bounds, half a pixel past each edge
_INRADIUS = {"square": 1.0, "diamond": 0.666, "triangle": 0.5, "hexagon": 0.866, "star": 0.384}  # x radius
LIGHT_LOW, LIGHT_HIGH = 0.65, 1.3  # range of the light field's gains
LIGHT_AMPLITUDE = 190.0  # grey levels of light per unit of gain, the same on every background colour
LIGHT_HEADROOM = 16  # the light field stays this far from 0 and 255 (see _soft_limits)


@dataclass(frozen=True)
class Group:
    count: int
    colour: str
    shape: str


@dataclass(frozen=True)
class Scene:
    background: str
    groups: tuple[Group, ...]  # one or two
    relation: str  # for two groups: where groups[0] is relative to groups[1]
    position: str  # for one group
    seed: int  # light field and jitter
    tune: bytes = b""  # 8x8 signed grey levels added to the light field (set by pictures.py, see there)

    def colour_distance_ok(self) -> bool:
        return all(g.colour != self.background for g in self.groups)


def random_scene(rng: random.Random) -> Scene:
    background = rng.choice(list(COLOURS))
    others = [c for c in COLOURS if c != background]
    n_groups = 1 if rng.random() < 0.3 else 2
    groups = []
    for _ in range(n_groups):
        groups.append(Group(count=rng.choice((1, 1, 2, 2, 3, 4)), colour=rng.choice(others), shape=rng.choice(SHAPES)))
    if n_groups == 2 and (groups[0].colour, groups[0].shape) == (groups[1].colour, groups[1].shape):
        groups[1] = Group(groups[1].count, rng.choice([c for c in others if c != groups[0].colour]), groups[1].shape)
    return Scene(background=background, groups=tuple(groups), relation=rng.choice(RELATIONS),
                 position=rng.choice(POSITIONS), seed=rng.getrandbits(32))


def _regions(scene: Scene) -> list[tuple[float, float, float, float]]:
    """Boxes (x0, y0, x1, y1) in unit coordinates, one per group, that make the caption's relation true."""
    if len(scene.groups) == 1:
        return [{
            "centre": (0.25, 0.25, 0.75, 0.75), "top-left": (0.03, 0.03, 0.45, 0.45),
            "top-right": (0.55, 0.03, 0.97, 0.45), "bottom-left": (0.03, 0.55, 0.45, 0.97),
            "bottom-right": (0.55, 0.55, 0.97, 0.97),
        }[scene.position]]
    top, bottom = (0.1, 0.04, 0.9, 0.46), (0.1, 0.54, 0.9, 0.96)
    left, right = (0.04, 0.1, 0.46, 0.9), (0.54, 0.1, 0.96, 0.9)
    pairs = {"above": [top, bottom], "below": [bottom, top], "left": [left, right], "right": [right, left]}
    return pairs[scene.relation]


def _shape_points(shape: str, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r * 1.2), (cx + r * 0.8, cy), (cx, cy + r * 1.2), (cx - r * 0.8, cy)]
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if shape == "hexagon":
        return [(cx + r * math.cos(turn + k * math.pi / 3), cy + r * math.sin(turn + k * math.pi / 3))
                for k in range(6)]
    points = []  # star
    for k in range(10):
        radius = r if k % 2 == 0 else r * 0.45
        a = -math.pi / 2 + k * math.pi / 5
        points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return points


def light_grid(scenes: list[Scene]) -> np.ndarray:
    """The light fields' 8x8 RGB control points before tuning, (n, 64, 3): the background colour times a random
    gain, plus a grey offset, bent into [LIGHT_HEADROOM, 255 - LIGHT_HEADROOM].

    8x8 gains give the 8x8 low-frequency DCT block that pHash reads about as many free parameters as it has bits,
    so hashes of different scenes behave almost like independent random numbers.  A grey offset per unit of gain
    gives every background the same swing in brightness (LIGHT_AMPLITUDE per unit of gain): a gain alone barely
    changes a black background, and then the shapes' layout, not the light, decides the hash.
    """
    raw = np.frombuffer(b"".join(hashlib.shake_128(s.seed.to_bytes(8, "little")).digest(64) for s in scenes),
                        dtype=np.uint8).reshape(-1, 64, 1)
    gains = LIGHT_LOW + (LIGHT_HIGH - LIGHT_LOW) * (raw + 0.5) / 256
    base = np.asarray([COLOURS[s.background] for s in scenes], dtype=np.float64)[:, None, :]
    offset = LIGHT_AMPLITUDE - np.asarray([luma(COLOURS[s.background]) for s in scenes], dtype=np.float64)
    return _soft_limits(base * gains + (gains - 1.0) * offset[:, None, None])


def _soft_limits(levels: np.ndarray) -> np.ndarray:
    """Levels bent smoothly into [LIGHT_HEADROOM, 255 - LIGHT_HEADROOM] instead of clipped at 0 and 255: a white or
    black background keeps its light (and pictures.py room to tune it) where a clip would flatten it."""
    h = LIGHT_HEADROOM
    top, bottom = 255 - 2 * h, 2 * h
    bent = np.where(levels > top, top + h * np.tanh((levels - top) / h), levels)
    return np.where(bent < bottom, bottom - h * np.tanh((bottom - bent) / h), bent)


def grid_rgb(scene: Scene) -> np.ndarray:
    """The 8x8 RGB grid the picture is drawn from: light_grid plus the scene's tuning (grey levels), clipped."""
    grid = light_grid([scene])[0]
    if scene.tune:
        grid = grid + np.frombuffer(scene.tune, dtype=np.int8)[:, None]
    return np.clip(grid, 0, 255).reshape(8, 8, 3).astype(np.uint8)


def _light_field(scene: Scene, width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Background colour modulated by a smooth random field (the 8x8 grid, bicubically upsampled)."""
    # Bicubic up to quarter size, then nearest: the same smooth field at any resolution for a tenth of the cost of a
    # full-size bicubic upsampling; neighbouring 4x4 blocks differ by less than one grey level, invisible in a JPEG.
    quarter = Image.fromarray(grid_rgb(scene), "RGB").resize((max(8, (width + 3) // 4), max(8, (height + 3) // 4)),
                                                          Image.BICUBIC)
    if mode == "L":  # converted after the bicubic step, where Pillow clips each channel, as the RGB picture is
        quarter = quarter.convert("L")
    return quarter.resize((width, height), Image.NEAREST)


def luma(rgb: tuple[int, int, int]) -> int:
    """Pillow's RGB -> L conversion of one colour (ITU-R 601-2 weights, rounded the way Pillow rounds)."""
    r, g, b = rgb
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16


def _shapes(scene: Scene, width: int, height: int, left: int = 0):
    """(shape, outline geometry, fill geometry, fill colour, outline colour) for every shape, in drawing order.

    The outline is a shape of the outline colour with the fill drawn inset on top of it, so its thickness is a
    fixed share of the picture at every size (Pillow's integer outline widths are not); every edge is pulled in by
    the half pixel Pillow paints past it, so areas do not depend on the resolution either.
    """
    jitter = random.Random(scene.seed)
    unit = min(width, height)
    thickness = unit * OUTLINE
    for group, (x0, y0, x1, y1) in zip(scene.groups, _regions(scene), strict=True):
        cols = min(group.count, 2 if (x1 - x0) < 0.5 else 4)
        rows = math.ceil(group.count / cols)
        cell_w, cell_h = (x1 - x0) * width / cols, (y1 - y0) * height / rows
        r = min(min(cell_w, cell_h) * 0.36, unit * 0.2)
        fill = COLOURS[group.colour]
        outline = (0, 0, 0) if group.colour != "black" else (255, 255, 255)
        for k in range(group.count):
            cx = left + x0 * width + cell_w * (k % cols + 0.5) + jitter.uniform(-0.08, 0.08) * cell_w
            cy = y0 * height + cell_h * (k // cols + 0.5) + jitter.uniform(-0.08, 0.08) * cell_h
            if group.shape == "circle":
                outer, inner = r - _PAINT_GROWTH, r - thickness - _PAINT_GROWTH
                yield ("circle", (cx - outer, cy - outer, cx + outer, cy + outer),
                       (cx - inner, cy - inner, cx + inner, cy + inner), fill, outline)
                continue
            turn = jitter.uniform(0, 1)
            inradius = r * _INRADIUS[group.shape]
            outer = r * (1 - _PAINT_GROWTH / inradius)
            inner = r * (1 - (thickness + _PAINT_GROWTH) / inradius)
            yield (group.shape, _shape_points(group.shape, cx, cy, outer, turn),
                   _shape_points(group.shape, cx, cy, inner, turn), fill, outline)


def render_scene(scene: Scene, width: int, height: int, *, grain: int = 0) -> Image.Image:
    image = _light_field(scene, width, height)
    _paint(image, None, scene, width, height)
    if grain:
        image = _add_grain(image, grain, scene.seed)
    return image


def render_grey(scene: Scene, width: int, height: int) -> tuple[Image.Image, Image.Image]:
    """The picture in grey, as pHash sees it, and the mask (255) of the shapes that hide the light field.

    Pillow's RGB -> L conversion is linear, so drawing grey colours on the grey light field (converted after the
    bicubic step, where Pillow clips each channel, as in the RGB picture) gives the RGB picture's L to the level.
    """
    image = _light_field(scene, width, height, "L")
    mask = Image.new("L", (width, height), 0)
    _paint(image, mask, scene, width, height)
    return image, mask


def render_shapes(scenes: list[Scene], width: int, height: int) -> tuple[Image.Image, Image.Image]:
    """Each scene's shapes alone, in grey on black, side by side (scene i from x = i * width), and their mask (255):
    with the light field's grid, all that pHash needs (see pictures.py)."""
    image = Image.new("L", (width * len(scenes), height), 0)
    mask = Image.new("L", image.size, 0)
    for i, scene in enumerate(scenes):
        _paint(image, mask, scene, width, height, i * width)
    return image, mask


def _paint(image: Image.Image, mask: Image.Image | None, scene: Scene, width: int, height: int,
           left: int = 0) -> None:
    draw = ImageDraw.Draw(image)
    cover = ImageDraw.Draw(mask) if mask is not None else None
    grey = image.mode == "L"
    for shape, outer, inner, fill, outline in _shapes(scene, width, height, left):
        if grey:
            fill, outline = luma(fill), luma(outline)
        paint = draw.ellipse if shape == "circle" else draw.polygon
        paint(outer, fill=outline)
        paint(inner, fill=fill)
        if cover is not None:
            (cover.ellipse if shape == "circle" else cover.polygon)(outer, fill=255)


_GRAIN_TILE = 256


def _add_grain(image: Image.Image, amount: int, seed: int) -> Image.Image:
    """Film-grain-like noise from one tiled random tile: photo-sized JPEGs at a fraction of the cost of full noise."""
    rng = np.random.default_rng(seed ^ 0x5EED)
    tile = rng.integers(-amount, amount + 1, size=(_GRAIN_TILE, _GRAIN_TILE, 1), dtype=np.int16)
    arr = np.asarray(image, dtype=np.int16)
    h, w = arr.shape[:2]
    reps = (math.ceil(h / _GRAIN_TILE), math.ceil(w / _GRAIN_TILE), 1)
    noise = np.tile(tile, reps)[:h, :w]
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8), "RGB")
