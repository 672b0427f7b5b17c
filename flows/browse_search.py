"""`mmpipe browse --run RUN`: the model side of the dataset browser, composed here because it joins two stages.

`pipeline.tools.browse` never imports training; this module builds what it needs from a training run: a text
encoder (training's embedder for that run, the same one `mmpipe score` uses) and the image embeddings of every row
(the ``_scores/<run>/`` tables `mmpipe score` writes; scored now where they are missing or stale, through the
score stage's own entry function, which only scores shards without a current part).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas import SCORE_PART_GLOB
from pipeline.tools.browse import ImageSearch


def read_image_embeddings(scores: Path) -> tuple[list[str], np.ndarray]:
    """Keys and float32 image embeddings of every scored row whose image decoded (others have none)."""
    parts = sorted(Path(scores).glob(SCORE_PART_GLOB))
    if not parts:
        return [], np.zeros((0, 0), np.float32)
    table = pa.concat_tables([pq.read_table(p, columns=["key", "image_embedding"]) for p in parts])
    table = table.filter(table.column("image_embedding").is_valid())
    if table.num_rows == 0:
        return [], np.zeros((0, 0), np.float32)
    emb = table.column("image_embedding").combine_chunks()
    flat = emb.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return table.column("key").to_pylist(), flat.reshape(table.num_rows, -1)


def run_search(data: str | Path, run: str | Path, *, device: str = "auto", progress: bool = True) -> ImageSearch:
    """Text-to-image search and "more like this" with training run ``run``'s model over dataset ``data``."""
    from training.config import ScoreConfig
    from training.distributed import pick_device
    from training.embedders import build_embedder
    from training.score import score

    cfg = ScoreConfig(data=Path(data), run=Path(run), num_workers=0, device=device, progress=progress)
    keys, embeddings = read_image_embeddings(score(cfg))  # a no-op where every shard has a current part
    dev = pick_device(device)
    embedder = build_embedder(cfg, dev)

    def encode_text(phrase: str) -> np.ndarray:
        _, inputs = embedder.prepare([b""], [phrase])  # no image: only the caption side is prepared
        return embedder.embed(inputs, dev)[1][0]

    identity = embedder.identity
    return ImageSearch(keys, embeddings, encode_text, model=f"{Path(run).name} (step {identity.get('step')})")
