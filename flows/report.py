"""The terminal summary of a pipeline run (`mmpipe run`, `mmpipe demo`): what happened and where it all is."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from flows.artifacts import flatten


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def crawl_table(summaries: list[dict[str, Any]]) -> Table:
    table = Table(title="Crawl", title_justify="left")
    for col in ("source", "status", "pages/posts", "images", "RAW rows", "dropped"):
        table.add_column(col, justify="left" if col in ("source", "status") else "right")
    for s in summaries:
        items = (s.get("pages") or 0) + (s.get("posts") or 0)
        drops = s.get("drops") or {}
        table.add_row(s.get("source", "?"), s.get("status", ""), _num(items), _num(s.get("images", "-")),
                      _num(s.get("rows", "-")), _num(sum(drops.values()) if isinstance(drops, dict) else drops))
    return table


def crawl_drops(summaries: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in summaries:
        for reason, n in (s.get("drops") or {}).items():
            total[reason] = total.get(reason, 0) + n
    return dict(sorted(total.items()))


def funnel_table(clean: dict[str, Any]) -> Table:
    title = "Clean funnel" + (" (cached: inputs unchanged)" if clean.get("cached") else "")
    table = Table(title=title, title_justify="left")
    table.add_column("step")
    table.add_column("rows", justify="right")
    table.add_row("RAW rows in", str(clean["rows_in"]))
    for reason, n in clean["drops"].items():
        if n:
            table.add_row(f"  dropped: {reason}", str(n))
    table.add_row("[bold]kept[/bold]", f"[bold]{clean['rows_out']}[/bold]")
    return table


_EVAL_KEYS = {  # eval.json path -> label; paths that a stage version does not write are simply not shown
    "model.retrieval.mean_R@1": "retrieval R@1 (mean of both directions)",
    "model.retrieval.chance_R@1": "retrieval R@1 by chance",
    "model.retrieval.image_to_text.R@5": "image->text R@5",
    "model.retrieval.text_to_image.R@5": "text->image R@5",
    "model.mlm.matched.accuracy": "masked-token accuracy with the image",
    "model.mlm.gap_matched_vs_mismatched.accuracy.mean": "MLM accuracy gap, matched - mismatched image",
    "comparison.mean_R@1.baseline": "baseline (seed) retrieval R@1",
}


def key_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """Final training losses and the headline evaluation numbers, labelled for people."""
    out: dict[str, Any] = {}
    last = (result.get("train") or {}).get("last") or {}
    if "step" in last:
        out["training steps"] = last["step"]
    for k, v in last.items():
        if k in ("loss", "mlm", "clip", "mse") and isinstance(v, (int, float)):
            out[f"final training {'loss' if k == 'loss' else k + ' loss'}"] = v
    evaluation = flatten((result.get("evaluate") or {}).get("result") or {})
    for path, label in _EVAL_KEYS.items():
        if isinstance(evaluation.get(path), (int, float)):
            out[label] = evaluation[path]
    return out


def print_summary(result: dict[str, Any], *, console: Console | None = None, next_steps: bool = True) -> None:
    console = console or Console()
    if result.get("crawl"):
        console.print(crawl_table(result["crawl"]))
        drops = crawl_drops(result["crawl"])
        if drops:
            console.print("Not collected (opt-outs, robots.txt, sensitive/noindex): "
                          + ", ".join(f"{k} {v}" for k, v in drops.items()), highlight=False)
        for s in result["crawl"]:
            if s.get("status") == "failed":
                console.print(f"[red]{s['source']} failed[/red]: {s.get('error')}", highlight=False)
    if result.get("clean"):
        clean = result["clean"]
        console.print(funnel_table(clean))
        console.print(f"Shards: {len(clean['shards'])} in [cyan]{clean['dataset']}[/cyan]")
    metrics = key_metrics(result)
    if metrics:
        console.print(_metrics_table("Training and evaluation", metrics))
    if result.get("train"):
        console.print(f"Run: [cyan]{result['train']['run']}[/cyan]"
                      + "".join(f"\nLoss plot: [cyan]{p}[/cyan]" for p in result["train"].get("plots", [])))
    if result.get("evaluate"):
        console.print(f"Evaluation: [cyan]{result['evaluate']['path']}[/cyan]")
    if result.get("curate"):
        _print_curation(result["curate"], console)
    if next_steps:
        print_next_steps(result, console=console)


def _print_curation(cur: dict[str, Any], console: Console) -> None:
    c = cur["curate"]
    drops = ", ".join(f"{k} {v}" for k, v in c["drops"].items()) or "nothing"
    console.print(f"Curated: {c['rows_out']} of {c['rows_in']} rows kept (dropped {drops}) in "
                  f"[cyan]{c['dataset']}[/cyan]", highlight=False)
    second = key_metrics({"train": cur.get("train"), "evaluate": cur.get("evaluate")})
    if second:
        console.print(_metrics_table("Round 2 (trained on the curated version)", second))


def _metrics_table(title: str, metrics: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, _num(v))
    return table


LONG_RUNNING = "(runs until Ctrl-C)"  # marks a step that serves until stopped (tests/e2e/test_walkthrough.py)


def print_next_steps(result: dict[str, Any], *, console: Console) -> None:
    """Commands to try next, each runnable as printed (tests/e2e/test_walkthrough.py runs every one)."""
    dataset = Path((result.get("clean") or {}).get("dataset") or Path(result.get("data_dir", "data")) / "clean")
    workdir = dataset.parent.parent
    q = shlex.quote
    console.print("\n[bold]Next[/bold]")
    if shutil.which("mmpipe") is None:
        venv = Path(sys.executable).parent
        console.print(f"  (mmpipe is not on this shell's PATH: run [cyan]source {q(str(venv / 'activate'))}"
                      "[/cyan] first, or `pip install -e .` in your own environment)", highlight=False,
                      soft_wrap=True)
    steps = [
        (f"mmpipe inspect {q(str(dataset))} --sample 12 --html {q(str(workdir / 'report.html'))}",
         "a random sample from every source, the funnel, sizes and languages; open report.html in a browser"),
        (f"mmpipe verify {q(str(dataset))}", "check every shard against the manifest"),
        (f"mmpipe export {q(str(dataset))} --format webdataset --out {q(str(workdir / 'export'))} --overwrite",
         "train/ and val/ tar sets for open_clip; prints the command line that trains on them"),
        (f"mmpipe serve --demo --workdir {q(str(workdir / 'serve'))}",
         f"a Prefect server and UI, the deployments registered against a demo site: watch scheduled runs "
         f"{LONG_RUNNING}"),
    ]
    for command, what in steps:
        console.print(f"  [cyan]{command}[/cyan]\n      {what}", highlight=False, soft_wrap=True)
