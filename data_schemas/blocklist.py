"""The takedown blocklist: an append-only JSON-lines file that crawls and cleans consult.

It lives in the dataset directory (``blocklist.jsonl``) and may be passed to a crawl, so content that was taken
down is never fetched or kept again.  Matching is by exact URL, by domain (including subdomains) or by the
sha256 of the original or the stored image bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from data_schemas import storage
from data_schemas.io import atomic_write_bytes

BLOCKLIST_NAME = "blocklist.jsonl"
KINDS = ("url", "domain", "sha256")


@dataclass(frozen=True)
class BlockEntry:
    kind: str  # url | domain | sha256
    value: str
    reason: str = ""
    added_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(), compare=False)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().rstrip(".")


class Blocklist:
    def __init__(self, entries: list[BlockEntry] | None = None):
        self.urls: set[str] = set()
        self.domains: set[str] = set()
        self.sha256: set[str] = set()
        for e in entries or []:
            self.add(e)

    def add(self, entry: BlockEntry) -> None:
        if entry.kind not in KINDS:
            raise ValueError(f"blocklist entry kind '{entry.kind}' is not one of {KINDS}")
        target = {"url": self.urls, "domain": self.domains, "sha256": self.sha256}[entry.kind]
        target.add(entry.value.lower().rstrip(".") if entry.kind != "url" else entry.value)

    def __len__(self) -> int:
        return len(self.urls) + len(self.domains) + len(self.sha256)

    def blocks_url(self, url: str | None) -> bool:
        if not url:
            return False
        if url in self.urls:
            return True
        if not self.domains:  # the common case: asked for every page and image of a crawl
            return False
        host = _host(url)
        parts = host.split(".")
        return any(".".join(parts[i:]) in self.domains for i in range(len(parts)))

    def blocks_sha256(self, digest: str | None) -> bool:
        return bool(digest) and digest.lower() in self.sha256

    @classmethod
    def load(cls, path: str | Path | None) -> Blocklist:
        """Load from a file or a dataset directory; a missing file is an empty list."""
        if path is None:
            return cls()
        path = storage.location(path)
        if storage.is_url(path) and not path.endswith(".jsonl"):
            path = storage.join(path, BLOCKLIST_NAME)
        elif not storage.is_url(path) and path.is_dir():
            path = path / BLOCKLIST_NAME
        if not storage.exists(path):
            return cls()
        entries = []
        for n, line in enumerate(storage.read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append(BlockEntry(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a blocklist entry ({exc})") from exc
        return cls(entries)

    @staticmethod
    def append(path: str | Path, entries: list[BlockEntry]) -> Path:
        """Append-only by design: a takedown is a record, and earlier lines are never changed.

        The old lines plus the new ones are written to a temporary file that replaces the list in one rename, so
        a process killed mid-append leaves the old list or the new one, never a cut line that a reader would
        fail on or take for a complete list."""
        path = Path(path)
        if path.is_dir():
            path = path / BLOCKLIST_NAME
        if not entries and path.exists():
            return path
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            raise ValueError(f"{path}: the last line is cut off (a write was interrupted); run `mmpipe verify` "
                             "and repair the file before adding entries")
        new = "".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in entries)
        atomic_write_bytes(path, old + new.encode("utf-8"))
        return path

    @staticmethod
    def problems(path: str | Path) -> list[str]:
        """What is wrong with a blocklist file (a line that does not parse, a cut-off last line); [] when sound."""
        path = Path(path)
        if path.is_dir():
            path = path / BLOCKLIST_NAME
        if not path.exists():
            return []
        data = path.read_bytes()
        found = []
        if data and not data.endswith(b"\n"):
            found.append(f"{path.name}: the last line is cut off (an interrupted write); entries may be missing")
        try:
            Blocklist.load(path)
        except (ValueError, UnicodeDecodeError) as exc:
            found.append(str(exc))
        return found
