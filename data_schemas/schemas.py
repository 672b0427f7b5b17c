"""RAW and CLEAN Arrow schemas and their validator.

The schema name and version travel in the Arrow schema metadata (``mmpipe.schema``, ``mmpipe.schema_version``) and
therefore in every Parquet footer, so a reader can refuse a file written by an incompatible version before it
touches a single row.  Bump the version whenever a field changes meaning or type.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas import storage

RAW_VERSION = "3"  # 2: `role`; 3: `provenance`, source kinds urls / warc, caption origin `list`
CLEAN_VERSION = "2"  # 2: `role`; phash is of the picture without uniform borders (pipeline.signals)
SCORES_VERSION = "1"
# Older versions a reader still accepts, with the fields they lack (read as nulls): a crawl's RAW files outlive
# an upgrade, so the clean stage reads them; CLEAN datasets are re-made by `mmpipe clean` instead.
_OLDER_READABLE = {"raw": {"1": ("role", "provenance"), "2": ("provenance",)}}
SOURCE_KINDS = ("news", "mastodon", "bluesky", "feed", "urls", "warc")
# What a picture is to its page: the declared lead picture (og:image / JSON-LD), another picture of the page's
# own, or a teaser of another page (kept only when the crawl emits teasers); null where the source does not say.
ROLES = ("lead", "body", "teaser")
CAPTION_ORIGINS = ("figcaption", "alt", "og_image_alt", "jsonld", "social_alt", "feed", "title", "context", "list")
# Which candidate becomes the caption: the first, in this order, that passes the text filters.  Human-written
# descriptions of *this* image first (alt text on social posts and figcaptions are written for the picture), then
# structured data, then page-level text that may describe something else.
# A URL list's caption column (`list`) is whatever its maker chose as the text of the image (LAION: alt text; CC3M:
# cleaned alt text): ranked with `alt`.
CAPTION_PREFERENCE = ("social_alt", "figcaption", "jsonld", "alt", "list", "og_image_alt", "feed", "context", "title")
# A RAW id / CLEAN key names files (webdataset members `{key}.jpg`, which split at the first dot), so it is a plain
# name: letters, digits, '_' and '-', 1-128 characters, not starting with '-'.  `row_id` always gives one.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$")
_META_NAME = b"mmpipe.schema"
_META_VERSION = b"mmpipe.schema_version"

_TS = pa.timestamp("us", tz="UTC")
CAPTION_CANDIDATE = pa.struct([pa.field("text", pa.string(), nullable=False),
                               pa.field("origin", pa.string(), nullable=False)])


def _schema(name: str, version: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={_META_NAME: name.encode(), _META_VERSION: version.encode()})


RAW_SCHEMA = _schema("raw", RAW_VERSION, [
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_kind", pa.string(), nullable=False),
    pa.field("page_url", pa.string(), nullable=False),
    pa.field("image_url", pa.string(), nullable=False),
    pa.field("caption_candidates", pa.list_(CAPTION_CANDIDATE), nullable=False),
    pa.field("title", pa.string()),
    pa.field("page_lang", pa.string()),
    pa.field("published_at", _TS),
    pa.field("crawled_at", _TS, nullable=False),
    pa.field("license", pa.string()),
    pa.field("credit", pa.string()),
    pa.field("image_bytes", pa.binary()),
    pa.field("image_mime", pa.string()),
    pa.field("http_status", pa.int16()),
    pa.field("fetch_error", pa.string()),
    pa.field("opt_out", pa.list_(pa.string()), nullable=False),
    pa.field("role", pa.string()),
    pa.field("provenance", pa.string()),
])

CLEAN_SCHEMA = _schema("clean", CLEAN_VERSION, [
    pa.field("key", pa.string(), nullable=False),
    pa.field("caption", pa.string(), nullable=False),
    pa.field("caption_origin", pa.string(), nullable=False),
    pa.field("image", pa.binary(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("original_width", pa.int32(), nullable=False),
    pa.field("original_height", pa.int32(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("phash", pa.uint64(), nullable=False),
    pa.field("lang", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_kind", pa.string(), nullable=False),
    pa.field("page_url", pa.string(), nullable=False),
    pa.field("image_url", pa.string(), nullable=False),
    pa.field("published_at", _TS),
    pa.field("crawled_at", _TS, nullable=False),
    pa.field("license", pa.string()),
    pa.field("credit", pa.string()),
    pa.field("role", pa.string()),
    pa.field("split", pa.string(), nullable=False),
    pa.field("dup_cluster", pa.string(), nullable=False),
])

# Per dataset row, what a model makes of it (`mmpipe score`): L2-normalised embeddings stored as float16 (half the
# bytes; cosines move by < 1e-3) and their cosine computed in float32 before rounding.  An image that does not
# decode has null embedding and alignment.  The model and the shard a file scores are in its footer metadata
# (SCORES_META_* keys, JSON values), so every file says on its own what it is.
SCORES_SCHEMA = _schema("scores", SCORES_VERSION, [
    pa.field("key", pa.string(), nullable=False),
    pa.field("image_embedding", pa.list_(pa.float16())),
    pa.field("text_embedding", pa.list_(pa.float16()), nullable=False),
    pa.field("alignment", pa.float32()),
])
SCORES_META_MODEL = b"mmpipe.scores.model"  # {"kind": "mmpipe" | "open_clip", ..., "weights_sha256", "step"}
SCORES_META_SHARD = b"mmpipe.scores.shard"  # {"name": shard path in the dataset, "sha256", "rows"}



class SchemaError(ValueError):
    """A table or file does not follow a schema; the message names the file, the column and the problem."""

    def __init__(self, problem: str, *, column: str | None = None, path: str | Path | None = None):
        self.problem, self.column, self.path = problem, column, str(path) if path else None
        where = f"{self.path}: " if self.path else ""
        col = f"column '{column}': " if column else ""
        super().__init__(f"{where}{col}{problem}")


_PORT = re.compile(r":[0-9]*$")


def without_port(url: str) -> str:
    """``url`` without an explicit port (``http://127.0.0.1:8123/a`` -> ``http://127.0.0.1/a``); any other URL
    unchanged, byte for byte."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return url
    stripped = _PORT.sub("", netloc) if netloc and not netloc.endswith("]") else netloc
    return url if stripped == netloc else url.replace(netloc, stripped, 1)


def row_id(page_url: str, image_url: str) -> str:
    """Stable across crawls, machines and ports, so re-crawls, resumes, takedowns and exports all name the same
    row: sha256(page_url NUL image_url) with an explicit port left out of both URLs.  A server's port is where it
    happens to listen, not what it serves (the demo site's is random, and a key that followed it made every run's
    split different); URLs without a port, i.e. nearly all of the web, hash exactly as before."""
    return hashlib.sha256(f"{without_port(page_url)}\x00{without_port(image_url)}".encode()).hexdigest()[:32]


def is_safe_key(key: object) -> bool:
    """True when ``key`` can be a RAW id / CLEAN key: safe as a file name on every platform (`KEY_PATTERN`)."""
    return isinstance(key, str) and KEY_PATTERN.match(key) is not None


def schema_name(schema: pa.Schema) -> str | None:
    meta = schema.metadata or {}
    return meta[_META_NAME].decode() if _META_NAME in meta else None


def schema_version(schema: pa.Schema) -> str | None:
    meta = schema.metadata or {}
    return meta[_META_VERSION].decode() if _META_VERSION in meta else None


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


def _check_metadata(actual: pa.Schema, expected: pa.Schema, path: Path | None) -> tuple[str, ...]:
    """The fields this (older, still readable) version may lack; raises for an unreadable version."""
    name, version = schema_name(actual), schema_version(actual)
    if name is None or version is None:
        return ()  # plain Arrow tables built in memory carry no metadata; their columns are still checked
    if name != schema_name(expected):
        raise SchemaError(f"is a '{name}' table, expected '{schema_name(expected)}'", path=path)
    older = _OLDER_READABLE.get(name, {})
    if version != schema_version(expected) and version not in older:
        raise SchemaError(f"schema version {version}, this mmpipe reads version {schema_version(expected)}: "
                          "re-run the stage that wrote it with this version", path=path)
    return older.get(version, ())


def _check_fields(actual: pa.Schema, expected: pa.Schema, path: Path | None, lacking: tuple[str, ...] = ()) -> None:
    for field in expected:
        idx = actual.get_field_index(field.name)
        if idx < 0 and field.name in lacking:
            continue
        if idx < 0:
            raise SchemaError("missing", column=field.name, path=path)
        got = actual.field(idx).type
        if not got.equals(field.type):
            raise SchemaError(f"has type {got}, expected {field.type}", column=field.name, path=path)


def _check_nulls(table: pa.Table, expected: pa.Schema, path: Path | None) -> None:
    for field in expected:
        if not field.nullable and field.name in table.column_names and table.column(field.name).null_count:
            n = table.column(field.name).null_count
            raise SchemaError(f"{n} null value(s) in a required column", column=field.name, path=path)


def validate(table_or_path: pa.Table | str | Path, schema: pa.Schema, *, check_values: bool = True) -> pa.Table | None:
    """Check a table (or a Parquet file's footer, and with ``check_values`` its rows) against ``schema``.

    Returns the table that was checked (read from the file when a path is given and values were checked).
    """
    path = None
    table = None
    if isinstance(table_or_path, (str, Path)):
        path = storage.location(table_or_path)
        afs, where = storage.arrow_filesystem(path)
        try:
            actual = pq.read_schema(where, filesystem=afs)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for damaged files
            raise SchemaError(f"not a readable Parquet file ({exc}); delete or re-create it", path=path) from exc
        lacking = _check_metadata(actual, schema, path)
        _check_fields(actual, schema, path, lacking)
        if not check_values:
            return None
        table = pq.read_table(where, columns=[f.name for f in schema if f.name in actual.names], filesystem=afs)
    else:
        table = table_or_path
        lacking = _check_metadata(table.schema, schema, None)
        _check_fields(table.schema, schema, None, lacking)
    _check_nulls(table, schema, path)
    _check_values(table, schema, path)
    return table


def _check_values(table: pa.Table, schema: pa.Schema, path: Path | None) -> None:
    if "source_kind" in schema.names:
        bad = set(table.column("source_kind").to_pylist()) - set(SOURCE_KINDS)
        if bad:
            raise SchemaError(f"unknown value(s) {sorted(bad)}; allowed: {SOURCE_KINDS}", column="source_kind",
                              path=path)
    if "caption_candidates" in schema.names:
        origins = table.column("caption_candidates").combine_chunks().flatten().field("origin")
        bad = set(origins.to_pylist()) - set(CAPTION_ORIGINS)
        if bad:
            raise SchemaError(f"unknown origin(s) {sorted(bad)}; allowed: {CAPTION_ORIGINS}",
                              column="caption_candidates", path=path)
    if (schema.metadata or {}).get(_META_NAME) == b"clean" and "key" in schema.names:
        bad = [k for k in table.column("key").to_pylist() if not is_safe_key(k)]
        if bad:
            raise SchemaError(f"{len(bad)} unsafe key(s), e.g. {bad[0]!r}: a key is 1-128 letters, digits, '_' "
                              "or '-'", column="key", path=path)
    if "role" in schema.names and "role" in table.column_names:
        bad = set(table.column("role").to_pylist()) - set(ROLES) - {None}
        if bad:
            raise SchemaError(f"unknown role(s) {sorted(bad)}; allowed: {ROLES} or null", column="role", path=path)
    if "split" in schema.names:
        bad = set(table.column("split").to_pylist()) - {"train", "val"}
        if bad:
            raise SchemaError(f"unknown split(s) {sorted(bad)}; allowed: train, val", column="split", path=path)

