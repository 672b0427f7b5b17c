"""Reading img2dataset-style URL lists (`kind: urls`): parquet, csv, tsv, jsonl or txt, each optionally gzipped.

img2dataset's conventions: the image URL in `url_col` ("url"), its text in `caption_col` ("caption"); every other
column is kept, as JSON, in the RAW row's `provenance` (LAION's similarity, width, licence, DataComp's uid...).
Rows are streamed (a billion-row list never sits in memory) and checked one at a time: a row without a URL, with a
URL that is not absolute http(s), or with a value of the wrong type becomes a `Reject` naming the file, the row and
the reason, and its neighbours go on.  Which process fetches a row is decided by the hash of its URL's host
(`host_shard`), so one host's images are all fetched by one process and its politeness settings hold.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from data_schemas import reasons as R

MAX_URL_CHARS = 4096  # longer "URLs" are data: URIs or garbage; browsers and CDNs refuse them too
MAX_PROVENANCE_CHARS = 16_384  # one row's other columns, as JSON; longer is cut to the columns that fit
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
             ".json": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}
BATCH_ROWS = 8192


class ListError(ValueError):
    """A URL list cannot be read at all (missing file, unknown format, no URL column); names the file."""


@dataclass(slots=True)
class ListRow:
    url: str
    caption: str | None
    page_url: str  # the list's page column, or ""
    provenance: str | None  # the other columns as a JSON object, or None when there are none


@dataclass(slots=True)
class Reject:
    where: str  # "file:row" (1-based data row; for WARC/WAT inputs "file@offset")
    reason: str  # data_schemas.reasons
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Columns:
    url: str = "url"
    caption: str | None = "caption"
    page: str | None = None


def expand_paths(patterns: list[str]) -> list[Path]:
    """Files named by `patterns` (globs allowed), sorted and without repeats; a pattern matching nothing is an
    error, not an empty crawl."""
    files: dict[Path, None] = {}
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matched or not all(Path(m).is_file() for m in matched):
            raise ListError(f"{pattern}: no such file")
        files.update(dict.fromkeys(Path(m) for m in matched))
    return list(files)


def list_format(path: Path, given: str | None = None) -> str:
    if given:
        return given
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _SUFFIXES.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise ListError(f"{path}: cannot tell the format from the name; set input_format to one of "
                        f"{sorted(set(_SUFFIXES.values()))}")
    return fmt


def host_shard(url: str, shards: int) -> int:
    """The process that fetches `url`: by its host, so every URL of a host lands in the same one."""
    if shards <= 1:
        return 0
    return zlib.crc32((urlsplit(url).hostname or "").encode()) % shards


def url_problem(url: object) -> tuple[str, str] | None:
    """(reason, detail) when `url` cannot be fetched as an image URL; None when it can."""
    if url is None or (isinstance(url, str) and not url.strip()):
        return R.LIST_MISSING_URL, "no URL"
    if not isinstance(url, str):
        return R.LIST_BAD_ROW, f"the URL is a {type(url).__name__}, expected a string"
    if len(url) > MAX_URL_CHARS:
        return R.LIST_BAD_URL, f"URL of {len(url)} characters (at most {MAX_URL_CHARS})"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return R.LIST_BAD_URL, f"unparsable URL {url[:200]!r} ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return R.LIST_BAD_URL, f"not an absolute http(s) URL: {url[:200]!r}"
    if any(c.isspace() for c in url.strip()):
        return R.LIST_BAD_URL, f"whitespace inside the URL {url[:200]!r}"
    return None


def read_list(path: Path, columns: Columns, *, fmt: str | None = None) -> Iterator[ListRow | Reject]:
    """Every row of one list, in order, as a `ListRow` or a `Reject`."""
    fmt = list_format(path, fmt)
    records = {"parquet": _parquet_rows, "csv": _csv_rows, "tsv": _csv_rows, "jsonl": _jsonl_rows,
               "txt": _txt_rows}[fmt](path, columns, fmt)
    for number, record in records:
        where = f"{path}:{number}"
        if isinstance(record, str):  # the reader's own complaint about this row
            yield Reject(where, R.LIST_BAD_ROW, record)
            continue
        yield _row(record, columns, where)


def _row(record: dict, columns: Columns, where: str) -> ListRow | Reject:
    url = record.get(columns.url)
    problem = url_problem(url)
    if problem is not None:
        return Reject(where, *problem)
    texts = {}
    for role, name in (("caption", columns.caption), ("page", columns.page)):
        value = record.get(name) if name else None
        if value is not None and not isinstance(value, str):
            return Reject(where, R.LIST_BAD_ROW, f"column '{name}' is a {type(value).__name__}, expected a string")
        texts[role] = value.strip() if value else None
    page = texts["page"] or ""
    if page and url_problem(page) is not None:
        return Reject(where, R.LIST_BAD_ROW, f"column '{columns.page}': {url_problem(page)[1]}")
    used = {columns.url, columns.caption, columns.page}
    extra = {k: v for k, v in record.items() if k not in used}
    return ListRow(url.strip(), texts["caption"] or None, page, _provenance(extra))


def _provenance(extra: dict) -> str | None:
    if not extra:
        return None
    text = json.dumps(extra, ensure_ascii=False, default=str, sort_keys=True)
    while len(text) > MAX_PROVENANCE_CHARS and extra:  # one huge column must not blow up every RAW file
        extra.pop(max(extra, key=lambda k: len(json.dumps(extra[k], default=str))))
        text = json.dumps({**extra, "_cut": True}, ensure_ascii=False, default=str, sort_keys=True)
    return text


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def _parquet_rows(path: Path, columns: Columns, fmt: str) -> Iterator[tuple[int, dict | str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise ListError(f"{path}: not a readable Parquet file ({exc})") from exc
    if columns.url not in pf.schema_arrow.names:
        raise ListError(f"{path}: no column '{columns.url}' (url_col); columns: {', '.join(pf.schema_arrow.names)}")
    number = 0
    for batch in pf.iter_batches(batch_size=BATCH_ROWS):
        for record in batch.to_pylist():
            number += 1
            yield number, record


def _csv_rows(path: Path, columns: Columns, fmt: str) -> Iterator[tuple[int, dict | str]]:
    csv.field_size_limit(MAX_PROVENANCE_CHARS * 64)
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter="\t" if fmt == "tsv" else ",")
        header = next(reader, None)
        if header is None or columns.url not in header:
            raise ListError(f"{path}: no column '{columns.url}' (url_col) in the header {header}")
        number = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield number, f"unreadable {fmt} row ({exc})"
                continue
            number += 1
            if len(values) != len(header):
                yield number, f"{len(values)} fields, the header has {len(header)}"
                continue
            yield number, {k: (v if v != "" else None) for k, v in zip(header, values, strict=True)}


def _jsonl_rows(path: Path, columns: Columns, fmt: str) -> Iterator[tuple[int, dict | str]]:
    with _open_text(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                yield number, f"not JSON ({exc})"
                continue
            yield number, record if isinstance(record, dict) else f"a JSON {type(record).__name__}, not an object"


def _txt_rows(path: Path, columns: Columns, fmt: str) -> Iterator[tuple[int, dict | str]]:
    with _open_text(path) as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                yield number, {columns.url: line.strip()}
