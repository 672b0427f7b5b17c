"""`mmpipe takedown`: remove content on request, keep a record, and make sure it never comes back.

Order matters for a crash at any point: (1) a pending file records the request, the matched rows and the blocklist
entries to add; (2) the entries are appended to the blocklist (one rename), so the next crawl and clean stop the
content even if the takedown dies now; (3) each affected shard is rewritten atomically; the dedup index is
deliberately left alone: its entries for removed rows act as tombstones, so a near copy of taken-down content found
later (other URL, other bytes) is dropped as a duplicate of it; (4) the manifest is rewritten last among the data
(it names this takedown in `extra.last_takedown`, so it is counted once); (5) emptied shards are deleted, the
request is logged once, the pending file goes.  A later takedown, `--resume` or a clean run finds the pending file
and finishes it: each step can be repeated, so a kill at any point ends, after the resume, exactly as an
uninterrupted takedown would have.
"""

from __future__ import annotations

import fcntl
import json
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

from data_schemas import (
    MANIFEST_NAME,
    TAKEDOWN_LOG,
    TAKEDOWN_PENDING,
    BlockEntry,
    Blocklist,
    atomic_write_bytes,
    atomic_write_json,
    fault_point,
    file_sha256,
    layout,
    member_path,
    reasons,
)
from pipeline.tools._read import Dataset, ToolError, iter_batches, open_dataset
from pipeline.tools._rewrite import blocked, candidates, rejected_matches, rewrite_without

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
    """Shard infos from the rewritten files; counts by subtraction (pending rows were counted before any write).

    ``extra.last_takedown`` names the last takedown counted; a clean run keeps it, so a takedown resumed after
    its manifest was written (even with a clean in between) is counted exactly once."""
    m = ds.manifest
    if pending.get("id") and m.extra.get("last_takedown") == pending["id"]:  # written before a crash: count once
        listed = {s.name for s in m.shards}
        return [name for name in pending["shards"] if name not in listed]
    rewritten = set(pending["shards"])
    emptied = []
    for s in m.shards:
        if s.name in rewritten:
            path = member_path(ds.root, s.name)
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
        if not (_listed(existing, e) or _listed(seen, e)):
            seen.add(e)
            out.append(e)
    return out


def _append_log(root: Path, record: dict) -> Path:
    """One line per takedown, appended like the blocklist (old lines + the new one, replaced in one rename), and
    only once: a takedown resumed after its line was written does not log itself again."""
    path, source = root / TAKEDOWN_LOG, layout.find(root, TAKEDOWN_LOG)
    old = source.read_bytes() if source.exists() else b""
    try:
        last = json.loads(old.rstrip(b"\n").rsplit(b"\n", 1)[-1] or b"{}")
    except ValueError:  # a line cut by an older mmpipe's interrupted append: keep it, add ours
        last = {}
    if record.get("id") and isinstance(last, dict) and last.get("id") == record["id"]:
        return source
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    atomic_write_bytes(path, old + line.encode("utf-8"))
    layout.drop_legacy(root, TAKEDOWN_LOG)
    return path


def _apply(ds: Dataset, pending: dict) -> TakedownResult:
    listed = Blocklist.load(ds.root)  # append what is not there yet: everything, unless resumed after it
    entries = [BlockEntry(**d) for d in pending.get("entries", [])]
    blocklist = Blocklist.append(ds.root, [e for e in entries if not _listed(listed, e)])
    keys = {r["key"] for r in pending["rows"]}
    shards = [member_path(ds.root, name) for name in pending["shards"]]  # names from a file: confined
    for name, path in zip(pending["shards"], shards, strict=True):
        if path.exists():
            rewrite_without(path, {r["key"] for r in pending["rows"] if r["shard"] == name})
    rejected_removed = _purge_rejected(ds.root, pending)
    emptied = _update_manifest(ds, pending) if keys else []
    for name in emptied:
        member_path(ds.root, name).unlink(missing_ok=True)
    record = {"id": pending.get("id"), "time": datetime.now(timezone.utc).isoformat(),
              "request": pending["request"], "rows_removed": len(keys), "keys": sorted(keys),
              "shards": pending["shards"], "shards_removed": emptied,
              "rejected_rows_removed": rejected_removed,
              "blocklist_added": pending["blocklist_added"]}
    log = _append_log(ds.root, record)
    fault_point("takedown.logged")
    (ds.root / PENDING).unlink(missing_ok=True)
    layout.drop_legacy(ds.root, PENDING)
    return TakedownResult(len(keys), sorted(keys), pending["shards"], emptied, pending["blocklist_added"], log,
                          blocklist)


def _purge_rejected(root: Path, pending: dict) -> int:
    """Remove the pending takedown's rows from the clean stage's audit files; returns how many it names."""
    rejected = pending.get("rejected")
    if rejected is None:  # a pending file of an older mmpipe: find them now
        request = TakedownRequest(**pending["request"])
        rejected = rejected_matches(root, Blocklist(request.entries()), urls=request.urls, domains=request.domains,
                                    sha256=request.sha256)
    for name, ids in rejected.items():
        path = member_path(root, name)
        if path.exists():
            rewrite_without(path, set(ids), key_column="id")
    return sum(len(ids) for ids in rejected.values())


def _listed(blocklist: Blocklist, entry: BlockEntry) -> bool:
    target = {"url": blocklist.urls, "domain": blocklist.domains, "sha256": blocklist.sha256}[entry.kind]
    return (entry.value if entry.kind == "url" else entry.value.lower().rstrip(".")) in target


def finish_pending(root: str | Path) -> TakedownResult | None:
    """Finish an interrupted takedown of the dataset at ``root`` (filtering by key can be repeated safely); None
    when none is pending.  The caller holds the dataset's lock: `takedown` does, and so does a clean run, which
    must never build a new version around a half-done takedown."""
    root = Path(root)
    path = layout.find(root, PENDING)
    if not path.exists():
        return None
    try:
        pending = json.loads(path.read_text())
    except json.JSONDecodeError as exc:  # written atomically, so this is damage, not an interrupted write
        raise ToolError(f"{path}: not valid JSON ({exc}); restore it from a backup or remove it after checking "
                        "the shards with `mmpipe verify`") from exc
    return _apply(open_dataset(root, require_files=False), pending)


def takedown(path: str | Path, request: TakedownRequest, *, dry_run: bool = False) -> TakedownResult:
    """Remove every row matching ``request`` from a CLEAN dataset and blocklist it; see the module doc for order."""
    root = Path(path)
    with _locked(root) if root.is_dir() else _no_lock():
        ds = open_dataset(root)
        if ds.kind != "clean" or ds.manifest is None or ds.single_file:
            raise ToolError(f"{path}: takedown works on a CLEAN dataset directory with a {MANIFEST_NAME} (for raw "
                            "crawl output, add entries to the blocklist the crawl reads instead)")
        resumed = finish_pending(ds.root)  # an interrupted takedown: finish it before anything else
        if resumed is not None:
            ds = open_dataset(root)
        if request.is_empty():  # `--resume`: report what the finished takedown did (or that none was pending)
            return resumed or TakedownResult(0, [], [], [], 0, None, None, dry_run)
        rows = _find(ds, request)
        entries = _block_entries(request, rows, Blocklist.load(ds.root))
        if dry_run:
            return TakedownResult(len(rows), sorted(r["key"] for r in rows), sorted({r["shard"] for r in rows}),
                                  [], len(entries), None, None, dry_run=True)
        rejected = rejected_matches(ds.root, Blocklist(request.entries()), urls=request.urls,
                                    domains=request.domains, sha256=request.sha256)
        pending = {"id": uuid.uuid4().hex, "request": asdict(request), "rows": rows,
                   "shards": sorted({r["shard"] for r in rows}), "blocklist_added": len(entries),
                   "entries": [asdict(e) for e in entries], "rejected": rejected}
        atomic_write_json(ds.root / PENDING, pending)
        return _apply(ds, pending)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield
