"""The dataset manifest: written last, so its presence means every shard it lists is complete."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from data_schemas import storage
from data_schemas.io import atomic_write_json
from data_schemas.schemas import CLEAN_VERSION, SchemaError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = "1"
TAKEDOWN_PENDING = ".takedown-pending.json"  # an unfinished takedown (`mmpipe takedown`); removed when it completes


def member_path(root: str | Path, name: object) -> Path:
    """``root / name`` for a file name read from a dataset's own records (manifest shards, index and rejected
    lists, a pending takedown), refused unless it stays inside ``root``: a manifest is data, and a name like
    ``../../x`` must never make a tool read, rewrite or delete a file elsewhere."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise SchemaError(f"file name {name!r} is not a relative POSIX path inside the dataset")
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or rel.parts[0] in (".", ""):
        raise SchemaError(f"file name {name!r} leaves the dataset directory; refusing to use it")
    if storage.is_url(root):  # an object store has no symlinks; the name's own checks are the whole check
        return storage.join(root, rel.as_posix())
    root = Path(root)
    path = root / rel
    if not path.resolve().is_relative_to(root.resolve()):  # a symlinked folder pointing elsewhere
        raise SchemaError(f"file name {name!r} resolves outside the dataset directory ({path.resolve()})")
    return path


@dataclass
class ShardInfo:
    name: str  # path relative to the dataset directory, e.g. "shards/train-00000.parquet"
    rows: int
    bytes: int
    sha256: str
    split: str = ""


@dataclass
class Manifest:
    """Everything needed to trust and reproduce a dataset.

    ``funnel`` is ordered: rows_in, then one entry per drop reason, then rows_out; rows_in - sum(drops) == rows_out.
    """

    schema_version: str = CLEAN_VERSION
    manifest_version: str = MANIFEST_VERSION
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    inputs: list[dict[str, Any]] = field(default_factory=list)  # {path, rows, bytes, sha256}
    parameters: dict[str, Any] = field(default_factory=dict)
    rows_in: int = 0
    drops: dict[str, int] = field(default_factory=dict)  # reason -> rows
    rows_out: int = 0
    per_source: dict[str, int] = field(default_factory=dict)  # source -> rows kept
    per_split: dict[str, int] = field(default_factory=dict)
    shards: list[ShardInfo] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, dataset_dir: str | Path) -> Path | str:
        return atomic_write_json(storage.join(storage.location(dataset_dir), MANIFEST_NAME), self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["shards"] = [ShardInfo(**s) for s in data.get("shards", [])]
        return cls(**known)

    @classmethod
    def read(cls, dataset_dir: str | Path) -> Manifest:
        path = storage.location(dataset_dir)
        if storage.is_url(path):
            path = path if path.endswith(".json") else storage.join(path, MANIFEST_NAME)
        elif path.is_dir():
            path = path / MANIFEST_NAME
        if not storage.exists(path):
            raise FileNotFoundError(f"{path}: no manifest; the dataset is incomplete or was never written "
                                    "(run `mmpipe clean` to create it)")
        try:
            data = json.loads(storage.read_text(path))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"manifest is not valid JSON ({exc})", path=path) from exc
        if str(data.get("manifest_version")) != MANIFEST_VERSION:
            raise SchemaError(f"manifest version {data.get('manifest_version')}, expected {MANIFEST_VERSION}",
                              path=path)
        manifest = cls.from_dict(data)
        extra = manifest.extra if isinstance(manifest.extra, dict) else {}
        listed = [extra.get(key) for key in ("index", "rejected") if isinstance(extra.get(key), list)]
        names = [s.name for s in manifest.shards] + [n for names in listed for n in names]
        for name in names:
            try:
                member_path(storage.parent(path), name)
            except SchemaError as exc:
                raise SchemaError(exc.problem, path=path) from None
        return manifest
