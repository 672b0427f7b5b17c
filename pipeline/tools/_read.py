"""Find out what a path holds (clean dataset, raw crawl output, or one shard) and read it without loading images.

Every tool starts here so that they all agree on which files make up a dataset: the manifest's shard list for a
clean dataset, the Parquet files of a raw crawl directory, or the one file given.  Queries go through DuckDB views
whose projection pushdown guarantees that the image column is only read when a query names it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from data_schemas import (
    CAPTION_PREFERENCE,
    MANIFEST_NAME,
    Manifest,
    SchemaError,
    member_path,
    schema_name,
    schema_version,
    storage,
)

CRAWL_SUMMARY_NAME = "crawl_summary.json"
INDEX_DIR = "index"
# Per kind: the image column, and SQL that gives every kind the same convenient column names for --where.
_IMAGE_COLUMN = {"clean": "image", "raw": "image_bytes"}


class ToolError(Exception):
    """An expected problem with the user's input: the CLI prints the message (which says what to do), no traceback."""


@dataclass
class Dataset:
    root: Path | str  # the dataset directory (for a single shard: the directory that holds it), or its URL
    kind: str  # "clean" | "raw"
    files: list[Path | str]
    manifest: Manifest | None = None
    crawl_summary: dict | None = None
    single_file: bool = False

    @property
    def image_column(self) -> str:
        return _IMAGE_COLUMN[self.kind]

    def rel(self, path: Path | str) -> str:
        if storage.is_url(path) and isinstance(self.root, str) and path.startswith(self.root + "/"):
            return path[len(self.root) + 1:]
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def _kind_of(path: Path) -> tuple[str, str | None]:
    """The schema name and version from the Parquet footer, so no row is read to decide what a file is."""
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for damaged files
        raise ToolError(f"{path}: not a readable Parquet file ({exc}); run `mmpipe verify` on its dataset") from exc
    name = schema_name(schema)
    if name is None:  # written without mmpipe metadata: recognise it by its columns
        name = "clean" if {"key", "image"} <= set(schema.names) else "raw" if "image_bytes" in schema.names else None
    if name not in _IMAGE_COLUMN:
        raise ToolError(f"{path}: not an mmpipe RAW or CLEAN file (schema '{name}', columns {schema.names[:6]}...)")
    return name, schema_version(schema)


def _parquet_files(root: Path) -> list[Path]:
    files = [p for p in sorted(root.glob("*.parquet")) if not p.name.startswith(".")]
    if not files:  # e.g. a dataset whose manifest is gone: shards live in a subfolder
        files = [p for p in sorted(root.rglob("*.parquet"))
                 if not any(part.startswith(".") or part == INDEX_DIR for part in p.relative_to(root).parts)]
    return files


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ToolError(f"{path}: not valid JSON ({exc})") from exc


def open_dataset(path: str | Path, *, require_files: bool = True) -> Dataset:
    """Resolve ``path`` to a Dataset; ``require_files=False`` lets verify report missing shards itself."""
    if storage.is_url(path):
        return _open_remote(storage.location(path))
    path = Path(path)
    if not path.exists():
        raise ToolError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix != ".parquet":
            raise ToolError(f"{path}: expected a dataset directory or a .parquet shard")
        return Dataset(root=path.parent, kind=_kind_of(path)[0], files=[path], single_file=True)
    if (path / MANIFEST_NAME).exists():
        try:
            manifest = Manifest.read(path)
        except SchemaError as exc:
            raise ToolError(str(exc)) from exc
        files = [member_path(path, s.name) for s in manifest.shards]  # Manifest.read refused names outside
        missing = [s.name for s, f in zip(manifest.shards, files, strict=True) if not f.exists()]
        if missing and require_files:
            raise ToolError(f"{path}: shard(s) listed in the manifest are missing: {', '.join(missing[:5])}; "
                            "run `mmpipe verify` and re-create the dataset with `mmpipe clean`")
        return Dataset(root=path, kind="clean", files=files, manifest=manifest)
    files = _parquet_files(path)
    summary = _read_json(path / CRAWL_SUMMARY_NAME)
    if not files:
        if summary is not None:
            return Dataset(root=path, kind="raw", files=[], crawl_summary=summary)
        raise ToolError(f"{path}: no manifest.json and no .parquet files; is this a dataset directory?")
    kinds = {_kind_of(f)[0] for f in files}
    if len(kinds) > 1:
        raise ToolError(f"{path}: mixes RAW and CLEAN files; point at one dataset (e.g. {path}/raw or {path}/clean)")
    return Dataset(root=path, kind=kinds.pop(), files=files, crawl_summary=summary)


def _open_remote(url: str) -> Dataset:
    """A CLEAN dataset at a URL (`data_schemas.storage`): only what its manifest lists is the dataset."""
    try:
        manifest = Manifest.read(url)
    except FileNotFoundError as exc:
        raise ToolError(f"{url}: no {MANIFEST_NAME}; a dataset at a URL is read through its manifest") from exc
    except SchemaError as exc:
        raise ToolError(str(exc)) from exc
    return Dataset(root=url, kind="clean", files=[member_path(url, s.name) for s in manifest.shards],
                   manifest=manifest)


def connect(*, memory_limit: str = "2GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def query_reader(con: duckdb.DuckDBPyConnection, sql: str, batch_size: int) -> pa.RecordBatchReader:
    """Stream a result in Arrow batches (DuckDB 2 renamed fetch_record_batch to to_arrow_reader)."""
    rel = con.sql(sql)
    fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
    return fetch(batch_size)


def query_table(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    rel = con.sql(sql)
    fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return fetch()


def _best_caption_sql() -> str:
    """RAW rows carry candidates; show the one the clean stage would try first (CAPTION_PREFERENCE)."""
    picks = [f"list_filter(caption_candidates, lambda c: c.origin = '{origin}' AND length(trim(c.text)) > 0)[1].text"
             for origin in CAPTION_PREFERENCE]
    return f"coalesce({', '.join(picks)})"


# Scalar functions that read the machine's state rather than the rows (table functions, which read files, can only
# sit in a subquery, and subqueries are refused).
_WHERE_DENIED = frozenset({"getenv", "current_setting", "glob", "query", "query_table", "sniff_csv"})


def check_where(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """``--where`` is a predicate over the rows and nothing else: no subquery (so no table function such as
    ``read_text('/etc/passwd')`` or ``read_csv``), no function that reads files, settings or the environment.
    DuckDB's own parser decides what the expression contains."""
    sql = f"SELECT 1 FROM rows WHERE {where}"
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        raise ToolError(f"--where {where!r}: not one SQL expression ({tree.get('error_message', 'several')})")
    refused = set()

    def walk(node, root: bool) -> None:
        if isinstance(node, dict):
            kind = node.get("class") or node.get("type") or ""
            if kind in ("SUBQUERY", "TABLE_FUNCTION", "SET_OPERATION_NODE") or (kind == "SELECT_NODE" and not root):
                refused.add("a subquery")
            name = str(node.get("function_name") or "").lower()
            if name in _WHERE_DENIED or name.startswith(("read_", "duckdb_", "pragma_", "parquet_")):
                refused.add(f"function {name}()")
            for value in node.values():
                walk(value, False)
        elif isinstance(node, list):
            for value in node:
                walk(value, False)

    walk(tree["statements"][0]["node"], True)
    if refused:
        raise ToolError(f"--where {where!r}: only a predicate over the rows' columns is allowed, not "
                        f"{', '.join(sorted(refused))}")


def rows_view(con: duckdb.DuckDBPyConnection, ds: Dataset, where: str | None = None) -> None:
    """Create the view ``rows`` over all files with uniform names (key, caption, lang, split), filtered by ``where``.

    ``where`` must parse as ONE SQL expression (DuckDB's parser checks), so it cannot smuggle in a second statement,
    and may only look at the rows (`check_where`): no subquery, table function or file access.
    """
    if not ds.files:
        raise ToolError(f"{ds.root}: no shard files to read")
    rel = con.read_parquet([str(f) for f in ds.files], union_by_name=True)
    if ds.kind == "raw":
        rel = rel.project(f"*, id AS key, {_best_caption_sql()} AS caption, page_lang AS lang, "
                          "CAST(NULL AS VARCHAR) AS split")
    if where:
        check_where(con, where)
        try:
            rel = rel.filter(duckdb.SQLExpression(where))
            rel.limit(0).fetchall()  # bind now, so a wrong column is reported here, with the columns that exist
        except duckdb.Error as exc:
            cols = ", ".join(c for c in rel.columns if c != ds.image_column)
            raise ToolError(f"--where {where!r}: {str(exc).splitlines()[0]}. Columns: {cols}") from exc
    rel.create_view("rows", replace=True)


def iter_batches(path: Path, columns: list[str], *, batch_size: int = 256) -> Iterator[pa.RecordBatch]:
    """Row-group streaming: at most ``batch_size`` images in memory at a time."""
    pf = storage.parquet_file(path)
    yield from pf.iter_batches(batch_size=batch_size, columns=columns, use_threads=False)


def image_ext(data: bytes) -> str:
    """The file extension for image bytes, by magic number (webdataset decoders dispatch on it)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return "bin"


def thumbnail(data: bytes | None, size: int, *, max_pixels: int) -> Image.Image | None:
    """A small RGB preview, or None when the bytes do not decode or the header declares more than
    ``max_pixels`` (a decompression bomb: a 20 KB PNG can declare 13000x13000, ~1 GB decoded), which is checked
    before any pixel is decoded, whatever Pillow's global limit (it only warns below twice its own)."""
    if not data:
        return None
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > max_pixels:
            return None
        img.draft("RGB", (size, size))  # previews only: the faster JPEG path is fine here
        img = img.convert("RGB")
        img.thumbnail((size, size))
        return img
    except Exception:  # noqa: BLE001 - a broken image is shown as missing, verify reports it
        return None
