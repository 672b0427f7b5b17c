"""`mmpipe verify`: prove that the files on disk are the dataset the manifest describes, or name what is wrong.

Checks, in order of cost: the manifest (version, funnel arithmetic, counts), each listed shard's presence, size,
sha256, footer schema and row count, files nobody listed, then every row (schema values, image sha256, full
decode under a pixel limit, decoded size == width/height columns), and finally key uniqueness across shards
(a DuckDB GROUP BY, which spills to disk instead of holding every key in Python).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from data_schemas import (
    BLOCKLIST_NAME,
    CLEAN_SCHEMA,
    CLEAN_VERSION,
    MANIFEST_NAME,
    RAW_SCHEMA,
    TAKEDOWN_PENDING,
    Blocklist,
    SchemaError,
    file_sha256,
    layout,
    validate,
)
from pipeline.config import CleanConfig
from pipeline.tools._read import Dataset, ToolError, connect, iter_batches, open_dataset

DEFAULT_MAX_PIXELS = CleanConfig.max_pixels  # the clean stage's decompression-bomb limit (Pillow's own threshold)
MAX_PER_KIND = 20  # listed problems of one kind per shard; the rest are counted, so a broken shard stays readable


@dataclass
class Problem:
    shard: str | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = ": ".join(x for x in (self.shard, f"key {self.key}" if self.key else None) if x)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class VerifyReport:
    path: str
    ok: bool = True
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shards_checked: int = 0
    rows_checked: int = 0
    images_decoded: int = 0

    def add(self, shard: str | None, key: str | None, message: str) -> None:
        self.problems.append(Problem(shard, key, message))
        self.ok = False


def check_image(data: bytes | None, width: int | None, height: int | None, digest: str | None,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """None when the stored image is intact; else what is wrong with it (used by verify, one row at a time)."""
    if not data:
        return "no image bytes"
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        return "sha256 column does not match the image bytes"
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                return f"{img.width}x{img.height} exceeds the pixel limit ({max_pixels:,})"
            img.load()
            if width is not None and img.size != (width, height):
                return f"decodes to {img.width}x{img.height} but the row says {width}x{height}"
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged data
        return f"image does not decode ({type(exc).__name__}: {exc})"
    return None


def _check_manifest(ds: Dataset, rep: VerifyReport) -> None:
    m = ds.manifest
    if m.schema_version != CLEAN_VERSION:
        rep.add(None, None, f"manifest schema_version {m.schema_version}, this mmpipe reads {CLEAN_VERSION}")
    if m.rows_in - sum(m.drops.values()) != m.rows_out:
        rep.add(None, None, f"funnel does not add up: rows_in {m.rows_in} - drops {sum(m.drops.values())} "
                            f"!= rows_out {m.rows_out}")
    listed = sum(s.rows for s in m.shards)
    if listed != m.rows_out:
        rep.add(None, None, f"manifest rows_out {m.rows_out} != sum of shard rows {listed}")
    by_split: dict[str, int] = {}
    for s in m.shards:
        by_split[s.split] = by_split.get(s.split, 0) + s.rows
    all_split = all(s.split for s in m.shards)  # shards holding several splits carry split "": nothing to compare
    if m.per_split and all_split and {k: v for k, v in by_split.items() if v} != \
            {k: v for k, v in m.per_split.items() if v}:
        rep.add(None, None, f"manifest per_split {m.per_split} != rows of the shards by split {by_split}")
    if m.per_source and sum(m.per_source.values()) != m.rows_out:
        rep.add(None, None, f"manifest per_source sums to {sum(m.per_source.values())}, rows_out is {m.rows_out}")
    for kind in ("index", "rejected"):  # the clean stage lists these and reads the index on its next run
        for name in m.extra.get(kind, []) if isinstance(m.extra.get(kind), list) else []:
            if not (ds.root / name).is_file():
                rep.add(name, None, f"missing: listed in the manifest's extra.{kind} but not on disk")
    names = [s.name for s in m.shards]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        rep.add(dup, None, "listed more than once in the manifest")


def _check_extra_files(ds: Dataset, rep: VerifyReport) -> None:
    """Parquet files next to the listed shards (or at the top) that the manifest does not list.

    Only the shard folders are searched: other folders (the dedup index, a stage's own logs) are not shards.
    """
    listed = {f.resolve() for f in ds.files}
    for folder in sorted({f.parent for f in ds.files} | {ds.root}):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                rep.warnings.append(f"{ds.rel(p)}: leftover temporary file of an interrupted write (safe to delete)")
            elif p.suffix == layout.SHARD_SUFFIX and p.is_file() and p.resolve() not in listed:
                rep.add(ds.rel(p), None, "extra shard file: not listed in the manifest (delete it, or re-run the "
                                         "stage that writes the dataset)")


def _check_file(ds: Dataset, path: Path, rep: VerifyReport) -> bool:
    """Presence, size, sha256, schema and row count; True when the rows can be scanned."""
    name = ds.rel(path)
    info = next((s for s in ds.manifest.shards if s.name == name), None) if ds.manifest else None
    if not path.exists():
        rep.add(name, None, "missing: listed in the manifest but not on disk")
        return False
    if info is not None:
        size = path.stat().st_size
        if size != info.bytes:
            rep.add(name, None, f"size {size} bytes, manifest says {info.bytes}")
        digest = file_sha256(path)
        if digest != info.sha256:
            rep.add(name, None, f"sha256 {digest[:16]}… does not match the manifest ({info.sha256[:16]}…)")
    try:
        validate(path, CLEAN_SCHEMA if ds.kind == "clean" else RAW_SCHEMA, check_values=False)
    except SchemaError as exc:
        rep.add(name, None, f"schema: {exc.problem}" + (f" (column {exc.column})" if exc.column else ""))
        return False
    rows = pq.ParquetFile(path).metadata.num_rows
    if info is not None and rows != info.rows:
        rep.add(name, None, f"{rows} rows, manifest says {info.rows}")
    return True


def _scan_rows(ds: Dataset, path: Path, rep: VerifyReport, pool: ThreadPoolExecutor, max_pixels: int,
               progress: Callable[[int], None] | None) -> None:
    name = ds.rel(path)
    clean = ds.kind == "clean"
    schema = CLEAN_SCHEMA if clean else RAW_SCHEMA
    split = next((s.split for s in ds.manifest.shards if s.name == name), "") if ds.manifest else ""
    shown: dict[str, int] = {}
    done = 0

    def report(kind: str, key: str | None, message: str) -> None:
        shown[kind] = shown.get(kind, 0) + 1
        if shown[kind] <= MAX_PER_KIND:
            rep.add(name, key, message)

    try:
        for batch in iter_batches(path, schema.names, batch_size=128):
            table = pa.Table.from_batches([batch])
            try:
                validate(table, schema)
            except SchemaError as exc:
                report("values", None, f"rows {done}-{done + batch.num_rows - 1}: {exc}")
            cols = table.to_pydict()
            keys = cols["key"] if clean else cols["id"]
            if clean:
                args = zip(cols["image"], cols["width"], cols["height"], cols["sha256"], strict=True)
                results = pool.map(lambda a: check_image(*a, max_pixels), args)
                for key, err, row_split in zip(keys, results, cols["split"], strict=True):
                    rep.images_decoded += 1
                    if err:
                        report("image", key, err)
                    if split and row_split != split:
                        report("split", key, f"row has split '{row_split}' in a '{split}' shard")
            rep.rows_checked += len(keys)
            done += len(keys)
            if progress:
                progress(len(keys))
    except Exception as exc:  # noqa: BLE001 - a damaged page/row group: name the shard, keep checking the others
        rep.add(name, None, f"unreadable after row {done} ({type(exc).__name__}: {exc})")
    for kind, n in shown.items():
        if n > MAX_PER_KIND:
            rep.add(name, None, f"… and {n - MAX_PER_KIND} more '{kind}' problems in this shard")


def _check_unique_keys(ds: Dataset, files: list[Path], rep: VerifyReport) -> None:
    if not files:
        return
    key = "key" if ds.kind == "clean" else "id"
    con = connect()
    try:
        dups = con.execute(f"SELECT {key}, list(DISTINCT filename ORDER BY filename), count(*) FROM read_parquet(?, "
                           f"filename=true) GROUP BY {key} HAVING count(*) > 1 ORDER BY {key} LIMIT 100",
                           [[str(f) for f in files]]).fetchall()
    finally:
        con.close()
    for k, names, n in dups:
        shards = ", ".join(ds.rel(Path(f)) for f in names)
        rep.add(ds.rel(Path(names[0])), k, f"key appears {n} times (in {shards}); keys must be unique")


def verify_dataset(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, workers: int | None = None,
                   progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Check everything that can be checked; ``ok`` is True only if no problem was found."""
    rep = VerifyReport(path=str(path))
    try:
        ds = open_dataset(path, require_files=False)
    except ToolError as exc:
        rep.add(None, None, str(exc))
        return rep
    if layout.find(ds.root, TAKEDOWN_PENDING).exists() and not ds.single_file:
        rep.add(None, None, "an interrupted takedown is pending (content due for removal may still be here): run "
                            f"`mmpipe takedown {path} --resume`")
    if ds.manifest is not None:
        _check_manifest(ds, rep)
        _check_extra_files(ds, rep)
        for problem in Blocklist.problems(ds.root):  # a cut line: a takedown's entries may be missing
            rep.add(BLOCKLIST_NAME, None, f"{problem}; re-run the takedown (`mmpipe takedown ...`) after repairing")
    elif ds.single_file:
        rep.warnings.append("a single shard: no manifest to check it against (size, sha256, row count skipped)")
    elif ds.kind == "clean":
        rep.add(None, None, f"{ds.root}: no {MANIFEST_NAME}; a CLEAN dataset is complete only once its manifest is "
                            "written (re-run `mmpipe clean`)")
    else:
        rep.warnings.append("RAW crawl output has no manifest: checked schema, values and unique ids; raw images "
                            "are not decoded (the clean stage drops undecodable ones with a reason)")
    readable = []
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 2)) as pool:
        for f in ds.files:
            rep.shards_checked += 1
            if _check_file(ds, f, rep):
                readable.append(f)
                _scan_rows(ds, f, rep, pool, max_pixels, progress)
    _check_unique_keys(ds, readable, rep)
    return rep
