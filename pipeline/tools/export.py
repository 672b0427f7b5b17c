"""`mmpipe export`: hand our data to the tools people already use, without a conversion script of their own.

Each split goes to its own set, ``OUT/train/`` and ``OUT/val/`` (``--split both``, the default; ``train`` or
``val`` alone; ``all``: one mixed set in ``OUT/all/``), because open_clip trains on one set and evaluates on another.

* ``webdataset``: ``00000.tar``, ``00001.tar``, ... each sample as ``{key}.jpg`` (or .png/.webp, by the bytes),
  ``{key}.txt`` (caption) and ``{key}.json`` (metadata), the layout open_clip's ``--dataset-type webdataset``
  reads; plus ``sizes.json`` ({shard: samples}), which open_clip reads for the dataset size.
* ``img2dataset-parquet``: ``00000.parquet``, ... with img2dataset's output columns (``url``, ``caption``, ``key``,
  ``status``, ``error_message``, ``width``, ``height``, ``original_width``, ``original_height``, ``exif``,
  ``sha256``, then our extra columns as img2dataset's ``save_additional_columns`` would, and ``jpg`` last when
  images are included), and ``00000_stats.json`` per shard.

Every export names a sample by its CLEAN ``key`` (webdataset ``__key__``, img2dataset ``key``), so exports join with
each other and with the dataset.  A set has at least ``min_shards`` shards (open_clip asserts at least as many
shards as data loader workers; webdataset splits work by shard), fewer only when it has fewer samples, and then
the result says so; shard sizes differ by at most one.  ``export.json`` records the sets and the open_clip command
line that trains on them.  Rows are streamed batch by batch; each output shard is written under a temporary name and
renamed when complete.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas import atomic_write_json, file_sha256, is_safe_key, storage
from pipeline.tools._read import Dataset, ToolError, image_ext, iter_batches, open_dataset

FORMATS = ("webdataset", "img2dataset-parquet")
SPLITS = ("both", "train", "val", "all")
SHARD_DIGITS = 5  # 00000.tar, as img2dataset and open_clip's examples name shards
MIN_SHARDS = 8  # open_clip's default --workers is 4; 8 also leaves a shard per worker on two GPUs
_META = ["key", "caption", "caption_origin", "width", "height", "original_width", "original_height", "sha256",
         "lang", "source", "source_kind", "page_url", "image_url", "published_at", "crawled_at", "license",
         "credit", "split"]
# Our columns kept next to img2dataset's, like its `save_additional_columns`.
_EXTRA = ["page_url", "source", "source_kind", "lang", "caption_origin", "license", "credit", "split"]
I2D_SCHEMA = pa.schema([
    ("url", pa.string()), ("caption", pa.string()), ("key", pa.string()), ("status", pa.string()),
    ("error_message", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("original_width", pa.int32()), ("original_height", pa.int32()), ("exif", pa.string()), ("sha256", pa.string()),
    *((name, pa.string()) for name in _EXTRA),
])
_SETS = {"both": ("train", "val"), "train": ("train",), "val": ("val",), "all": ("all",)}


def shard_sizes(samples: int, *, samples_per_shard: int, min_shards: int) -> list[int]:
    """Samples per shard: ``ceil(samples / samples_per_shard)`` shards, at least ``min_shards`` (but never an empty
    one), as even as possible."""
    if samples == 0:
        return []
    count = min(samples, max(min_shards, math.ceil(samples / samples_per_shard)))
    base, extra = divmod(samples, count)
    return [base + 1 if i < extra else base for i in range(count)]


def _split_counts(ds: Dataset) -> dict[str, int]:
    """Rows per split: the manifest's shard records where each shard holds one split, else the split column.
    Every key is checked first (the key column only), so an unsafe one stops the export before any file."""
    counts = {"train": 0, "val": 0}
    for f in ds.files:
        for batch in iter_batches(f, ["key"], batch_size=65536):
            for key in batch.column(0).to_pylist():
                _safe_key({"key": key})
    for f in ds.files:
        info = next((s for s in ds.manifest.shards if s.name == ds.rel(f)), None) if ds.manifest else None
        if info is not None and info.split in counts:
            counts[info.split] += info.rows
            continue
        for batch in iter_batches(f, ["split"], batch_size=65536):
            for value in batch.column(0).to_pylist():
                counts[value] = counts.get(value, 0) + 1
    return counts


def _rows(ds: Dataset, split: str, columns: list[str]) -> Iterator[dict]:
    splits = {s.name: s.split for s in ds.manifest.shards} if ds.manifest else {}
    for f in ds.files:
        shard_split = splits.get(ds.rel(f), "")
        if split != "all" and shard_split and shard_split != split:
            continue  # the whole shard belongs to another split: not even its footer is read again
        for batch in iter_batches(f, columns, batch_size=128):
            for row in batch.to_pylist():
                if split == "all" or row["split"] == split:
                    yield row


def _json_meta(row: dict) -> bytes:
    meta = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if k in _META}
    meta["url"] = row["image_url"]  # img2dataset's name for the image URL
    return json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _safe_key(row: dict) -> str:
    key = row["key"]
    if not is_safe_key(key):  # a member name like ../../x would be written outside wherever it is extracted
        raise ToolError(f"key {key!r} is not a safe file name (data_schemas.KEY_PATTERN); run `mmpipe verify` "
                        "on the dataset and re-create it with `mmpipe clean`")
    return key


class _Shards:
    """Numbered output files of one set, of the planned sizes, written under a temporary name and renamed."""

    def __init__(self, out: Path, ext: str, sizes: list[int]):
        self.out, self.ext, self.sizes = out, ext, sizes
        self.index, self.count, self.done = 0, 0, []  # done: (name, samples)

    def name(self) -> str:
        return f"{self.index:0{SHARD_DIGITS}d}.{self.ext}"

    def tmp(self) -> Path:
        return self.out / f".{self.name()}.tmp"

    def full(self) -> bool:
        return self.count == self.sizes[self.index]

    def publish(self) -> None:
        os.replace(self.tmp(), self.out / self.name())
        self.done.append((self.name(), self.count))
        self.index, self.count = self.index + 1, 0


def _write_webdataset(rows: Iterator[dict], shards: _Shards, mtime: float) -> None:
    tar = None

    def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uname, info.gname = len(data), mtime, 0o644, "mmpipe", "mmpipe"
        tf.addfile(info, io.BytesIO(data))

    for row in rows:
        if tar is None:
            tar = tarfile.open(shards.tmp(), "w", format=tarfile.USTAR_FORMAT)
        key = _safe_key(row)
        add(tar, f"{key}.{image_ext(row['image'])}", row["image"])
        add(tar, f"{key}.txt", row["caption"].encode("utf-8"))
        add(tar, f"{key}.json", _json_meta(row))
        shards.count += 1
        if shards.full():
            tar.close()
            tar = None
            shards.publish()
    if tar is not None:
        tar.close()
        shards.publish()


def _i2d_record(row: dict, with_images: bool) -> dict:
    rec = {"url": row["image_url"], "caption": row["caption"], "key": _safe_key(row), "status": "success",
           "error_message": None, "exif": None}
    for name in ("width", "height", "original_width", "original_height", "sha256", *_EXTRA):
        rec[name] = row[name]
    if with_images:
        rec["jpg"] = row["image"]
    return rec


def _write_i2d(rows: Iterator[dict], shards: _Shards, with_images: bool) -> None:
    schema = I2D_SCHEMA.append(pa.field("jpg", pa.binary())) if with_images else I2D_SCHEMA
    writer, buf = None, []

    def flush() -> None:
        if buf:
            writer.write_table(pa.Table.from_pylist(buf, schema=schema))
            buf.clear()

    def finish() -> None:
        flush()
        writer.close()
        n = shards.count
        atomic_write_json(shards.out / f"{shards.index:0{SHARD_DIGITS}d}_stats.json", {
            "count": n, "successes": n, "failed_to_download": 0, "failed_to_resize": 0,
            "status_dict": {"success": n}})
        shards.publish()

    for row in rows:
        if writer is None:
            writer = pq.ParquetWriter(shards.tmp(), schema, compression="zstd")
        buf.append(_i2d_record(row, with_images))
        shards.count += 1
        if len(buf) >= 256:
            flush()
        if shards.full():
            finish()
            writer = None
    if writer is not None:
        finish()


def _old_export(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.suffix in (".tar", ".parquet") or p.name in ("sizes.json", "export.json")
            or p.name.endswith("_stats.json")]


def _prepare_out(out: Path, overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    old = [p for folder in (out, *(out / name for name in ("train", "val", "all"))) for p in _old_export(folder)]
    if old and not overwrite:
        raise ToolError(f"{out}: already holds an export ({old[0].relative_to(out)}, ...); choose an empty folder "
                        "or pass --overwrite to replace it")
    for p in old:
        p.unlink()


def open_clip_command(out: Path | str, sets: dict[str, dict]) -> str | None:
    """The open_clip command line that trains on the webdataset sets (None without a train set); an export on
    S3 is read through ``pipe:aws s3 cp`` (webdataset's own way to stream objects)."""
    def pattern(name: str) -> str:
        n = len(sets[name]["shards"])
        last = f"{n - 1:0{SHARD_DIGITS}d}"
        files = "00000" if n == 1 else f"{{{0:0{SHARD_DIGITS}d}..{last}}}"
        if storage.is_url(out):
            url = f"{out}/{name}/{files}.tar"
            return f"'pipe:aws s3 cp {url} -'" if url.startswith("s3://") else f"'{url}'"
        return f"'{Path(out).resolve() / name / files}.tar'"

    train = "train" if sets.get("train", {}).get("shards") else "all" if sets.get("all", {}).get("shards") else None
    if train is None:
        return None
    workers = min(4, len(sets[train]["shards"]))
    parts = ["python -m open_clip_train.main", f"--train-data {pattern(train)}",
             f"--train-num-samples {sets[train]['samples']}", "--dataset-type webdataset"]
    if sets.get("val", {}).get("shards"):
        parts += [f"--val-data {pattern('val')}", f"--val-num-samples {sets['val']['samples']}"]
    parts += [f"--workers {workers}", "--batch-size 32", "--epochs 1", "--model ViT-B-32"]
    return " ".join(parts)


@dataclass(frozen=True)
class ExportConfig:
    """What `mmpipe export` writes; every export default lives here alone (the CLI only overrides what it is
    given).  ``split``: both (``out/train/`` and ``out/val/``), train, val or all (one mixed set)."""

    format: str
    out: str | Path
    split: str = "both"
    samples_per_shard: int = 1000
    min_shards: int = MIN_SHARDS
    with_images: bool = False  # img2dataset-parquet: include the `jpg` column
    overwrite: bool = False  # replace an earlier export in ``out``


def export_dataset(path: str | Path, config: ExportConfig | None = None, *,
                   progress: Callable[[int], None] | None = None, **fields) -> Path:
    """Export a CLEAN dataset to ``config.out/<set>/``; returns ``out``.  A URL ``out`` is written in a local
    temporary folder and published there, each file whole, export.json last.  Without ``config``, keyword
    ``fields`` build one (the calling style before ExportConfig, still accepted)."""
    if config is None:
        config = ExportConfig(**fields)
    elif fields:
        raise TypeError(f"export_dataset: give either a config or its fields, not both ({', '.join(fields)})")
    if storage.is_url(config.out):
        return _export_remote(path, config, progress=progress)
    format, split, min_shards = config.format, config.split, config.min_shards
    if format not in FORMATS:
        raise ToolError(f"unknown export format '{format}'; choose one of {', '.join(FORMATS)}")
    if split not in SPLITS:
        raise ToolError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    if config.samples_per_shard < 1 or min_shards < 1:
        raise ToolError("--samples-per-shard and --min-shards must be at least 1")
    ds = open_dataset(path)
    if ds.kind != "clean":
        raise ToolError(f"{path}: export needs a CLEAN dataset (run `mmpipe clean` on raw crawl output first)")
    out = Path(config.out)
    _prepare_out(out, config.overwrite)
    counts = _split_counts(ds)
    counts["all"] = sum(counts.values())
    sets = {}
    for name in _SETS[split]:
        sizes = shard_sizes(counts.get(name, 0), samples_per_shard=config.samples_per_shard, min_shards=min_shards)
        done = _export_set(ds, out / name, name, format=format, sizes=sizes, with_images=config.with_images,
                           progress=progress)
        sets[name] = {"samples": sum(n for _, n in done), "shards": _shard_records(out / name, done)}
        if len(done) < min_shards:
            sets[name]["note"] = (f"{len(done)} shard(s), fewer than --min-shards {min_shards}: the set has only "
                                  f"{sets[name]['samples']} sample(s)"
                                  + (f"; give open_clip --workers <= {len(done)}" if format == "webdataset" else ""))
    _write_index(ds, out, format=format, split=split, sets=sets)
    return out


def _export_set(ds: Dataset, out: Path, split: str, *, format: str, sizes: list[int], with_images: bool,
                progress: Callable[[int], None] | None) -> list[tuple[str, int]]:
    out.mkdir(parents=True, exist_ok=True)
    shards = _Shards(out, "tar" if format == "webdataset" else "parquet", sizes)
    columns = list(dict.fromkeys(_META + ["image"]))
    if format == "img2dataset-parquet" and not with_images:
        columns.remove("image")
    rows = _rows(ds, split, columns) if sizes else iter(())
    if progress:
        rows = _counting(rows, progress)
    try:
        if format == "webdataset":
            created = ds.manifest.created_at if ds.manifest else None
            mtime = datetime.fromisoformat(created).timestamp() if created else 0.0
            _write_webdataset(rows, shards, mtime)
            atomic_write_json(out / "sizes.json", dict(shards.done))
        else:
            _write_i2d(rows, shards, with_images)
    finally:
        shards.tmp().unlink(missing_ok=True)
    return shards.done


def _export_remote(path, config: ExportConfig, *, progress: Callable[[int], None] | None) -> str:
    out = storage.location(config.out)
    fs, root = storage.filesystem(out)
    old = [k for k in fs.find(root) if k.endswith((".tar", ".parquet", "sizes.json", "export.json", "_stats.json"))]
    if old and not config.overwrite:
        raise ToolError(f"{out}: already holds an export ({old[0]}, ...); choose an empty prefix or pass "
                        "--overwrite to replace it")
    with tempfile.TemporaryDirectory(prefix="mmpipe-export-") as tmp:
        export_dataset(path, dataclasses.replace(config, out=tmp, overwrite=False), progress=progress)
        info = json.loads((Path(tmp) / "export.json").read_text())
        if info.get("open_clip"):  # name the published shards, not the temporary folder
            atomic_write_json(Path(tmp) / "export.json", {**info, "open_clip": open_clip_command(out, info["sets"])})
        storage.remove(storage.join(out, "export.json"))  # no reader trusts a half-replaced export
        for key in old:
            fs.rm(key)
        storage.upload_tree(Path(tmp), out, skip={"export.json"})
        storage.publish_file(Path(tmp) / "export.json", storage.join(out, "export.json"))
    return out


def _counting(rows: Iterator[dict], progress: Callable[[int], None]) -> Iterator[dict]:
    for row in rows:
        yield row
        progress(1)


def _shard_records(out: Path, done: list[tuple[str, int]]) -> list[dict]:
    return [{"name": name, "samples": n, "bytes": (out / name).stat().st_size, "sha256": file_sha256(out / name)}
            for name, n in done]


def _write_index(ds: Dataset, out: Path, *, format: str, split: str, sets: dict[str, dict]) -> None:
    """export.json records where the export came from (so it can be traced and trusted), its sets and, for
    webdataset, the open_clip command line that trains on it."""
    atomic_write_json(out / "export.json", {
        "format": format, "split": split, "source": ds.root if storage.is_url(ds.root) else str(ds.root.resolve()),
        "source_manifest_created_at": ds.manifest.created_at if ds.manifest else None,
        "samples": sum(s["samples"] for s in sets.values()), "sets": sets,
        "open_clip": open_clip_command(out, sets) if format == "webdataset" else None,
    })
