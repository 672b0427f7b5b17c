"""Every question the browser asks of a dataset, answered by DuckDB over the dataset's own files.

The views (``rows`` over the shards, ``rejected`` over the clean stage's audit files, ``dedup_index`` over the dedup
index, ``raw_inputs`` over the RAW files the manifest lists, when they are still there) live in a small DuckDB file
in a private temporary folder, built once per version of the dataset (a takedown makes a new one).  Every query runs
on a connection opened read-only with file access confined to the dataset's folders and the configuration locked,
so the SQL box cannot write, attach, install or read anything else.  File names come from the manifest (its shard
list and ``extra.index`` / ``extra.rejected``), never from a hard-coded layout.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import duckdb

from data_schemas import member_path
from pipeline.tools._read import Dataset, ToolError, open_dataset

GRID_COLUMNS = ("key", "caption", "caption_origin", "width", "height", "original_width", "original_height",
                "sha256", "lang", "source", "source_kind", "page_url", "image_url", "published_at", "crawled_at",
                "license", "credit", "split", "dup_cluster")
_REJECTED_COLUMNS = {"id": "VARCHAR", "reason": "VARCHAR", "source": "VARCHAR", "page_url": "VARCHAR",
                     "image_url": "VARCHAR", "caption_candidates": "VARCHAR", "input": "VARCHAR",
                     "image_bytes": "BLOB", "dup_cluster": "VARCHAR"}
_TOKEN = r"[^[:alnum:]]+"  # caption words for the full-text index: runs of letters and digits, accents folded
_SQL_START = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(select|with|from)\b", re.IGNORECASE | re.DOTALL)
BM25_K1, BM25_B = 1.2, 0.75  # the usual Okapi BM25 constants (Lucene's defaults)


@dataclass(frozen=True)
class Filters:
    """The grid's filters; every value arrives from a query string and reaches SQL only as a bound parameter."""

    split: str = ""
    source: str = ""
    lang: str = ""
    min_side: int | None = None  # shortest side of the stored image, pixels
    max_side: int | None = None
    min_caption: int | None = None  # caption length, characters
    max_caption: int | None = None
    q: str = ""  # caption full-text search (BM25 over caption words)
    order: str = "key"  # key | random (a fixed shuffle: a sample of the whole dataset, not its first rows)

    def where(self) -> tuple[str, list[Any]]:
        parts, args = ["TRUE"], []
        for column in ("split", "source", "lang"):
            if getattr(self, column):
                parts.append(f"{column} = ?")
                args.append(getattr(self, column))
        for value, sql in ((self.min_side, "least(width, height) >= ?"), (self.max_side, "least(width, height) <= ?"),
                           (self.min_caption, "length(caption) >= ?"), (self.max_caption, "length(caption) <= ?")):
            if value is not None:
                parts.append(sql)
                args.append(int(value))
        return " AND ".join(parts), args

    def params(self) -> dict[str, str]:
        """The non-default filters as query-string pairs (for the pager's links)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) not in (None, "", f.default)}


@dataclass
class SqlResult:
    columns: list[str]
    rows: list[list[str]]
    truncated: bool
    error: str | None = None


def terms(text: str) -> list[str]:
    """The same tokenisation as the index (lower case, accents folded, split on non-alphanumerics), in Python."""
    import unicodedata

    folded = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return sorted({t for t in re.split(r"[\W_]+", folded) if t})


class DatasetQueries:
    """The browser's read side; ``reload()`` after the dataset changed (a takedown) swaps in fresh views."""

    def __init__(self, path: str | Path, *, memory_limit: str = "1GB", sql_timeout_s: float = 10.0):
        self.path = Path(path).resolve()
        self.memory_limit, self.sql_timeout_s = memory_limit, sql_timeout_s
        self._lock = threading.Lock()
        self._tmp: Path | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self.version = 0
        self._facets: tuple[int, dict[str, list[tuple[str, int]]]] | None = None
        self.reload()

    # --- building the views ---------------------------------------------------------------------------------------

    def reload(self) -> None:
        ds = open_dataset(self.path)
        if ds.kind != "clean" or ds.manifest is None or ds.single_file:
            raise ToolError(f"{self.path}: browse works on a CLEAN dataset directory (one with a manifest); "
                            "build one with `mmpipe clean`")
        tmp = Path(tempfile.mkdtemp(prefix="mmpipe-browse-"))
        db = tmp / "views.duckdb"
        allowed = self._build(ds, db)
        con = duckdb.connect(str(db), read_only=True)
        con.execute(f"SET memory_limit = '{self.memory_limit}'")
        con.execute("SET allowed_directories = ?", [sorted(allowed)])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        with self._lock:
            old_con, old_tmp = self._con, self._tmp
            self.ds, self._con, self._tmp = ds, con, tmp
            self.version += 1
        if old_con is not None:
            old_con.close()
        if old_tmp is not None:
            shutil.rmtree(old_tmp, ignore_errors=True)

    def _build(self, ds: Dataset, db: Path) -> set[str]:
        """Write the views and the caption index; returns the folders the read-only connection may read."""
        extra = ds.manifest.extra
        index = [member_path(ds.root, n) for n in extra.get("index", [])]
        rejected = [member_path(ds.root, n) for n in extra.get("rejected", [])]
        raw = [Path(i["path"]) for i in ds.manifest.inputs if i.get("path") and Path(i["path"]).is_file()]
        con = duckdb.connect(str(db))
        try:
            con.execute(f"CREATE VIEW rows AS SELECT * FROM read_parquet({_paths(ds.files)}, union_by_name = true)"
                        if ds.files else _empty_rows_sql())
            present = [p for p in rejected if p.exists()]
            con.execute(f"CREATE VIEW rejected AS SELECT {_rejected_select(con, present)}")
            present = [p for p in index if p.exists()]
            con.execute(f"CREATE VIEW dedup_index AS SELECT * FROM read_parquet({_paths(present)}, "
                        "union_by_name = true)" if present else
                        "CREATE VIEW dedup_index AS SELECT NULL::VARCHAR AS key, NULL::VARCHAR AS cluster WHERE false")
            con.execute(f"CREATE VIEW raw_inputs AS SELECT id, caption_candidates, page_url, image_url, source, "
                        f"image_bytes FROM read_parquet({_paths(raw)}, union_by_name = true)" if raw else
                        "CREATE VIEW raw_inputs AS SELECT NULL::VARCHAR AS id, NULL AS caption_candidates, "
                        "NULL::VARCHAR AS page_url, NULL::VARCHAR AS image_url, NULL::VARCHAR AS source, "
                        "NULL::BLOB AS image_bytes WHERE false")
            con.execute(f"CREATE TABLE caption_terms AS SELECT key, term, count(*)::INTEGER AS tf FROM ("
                        f"SELECT key, unnest(regexp_split_to_array(strip_accents(lower(caption)), '{_TOKEN}')) "
                        "AS term FROM rows) WHERE term <> '' GROUP BY key, term ORDER BY term, key")
            con.execute("CREATE TABLE caption_docs AS SELECT key, sum(tf)::INTEGER AS len FROM caption_terms "
                        "GROUP BY key")
        finally:
            con.close()
        return {str(p.parent.resolve()) + "/" for p in [*ds.files, *index, *rejected, *raw]} | {str(ds.root) + "/"}

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._con = self._tmp = None

    # --- queries ------------------------------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                raise ToolError("the browser was closed")
            return self._con.cursor()

    def fetch(self, sql: str, args: list[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.cursor()
        try:
            rel = cur.execute(sql, args or [])
            names = [d[0] for d in rel.description]
            return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
        finally:
            cur.close()

    def facets(self) -> dict[str, list[tuple[str, int]]]:
        """Values and counts of split, source and language (one scan; kept until the dataset changes)."""
        version = self.version
        if self._facets is not None and self._facets[0] == version:
            return self._facets[1]
        rows = self.fetch("SELECT split, source, lang, count(*) AS n FROM rows GROUP BY GROUPING SETS "
                          "((split), (source), (lang))")
        out: dict[str, list[tuple[str, int]]] = {}
        for column in ("split", "source", "lang"):
            values = [(r[column], r["n"]) for r in rows if r[column] is not None]
            out[column] = sorted(values, key=lambda v: (-v[1], v[0]))
        self._facets = (version, out)
        return out

    def page(self, filters: Filters, *, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(matching rows, one page of them) in the chosen order, or by BM25 score when searching captions; one
        scan (the total is a window over the same rows)."""
        where, args = filters.where()
        cols = ", ".join(f"r.{c}" for c in GRID_COLUMNS)
        if filters.q.strip():
            scored, sargs = self._bm25_sql(filters.q)
            base = f"FROM rows r JOIN ({scored}) s ON s.key = r.key WHERE {where}"
            args = sargs + args
            order = "s.score DESC, r.key"
            cols += ", s.score"
        else:
            base = f"FROM rows r WHERE {where}"
            order = "hash(r.key), r.key" if filters.order == "random" else "r.key"
        rows = self.fetch(f"SELECT {cols}, count(*) OVER () AS total_rows {base} ORDER BY {order} LIMIT ? OFFSET ?",
                          [*args, limit, offset])
        if rows:
            return rows[0]["total_rows"], rows
        total = self.fetch(f"SELECT count(*) AS n {base}", args)[0]["n"] if offset else 0  # a page past the end
        return total, rows

    def _bm25_sql(self, q: str) -> tuple[str, list[Any]]:
        """Okapi BM25 over the caption index: every row containing at least one of the query's words, best first."""
        words = terms(q)
        return (f"""
            WITH q AS (SELECT unnest(?::VARCHAR[]) AS term),
                 stats AS (SELECT count(*) AS n, avg(len) AS avgdl FROM caption_docs),
                 df AS (SELECT term, count(*) AS df FROM caption_terms WHERE term IN (SELECT term FROM q)
                        GROUP BY term)
            SELECT t.key, sum(ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5)) * t.tf * {BM25_K1 + 1}
                              / (t.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * d.len / stats.avgdl))) AS score
            FROM caption_terms t JOIN df USING (term) JOIN caption_docs d USING (key) CROSS JOIN stats
            GROUP BY t.key""", [words])

    def rows_by_key(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        cols = ", ".join(GRID_COLUMNS)
        return {r["key"]: r for r in self.fetch(f"SELECT {cols} FROM rows WHERE key IN (SELECT unnest(?))", [keys])}

    def image(self, key: str) -> bytes | None:
        found = self.fetch("SELECT image FROM rows WHERE key = ? LIMIT 1", [key])
        return found[0]["image"] if found else None

    def rejected_image(self, row_id: str) -> bytes | None:
        """A dropped row's picture: the audit file's copy (``--rejected-images``), else the RAW input's, if kept."""
        found = self.fetch("SELECT coalesce((SELECT first(image_bytes) FROM rejected WHERE id = $1 AND "
                           "image_bytes IS NOT NULL), (SELECT first(image_bytes) FROM raw_inputs WHERE id = $1 AND "
                           "image_bytes IS NOT NULL)) AS b", [row_id])
        return found[0]["b"] if found else None

    # --- drops and duplicates -------------------------------------------------------------------------------------

    def reasons(self, *, examples: int = 6) -> list[dict[str, Any]]:
        """Every drop reason of the funnel with its count, and up to ``examples`` audit rows (when written)."""
        drops = self.ds.manifest.drops
        recorded = {r["reason"]: r["n"] for r in self.fetch("SELECT reason, count(*) AS n FROM rejected GROUP BY 1")}
        ex = self.fetch(
            "SELECT r.id, r.reason, coalesce(r.source, w.source) AS source, coalesce(r.page_url, w.page_url) AS "
            "page_url, coalesce(r.image_url, w.image_url) AS image_url, coalesce(r.caption_candidates, "
            "to_json(w.caption_candidates)::VARCHAR) AS caption_candidates, r.dup_cluster, (r.image_bytes IS NOT "
            "NULL OR w.image_bytes IS NOT NULL) AS has_image FROM (SELECT *, row_number() OVER (PARTITION BY reason "
            "ORDER BY id) AS i FROM rejected) r LEFT JOIN raw_inputs w ON w.id = r.id WHERE r.i <= ? "
            "ORDER BY r.reason, r.id", [examples])
        out = []
        for reason in [*drops, *sorted(set(recorded) - set(drops))]:
            rows = [dict(e, captions=_captions(e["caption_candidates"])) for e in ex if e["reason"] == reason]
            out.append({"reason": reason, "count": int(drops.get(reason, recorded.get(reason, 0))),
                        "recorded": recorded.get(reason, 0), "examples": rows})
        return out

    def duplicate_clusters(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Clusters that lost members: the kept row (still in the shards) beside each removed one, biggest first."""
        removed = self.fetch(
            "SELECT d.dup_cluster AS cluster, d.id, d.reason, w.page_url, w.image_url, w.source, "
            "to_json(w.caption_candidates)::VARCHAR AS caption_candidates, w.image_bytes IS NOT NULL AS has_image "
            "FROM rejected d LEFT JOIN raw_inputs w ON w.id = d.id WHERE d.dup_cluster IS NOT NULL "
            "AND d.dup_cluster IN (SELECT dup_cluster FROM rejected WHERE dup_cluster IS NOT NULL GROUP BY 1 "
            "ORDER BY count(*) DESC, 1 LIMIT ?) ORDER BY d.dup_cluster, d.id", [limit])
        clusters: dict[str, list[dict]] = {}
        for r in removed:
            clusters.setdefault(r["cluster"], []).append(dict(r, captions=_captions(r["caption_candidates"])))
        kept = self.rows_by_key(list(clusters))
        out = [{"cluster": c, "kept": kept.get(c), "removed": members} for c, members in clusters.items()]
        return sorted(out, key=lambda c: (-len(c["removed"]), c["cluster"]))

    # --- the SQL box ------------------------------------------------------------------------------------------------

    def run_sql(self, sql: str, *, limit: int = 200) -> SqlResult:
        """A read-only query (SELECT / WITH only) over the views, at most ``limit`` rows, interrupted after the
        timeout; every error comes back as a message."""
        sql = sql.strip().rstrip(";").strip()
        cur = self.cursor()
        timer = threading.Timer(self.sql_timeout_s, cur.interrupt)
        try:
            problem = _check_select(cur, sql)
            if problem:
                return SqlResult([], [], False, problem)
            timer.start()
            rel = cur.execute(f"SELECT * FROM ({sql}) AS q LIMIT {int(limit) + 1}")
            names = [d[0] for d in rel.description]
            rows = rel.fetchall()
            return SqlResult(names, [[_cell(v) for v in row] for row in rows[:limit]], len(rows) > limit)
        except duckdb.InterruptException:
            return SqlResult([], [], False, f"stopped after {self.sql_timeout_s:g} s (add a LIMIT or a WHERE)")
        except duckdb.Error as exc:
            return SqlResult([], [], False, str(exc).strip())
        finally:
            timer.cancel()
            cur.close()

    # --- numbers for the plots --------------------------------------------------------------------------------------

    def funnel(self) -> list[tuple[str, int]]:
        m = self.ds.manifest
        return [("rows in", m.rows_in), *[(k, v) for k, v in m.drops.items() if v], ("rows out", m.rows_out)]

    def column(self, sql: str) -> list[Any]:
        return [next(iter(r.values())) for r in self.fetch(sql)]


def _captions(candidates: str | None) -> list[str]:
    try:
        parsed = json.loads(candidates or "[]")
    except (TypeError, ValueError):
        return []
    return [c.get("text", "") for c in parsed if isinstance(c, dict) and c.get("text")][:3]


def _check_select(cur: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    """Why ``sql`` may not run, or None: it must be exactly one SELECT (WITH ... SELECT, FROM ...), as DuckDB's
    own parser classifies it (the connection is read-only and locked anyway: this gives a clear message)."""
    if not sql:
        return "type a query, e.g. SELECT source, count(*) FROM rows GROUP BY 1"
    try:
        statements = cur.extract_statements(sql)
    except duckdb.Error as exc:
        return str(exc).strip()
    if len(statements) != 1:
        return "one query at a time (no ';' between statements)"
    if statements[0].type != duckdb.StatementType.SELECT or not _SQL_START.match(sql):
        return "only SELECT (or WITH ... SELECT) queries are allowed here; the browser is read-only"
    return None


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value):,} bytes>"
    text = str(value)
    return text if len(text) <= 300 else text[:300] + "…"


def _paths(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p.resolve()).replace("'", "''") + "'" for p in files) + "]"


def _empty_rows_sql() -> str:
    cols = ", ".join(f"NULL::VARCHAR AS {c}" for c in GRID_COLUMNS if c not in ("width", "height"))
    return (f"CREATE VIEW rows AS SELECT {cols}, NULL::INTEGER AS width, NULL::INTEGER AS height, "
            "NULL::BLOB AS image WHERE false")


def _rejected_select(con: duckdb.DuckDBPyConnection, files: list[Path]) -> str:
    """The audit files' columns in one shape, whichever columns each kind of file has (row drops, duplicates)."""
    if not files:
        return ", ".join(f"NULL::{t} AS {c}" for c, t in _REJECTED_COLUMNS.items()) + " WHERE false"
    src = f"read_parquet({_paths(files)}, union_by_name = true)"
    have = {d[0] for d in con.execute(f"SELECT * FROM {src} LIMIT 0").description}
    cols = ", ".join(c if c in have else f"NULL::{t} AS {c}" for c, t in _REJECTED_COLUMNS.items())
    return f"{cols} FROM {src}"
