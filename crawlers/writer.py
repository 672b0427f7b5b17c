"""Rolling RAW Parquet writer with page accounting.

Rows are buffered and published in files of `rows_per_file` rows / `bytes_per_file` bytes (or after
`flush_seconds`).  The writer also knows, per page, how many (page, image) pairs are still unresolved, so it can
tell the state store that a page is done exactly when every one of its rows is in a published file.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from crawlers.state import CrawlState
from data_schemas import RAW_SCHEMA, atomic_write_parquet_chunks, validate

logger = logging.getLogger(__name__)
MAX_INFLIGHT = 2  # files being encoded/written at once; more waits (bounded memory when the disk is slow)
ROW_GROUP_ROWS = 64  # small row groups let a later page reuse one stored image without reading the whole file
_COLUMNS = RAW_SCHEMA.names
_COMPRESSION = {name: "zstd" for name in _COLUMNS}
_COMPRESSION["image_bytes"] = "none"  # photos are already compressed; zstd over them only burns CPU


def read_stored_image(path: Path, idx: int) -> dict | None:
    """The image columns of row `idx` of a RAW file written by this writer (None if the file is gone)."""
    try:
        pf = pq.ParquetFile(path)
        table = pf.read_row_group(idx // ROW_GROUP_ROWS,
                                  columns=["image_bytes", "image_mime", "http_status", "fetch_error"])
    except (OSError, pa.ArrowException, IndexError):
        return None
    row = idx % ROW_GROUP_ROWS
    if row >= table.num_rows:
        return None
    return {name: table.column(name)[row].as_py() for name in table.column_names}


class RawWriter:
    def __init__(self, *, out_dir: Path, source: str, state: CrawlState, rows_per_file: int, bytes_per_file: int,
                 flush_seconds: float, count=None, on_failure=None):
        self.out_dir, self.source, self.state, self.count = Path(out_dir), source, state, count
        self.on_failure = on_failure  # called with the exception when a file could not be published
        self.rows_per_file, self.bytes_per_file, self.flush_seconds = rows_per_file, bytes_per_file, flush_seconds
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")[:-3]
        self.seq = 0
        self.buffer: list[dict] = []
        self.buffer_bytes = 0
        self.first_fetch: dict[str, int] = {}  # image url -> buffer index of the row that carries its download
        self.outstanding: dict[str, int] = {}  # page url -> pairs not yet resolved
        self.produced: dict[str, int] = {}  # page url -> rows produced so far
        self.unflushed: dict[str, int] = {}  # page url -> rows in the buffer
        self.ready: list[tuple[str, int]] = []  # pages resolved whose rows are all published
        self.last_flush = time.monotonic()
        self.files: list[str] = []
        self.rows_written = 0
        self.duplicates_skipped = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mmpipe-writer-{source}")
        self.inflight: deque[tuple[Future, list[dict], dict[str, int]]] = deque()

    # --- page accounting ----------------------------------------------------------------------------------
    def expect(self, page_url: str, pairs: int) -> None:
        self.outstanding[page_url] = self.outstanding.get(page_url, 0) + pairs
        self.produced.setdefault(page_url, 0)
        self._check_page(page_url)

    def drop(self, page_url: str) -> None:
        """One pair of the page resolved without a row (dropped with a reason)."""
        self.outstanding[page_url] -= 1
        self._check_page(page_url)

    def _check_page(self, page_url: str) -> None:
        if self.outstanding.get(page_url) == 0 and not self.unflushed.get(page_url):
            self.ready.append((page_url, self.produced.pop(page_url, 0)))
            del self.outstanding[page_url]
            self.unflushed.pop(page_url, None)

    def pending_pages(self) -> int:
        return len(self.outstanding)

    # --- rows ---------------------------------------------------------------------------------------------
    def add(self, row: dict, *, first_fetch: bool, page: str | None = None) -> None:
        """`page`: the page the row is accounted to, when it is not the row's own (a teaser of another page)."""
        page = page or row["page_url"]
        if first_fetch:
            self.first_fetch[row["image_url"]] = len(self.buffer)
        self.buffer.append(row)
        self.buffer_bytes += len(row["image_bytes"] or b"")
        self.outstanding[page] -= 1
        self.produced[page] = self.produced.get(page, 0) + 1
        self.unflushed[page] = self.unflushed.get(page, 0) + 1
        if len(self.buffer) >= self.rows_per_file or self.buffer_bytes >= self.bytes_per_file:
            self.flush()

    def buffered_image(self, image_url: str) -> dict | None:
        idx = self.first_fetch.get(image_url)
        if idx is not None:
            return self.buffer[idx]
        for _future, rows, first_fetch in self.inflight:  # handed to the publishing thread, not yet on disk
            idx = first_fetch.get(image_url)
            if idx is not None:
                return rows[idx]
        return None

    def maybe_flush(self) -> None:
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()
        elif self.inflight and self.inflight[0][0].done():
            self._reap()

    def flush(self, *, wait: bool = False) -> None:
        """Hand the buffer to the publishing thread (one file; rows already published are skipped there) and mark
        the pages it completes.  Parquet encoding and fsync run off the reactor thread, so downloads go on."""
        self.last_flush = time.monotonic()
        rows, first_fetch = self.buffer, self.first_fetch
        pages_in_buffer = set(self.unflushed)
        self.buffer, self.buffer_bytes, self.first_fetch, self.unflushed = [], 0, {}, {}
        for page in pages_in_buffer:
            self._check_page(page)
        ready, self.ready = self.ready, []
        if rows or ready:
            name = f"{self.source}-{self.run_id}-{self.seq:05d}.parquet"
            self.seq += 1
            future = self.pool.submit(self._publish, name, rows, first_fetch, ready)
            self.inflight.append((future, rows, first_fetch))
        while len(self.inflight) > MAX_INFLIGHT or (wait and self.inflight):
            futures_wait([self.inflight[0][0]])  # back-pressure: never more than MAX_INFLIGHT files in memory
            self._reap()
        self._reap()

    def _reap(self) -> None:
        while self.inflight and self.inflight[0][0].done():
            future, _rows, _ff = self.inflight.popleft()
            try:
                name, written, skipped = future.result()
            except Exception as exc:  # disk full, permissions...: the crawl must stop, not lose rows silently
                logger.error("could not publish a RAW file in %s: %s", self.out_dir, exc)
                if self.on_failure is None:
                    raise
                self.on_failure(exc)
                continue
            self.duplicates_skipped += skipped
            if written:
                self.files.append(name)
                self.rows_written += written
                if self.count is not None:
                    self.count("rows", written)
                    self.count("files")

    def _publish(self, name: str, buffer: list[dict], first_fetch: dict[str, int],
                 ready: list[tuple[str, int]]) -> tuple[str, int, int]:
        """Runs in the publishing thread, one file at a time: dedupe against the store, write, register."""
        rows, images = _dedupe(self.state, buffer, first_fetch)
        if not rows:
            if ready:
                self.state.mark_pages(ready)
            return name, 0, len(buffer)
        nbytes = sum(len(r["image_bytes"] or b"") for r in rows)
        self.state.begin_file(name, row_ids=[r["id"] for r in rows], images=images, pages=ready, nbytes=nbytes)
        atomic_write_parquet_chunks(self.out_dir / name, RAW_SCHEMA, _row_groups(rows), compression=_COMPRESSION,
                                    use_dictionary=[c for c in _COLUMNS if c != "image_bytes"])
        self.state.commit_file(name)
        logger.info("wrote %s (%d rows, %.1f MB)", name, len(rows), nbytes / 1e6)
        return name, len(rows), len(buffer) - len(rows)

    def close(self) -> None:
        try:
            self.flush(wait=True)
        finally:
            self.pool.shutdown(wait=True)


def _row_groups(rows: list[dict]):
    """Validated RAW tables of ROW_GROUP_ROWS rows each, built one at a time as the file is written."""
    for start in range(0, len(rows), ROW_GROUP_ROWS):
        part = rows[start:start + ROW_GROUP_ROWS]
        table = pa.Table.from_pydict({c: [r[c] for r in part] for c in _COLUMNS}, schema=RAW_SCHEMA)
        validate(table, RAW_SCHEMA)
        yield table


def _dedupe(state: CrawlState, buffer: list[dict],
            first_fetch: dict[str, int]) -> tuple[list[dict], list[tuple[str, int]]]:
    by_id: dict[str, int] = {}
    for i, row in enumerate(buffer):
        by_id.setdefault(row["id"], i)
    known = state.known_ids(list(by_id))
    keep = sorted(i for rid, i in by_id.items() if rid not in known)
    rows = [buffer[i] for i in keep]
    position = {i: n for n, i in enumerate(keep)}
    images = [(url, position[i]) for url, i in first_fetch.items() if i in position]
    return rows, images
