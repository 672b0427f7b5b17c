"""The persistent crawl state of one source in one output directory (SQLite).

A page URL is marked done only in the same transaction that registers the Parquet file holding its last row, so
whatever was buffered in memory when a crawl was killed is simply crawled again on the next run, and rows are
deduplicated by id when they are flushed.  The same store makes scheduled re-crawls incremental: done pages are
not fetched again, and images already stored are reused from their Parquet file instead of being downloaded.

Publishing a file is a three-step protocol that survives a kill at any point:
  1. one transaction records the file as `pending` with its rows, images and completed pages;
  2. the Parquet file is written under a temporary name and renamed (data_schemas.atomic_write_parquet);
  3. the file is marked `ok`.
On open, a `pending` file that exists on disk is confirmed, one that does not is rolled back.
"""

from __future__ import annotations

import fcntl
import functools
import glob
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from data_schemas.faults import fault_point

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, state TEXT NOT NULL, rows INTEGER, bytes INTEGER,
                                  created REAL, owner TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, file TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (url TEXT PRIMARY KEY, file TEXT, rows INTEGER, done REAL);
CREATE TABLE IF NOT EXISTS images (url TEXT PRIMARY KEY, file TEXT NOT NULL, idx INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS rows_file ON rows(file);
CREATE INDEX IF NOT EXISTS pages_file ON pages(file);
CREATE INDEX IF NOT EXISTS images_file ON images(file);
"""


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)
    return wrapper


class CrawlState:
    """`owner` names the process (a source, or one shard of it) that writes through this handle; several shards of
    one source share the store, each holding the lock file `lock_path(owner)` while it runs."""

    def __init__(self, path: str | Path, *, out_dir: str | Path, owner: str = "",
                 lock_path=None):
        self.path = Path(path)
        self.out_dir = Path(out_dir)
        self.owner = owner
        self.lock_path = lock_path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # used from the reactor thread (lookups) and the writer's publishing thread; every call takes the lock
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.recover()

    @_locked
    def close(self) -> None:
        self.db.close()

    @_locked
    def recover(self) -> list[str]:
        """Confirm or roll back files left `pending` by a killed run, and delete the temporary file it was
        writing (`data_schemas.io` names it `.<name>.<random>.tmp`); returns the names rolled back.

        Our own pending files are ours to settle (we hold our lock); another owner's only when no live process
        holds that owner's lock, so a running shard's file is never rolled back under it."""
        rolled = []
        pending = self.db.execute("SELECT name, owner FROM files WHERE state = 'pending'").fetchall()
        for name, owner in pending:
            if owner != self.owner and not self._owner_is_dead(owner):
                continue
            for tmp in self.out_dir.glob(f".{glob.escape(name)}.*.tmp"):  # the killed writer's temporary file
                tmp.unlink(missing_ok=True)
            if (self.out_dir / name).exists():
                self.db.execute("UPDATE files SET state = 'ok' WHERE name = ?", (name,))
                continue
            with self._txn():
                for table in ("rows", "pages", "images"):
                    self.db.execute(f"DELETE FROM {table} WHERE file = ?", (name,))
                self.db.execute("DELETE FROM files WHERE name = ?", (name,))
            rolled.append(name)
        return rolled

    def _owner_is_dead(self, owner: str) -> bool:
        if self.lock_path is None:
            return True
        with open(self.lock_path(owner), "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(fh, fcntl.LOCK_UN)
            return True

    def _txn(self):
        return _Txn(self.db)

    # --- queries ---------------------------------------------------------------------------------------
    @_locked
    def page_done(self, url: str) -> bool:
        return self.db.execute("SELECT 1 FROM pages WHERE url = ?", (url,)).fetchone() is not None

    @_locked
    def known_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(f"SELECT id FROM rows WHERE id IN ({marks})", chunk))
        return found

    @_locked
    def image_location(self, url: str) -> tuple[Path, int] | None:
        row = self.db.execute("SELECT file, idx FROM images WHERE url = ?", (url,)).fetchone()
        if row is None:
            return None
        return self.out_dir / row[0], row[1]

    @_locked
    def files(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM files WHERE state = 'ok' ORDER BY name")]

    @_locked
    def counts(self) -> dict[str, int]:
        q = self.db.execute
        return {"rows": q("SELECT COUNT(*) FROM rows").fetchone()[0],
                "pages_done": q("SELECT COUNT(*) FROM pages").fetchone()[0],
                "images_stored": q("SELECT COUNT(*) FROM images").fetchone()[0],
                "files": q("SELECT COUNT(*) FROM files WHERE state = 'ok'").fetchone()[0]}

    # --- publishing ------------------------------------------------------------------------------------
    @_locked
    def begin_file(self, name: str, *, row_ids: list[str], images: Iterable[tuple[str, int]],
                   pages: Iterable[tuple[str, int]], nbytes: int) -> None:
        """Step 1: record the file as pending with everything it completes, in one transaction."""
        now = time.time()
        with self._txn():
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, 'pending', ?, ?, ?, ?)",
                            (name, len(row_ids), nbytes, now, self.owner))
            self.db.executemany("INSERT OR IGNORE INTO rows VALUES (?, ?)", [(i, name) for i in row_ids])
            self.db.executemany("INSERT OR IGNORE INTO images VALUES (?, ?, ?)",
                                [(url, name, idx) for url, idx in images])
            self.db.executemany("INSERT OR IGNORE INTO pages VALUES (?, ?, ?, ?)",
                                [(url, name, n, now) for url, n in pages])

    @_locked
    def commit_file(self, name: str) -> None:
        """Step 3: the file is on disk under its final name."""
        self.db.execute("UPDATE files SET state = 'ok' WHERE name = ?", (name,))
        fault_point(f"crawl.committed:{name}")

    @_locked
    def mark_pages(self, pages: Iterable[tuple[str, int]]) -> None:
        """Pages that completed without any row (all images dropped or none found)."""
        now = time.time()
        with self._txn():
            self.db.executemany("INSERT OR IGNORE INTO pages VALUES (?, NULL, ?, ?)",
                                [(url, n, now) for url, n in pages])


class _Txn:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
