"""What a curate pass shows a person: the alignment histogram with the cut, and a sheet of the lowest- and
highest-scored pairs (the first place to see whether the scorer ranks mismatched captions last)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from data_schemas import CURATE_DIR, Manifest, atomic_write_bytes, reasons
from pipeline.config import CleanConfig
from pipeline.tools._read import thumbnail
from pipeline.tools._stats import Thumb
from pipeline.tools.grid import write_grid

HISTOGRAM_NAME = "alignment.png"
EXTREMES_NAME = "extremes.png"
EXTREMES = 12  # pairs at each end of the ranking


def write_report(data: Path, parent: Manifest, rows, decision, folder: Path, *, splits: tuple[str, ...]) -> list[str]:
    """-> the figures' names relative to the dataset directory."""
    pool = np.flatnonzero(np.isin(rows.split, list(splits)) & ~np.isnan(rows.alignment))
    if not len(pool):
        return []
    atomic_write_bytes(folder / HISTOGRAM_NAME, histogram_png(rows.alignment[pool], decision.reason[pool],
                                                              cut=decision.cut))
    max_pixels = int(parent.parameters.get("max_pixels") or CleanConfig.max_pixels)  # the parent's decode limit
    order = pool[np.argsort(rows.alignment[pool], kind="stable")]
    picked = list(order[:EXTREMES]) + list(order[::-1][:EXTREMES])
    thumbs = []
    for i, (caption, image) in zip(picked, read_rows(data, parent, rows, picked), strict=True):
        label = f"{rows.alignment[i]:.3f} {decision.reason[i] or 'kept'}: {caption}"
        preview = thumbnail(image, 200, max_pixels=max_pixels)
        thumbs.append(Thumb(str(rows.keys[i]), label, str(rows.source[i]), None, None, preview))
    write_grid(thumbs, folder / EXTREMES_NAME, columns=6)
    return [f"{CURATE_DIR}/{HISTOGRAM_NAME}", f"{CURATE_DIR}/{EXTREMES_NAME}"]


def histogram_png(alignment: np.ndarray, reason: np.ndarray, *, cut: float | None, bins: int = 40) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(float(alignment.min()), float(alignment.max()) + 1e-6, bins + 1)
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    groups = [("kept", reason == ""), (reasons.LOW_ALIGNMENT, reason == reasons.LOW_ALIGNMENT),
              (reasons.DUPLICATE_SEMANTIC, reason == reasons.DUPLICATE_SEMANTIC)]
    ax.hist([alignment[m] for _, m in groups], bins=edges, stacked=True,
            label=[f"{name} ({int(m.sum())})" for name, m in groups], color=["#4c8", "#d64", "#68c"])
    if cut is not None:
        ax.axvline(cut, color="black", linestyle="--", linewidth=1, label=f"cut {cut:.3f}")
    ax.set_xlabel("alignment (image-caption cosine)")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def read_rows(data: Path, parent: Manifest, rows, indices: list[int]) -> list[tuple[str, bytes]]:
    """(caption, image bytes) of some rows, reading only the row groups that hold them."""
    first = {}  # shard index -> position of its first row in `rows`
    for i in range(len(rows.shard) - 1, -1, -1):
        first[int(rows.shard[i])] = i
    out = {}
    for shard in sorted({int(rows.shard[i]) for i in indices}):
        pf = pq.ParquetFile(data / parent.shards[shard].name)
        bounds = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
        wanted = [i for i in indices if rows.shard[i] == shard]
        for group in sorted({int(np.searchsorted(bounds, i - first[shard], side="right") - 1) for i in wanted}):
            cols = pf.read_row_group(group, columns=["caption", "image"]).to_pydict()
            for i in wanted:
                offset = i - first[shard] - bounds[group]
                if 0 <= offset < len(cols["caption"]):
                    out[i] = (cols["caption"][offset], cols["image"][offset])
    return [out[i] for i in indices]
