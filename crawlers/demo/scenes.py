"""Pictures whose captions are true: a scene is a background plus one or two groups of coloured shapes.

The caption generators in ``captions.py`` describe exactly what ``render_scene`` draws (counts, colours, shapes,
their relation, the background), so a model trained on the demo data can really learn retrieval.  Each scene also
carries a smooth random light field over its background: it makes perceptual hashes of different scenes
effectively independent, so distinct pictures stay far apart in pHash space even when their shapes agree.
"""

from __future__ import annotations

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


def _light_field(scene: Scene, width: int, height: int) -> Image.Image:
    """Background colour modulated by a smooth random field (an 8x8 grid of gains, bicubically upsampled).

    8x8 gains give the 8x8 low-frequency DCT block that pHash reads about as many free parameters as it has bits,
    so hashes of different scenes behave almost like independent random numbers.
    """
    rng = np.random.default_rng(scene.seed)
    gains = rng.uniform(0.65, 1.3, size=(8, 8, 1))
    base = np.asarray(COLOURS[scene.background], dtype=np.float64)[None, None, :]
    grid = np.clip(base * gains + (gains - 1.0) * 40.0, 0, 255).astype(np.uint8)
    # Bicubic up to quarter size, then nearest: the same smooth field at any resolution for a tenth of the cost of a
    # full-size bicubic upsampling; neighbouring 4x4 blocks differ by less than one grey level, invisible in a JPEG.
    quarter = Image.fromarray(grid, "RGB").resize((max(8, (width + 3) // 4), max(8, (height + 3) // 4)),
                                                   Image.BICUBIC)
    return quarter.resize((width, height), Image.NEAREST)


def render_scene(scene: Scene, width: int, height: int, *, grain: int = 0) -> Image.Image:
    image = _light_field(scene, width, height)
    draw = ImageDraw.Draw(image)
    jitter = random.Random(scene.seed)
    unit = min(width, height)
    for group, (x0, y0, x1, y1) in zip(scene.groups, _regions(scene), strict=True):
        cols = min(group.count, 2 if (x1 - x0) < 0.5 else 4)
        rows = math.ceil(group.count / cols)
        cell_w, cell_h = (x1 - x0) * width / cols, (y1 - y0) * height / rows
        r = min(cell_w, cell_h) * 0.36
        r = min(r, unit * 0.2)
        for k in range(group.count):
            cx = x0 * width + cell_w * (k % cols + 0.5) + jitter.uniform(-0.08, 0.08) * cell_w
            cy = y0 * height + cell_h * (k // cols + 0.5) + jitter.uniform(-0.08, 0.08) * cell_h
            fill = COLOURS[group.colour]
            outline = (0, 0, 0) if group.colour != "black" else (255, 255, 255)
            if group.shape == "circle":
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=max(1, unit // 200))
            else:
                draw.polygon(_shape_points(group.shape, cx, cy, r, jitter.uniform(0, 1)), fill=fill, outline=outline,
                             width=max(1, unit // 200))
    if grain:
        image = _add_grain(image, grain, scene.seed)
    return image


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
