"""A synthetic CLEAN dataset of coloured shapes whose captions describe them exactly.

Used by the training tests, the benchmarks and the GPU smoke script, so a model can be checked for real learning
(captions are fully determined by the pixels) without the crawler or the clean stage.  It writes exactly what the
clean stage writes: CLEAN_SCHEMA shards with several row groups, and a manifest listing them, written last.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

from data_schemas import CLEAN_SCHEMA, Manifest, ShardInfo, atomic_write_parquet, file_sha256, row_id
from data_schemas.layout import shard_name

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 220), "yellow": (240, 220, 40),
           "white": (245, 245, 245), "black": (15, 15, 15), "purple": (140, 50, 170), "orange": (250, 140, 20)}
SHAPES = ("circle", "square", "triangle")
COUNTS = ("one", "two", "three")
POSITIONS = {"on the left": (0.25, 0.5), "on the right": (0.75, 0.5), "at the top": (0.5, 0.25),
             "at the bottom": (0.5, 0.75)}


@dataclass(frozen=True)
class SyntheticSpec:
    rows: int = 400
    val_fraction: float = 0.2
    image_size: int = 96
    rows_per_shard: int = 100
    row_group_size: int = 25
    corrupt: int = 0  # the first `corrupt` train rows get undecodable image bytes
    seed: int = 0


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: tuple) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=fill)


def make_example(rng: np.random.Generator, size: int) -> tuple[bytes, str]:
    """One JPEG and its caption, e.g. 'two red circles on a blue background'."""
    names = list(COLOURS)
    colour, bg = rng.choice(names, size=2, replace=False)
    shape = SHAPES[rng.integers(len(SHAPES))]
    count = int(rng.integers(1, 4))
    img = Image.new("RGB", (size, size), COLOURS[bg])
    draw = ImageDraw.Draw(img)
    r = size * rng.uniform(0.1, 0.14)
    if count == 1 and rng.random() < 0.5:
        where = list(POSITIONS)[rng.integers(len(POSITIONS))]
        fx, fy = POSITIONS[where]
        centres = [(fx * size, fy * size)]
        caption = f"one {colour} {shape} {where} of a {bg} background"
    else:
        cells = rng.permutation(9)[:count]
        centres = [((c % 3 + 0.5) * size / 3, (c // 3 + 0.5) * size / 3) for c in cells]
        noun = shape if count == 1 else f"{shape}s"
        caption = f"{COUNTS[count - 1]} {colour} {noun} on a {bg} background"
    for cx, cy in centres:
        jitter = rng.uniform(-0.04, 0.04, size=2) * size
        _draw_shape(draw, shape, cx + jitter[0], cy + jitter[1], r, COLOURS[colour])
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), caption


def _row(args: tuple[SyntheticSpec, int]) -> dict:
    spec, i = args
    data, caption = make_example(np.random.default_rng([spec.seed, i]), spec.image_size)
    page, image_url = f"http://127.0.0.1/synthetic/{i}", f"http://127.0.0.1/synthetic/{i}.jpg"
    key = row_id(page, image_url)
    split = "val" if i >= spec.rows - int(round(spec.rows * spec.val_fraction)) else "train"
    if split == "train" and i < spec.corrupt:
        data = data[: len(data) // 3] if i % 2 else b"not a jpeg at all"
    sha = hashlib.sha256(data).hexdigest()
    return dict(key=key, caption=caption, caption_origin="alt", image=data, width=spec.image_size,
                height=spec.image_size, original_width=spec.image_size, original_height=spec.image_size, sha256=sha,
                phash=int(sha[:16], 16), lang="en", source="synthetic", source_kind="news", page_url=page,
                image_url=image_url, published_at=None, crawled_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
                license="CC0-1.0", credit=None, split=split, dup_cluster=key)


def _rows(spec: SyntheticSpec, processes: int) -> list[dict]:
    """Each row has its own seed, so the rows are the same however many processes draw them."""
    jobs = [(spec, i) for i in range(spec.rows)]
    if processes <= 1:
        return [_row(j) for j in jobs]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return pool.map(_row, jobs, chunksize=64)


def write_synthetic_clean(out_dir: str | Path, spec: SyntheticSpec | None = None, *, processes: int = 1) -> Path:
    """Write ``out_dir/shards/{train,val}-NNNNN.parquet`` and ``out_dir/_manifest.json``; return ``out_dir``."""
    spec = spec or SyntheticSpec()
    out_dir = Path(out_dir)
    rows = _rows(spec, processes)
    shards: list[ShardInfo] = []
    for split in ("train", "val"):
        part = [r for r in rows if r["split"] == split]
        for n, start in enumerate(range(0, len(part), spec.rows_per_shard)):
            chunk = part[start:start + spec.rows_per_shard]
            name = shard_name(split, n)
            table = pa.Table.from_pylist(chunk, schema=CLEAN_SCHEMA)
            path = atomic_write_parquet(out_dir / name, table, row_group_size=spec.row_group_size)
            shards.append(ShardInfo(name=name, rows=len(chunk), bytes=path.stat().st_size, sha256=file_sha256(path),
                                    split=split))
    per_split = {s: sum(1 for r in rows if r["split"] == s) for s in ("train", "val")}
    manifest = Manifest(parameters={"generator": "training.synthetic", "seed": spec.seed}, rows_in=len(rows),
                        rows_out=len(rows), per_source={"synthetic": len(rows)}, per_split=per_split, shards=shards)
    manifest.write(out_dir)
    return out_dir
