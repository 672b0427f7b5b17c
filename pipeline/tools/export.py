"""`mmpipe export`: hand our data to the tools people already use, without a conversion script of their own.

* ``webdataset``: ``00000.tar``, ``00001.tar``, ... each sample as ``{key}.jpg`` (or .png/.webp, by the bytes),
  ``{key}.txt`` (caption) and ``{key}.json`` (metadata), the layout open_clip's ``--dataset-type webdataset``
  reads; plus ``sizes.json`` ({shard: samples}), which open_clip uses for the dataset size.
* ``img2dataset-parquet``: ``00000.parquet``, ... with img2dataset's output columns (``url``, ``caption``, ``key``,
  ``status``, ``error_message``, ``width``, ``height``, ``original_width``, ``original_height``, ``exif``,
  ``sha256``, then our extra columns as img2dataset's ``save_additional_columns`` would, and ``jpg`` last when
  images are included), and ``00000_stats.json`` per shard.

Rows are streamed batch by batch; each output shard is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import io
import json
import math
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas import atomic_write_json, file_sha256, is_safe_key, storage
from pipeline.tools._read import Dataset, ToolError, image_ext, iter_batches, open_dataset

FORMATS = ("webdataset", "img2dataset-parquet")
SPLITS = ("train", "val", "all")
SHARD_DIGITS = 5  # 00000.tar, as img2dataset and open_clip's examples name shards
_META = ["key", "caption", "caption_origin", "width", "height", "original_width", "original_height", "sha256",
         "lang", "source", "source_kind", "page_url", "image_url", "published_at", "crawled_at", "license",
         "credit", "split"]
# Our columns kept next to img2dataset's, like its `save_additional_columns`.
_EXTRA = ["mmpipe_key", "page_url", "source", "source_kind", "lang", "caption_origin", "license", "credit", "split"]
I2D_SCHEMA = pa.schema([
    ("url", pa.string()), ("caption", pa.string()), ("key", pa.string()), ("status", pa.string()),
    ("error_message", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("original_width", pa.int32()), ("original_height", pa.int32()), ("exif", pa.string()), ("sha256", pa.string()),
    *((name, pa.string()) for name in _EXTRA),
])


def i2d_key(shard: int, index: int, samples_per_shard: int) -> str:
    """img2dataset's key: shard id then index within the shard, zero-padded (9 digits for 10,000 per shard)."""
    digits = max(1, math.ceil(math.log10(samples_per_shard)))
    return f"{shard * 10 ** digits + index:0{SHARD_DIGITS + digits}d}"


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


class _Shards:
    """Numbered output files written under a temporary name and renamed when complete."""

    def __init__(self, out: Path, ext: str, per_shard: int):
        self.out, self.ext, self.per_shard = out, ext, per_shard
        self.index, self.count, self.done = 0, 0, []  # done: (name, samples)

    def name(self) -> str:
        return f"{self.index:0{SHARD_DIGITS}d}.{self.ext}"

    def tmp(self) -> Path:
        return self.out / f".{self.name()}.tmp"

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
        key = row["key"]
        if not is_safe_key(key):  # a member name like ../../x would be written outside wherever it is extracted
            raise ToolError(f"key {key!r} is not a safe file name (data_schemas.KEY_PATTERN); run `mmpipe verify` "
                            "on the dataset and re-create it with `mmpipe clean`")
        add(tar, f"{key}.{image_ext(row['image'])}", row["image"])
        add(tar, f"{key}.txt", row["caption"].encode("utf-8"))
        add(tar, f"{key}.json", _json_meta(row))
        shards.count += 1
        if shards.count == shards.per_shard:
            tar.close()
            tar = None
            shards.publish()
    if tar is not None:
        tar.close()
        shards.publish()


def _i2d_record(row: dict, key: str, with_images: bool) -> dict:
    rec = {"url": row["image_url"], "caption": row["caption"], "key": key, "status": "success",
           "error_message": None, "exif": None, "mmpipe_key": row["key"]}
    for name in ("width", "height", "original_width", "original_height", "sha256", *_EXTRA[1:]):
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
        buf.append(_i2d_record(row, i2d_key(shards.index, shards.count, shards.per_shard), with_images))
        shards.count += 1
        if len(buf) >= 256:
            flush()
        if shards.count == shards.per_shard:
            finish()
            writer = None
    if writer is not None:
        finish()


def _prepare_out(out: Path, overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    old = [p for p in out.iterdir() if p.suffix in (".tar", ".parquet") or p.name in ("sizes.json", "export.json")
           or p.name.endswith("_stats.json")]
    if old and not overwrite:
        raise ToolError(f"{out}: already holds an export ({old[0].name}, ...); choose an empty folder or pass "
                        "--overwrite to replace it")
    for p in old:
        p.unlink()


def export_dataset(path: str | Path, *, format: str, out: str | Path, split: str = "all",
                   samples_per_shard: int = 1000, with_images: bool = False, overwrite: bool = False,
                   progress: Callable[[int], None] | None = None) -> Path:
    """Export a CLEAN dataset (``split``: train, val or all) to ``out``; returns ``out``.  A URL ``out`` is
    written in a local temporary folder and published there, each file whole, export.json last."""
    if storage.is_url(out):
        return _export_remote(path, format=format, out=storage.location(out), split=split,
                              samples_per_shard=samples_per_shard, with_images=with_images, overwrite=overwrite,
                              progress=progress)
    if format not in FORMATS:
        raise ToolError(f"unknown export format '{format}'; choose one of {', '.join(FORMATS)}")
    if split not in SPLITS:
        raise ToolError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    if samples_per_shard < 1:
        raise ToolError("--samples-per-shard must be at least 1")
    ds = open_dataset(path)
    if ds.kind != "clean":
        raise ToolError(f"{path}: export needs a CLEAN dataset (run `mmpipe clean` on raw crawl output first)")
    out = Path(out)
    _prepare_out(out, overwrite)
    ext = "tar" if format == "webdataset" else "parquet"
    shards = _Shards(out, ext, samples_per_shard)
    columns = list(dict.fromkeys(_META + ["image"]))
    if format == "img2dataset-parquet" and not with_images:
        columns.remove("image")
    rows = _rows(ds, split, columns)
    if progress:
        rows = _counting(rows, progress)
    try:
        if format == "webdataset":
            created = ds.manifest.created_at if ds.manifest else None
            mtime = datetime.fromisoformat(created).timestamp() if created else 0.0
            _write_webdataset(rows, shards, mtime)
        else:
            _write_i2d(rows, shards, with_images)
    finally:
        shards.tmp().unlink(missing_ok=True)
    _write_index(ds, out, format=format, split=split, shards=shards)
    return out


def _export_remote(path, *, out: str, overwrite: bool, **kwargs) -> str:
    fs, root = storage.filesystem(out)
    old = [k for k in fs.find(root) if k.endswith((".tar", ".parquet", "sizes.json", "export.json", "_stats.json"))]
    if old and not overwrite:
        raise ToolError(f"{out}: already holds an export ({old[0]}, ...); choose an empty prefix or pass "
                        "--overwrite to replace it")
    with tempfile.TemporaryDirectory(prefix="mmpipe-export-") as tmp:
        export_dataset(path, out=tmp, overwrite=False, **kwargs)
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


def _write_index(ds: Dataset, out: Path, *, format: str, split: str, shards: _Shards) -> None:
    """sizes.json for open_clip; export.json records where the export came from, so it can be traced and trusted."""
    if format == "webdataset":
        atomic_write_json(out / "sizes.json", dict(shards.done))
    atomic_write_json(out / "export.json", {
        "format": format, "split": split, "source": ds.root if storage.is_url(ds.root) else str(ds.root.resolve()),
        "source_manifest_created_at": ds.manifest.created_at if ds.manifest else None,
        "samples": sum(n for _, n in shards.done),
        "shards": [{"name": name, "samples": n, "bytes": (out / name).stat().st_size,
                    "sha256": file_sha256(out / name)} for name, n in shards.done],
    })
