"""The flows' own bookkeeping: when a completed crawl can be reused and when cleaning can be skipped.

Both are explicit file checks rather than Prefect result caches: a cache entry is honoured only while the files it
stands for are really there and unchanged, which a result cache keyed on inputs alone cannot promise (someone may
delete ``clean/`` or re-clean by hand).  Markers live in ``<data_dir>/.flow/`` and are written atomically after the
stage succeeded, so a failed or killed stage never leaves a marker that would skip it next time.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from data_schemas import Manifest, atomic_write_json, file_sha256, manifest_path, storage

MARKER_VERSION = 1


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("version") == MARKER_VERSION else None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


# --- crawl reuse ---------------------------------------------------------------------------------------------
def crawl_marker(state_dir: Path, source: str) -> Path:
    return state_dir / f"crawl-{source}.json"


def reusable_crawl(state_dir: Path, source: str, key: str, *, fresh_hours: float,
                   out: Path | None = None) -> dict[str, Any] | None:
    """The summary of this source's last completed crawl with identical settings, if younger than fresh_hours
    and (given ``out``) every RAW file it wrote is still there."""
    marker = _read(crawl_marker(state_dir, source))
    if not marker or marker.get("key") != key or fresh_hours <= 0:
        return None
    if time.time() - float(marker.get("finished", 0)) > fresh_hours * 3600:
        return None
    summary = marker.get("summary") or {}
    if out is not None and not all((out / name).is_file() for name in summary.get("files_written", [])):
        return None
    return summary


def record_crawl(state_dir: Path, source: str, key: str, summary: dict[str, Any]) -> Path:
    return atomic_write_json(crawl_marker(state_dir, source), {
        "version": MARKER_VERSION, "key": key, "finished": time.time(), "finished_at": now_iso(), "summary": summary})


# --- clean cache ---------------------------------------------------------------------------------------------
def clean_marker(state_dir: Path) -> Path:
    return state_dir / "clean.json"


def raw_files(raw: Path | list[Path]) -> list[Path]:
    """The RAW files a clean run reads, by the clean stage's own rule (`data_schemas.storage.list_files`)."""
    if isinstance(raw, list):
        return sorted(Path(p) for p in raw)
    raw = Path(raw)
    return [raw] if raw.is_file() else storage.list_files(raw, suffix=".parquet")


def clean_key(raw: Path | list[Path], parameters: dict[str, Any], extra_files: list[Path]) -> str:
    """Inputs (name, size, mtime of every RAW file, and of blocklists) plus every output-shaping parameter.

    Size and mtime instead of content hashes: RAW files are written once by atomic rename and never modified in
    place, so a changed file always has a new mtime, and hashing gigabytes to decide whether to skip would cost
    a good share of what the skip saves.
    """
    def stat(p: Path) -> list[Any]:
        st = p.stat()
        return [str(p.resolve()), st.st_size, st.st_mtime_ns]

    files = [stat(p) for p in raw_files(raw)]
    extras = [stat(p) for p in extra_files if p.is_file()]
    return digest({"raw": files, "extra": extras, "parameters": parameters})


def intact_dataset(out: Path) -> str | None:
    """Why the dataset at ``out`` cannot be reused, or None when its manifest and every shard it lists are there."""
    try:
        manifest = Manifest.read(out)
    except (OSError, ValueError) as exc:
        return str(exc)
    for shard in manifest.shards:
        path = out / shard.name
        if not path.is_file():
            return f"{path}: shard listed in the manifest is missing"
        if path.stat().st_size != shard.bytes:
            return f"{path}: {path.stat().st_size} bytes, the manifest says {shard.bytes}"
    return None


def cached_clean(state_dir: Path, out: Path, key: str) -> dict[str, Any] | None:
    """The record of the last clean if it had the same key and its dataset is still intact and unreplaced."""
    marker = _read(clean_marker(state_dir))
    if not marker or marker.get("key") != key:
        return None
    manifest = manifest_path(out)
    if not manifest.is_file() or file_sha256(manifest) != marker.get("manifest_sha256"):
        return None
    return None if intact_dataset(out) else marker


def record_clean(state_dir: Path, out: Path, key: str) -> Path:
    return atomic_write_json(clean_marker(state_dir), {
        "version": MARKER_VERSION, "key": key, "finished_at": now_iso(),
        "manifest_sha256": file_sha256(manifest_path(out))})
