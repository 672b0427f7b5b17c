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

from data_schemas import Manifest, manifest_path

KEY_CRAWL = "crawl-summary"
KEY_FUNNEL = "clean-funnel"
KEY_SHARDS = "dataset-shards"
KEY_METRICS = "training-metrics"
KEY_LOSS_PLOT = "training-loss-plot"
KEY_EVAL = "evaluation"
KEY_CUT = "curate-cut"
KEY_ALIGNMENT = "alignment-histogram"
KEY_EXTREMES = "alignment-extremes"
KEY_ROUNDS = "curation-rounds"
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
    lines += ["", f"Manifest: `{manifest_path(dataset)}` -- inspect with `mmpipe inspect {dataset}`"]
    return "\n".join(lines)


def cut_rows(manifest: Manifest) -> list[dict[str, Any]]:
    """The curate pass's own funnel (parent rows, each drop, kept) and its cut, for the UI's table."""
    cur = manifest.extra["curate"]
    rows = [{"step": "input", "reason": "parent rows_out", "rows": cur["rows_in"], "value": None}]
    rows += [{"step": "dropped", "reason": r, "rows": n, "value": None} for r, n in cur["drops"].items()]
    rows.append({"step": "kept", "reason": "rows_out", "rows": cur["rows_out"], "value": None})
    rows.append({"step": "cut", "reason": f"alignment (keep_top {cur['keep_top']}, min {cur['min_alignment']})",
                 "rows": cur["pool"], "value": cur["alignment_cut"]})
    rows.append({"step": "cut", "reason": f"semantic cosine ({cur['clusters']} clusters, asked "
                 f"{cur['semantic_threshold']}, max drop {cur.get('semantic_max_drop')})", "rows": None,
                 "value": cur.get("semantic_threshold_applied")})
    return rows


def rounds_markdown(first: dict[str, Any], second: dict[str, Any]) -> str:
    """Round one (all rows) against round two (curated), on the same val pairs."""
    a, b = first["model"], second["model"]
    lines = ["| metric | round 1 (dataset) | round 2 (curated) |", "|---|---:|---:|"]
    for name, get in (("mean R@1", lambda m: m["retrieval"]["mean_R@1"]),
                      ("image->text R@5", lambda m: m["retrieval"]["image_to_text"]["R@5"]),
                      ("MLM accuracy gap vs mismatched",
                       lambda m: m["mlm"]["gap_matched_vs_mismatched"]["accuracy"]["mean"])):
        lines.append(f"| {name} | {get(a):.4f} | {get(b):.4f} |")
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


MAX_METRIC_ROWS = 2000  # the UI pages a table; past this a run's log is thinned, and the description says so


def metrics_rows(metrics: list[dict[str, Any]], *, max_rows: int = MAX_METRIC_ROWS) -> list[dict[str, Any]]:
    """Every logged row (at most ``max_rows``, evenly spaced, always with the last one: what the run ended with),
    each with every column any row has, so no row or column is dropped by a table that reads the first row's."""
    picked = metrics
    if len(metrics) > max_rows:
        stride = len(metrics) / (max_rows - 1)
        picked = [metrics[int(i * stride)] for i in range(max_rows - 1)] + [metrics[-1]]
    columns = list(dict.fromkeys(k for row in picked for k in row))
    return [{k: row.get(k) for k in columns} for row in picked]


def metrics_description(run_dir: Path, total: int, shown: int) -> str:
    thinned = "" if shown == total else f", {shown} evenly spaced rows of {total} (all in metrics.jsonl)"
    return f"Training metrics of {run_dir}: {total} logged steps{thinned}"


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
        rows = metrics_rows(metrics)
        create_table_artifact(rows, key=KEY_METRICS, description=metrics_description(run_dir, len(metrics), len(rows)))
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


def publish_curate(dataset: Path, manifest: Manifest) -> None:
    from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact

    create_table_artifact(cut_rows(manifest), key=KEY_CUT, description=f"Curate pass into {dataset}")
    for key, name, what in ((KEY_ALIGNMENT, "alignment.png", "Alignment histogram with the cut"),
                            (KEY_EXTREMES, "extremes.png", "Lowest- and highest-scored pairs")):
        path = next((dataset / f for f in manifest.extra["curate"].get("figures", []) if f.endswith(name)), None)
        uri = png_data_uri(path) if path is not None and path.is_file() else None
        if uri:
            create_image_artifact(uri, key=key, description=what)
        elif path is not None:
            create_markdown_artifact(f"{what}: `{path}`", key=key, description=what)


def publish_rounds(first: dict[str, Any], second: dict[str, Any]) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(rounds_markdown(first, second), key=KEY_ROUNDS,
                             description="Training on the dataset vs on its curated version (same val pairs)")
