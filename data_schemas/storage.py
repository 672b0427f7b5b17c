"""Where a stage's files live: a local path, or a URL of any fsspec filesystem (``s3://bucket/key``, ``gs://``...).

Every stage names its inputs and outputs as a *location*: a `Path` for local files (the stages keep their local
protocol there, hard links and renames included, at unchanged speed) or a URL string for everything else.  This
module maps a URL to (fsspec filesystem, path) and gives the few operations the stages need on either kind.

Object stores have no atomic rename, but a single object appears whole or not at all.  So a file is published by
writing a temporary key (``.<name>.<id>.tmp`` beside the final one: hidden from every reader, which skips
``.``-names) and then copying it to the final key; a dataset's manifest, written last, is its commit point.

S3 endpoint: ``MMPIPE_S3_ENDPOINT_URL`` (e.g. a MinIO, Ceph or moto server) is passed to s3fs as
``client_kwargs.endpoint_url``; without it botocore's own configuration applies (``AWS_ENDPOINT_URL``, profiles,
then AWS itself).  ``MMPIPE_STORAGE_OPTIONS`` may hold a JSON object of further fsspec options per protocol,
e.g. ``{"s3": {"anon": true}}``.  Credentials come from the usual AWS variables and files, never from mmpipe.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from pathlib import Path
from typing import IO, Any

from data_schemas.faults import fault_point

Location = Path | str
ENV_S3_ENDPOINT = "MMPIPE_S3_ENDPOINT_URL"
ENV_OPTIONS = "MMPIPE_STORAGE_OPTIONS"


class StorageError(RuntimeError):
    """A location that cannot be used (unknown protocol, missing package); the message says what to install."""


def is_url(loc: object) -> bool:
    """True for a ``scheme://`` string other than ``file://`` (those are local paths)."""
    return isinstance(loc, str) and "://" in loc and not loc.startswith("file://")


def location(value: str | os.PathLike) -> Location:
    """A config value as a location: a URL stays a string (``Path`` would fold its ``//``), anything else is a
    `Path` (``file://`` URLs included)."""
    if isinstance(value, str) and value.startswith("file://"):
        return Path(value[len("file://"):])
    if is_url(value):
        return value.rstrip("/")
    return Path(value)


def join(loc: Location, *parts: str) -> Location:
    if is_url(loc):
        return posixpath.join(loc, *parts)
    return Path(loc).joinpath(*parts)


def name(loc: Location) -> str:
    return posixpath.basename(loc) if is_url(loc) else Path(loc).name


def parent(loc: Location) -> Location:
    if is_url(loc):
        scheme, rest = loc.split("://", 1)
        return f"{scheme}://{posixpath.dirname(rest)}"
    return Path(loc).parent


def storage_options(protocol: str) -> dict[str, Any]:
    extra = os.environ.get(ENV_OPTIONS)
    options: dict[str, Any] = dict(json.loads(extra).get(protocol, {})) if extra else {}
    endpoint = os.environ.get(ENV_S3_ENDPOINT)
    if protocol in ("s3", "s3a"):
        # several processes write one dataset (Dask workers, a resumed run): never answer from a stale listing
        options.setdefault("use_listings_cache", False)
        if endpoint:
            options.setdefault("client_kwargs", {}).setdefault("endpoint_url", endpoint)
    return options


def filesystem(loc: Location):
    """(fsspec filesystem, path inside it) of a location; a local path gets fsspec's local filesystem."""
    import fsspec

    if not is_url(loc):
        return fsspec.filesystem("file"), str(loc)
    protocol = loc.split("://", 1)[0]
    try:
        fs, path = fsspec.core.url_to_fs(loc, **storage_options(protocol))
    except ImportError as exc:
        raise StorageError(f"{loc}: the {protocol}:// filesystem needs a package that is not installed ({exc}); "
                           f"for s3:// run `pip install 'mmpipe[s3]'`") from exc
    except ValueError as exc:
        raise StorageError(f"{loc}: {exc}") from exc
    return fs, path


def arrow_filesystem(loc: Location):
    """(pyarrow filesystem or None, path) for pyarrow readers and writers; None (pyarrow's own local I/O, the
    fast path) for local paths."""
    if not is_url(loc):
        return None, str(loc)
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = filesystem(loc)
    return PyFileSystem(FSSpecHandler(fs)), path


def parquet_file(loc: Location, **kwargs: Any):
    """`pyarrow.parquet.ParquetFile` of a local path (pyarrow's own reader, as fast as ever) or a URL."""
    import pyarrow.parquet as pq

    afs, path = arrow_filesystem(loc)
    return pq.ParquetFile(path, filesystem=afs, **kwargs)


def open_file(loc: Location, mode: str = "rb") -> IO:
    if not is_url(loc):
        return open(loc, mode)  # noqa: SIM115 -- the caller closes it
    fs, path = filesystem(loc)
    return fs.open(path, mode)


def read_bytes(loc: Location) -> bytes:
    if not is_url(loc):
        return Path(loc).read_bytes()
    fs, path = filesystem(loc)
    return fs.cat_file(path)


def read_text(loc: Location) -> str:
    return read_bytes(loc).decode("utf-8")


def exists(loc: Location) -> bool:
    if not is_url(loc):
        return Path(loc).exists()
    fs, path = filesystem(loc)
    return fs.exists(path)


def is_file(loc: Location) -> bool:
    if not is_url(loc):
        return Path(loc).is_file()
    fs, path = filesystem(loc)
    return fs.isfile(path)


def size(loc: Location) -> int:
    if not is_url(loc):
        return Path(loc).stat().st_size
    fs, path = filesystem(loc)
    return int(fs.size(path))


def list_files(loc: Location, *, suffix: str = "") -> list[Location]:
    """Every file under a directory or prefix (recursive, sorted) whose name ends with ``suffix``, skipping
    anything inside or named by a ``.``- or ``_``-prefixed part (temporary objects, auxiliary tables)."""
    if not is_url(loc):
        root = Path(loc)
        found = [p for p in root.rglob(f"*{suffix}") if p.is_file()]
        return sorted(p for p in found if not any(x.startswith((".", "_")) for x in p.relative_to(root).parts))
    fs, path = filesystem(loc)
    scheme = loc.split("://", 1)[0]
    out = []
    for key in fs.find(path):
        rel = posixpath.relpath(key, path)
        if key.endswith(suffix) and not any(x.startswith((".", "_")) for x in rel.split("/")):
            out.append(f"{scheme}://{key}")
    return sorted(out)


def remove(loc: Location, *, recursive: bool = False) -> None:
    """Delete a file (or, with ``recursive``, a directory or prefix); a missing one is not an error."""
    if not is_url(loc):
        path = Path(loc)
        if recursive and path.is_dir():
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return
    fs, path = filesystem(loc)
    try:
        fs.rm(path, recursive=recursive)
    except FileNotFoundError:
        pass


def publish_file(local: Path, dest: str) -> str:
    """Upload a finished local file to a URL so that readers see it whole or not at all: a temporary key first,
    then one server-side copy to the final key (the `publish:`/`published:` kill points of `data_schemas.io`)."""
    fs, path = filesystem(dest)
    base = posixpath.basename(path)
    tmp = posixpath.join(posixpath.dirname(path), f".{base}.{uuid.uuid4().hex[:12]}.tmp")
    fs.put_file(str(local), tmp)
    try:
        fault_point(f"publish:{base}")
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)
    fault_point(f"published:{base}")
    return dest


def upload_tree(local: Path, dest: str, *, skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Publish every file under ``local`` to the same relative key under ``dest``, except the relative names in
    ``skip`` (which the caller publishes last, e.g. a manifest); returns the relative names uploaded."""
    done = []
    for src in sorted(p for p in Path(local).rglob("*") if p.is_file()):
        rel = src.relative_to(local).as_posix()
        if rel in skip:
            continue
        publish_file(src, join(dest, rel))
        done.append(rel)
    return done


def fetch_file(loc: str, local: Path) -> Path:
    """Download a remote file to a local path (for libraries that need one: torch.load, SQLite)."""
    fs, path = filesystem(loc)
    local.parent.mkdir(parents=True, exist_ok=True)
    fs.get_file(path, str(local))
    return local
