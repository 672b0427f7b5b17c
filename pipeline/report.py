"""The manifest of a clean run: funnel, sources, splits, inputs, shards and parameters, cumulative over runs.

Funnel semantics: ``rows_in`` counts every RAW row of every input that was read (skipped files are listed in
``extra.skipped_inputs`` and count nowhere); each row is either dropped for exactly one reason (the first check it
fails, in the order of `pipeline.rows`, then dedup) or written; so ``rows_in == sum(drops) + rows_out`` always
holds, for each run (``extra.runs``) and for the cumulative top-level numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from data_schemas import Manifest, ShardInfo, reasons
from data_schemas.layout import migrated_name

KEEP_RULE = ("most pixels (original_width*original_height), then best CAPTION_PREFERENCE rank of the caption, then "
             "earliest published_at (nulls last), then smallest key; rows kept by an "
             "earlier run always stay (newcomers in their cluster are duplicate_previous_run)")
TAKEDOWN_EXTRA = ("takedown", "last_takedown")
ORDER_NOTE = ("rows are ordered by key within each split and run; re-running on the same inputs with the same "
              "parameters writes byte-identical shards (only manifest.created_at differs)")


def ordered_drops(counts: Mapping[str, int]) -> dict[str, int]:
    """Non-zero drop counts in the shared reasons order (unknown names last, sorted)."""
    known = {r: int(counts[r]) for r in reasons.CLEAN_REASONS if counts.get(r)}
    rest = {r: int(counts[r]) for r in sorted(counts) if r not in reasons.CLEAN_REASONS and counts[r]}
    return {**known, **rest}


def _add(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    total = Counter(dict(a))
    total.update(dict(b))
    return dict(total)


def build_manifest(previous: Manifest | None, *, run: int, parameters: dict[str, Any], inputs: list[dict],
                   rows_in: int, drops: Mapping[str, int], per_source: Mapping[str, int],
                   shards: list[ShardInfo], skipped: list[dict], already: list[str], index_name: str,
                   rejected: list[str]) -> Manifest:
    rows_out = sum(s.rows for s in shards)
    per_split: dict[str, int] = {}
    for s in shards:
        per_split[s.split] = per_split.get(s.split, 0) + s.rows
    this_run = {"run": run, "created_at": datetime.now(timezone.utc).isoformat(),
                "inputs": [i["path"] for i in inputs], "rows_in": rows_in, "drops": ordered_drops(drops),
                "rows_out": rows_out, "per_split": per_split, "skipped_inputs": skipped,
                "already_ingested": already, "parameters": parameters}
    old = previous or Manifest(rows_in=0)
    old_extra = old.extra if previous else {}
    return Manifest(
        inputs=[*old.inputs, *inputs],
        parameters=parameters,
        rows_in=old.rows_in + rows_in,
        drops=ordered_drops(_add(old.drops, drops)),
        rows_out=old.rows_out + rows_out,
        per_source=dict(sorted(_add(old.per_source, per_source).items())),
        per_split=dict(sorted(_add(old.per_split, per_split).items())),
        shards=[*old.shards, *shards],
        extra={
            "runs": [*old_extra.get("runs", []), this_run],
            "skipped_inputs": skipped,
            "already_ingested": already,
            # earlier runs' parts under their current names (`link_previous` carried legacy ones over)
            "index": [*map(migrated_name, old_extra.get("index", [])), index_name],
            "rejected": [*map(migrated_name, old_extra.get("rejected", [])), *rejected],
            "keep_rule": KEEP_RULE,
            "dup_cluster": "the key of the row kept for the cluster; split = sha256(seed:cluster) < val_fraction",
            "order": ORDER_NOTE,
            # takedowns since the first run: their running total, and the last one counted (so a resumed
            # takedown is never counted twice, `pipeline.tools.takedown`)
            **{k: old_extra[k] for k in TAKEDOWN_EXTRA if k in old_extra},
        },
    )


def funnel(manifest: Manifest | Mapping[str, Any]) -> list[tuple[str, int]]:
    """(label, rows) lines: rows_in, each drop reason, rows_out."""
    data = manifest if isinstance(manifest, Mapping) else manifest.to_dict()
    return [("rows_in", data["rows_in"]), *data["drops"].items(), ("rows_out", data["rows_out"])]
