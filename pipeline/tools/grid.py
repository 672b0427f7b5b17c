"""The contact sheet: one PNG with N thumbnails and their captions, for a quick look or a slide."""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from data_schemas import atomic_write_bytes
from pipeline.tools._stats import Thumb

CELL = 200  # thumbnail box, pixels
PAD = 8
CAPTION_LINES = 3
FONT_SIZE = 12


def _font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib, a project dependency) covers accented and non-Latin captions;
    Pillow's built-in font is the fallback."""
    try:
        import matplotlib

        path = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def _wrap(text: str, font, width: int, lines: int) -> list[str]:
    """Greedy word wrap by rendered width; the last line ends with an ellipsis when the caption is longer."""
    words, out, cur = text.split(), [], ""
    for word in words:
        trial = f"{cur} {word}".strip()
        if font.getlength(trial) <= width:
            cur = trial
            continue
        if cur:
            out.append(cur)
        cur = word
        while font.getlength(cur) > width and len(cur) > 1:  # one very long token (a URL): hard-break it
            cut = max(1, int(len(cur) * width / font.getlength(cur)) - 1)
            out.append(cur[:cut])
            cur = cur[cut:]
    if cur:
        out.append(cur)
    if len(out) > lines:
        out = out[:lines]
        last = out[-1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        out[-1] = last + "…"
    return out


def render_grid(thumbs: list[Thumb], *, columns: int | None = None, cell: int = CELL) -> Image.Image:
    font = _font(FONT_SIZE)
    n = max(len(thumbs), 1)
    cols = columns or min(6, max(1, math.ceil(math.sqrt(n))))
    line_h = FONT_SIZE + 3
    cell_h = cell + PAD + CAPTION_LINES * line_h + PAD
    rows = math.ceil(n / cols)
    sheet = Image.new("RGB", (cols * (cell + PAD) + PAD, rows * cell_h + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    for i, t in enumerate(thumbs):
        x0 = PAD + (i % cols) * (cell + PAD)
        y0 = PAD + (i // cols) * cell_h
        draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(235, 235, 235))
        if t.image is not None:
            scale = min(cell / t.image.width, cell / t.image.height)  # fit the cell, small images included
            img = t.image.resize((max(1, round(t.image.width * scale)), max(1, round(t.image.height * scale))))
            sheet.paste(img, (x0 + (cell - img.width) // 2, y0 + (cell - img.height) // 2))
        else:
            draw.text((x0 + 10, y0 + cell // 2), "no image", fill=(150, 150, 150), font=font)
        for j, line in enumerate(_wrap(t.caption, font, cell, CAPTION_LINES)):
            draw.text((x0, y0 + cell + PAD // 2 + j * line_h), line, fill=(30, 30, 30), font=font)
    return sheet


def write_grid(thumbs: list[Thumb], path: Path, *, columns: int | None = None) -> Path:
    buf = io.BytesIO()
    render_grid(thumbs, columns=columns).save(buf, format="PNG", optimize=True)
    return atomic_write_bytes(path, buf.getvalue())
