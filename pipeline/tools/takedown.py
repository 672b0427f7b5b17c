"""`mmpipe takedown`: remove content on request, keep a record, and make sure it never comes back.

Order matters for a crash at any point: (1) the blocklist is appended first, so even a half-done takedown already
stops the next crawl and clean; (2) the matched keys go to a pending file; (3) each affected shard is rewritten
atomically; the dedup index is deliberately left alone: its entries for removed rows act as tombstones, so a
near copy of taken-down content found later (other URL, other bytes) is dropped as a duplicate of it; (4) the
manifest is rewritten last; (5) emptied shards are deleted and the request is logged.
A later takedown (or `--resume`) finds the pending file and finishes it: filtering by key is idempotent.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq

from data_schemas import BlockEntry, Blocklist, atomic_write_json, file_sha256, reasons
from pipeline.tools._read import TAKEDOWN_PENDING, Dataset, ToolError, iter_batches, open_dataset
from pipeline.tools._rewrite import blocked, candidates, purge_rejected, rewrite_without

TAKEDOWN_LOG = "takedowns.jsonl"
PENDING = TAKEDOWN_PENDING
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_MATCH_COLUMNS = ["key", "page_url", "image_url", "sha256", "source", "split"]


@dataclass
class TakedownRequest:
    urls: list[str] = field(default_factory=list)  # exact page_url or image_url
    domains: list[str] = field(default_factory=list)  # host or any subdomain of page_url / image_url
    sha256: list[str] = field(default_factory=list)  # of the stored image bytes (CLEAN `sha256`)
    reason: str = ""
    file: str | None = None  # the list the entries came from, for the record

    def __post_init__(self) -> None:
        self.urls = [_check_url(u) for u in self.urls]
        self.domains = [_check_domain(d) for d in self.domains]
        self.sha256 = [_check_sha(h) for h in self.sha256]

    @classmethod
    def from_lines(cls, lines: Iterable[str], *, reason: str = "", file: str | None = None) -> TakedownRequest:
        """One entry a line, kind detected: 64 hex digits -> sha256, has '://' -> url, else a domain.

        Blank lines and lines starting with '#' are skipped; words after the entry are ignored (room for a note).
        """
        urls, domains, hashes = [], [], []
        for raw in lines:
            words = raw.split()  # entries hold no spaces; anything after the first word is a note
            if not words or words[0].startswith("#"):
                continue
            line = words[0]
            (hashes if _SHA256.match(line) else urls if "://" in line else domains).append(line)
        return cls(urls=urls, domains=domains, sha256=hashes, reason=reason, file=file)

    def is_empty(self) -> bool:
        return not (self.urls or self.domains or self.sha256)

    def entries(self) -> list[BlockEntry]:
        reason = self.reason or "takedown"
        return ([BlockEntry("url", u, reason) for u in self.urls] + [BlockEntry("domain", d, reason)
                for d in self.domains] + [BlockEntry("sha256", h, reason) for h in self.sha256])


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url}' is not an http(s) URL with a host")
    return url


def _check_domain(domain: str) -> str:
    d = domain.strip().lower().rstrip(".").removeprefix("*.")
    if not _DOMAIN.match(d):
        raise ValueError(f"'{domain}' is not a domain name (give a URL with its scheme, e.g. https://{domain})")
    return d


def _check_sha(digest: str) -> str:
    if not _SHA256.match(digest.strip()):
        raise ValueError(f"'{digest}' is not a sha256 (64 hex digits)")
    return digest.strip().lower()


@dataclass
class TakedownResult:
    rows_removed: int
    keys: list[str]
    shards_rewritten: list[str]
    shards_removed: list[str]  # shards left empty, dropped from the manifest and deleted
    blocklist_added: int
    log: Path | None
    blocklist: Path | None
    dry_run: bool = False


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One writer per dataset: the same lock file (``.<name>.lock`` beside the dataset) that a clean run holds.

    A takedown during a clean run would be undone when the run swaps in the version it built from the old files,
    and two takedowns would lose one's manifest changes; both simply wait their turn (fail fast, retry later).
    """
    root = root.resolve()
    with open(root.parent / f".{root.name}.lock", "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ToolError(f"{root}: a clean run or another takedown is writing this dataset; retry when it "
                            "has finished") from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _find(ds: Dataset, request: TakedownRequest) -> list[dict]:
    """Matched rows (key, shard, urls, sha256, source, split), reading only those six small columns."""
    blocklist = Blocklist(request.entries())
    found = []
    for f in ds.files:
        for batch in iter_batches(f, _MATCH_COLUMNS, batch_size=65536):
            mask = candidates(batch, urls=request.urls, domains=request.domains, sha256=request.sha256)
            for row in batch.filter(mask).to_pylist():
                if blocked(row, blocklist):
                    row["shard"] = ds.rel(f)
                    found.append(row)
    return found


def _update_manifest(ds: Dataset, pending: dict) -> list[str]:
    """Shard infos from the rewritten files; counts by subtraction (pending rows were counted before any write)."""
    m = ds.manifest
    if pending.get("id") and m.extra.get("last_takedown") == pending["id"]:  # written before a crash: count once
        listed = {s.name for s in m.shards}
        return [name for name in pending["shards"] if name not in listed]
    rewritten = set(pending["shards"])
    emptied = []
    for s in m.shards:
        if s.name in rewritten:
            path = ds.root / s.name
            s.rows, s.bytes, s.sha256 = pq.ParquetFile(path).metadata.num_rows, path.stat().st_size, file_sha256(path)
            if s.rows == 0:
                emptied.append(s.name)
    m.shards = [s for s in m.shards if s.name not in emptied]
    for src, n in Counter(r["source"] for r in pending["rows"]).items():
        m.per_source[src] = m.per_source.get(src, 0) - n
    for split, n in Counter(r["split"] for r in pending["rows"]).items():
        m.per_split[split] = m.per_split.get(split, 0) - n
    m.per_source = {k: v for k, v in m.per_source.items() if v > 0}
    m.per_split = {k: v for k, v in m.per_split.items() if v > 0}
    removed = len(pending["rows"])
    m.rows_out = sum(s.rows for s in m.shards)
    m.drops[reasons.BLOCKLISTED] = m.drops.get(reasons.BLOCKLISTED, 0) + removed  # keeps in - drops == out
    m.extra["takedown"] = int(m.extra.get("takedown", 0)) + removed
    m.extra["last_takedown"] = pending.get("id")
    m.write(ds.root)
    return emptied


def _block_entries(request: TakedownRequest, rows: list[dict], existing: Blocklist) -> list[BlockEntry]:
    """The request's entries plus each removed row's image URL and image sha256, minus what is already listed.

    The image URL stops a later crawl from fetching that image again (wherever it is embedded); the sha256 stops a
    clean from keeping the same bytes re-hosted under another URL.  Page URLs are only blocked when requested, so
    other images on the same page are not taken down by accident.
    """
    reason = request.reason or "takedown"
    entries = request.entries() + [BlockEntry("url", r["image_url"], reason) for r in rows] \
        + [BlockEntry("sha256", r["sha256"], reason) for r in rows]
    seen = Blocklist()
    out = []
    for e in entries:
        listed = {"url": existing.urls | seen.urls, "domain": existing.domains | seen.domains,
                  "sha256": existing.sha256 | seen.sha256}[e.kind]
        norm = e.value if e.kind == "url" else e.value.lower()
        if norm not in listed:
            seen.add(e)
            out.append(e)
    return out


def _append_log(root: Path, record: dict) -> Path:
    path = root / TAKEDOWN_LOG
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def _apply(ds: Dataset, pending: dict) -> TakedownResult:
    keys = {r["key"] for r in pending["rows"]}
    for name in pending["shards"]:
        if (ds.root / name).exists():
            rewrite_without(ds.root / name, {r["key"] for r in pending["rows"] if r["shard"] == name})
    request = TakedownRequest(**pending["request"])
    rejected_removed = purge_rejected(ds.root, Blocklist(request.entries()), urls=request.urls,
                                      domains=request.domains, sha256=request.sha256)
    emptied = _update_manifest(ds, pending) if keys else []
    for name in emptied:
        (ds.root / name).unlink(missing_ok=True)
    record = {"time": datetime.now(timezone.utc).isoformat(), "request": pending["request"],
              "rows_removed": len(keys), "keys": sorted(keys), "shards": pending["shards"],
              "shards_removed": emptied,
              "rejected_rows_removed": rejected_removed,
              "blocklist_added": pending["blocklist_added"]}
    log = _append_log(ds.root, record)
    (ds.root / PENDING).unlink(missing_ok=True)
    return TakedownResult(len(keys), sorted(keys), pending["shards"], emptied,
                          pending["blocklist_added"], log, ds.root / "blocklist.jsonl")


def takedown(path: str | Path, request: TakedownRequest, *, dry_run: bool = False) -> TakedownResult:
    """Remove every row matching ``request`` from a CLEAN dataset and blocklist it; see the module doc for order."""
    root = Path(path)
    with _locked(root) if root.is_dir() else _no_lock():
        ds = open_dataset(root)
        if ds.kind != "clean" or ds.manifest is None or ds.single_file:
            raise ToolError(f"{path}: takedown works on a CLEAN dataset directory with a manifest.json (for raw "
                            "crawl output, add entries to the blocklist the crawl reads instead)")
        resumed = None
        if (ds.root / PENDING).exists():  # an interrupted takedown: finish it before anything else
            resumed = _apply(ds, json.loads((ds.root / PENDING).read_text()))
            ds = open_dataset(root)
        if request.is_empty():  # `--resume`: report what the finished takedown did (or that none was pending)
            return resumed or TakedownResult(0, [], [], [], 0, None, None, dry_run)
        rows = _find(ds, request)
        entries = _block_entries(request, rows, Blocklist.load(ds.root))
        if dry_run:
            return TakedownResult(len(rows), sorted(r["key"] for r in rows), sorted({r["shard"] for r in rows}),
                                  [], len(entries), None, None, dry_run=True)
        blocklist = Blocklist.append(ds.root, entries)
        pending = {"id": uuid.uuid4().hex, "request": asdict(request), "rows": rows,
                   "shards": sorted({r["shard"] for r in rows}), "blocklist_added": len(entries)}
        atomic_write_json(ds.root / PENDING, pending)
        result = _apply(ds, pending)
        result.blocklist = blocklist
        return result


@contextmanager
def _no_lock() -> Iterator[None]:
    yield
