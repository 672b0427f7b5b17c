"""Aggregates over the ``rows`` view (percentiles, histograms, counts), computed by DuckDB: nothing is loaded whole.

DuckDB streams the Parquet row groups and spills to disk under its memory limit, so these numbers cost the same
memory on a thousand rows as on a hundred million.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from PIL import Image

from pipeline.config import CleanConfig
from pipeline.tools._read import Dataset, query_reader, thumbnail

PERCENTILES = (5, 25, 50, 75, 95)
HIST_BINS = 20


@dataclass
class Bin:
    lo: float
    hi: float
    count: int


def counts(con: duckdb.DuckDBPyConnection, expr: str, *, source: str = "rows", limit: int = 50) -> dict[str, int]:
    """Value counts, largest first; NULLs are shown as '(none)' so they are not silently missing."""
    rows = con.execute(f"SELECT coalesce(CAST({expr} AS VARCHAR), '(none)') AS v, count(*) AS n FROM {source} "
                       f"GROUP BY v ORDER BY n DESC, v LIMIT {int(limit)}").fetchall()
    return {v: int(n) for v, n in rows}


def percentiles(con: duckdb.DuckDBPyConnection, expr: str, *, source: str = "rows") -> dict[str, float]:
    qs = ", ".join(str(p / 100) for p in PERCENTILES)
    row = con.execute(f"SELECT quantile_cont(x, [{qs}]), min(x), max(x), avg(x), count(x) "
                      f"FROM (SELECT CAST({expr} AS DOUBLE) AS x FROM {source}) WHERE x IS NOT NULL").fetchall()[0]
    if not row or not row[4]:
        return {}
    out = {f"p{p}": round(float(v), 1) for p, v in zip(PERCENTILES, row[0], strict=True)}
    out.update(min=float(row[1]), max=float(row[2]), mean=round(float(row[3]), 1))
    return out


def histogram(con: duckdb.DuckDBPyConnection, expr: str, *, source: str = "rows", bins: int = HIST_BINS) -> list[Bin]:
    """Equal-width bins between the min and the max (integer widths: these are lengths and pixel counts)."""
    lo_hi = con.execute(f"SELECT min(CAST({expr} AS DOUBLE)), max(CAST({expr} AS DOUBLE)) FROM {source}").fetchall()[0]
    if lo_hi is None or lo_hi[0] is None:
        return []
    lo, hi = lo_hi
    width = max(1.0, float(int((hi - lo) / bins) + 1))
    rows = con.execute(f"SELECT CAST(floor((CAST({expr} AS DOUBLE) - {lo}) / {width}) AS INTEGER) AS b, count(*) "
                       f"FROM {source} WHERE {expr} IS NOT NULL GROUP BY b ORDER BY b").fetchall()
    found = dict(rows)
    n = int((hi - lo) // width) + 1
    return [Bin(lo + i * width, lo + (i + 1) * width, int(found.get(i, 0))) for i in range(n)]


def register_sizes(con: duckdb.DuckDBPyConnection, ds: Dataset) -> None:
    """A ``sizes(width, height)`` relation: CLEAN has the columns; RAW sizes come from image headers.

    For RAW the image bytes are streamed in record batches and only their headers are parsed (Pillow reads the
    size without decoding pixels), so memory stays at one batch.
    """
    if ds.kind == "clean":
        con.execute("CREATE OR REPLACE VIEW sizes AS SELECT width, height FROM rows")
        return
    reader = query_reader(con, f"SELECT {ds.image_column} AS img FROM rows WHERE {ds.image_column} IS NOT NULL", 512)
    widths: list[int | None] = []
    heights: list[int | None] = []
    for batch in reader:
        for data in batch.column(0).to_pylist():
            w, h = _header_size(data)
            widths.append(w)
            heights.append(h)
    table = pa.table({"width": pa.array(widths, pa.int32()), "height": pa.array(heights, pa.int32())})
    con.register("sizes_tbl", table)
    con.execute("CREATE OR REPLACE VIEW sizes AS SELECT * FROM sizes_tbl")


def _header_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:  # noqa: BLE001 - not an image: no size (the clean stage drops it as undecodable)
        return None, None


@dataclass
class Thumb:
    key: str
    caption: str
    source: str
    width: int | None
    height: int | None
    image: object  # PIL.Image.Image | None


def quotas(per_source: dict[str, int], n: int) -> dict[str, int]:
    """``n`` sample slots over the sources in proportion to their rows (largest remainder), every source getting at
    least one while there are slots for all, and none more than it has."""
    total = sum(per_source.values())
    n = min(n, total)
    if n <= 0:
        return {}
    share = {s: n * c / total for s, c in per_source.items()}
    out = {s: int(v) for s, v in share.items()}
    if n >= len(per_source):
        out = {s: max(1, v) for s, v in out.items()}
    while sum(out.values()) > n:  # the minimum of one took slots from the largest sources
        biggest = max(out, key=lambda s: (out[s], s))
        out[biggest] -= 1
    for s in sorted(share, key=lambda s: (out[s] - share[s], s)):  # largest remainder first
        if sum(out.values()) == n:
            break
        if out[s] < per_source[s]:
            out[s] += 1
    return out


def sample_keys(con: duckdb.DuckDBPyConnection, n: int, *, seed: int = 0) -> list[str]:
    """A seeded random sample of ``n`` matching rows, stratified by source, as keys in a random order: a person
    looking at a sample must see every source in its share, not the first rows of the first shard (which hold
    one source).  The order within each source is md5(seed:key): the same seed gives the same sample."""
    if n <= 0:
        return []
    per_source = dict(con.execute("SELECT coalesce(source, ''), count(*) FROM rows GROUP BY 1").fetchall())
    want = quotas(per_source, n)
    salt = f"{int(seed)}:"
    picked = con.execute(
        "SELECT s, key, h FROM (SELECT coalesce(source, '') AS s, key, md5(? || key) AS h, row_number() OVER "
        "(PARTITION BY coalesce(source, '') ORDER BY md5(? || key), key) AS r FROM rows) "
        "WHERE r <= ? ORDER BY h, key", [salt, salt, max(want.values(), default=0)]).fetchall()
    taken: dict[str, int] = {}
    keys = []
    for source, key, _ in picked:
        if taken.get(source, 0) < want.get(source, 0):
            taken[source] = taken.get(source, 0) + 1
            keys.append(key)
    return keys


def rows_of(keys: list[str]) -> str:
    """SQL predicate for rows with these keys (a constant list: DuckDB skips the row groups whose key range
    holds none, and shards are written in key order, so a sample reads few row groups)."""
    quoted = ", ".join("'" + str(k).replace("'", "''") + "'" for k in keys)
    return f"key IN ({quoted})" if keys else "FALSE"


def load_thumbs(con: duckdb.DuckDBPyConnection, ds: Dataset, keys: list[str], *, size: int = 256) -> list[Thumb]:
    """The rows with these keys (a `sample_keys` sample), in that order, with previews; only these images are
    decoded, in batches of 16.

    Images over the clean stage's pixel limit (the dataset's own ``max_pixels`` parameter, else the clean
    config's default) get no preview: they are never decoded."""
    if not keys:
        return []
    max_pixels = int((ds.manifest.parameters if ds.manifest else {}).get("max_pixels") or CleanConfig.max_pixels)
    dims = "width, height" if ds.kind == "clean" else "NULL AS width, NULL AS height"
    reader = query_reader(con, f"SELECT key, caption, source, {dims}, {ds.image_column} AS img FROM rows "
                               f"WHERE {rows_of(keys)}", 16)
    found = {}
    for batch in reader:
        for row in batch.to_pylist():
            found.setdefault(row["key"], Thumb(row["key"], row["caption"] or "", row["source"], row["width"],
                                               row["height"], thumbnail(row["img"], size, max_pixels=max_pixels)))
    return [found[k] for k in keys if k in found]
