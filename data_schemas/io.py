"""Atomic writers: every file a stage publishes appears whole or not at all.

A reader (or a resumed run) must never see a half-written shard, so each writer writes to a temporary name in the
same directory, fsyncs, then renames over the final name (rename is atomic on POSIX within one file system).
Each rename is a named kill point for the crash tests (`data_schemas.faults`).  A URL destination
(`data_schemas.storage`) is written to a local temporary file, then published as a temporary object and copied
to its key: readers of an object store see it whole or not at all, too.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas import storage
from data_schemas.faults import fault_point


def _tmp_path(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    # mkstemp creates 0600; published data should be as readable as any file the user writes.
    os.chmod(tmp, 0o666 & ~_umask())
    fault_point(f"publish:{path.name}")
    os.replace(tmp, path)
    fault_point(f"published:{path.name}")


@contextmanager
def _replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; published over ``path`` when the block ends without error, removed
    either way."""
    if storage.is_url(path):
        fd, name = tempfile.mkstemp(prefix=f".{storage.name(path)}.", suffix=".tmp")
        os.close(fd)
        try:
            yield Path(name)
            storage.publish_file(Path(name), path)
        finally:
            os.unlink(name)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        yield tmp
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path | str:
    with _replacing(path) as tmp:
        tmp.write_bytes(data)
    return storage.location(path)


def atomic_write_json(path: str | Path, obj: Any) -> Path | str:
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    return atomic_write_bytes(path, text.encode())


def atomic_write_parquet(path: str | Path, table: pa.Table, *, row_group_size: int | None = None,
                         compression: str = "zstd", **kwargs: Any) -> Path | str:
    with _replacing(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression=compression, **kwargs)
    return storage.location(path)


def atomic_write_parquet_chunks(path: str | Path, schema: pa.Schema, chunks: Iterable[pa.Table], *,
                                compression: str | dict[str, str] = "zstd", **kwargs: Any) -> Path | str:
    """Like `atomic_write_parquet`, one row group per chunk, built as it is written: a file of large values
    (images) is never held, or allocated, whole; fresh 100 MB buffers per file cost more in page faults than the
    copying itself."""
    with _replacing(path) as tmp, pq.ParquetWriter(tmp, schema, compression=compression, **kwargs) as writer:
        for chunk in chunks:
            writer.write_table(chunk, row_group_size=max(1, chunk.num_rows))
    return storage.location(path)


def file_sha256(path: str | Path, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with storage.open_file(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
