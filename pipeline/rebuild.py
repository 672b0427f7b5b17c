"""Parameters an incremental run cannot apply, and the rebuild that applies them.

An incremental run decides only its new rows; the rows already in the dataset were filtered, resized, clustered
and split under the parameters its manifest records.  Most parameters would leave a dataset that mixes two rules
(a caption filter, the image size, a dedup threshold, ``val_fraction``: the old split stays), so a run whose value
differs refuses and names the parameter and ``--rebuild``.  Only output layout and audit settings
(`INCREMENTAL_SAFE`) may change between runs.  Every other parameter needs a rebuild, including ones added later:
a new parameter is unsafe until it is listed here.

A rebuild re-reads every RAW input of the dataset with the new parameters and replaces its shards, index and
manifest in one swap, like any run.  It keeps the dataset's records (blocklist, takedown log), so taken-down
content stays out, and it carries the index rows of taken-down keys as tombstones, so their near copies stay out
too.  It refuses when an input the dataset was built from is no longer among ``--raw``: its rows would be lost.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from data_schemas import member_path
from pipeline.config import CleanConfig
from pipeline.dataset import Previous, read_table
from pipeline.inputs import CleanError

INCREMENTAL_SAFE = frozenset({"shard_rows", "shard_bytes", "row_group_rows", "partition_rows", "write_rejected",
                              "rejected_images", "blocklist", "dedup_hashes"})  # dedup_hashes: pipeline.rehash
_FLAGS = {"val_fraction": "--val-fraction", "image_size": "--image-size", "resize_mode": "--resize-mode",
          "langs": "--langs", "phash_threshold": "--phash-threshold", "pdq_threshold": "--pdq-threshold"}


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def changed_parameters(previous: Previous, config: CleanConfig) -> dict[str, tuple[Any, Any]]:
    """name -> (the dataset's value, this run's) for each parameter this run would change but cannot apply.  A
    parameter the manifest does not record (a dataset from before it existed) had its default."""
    if previous.manifest is None or "parent" in previous.manifest.extra:
        return {}
    old = previous.manifest.parameters
    defaults = {f.name: f.default for f in fields(CleanConfig)}
    changed = {}
    for name, value in config.parameters().items():
        if name in INCREMENTAL_SAFE:
            continue
        before = old.get(name, defaults.get(name))
        if _norm(before) != _norm(value):
            changed[name] = (before, value)
    return changed


def refusal(out: Path, changed: dict[str, tuple[Any, Any]]) -> CleanError:
    lines = "; ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in changed.items())
    keep = " ".join(f"{_FLAGS[n]} {old}" for n, (old, _) in changed.items() if n in _FLAGS and old is not None)
    hint = f" (or keep the dataset's values: {keep})" if keep else ""
    return CleanError(f"{out}: this run changes parameter(s) an incremental run cannot apply to the rows already "
                      f"there: {lines}.  Re-run with --rebuild (flow config: clean.rebuild) to rebuild the whole "
                      f"dataset from its RAW inputs with the new values{hint}, or clean into a new --out")


def rebuild_base(previous: Previous, out: Path | str) -> Previous:
    """The `Previous` a rebuild starts from: no manifest (every input is read again, every row decided anew), the
    taken-down keys' index rows as tombstones, and the old manifest for shard and run numbering (so no new name
    collides with a file of the version it replaces)."""
    manifest = previous.manifest
    if manifest is None:
        return previous
    kept = [read_table(member_path(out, s.name), columns=["key"]).column("key") for s in manifest.shards]
    live = pa.chunked_array([c for col in kept for c in col.chunks], pa.string())
    index = previous.index
    tombstones = index.filter(pc.invert(pc.is_in(index.column("key"), value_set=live.combine_chunks())))
    return Previous(manifest=None, index=tombstones, replaces=manifest)


def check_inputs_present(previous: Previous, sha256s: set[str], out: Path) -> None:
    """A rebuild reads every input again: refuse when one the dataset was built from is missing."""
    if previous.replaces is None:
        return
    gone = [i["path"] for i in previous.replaces.inputs if i.get("sha256") not in sha256s]
    if gone:
        raise CleanError(f"{out}: cannot rebuild: {len(gone)} RAW input(s) of the dataset are not among --raw "
                         f"({', '.join(gone[:3])}); their rows would be lost.  Point --raw at every input, or clean "
                         "into a new --out")
