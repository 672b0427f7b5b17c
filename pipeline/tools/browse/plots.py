"""The browser's plots as PNGs drawn on the server with matplotlib's object API (no pyplot: no global state, so
requests may draw at the same time), from DuckDB aggregates only: no plot ever reads an image."""

from __future__ import annotations

import io
from collections.abc import Callable

from matplotlib.figure import Figure

from pipeline.tools.browse.query import DatasetQueries

_BLUE, _RED = "#4a7fd4", "#d4644a"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return buf.getvalue()


def _barh(items: list[tuple[str, int]], *, title: str, colours: list[str] | None = None) -> bytes:
    fig = Figure(figsize=(6.5, 0.35 * max(len(items), 3) + 0.8))
    ax = fig.subplots()
    labels = [str(k) for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    bars = ax.barh(labels, values, color=(colours or [_BLUE] * len(items))[::-1])
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.15)
    ax.tick_params(labelsize=8)
    return _png(fig)


def funnel(q: DatasetQueries) -> bytes:
    items = q.funnel()
    colours = [_BLUE] + [_RED] * (len(items) - 2) + [_BLUE]
    return _barh(items, title="Funnel: rows in, each drop reason, rows out", colours=colours)


def _shares(q: DatasetQueries, column: str, title: str) -> bytes:
    rows = q.fetch(f"SELECT coalesce({column}, '(none)') AS k, count(*) AS n FROM rows GROUP BY 1 "
                   "ORDER BY 2 DESC, 1 LIMIT 20")
    total = sum(r["n"] for r in rows) or 1
    return _barh([(f"{r['k']} ({100 * r['n'] / total:.0f}%)", r["n"]) for r in rows], title=title)


def _hist(values: list[float], *, title: str, xlabel: str, log: bool = False) -> bytes:
    fig = Figure(figsize=(6.5, 2.8))
    ax = fig.subplots()
    if values:
        ax.hist(values, bins=30, color=_BLUE, log=log)
    ax.set_title(f"{title} ({len(values):,} rows)", fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(labelsize=8)
    return _png(fig)


def caption_length(q: DatasetQueries) -> bytes:
    return _hist(q.column("SELECT length(caption) FROM rows"), title="Caption length", xlabel="characters")


def image_size(q: DatasetQueries) -> bytes:
    rows = q.fetch("SELECT width, height FROM rows USING SAMPLE 20000 ROWS")
    fig = Figure(figsize=(6.5, 2.8))
    left, right = fig.subplots(1, 2)
    left.scatter([r["width"] for r in rows], [r["height"] for r in rows], s=6, alpha=0.5, color=_BLUE)
    left.set_title("Image size (stored)", fontsize=10)
    left.set_xlabel("width", fontsize=9)
    left.set_ylabel("height", fontsize=9)
    right.hist([r["width"] / r["height"] for r in rows if r["height"]], bins=30, color=_BLUE)
    right.set_title("Aspect (width / height)", fontsize=10)
    for ax in (left, right):
        ax.tick_params(labelsize=8)
    return _png(fig)


PLOTS: dict[str, tuple[str, Callable[[DatasetQueries], bytes]]] = {
    "funnel": ("Funnel", funnel),
    "caption_length": ("Caption length", caption_length),
    "image_size": ("Image size and aspect", image_size),
    "lang": ("Languages", lambda q: _shares(q, "lang", "Language shares")),
    "source": ("Sources", lambda q: _shares(q, "source", "Source shares")),
}
