"""Find the RAW files, check their footers, fingerprint them and cut them into partitions.

A bad file is reported by name and skipped (or, with ``strict``, stops the run); it is never silently dropped.
Partitions are whole row groups, grouped up to ``partition_rows`` rows, and numbered in (file, row group) order,
so the partitioning -- and with it the output bytes -- never depends on the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data_schemas import RAW_SCHEMA, SchemaError, file_sha256, storage, validate
from pipeline.partition import PartitionSpec


class CleanError(RuntimeError):
    """An expected failure of the clean stage; the message says what and where, and what to do."""


@dataclass
class InputFile:
    index: int
    path: str
    bytes: int = 0
    rows: int = 0
    row_group_rows: list[int] = field(default_factory=list)
    sha256: str = ""
    error: str | None = None

    def record(self) -> dict:
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes, "sha256": self.sha256}


def discover(raw: Path | str | list) -> list:
    """Every ``*.parquet`` under a directory or URL prefix (sorted; hidden and temporary files skipped) or the
    given list."""
    if isinstance(raw, list):
        missing = [str(p) for p in raw if not storage.is_file(p)]
        if missing:
            raise CleanError(f"RAW input file(s) not found: {', '.join(missing)}")
        return [p if storage.is_url(p) else Path(p).resolve() for p in raw]
    if storage.is_url(raw):
        if storage.is_file(raw):
            return [raw]
        files = storage.list_files(raw, suffix=".parquet")
        if not files:
            raise CleanError(f"{raw}: no *.parquet RAW files found; run `mmpipe crawl` first or fix --raw")
        return files
    raw = Path(raw)
    if raw.is_file():
        return [raw.resolve()]
    if not raw.is_dir():
        raise CleanError(f"{raw}: no such RAW directory or file; point --raw at the crawl's raw/ folder")
    files = storage.list_files(raw, suffix=".parquet")  # the one rule, shared with the flows' clean cache
    if not files:
        raise CleanError(f"{raw}: no *.parquet RAW files found; run `mmpipe crawl` first or fix --raw")
    return sorted(p.resolve() for p in files)


def inspect_input(index: int, path: str) -> InputFile:
    """Worker task: footer schema check, row counts and the file's sha256 (for the manifest and for re-runs)."""
    info = InputFile(index=index, path=path)
    try:
        info.bytes = storage.size(storage.location(path))
        validate(path, RAW_SCHEMA, check_values=False)
        meta = storage.parquet_file(storage.location(path)).metadata
        info.rows = meta.num_rows
        info.row_group_rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        info.sha256 = file_sha256(storage.location(path))
    except SchemaError as exc:  # the file is named by the caller; the column is part of the problem
        info.error = f"column '{exc.column}': {exc.problem}" if exc.column else exc.problem
    except OSError as exc:
        info.error = f"unreadable ({exc})"
    return info


def plan_partitions(inputs: list[InputFile], *, partition_rows: int) -> list[PartitionSpec]:
    specs: list[PartitionSpec] = []
    for info in inputs:
        group: list[int] = []
        rows = 0
        for rg, n in enumerate(info.row_group_rows):
            if group and rows + n > partition_rows:
                specs.append(PartitionSpec(len(specs), info.index, info.path, tuple(group), rows))
                group, rows = [], 0
            group.append(rg)
            rows += n
        if group:
            specs.append(PartitionSpec(len(specs), info.index, info.path, tuple(group), rows))
    return specs
