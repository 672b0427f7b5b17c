"""Bytes for every image URL: scene pictures at any served width, their near-duplicates, and the broken ones.

Everything is a pure function of the plan, so the same site always serves the same bytes.  Rendering happens on
demand (the site keeps an LRU cache), which is what lets a 50,000-article site start in seconds.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache

from PIL import Image

from crawlers.demo.model import Picture
from crawlers.demo.scenes import render_scene

TRUNCATE_AT = 0.55  # a truncated body keeps this share of the encoded image
ROTATE_DEGREES = (2.0, -1.5, 1.0, -0.5)  # a rotated near-duplicate, by step (gentler ones later)
PAD_COLOURS = ((255, 255, 255), (0, 0, 0))  # a framed near-duplicate's border: white, or black bars
PAD_SHARE = 0.05  # border width per side, as a share of the picture's side
BOMB_SIDE = 20_000  # the decompression bomb declares BOMB_SIDE x BOMB_SIDE pixels


def encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=quality, optimize=False, progressive=False)
    elif fmt == "webp":
        image.save(out, "WEBP", quality=quality, method=0)
    elif fmt == "png":
        image.save(out, "PNG", compress_level=1)
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return out.getvalue()


def render_picture(pictures: list[Picture], pid: int, width: int | None = None) -> Image.Image:
    """The decoded pixels of picture ``pid`` at its native size, or scaled to ``width`` (srcset / previews)."""
    pic = pictures[pid]
    if pic.base is None:
        if width is None or width >= pic.width:
            return render_scene(pic.scene, pic.width, pic.height, grain=pic.grain)
        return render_scene(pic.scene, width, max(1, round(pic.height * width / pic.width)), grain=pic.grain)
    base = render_picture(pictures, pic.base)
    if pic.transform == "crop":
        base = base.crop(pic.crop)
    elif pic.transform == "flip":
        base = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif pic.transform == "rotate":
        base = base.rotate(ROTATE_DEGREES[pic.step], resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
    elif pic.transform == "pad":
        dx, dy = (pic.width - base.width) // 2, (pic.height - base.height) // 2
        framed = Image.new("RGB", (pic.width, pic.height), PAD_COLOURS[pic.step % len(PAD_COLOURS)])
        framed.paste(base, (dx, dy))
        base = framed
    if base.size != (pic.width, pic.height):
        base = base.resize((pic.width, pic.height), Image.LANCZOS)
    if width is not None and width < pic.width:
        base = base.resize((width, max(1, round(pic.height * width / pic.width))), Image.LANCZOS)
    return base


def picture_bytes(pictures: list[Picture], pid: int, width: int | None, fmt: str) -> bytes:
    """The served body; serving trouble (truncation, bombs, non-images) applies to the native URL only."""
    pic = pictures[pid]
    native = width is None or width >= pic.width
    if native and pic.serve == "bomb":
        return bomb_png()
    if native and pic.serve == "not_image":
        return NOT_IMAGE_BODY
    data = encode(render_picture(pictures, pid, width), fmt, pic.quality)
    if native and pic.serve == "truncated":
        return data[: int(len(data) * TRUNCATE_AT)]
    return data


NOT_IMAGE_BODY = (b"<!DOCTYPE html><html><head><title>Access denied</title></head><body><h1>Access denied</h1>"
                  b"<p>You are not allowed to hotlink this resource.</p></body></html>\n")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=1)
def bomb_png() -> bytes:
    """A valid 1-bit PNG of BOMB_SIDE^2 white pixels: ~50 KB on the wire, 400 megapixels once decoded."""
    row = b"\x00" + b"\xff" * (BOMB_SIDE // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(BOMB_SIDE)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts))
            + _png_chunk(b"IEND", b""))


# --- non-content images: what a crawler must recognise and skip -----------------------------------------------

@lru_cache(maxsize=1)
def tracking_pixel_gif() -> bytes:
    return (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
            b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


@lru_cache(maxsize=8)
def flat_image(width: int, height: int, rgb: tuple[int, int, int], fmt: str) -> bytes:
    image = Image.new("RGB", (width, height), rgb)
    out = io.BytesIO()
    image.save(out, {"jpeg": "JPEG", "png": "PNG", "gif": "GIF"}[fmt])
    return out.getvalue()


SHARE_ICON_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">'
                  b'<circle cx="4" cy="8" r="2"/><circle cx="12" cy="4" r="2"/><circle cx="12" cy="12" r="2"/>'
                  b'<path d="M4 8L12 4M4 8l8 4" stroke="#000"/></svg>\n')
