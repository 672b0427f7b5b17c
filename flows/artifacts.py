"""Prefect artifacts: what the UI shows for a run (crawl summary, cleaning funnel, shards, training metrics).

Each builder is split in two: a pure function that turns a stage's output files into rows (tested directly, and
reused by `mmpipe demo`'s terminal summary), and a thin ``publish_*`` that sends them to Prefect.  Keys are stable
so the UI's Artifacts page keeps one history per kind across runs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from data_schemas import Manifest

KEY_CRAWL = "crawl-summary"
KEY_FUNNEL = "clean-funnel"
KEY_SHARDS = "dataset-shards"
KEY_METRICS = "training-metrics"
KEY_LOSS_PLOT = "training-loss-plot"
KEY_EVAL = "evaluation"
MAX_INLINE_PNG = 2 * 1024 * 1024  # larger plots are linked by path, not embedded


def _total(value: Any) -> Any:
    return sum(value.values()) if isinstance(value, dict) else value


def crawl_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per source: counts first, then drops by reason, then the state of the task."""
    rows = []
    for s in summaries:
        row: dict[str, Any] = {"source": s.get("source", "?"), "status": s.get("status", "crawled")}
        for key in ("kind", "pages", "posts", "images", "rows", "image_bytes", "requests", "duration_s"):
            if key in s:
                row[key] = s[key]
        row["drops"] = _total(s.get("drops", {})) or 0
        row["errors"] = _total(s.get("errors", {})) or 0
        if s.get("error"):
            row["error"] = str(s["error"])[:300]
        rows.append(row)
    return rows


def funnel_rows(manifest: Manifest) -> list[dict[str, Any]]:
    """The cleaning funnel in the manifest's order: input rows, each drop reason, kept rows."""
    rows = [{"step": "input", "reason": "rows_in", "rows": manifest.rows_in}]
    rows += [{"step": "dropped", "reason": reason, "rows": n} for reason, n in manifest.drops.items()]
    rows.append({"step": "kept", "reason": "rows_out", "rows": manifest.rows_out})
    return rows


def funnel_drops(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {r["reason"]: r["rows"] for r in rows if r["step"] == "dropped" and r["rows"]}


def shards_markdown(dataset: Path, manifest: Manifest) -> str:
    dataset = dataset.resolve()
    lines = [f"### Dataset `{dataset}`", "",
             f"{manifest.rows_out} rows in {len(manifest.shards)} shard(s); splits: "
             + ", ".join(f"{k} {v}" for k, v in manifest.per_split.items()), "",
             "| shard | split | rows | MB | sha256 |", "|---|---|---:|---:|---|"]
    for s in manifest.shards:
        path = dataset / s.name
        lines.append(f"| [{s.name}]({path.as_uri()}) | {s.split} | {s.rows} | {s.bytes / 1e6:.2f} | "
                     f"`{s.sha256[:12]}` |")
    lines += ["", f"Manifest: `{dataset / 'manifest.json'}` -- inspect with `mmpipe inspect {dataset}`"]
    return "\n".join(lines)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a killed run; the rest is still good
    return rows


def metrics_rows(metrics: list[dict[str, Any]], *, max_rows: int = 25) -> list[dict[str, Any]]:
    """At most ``max_rows`` evenly spaced rows, always with the last one (what the run ended with)."""
    if len(metrics) <= max_rows:
        return metrics
    stride = len(metrics) / (max_rows - 1)
    picked = [metrics[int(i * stride)] for i in range(max_rows - 1)]
    return picked + [metrics[-1]]


def loss_plots(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("*.png"))


def png_data_uri(path: Path) -> str | None:
    data = path.read_bytes()
    if len(data) > MAX_INLINE_PNG:
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode()


# --- publishing ------------------------------------------------------------------------------------------------
def publish_crawl(summaries: list[dict[str, Any]]) -> None:
    from prefect.artifacts import create_table_artifact

    create_table_artifact(crawl_rows(summaries), key=KEY_CRAWL, description="Crawl summary, one row per source")


def publish_clean(dataset: Path, manifest: Manifest, *, cached: bool) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    note = " (cached: inputs and parameters unchanged)" if cached else ""
    create_table_artifact(funnel_rows(manifest), key=KEY_FUNNEL, description=f"Cleaning funnel: reason -> rows{note}")
    create_markdown_artifact(shards_markdown(dataset, manifest), key=KEY_SHARDS, description="Dataset shards")


def publish_training(run_dir: Path) -> None:
    from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact

    metrics = read_metrics(run_dir)
    if metrics:
        create_table_artifact(metrics_rows(metrics), key=KEY_METRICS, description=f"Training metrics of {run_dir}")
    for plot in loss_plots(run_dir)[:1]:
        uri = png_data_uri(plot)
        if uri:  # the UI shows an image artifact by URL; a data URI needs no file server
            create_image_artifact(uri, key=KEY_LOSS_PLOT, description=f"Loss curve ({plot})")
        else:
            create_markdown_artifact(f"Loss plot: `{plot}`", key=KEY_LOSS_PLOT, description="Loss curve")


def publish_eval(eval_path: Path, result: dict[str, Any]) -> None:
    from prefect.artifacts import create_markdown_artifact

    lines = [f"### Evaluation `{eval_path}`", "", "| metric | value |", "|---|---:|"]
    for name, value in flatten(result).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lines.append(f"| {name} | {value:.4g} |")
    create_markdown_artifact("\n".join(lines), key=KEY_EVAL, description="Retrieval R@k and MLM gap")


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(obj, dict):
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out
