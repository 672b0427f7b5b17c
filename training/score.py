"""The scoring stage: ``score(ScoreConfig) -> scores directory``, read top to bottom.

For every row of a dataset (every split): the image embedding, the text embedding and their cosine (the
image-caption *alignment*, DataComp's "CLIP score") from one model, written as SCORES Parquet files keyed by
``key`` under ``DATASET/_scores/<run-id>/``: one ``part-NNNNN.pq`` per shard, each written whole under a temporary
name and renamed, with the model's identity and the shard's name and sha256 in its footer.

Streams shard by shard (decoding in loader processes, row groups strided across them); a shard's part is written
once all its rows are embedded.  Resumable: a run killed at any point keeps every part it had written, and the
same command scores only the shards without a current part, so rows are never duplicated.  A part is current
when its model identity (weights sha256) and its shard's sha256 match, so scores follow a retrained model and a
rewritten shard (a takedown) without a flag.  Deterministic: the same checkpoint and batch size give the same
bytes (batches are cut per row group, whatever the number of workers).  ``scores.json`` beside the parts says
which model, the settings, and ``complete`` once every shard of the dataset has its part.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from data_schemas import (
    SCORE_PART_GLOB,
    SCORES_INFO,
    SCORES_META_MODEL,
    SCORES_META_SHARD,
    SCORES_SCHEMA,
    Manifest,
    ShardInfo,
    atomic_write_json,
    atomic_write_parquet,
    score_part_name,
    scores_dir,
)
from training.config import ScoreConfig
from training.data import DataError
from training.distributed import pick_device
from training.embedders import build_embedder

log = logging.getLogger("mmpipe.score")
_COLUMNS = ["key", "caption", "image"]


def score(config: ScoreConfig) -> Path:
    data = Path(config.data)
    manifest = _read_manifest(data)
    out = scores_dir(data, config.run_id)
    device = pick_device(config.device)
    embedder = build_embedder(config, device)
    out.mkdir(parents=True, exist_ok=True)
    done = _current_parts(out, embedder.identity, manifest.shards)
    todo = [s for s in manifest.shards if s.name not in done]
    _write_info(out, config, embedder.identity, manifest, done, complete=not todo)
    log.info("scoring %s with %s: %d shard(s) to score, %d already scored", data, _describe(embedder.identity),
             len(todo), len(done))
    bar = tqdm(total=sum(s.rows for s in manifest.shards), initial=sum(s.rows for s in manifest.shards
                                                                       if s.name in done),
               unit="row", desc=f"score {config.run_id}", disable=not config.progress, dynamic_ncols=True)
    try:
        for shard, table in _embedded_shards(data, todo, embedder, config, device, bar):
            part = out / score_part_name(_free_number(done))
            atomic_write_parquet(part, table.replace_schema_metadata({
                **SCORES_SCHEMA.metadata, SCORES_META_MODEL: json.dumps(embedder.identity, sort_keys=True),
                SCORES_META_SHARD: json.dumps({"name": shard.name, "sha256": shard.sha256, "rows": shard.rows})}))
            done[shard.name] = part
            log.info("scored %s: %d rows -> %s", shard.name, table.num_rows, part.name)
    finally:
        bar.close()
    _write_info(out, config, embedder.identity, manifest, done, complete=True)
    return out


def _read_manifest(data: Path) -> Manifest:
    try:
        manifest = Manifest.read(data)
    except FileNotFoundError as exc:
        raise DataError(f"{data}: no dataset there (no _manifest.json); point --data at a dataset written by "
                        "`mmpipe clean`") from exc
    for shard in manifest.shards:
        if not (data / shard.name).exists():
            raise DataError(f"{data / shard.name}: listed in the manifest but missing; run `mmpipe verify {data}`")
    return manifest


def _current_parts(out: Path, identity: dict, shards: list[ShardInfo]) -> dict[str, Path]:
    """shard name -> its part, for parts of this model and the shard's current bytes; every other part is removed
    (another model's, a rewritten or removed shard's, an unreadable one), so a reader globbing the directory sees
    only current rows, each once."""
    want = {s.name: s.sha256 for s in shards}
    done: dict[str, Path] = {}
    stale = 0
    for part in sorted(out.glob(SCORE_PART_GLOB)):
        try:
            meta = pq.read_schema(part).metadata or {}
            model, shard = json.loads(meta[SCORES_META_MODEL]), json.loads(meta[SCORES_META_SHARD])
        except Exception:  # noqa: BLE001 - a damaged or foreign file: it is rewritten
            model, shard = None, {}
        if model == identity and want.get(shard.get("name")) == shard.get("sha256") and shard["name"] not in done:
            done[shard["name"]] = part
        else:
            stale += 1
            part.unlink()
    if stale:
        log.warning("%s: removed %d part(s) of another model or of shards that changed; they are scored again",
                    out, stale)
    return done


def _free_number(done: dict[str, Path]) -> int:
    used = {int(p.stem.rsplit("-", 1)[-1]) for p in done.values()}
    return next(n for n in range(len(used) + 1) if n not in used)


def _write_info(out: Path, config: ScoreConfig, identity: dict, manifest: Manifest, done: dict[str, Path], *,
                complete: bool) -> None:
    atomic_write_json(out / SCORES_INFO, {
        "schema": "scores", "model": identity, "dataset": str(Path(config.data).resolve()),
        "dataset_created_at": manifest.created_at, "batch_size": config.batch_size, "complete": complete,
        "parts": {name: path.name for name, path in sorted(done.items())},
        "rows": sum(s.rows for s in manifest.shards if s.name in done)})


def _describe(identity: dict) -> str:
    if identity["kind"] == "mmpipe":
        return f"run {identity['run']} ({identity['preset']}, step {identity['step']})"
    return f"open_clip {identity['model']} ({identity['pretrained']})"


# --- streaming: row groups strided across loader workers, reassembled per shard ------------------------------------


@dataclass(frozen=True)
class _Unit:
    shard: int  # index into the shard list being scored
    row_group: int


class _Batches(IterableDataset):
    """Worker w prepares units w, w + W, ...: every row group cut into batches of ``batch_size`` rows."""

    def __init__(self, paths: list[Path], units: list[_Unit], prepare, batch_size: int):
        self.paths, self.units, self.prepare, self.batch_size = paths, units, prepare, batch_size

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        files: dict[int, pq.ParquetFile] = {}
        for unit in self.units[worker::workers]:
            if unit.shard not in files:
                files[unit.shard] = pq.ParquetFile(self.paths[unit.shard])
            cols = files[unit.shard].read_row_group(unit.row_group, columns=_COLUMNS).to_pydict()
            for start in range(0, len(cols["key"]), self.batch_size):
                end = start + self.batch_size
                ok, inputs = self.prepare(cols["image"][start:end], cols["caption"][start:end])
                yield {"shard": unit.shard, "order": (unit.row_group, start), "keys": cols["key"][start:end],
                       "ok": ok, "inputs": inputs}


def _embedded_shards(data: Path, shards: list[ShardInfo], embedder, config: ScoreConfig, device: torch.device,
                     bar: tqdm):
    """Yields (shard, SCORES table in the shard's row order) as each shard's last batch is embedded."""
    for shard in (s for s in shards if s.rows == 0):
        yield shard, SCORES_SCHEMA.empty_table()
    shards = [s for s in shards if s.rows]
    if not shards:
        return
    paths = [data / s.name for s in shards]
    units = [_Unit(i, rg) for i, p in enumerate(paths) for rg in range(pq.ParquetFile(p).num_row_groups)]
    loader = DataLoader(_Batches(paths, units, embedder.prepare, config.batch_size), batch_size=None,
                        num_workers=min(config.num_workers, len(units)))
    pending: dict[int, list[tuple[tuple[int, int], pa.Table]]] = {}
    rows: dict[int, int] = {}
    for item in loader:
        img, txt = embedder.embed(item["inputs"], device)
        ok = np.asarray(item["ok"], dtype=bool)  # the loader hands numpy arrays over as tensors
        pending.setdefault(item["shard"], []).append((tuple(item["order"]), _table(item["keys"], ok, img, txt)))
        rows[item["shard"]] = rows.get(item["shard"], 0) + len(item["keys"])
        bar.update(len(item["keys"]))
        if rows[item["shard"]] == shards[item["shard"]].rows:
            parts = sorted(pending.pop(item["shard"]), key=lambda p: p[0])
            yield shards[item["shard"]], pa.concat_tables([t for _, t in parts])


def _table(keys: list[str], ok: np.ndarray, img: np.ndarray | None, txt: np.ndarray) -> pa.Table:
    """Embeddings as float16 lists; alignment = cosine of the float32 embeddings (null where no image)."""
    dim = txt.shape[1]
    image = np.zeros((len(keys), dim), dtype=np.float32)
    alignment = np.zeros(len(keys), dtype=np.float32)
    if img is not None:
        image[ok] = img
        alignment[ok] = (img * txt[ok]).sum(axis=1)
    offsets = pa.array(np.arange(len(keys) + 1, dtype=np.int32) * dim)
    mask = pa.array(~ok)
    image_col = pa.ListArray.from_arrays(offsets, pa.array(image.astype(np.float16).ravel()), mask=mask)
    text_col = pa.ListArray.from_arrays(offsets, pa.array(txt.astype(np.float16).ravel()))
    return pa.table({"key": pa.array(keys, pa.string()), "image_embedding": image_col, "text_embedding": text_col,
                     "alignment": pa.array(alignment, pa.float32(), mask=~ok)}, schema=SCORES_SCHEMA)
