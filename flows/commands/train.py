"""`mmpipe train` and `mmpipe eval` (the stage lives in training/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.commands import given


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/bold red] {message}")
    raise typer.Exit(code=1)


def _expected_errors() -> tuple[type[BaseException], ...]:
    from data_schemas import SchemaError
    from training.config import ConfigError
    from training.data import DataError
    from training.launch import LaunchError

    return DataError, SchemaError, ConfigError, LaunchError, FileNotFoundError


def _eval_table(title: str, result: dict[str, Any]):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    r = result["retrieval"]
    for direction in ("image_to_text", "text_to_image"):
        cells = ", ".join(f"{k} {r[direction][k]:.3f}" for k in sorted(r[direction], key=lambda k: int(k[2:])))
        table.add_row(direction.replace("_", " "), cells)
    table.add_row("chance R@1", f"{r['chance_R@1']:.4f} ({r['n']} pairs)")
    mlm = result["mlm"]
    loss = mlm["loss"]
    for cond, label in (("matched", "matched image"), ("mismatched", "mismatched image"), ("none", "no image")):
        table.add_row(f"masked tokens, {label}", f"acc {mlm[cond]['accuracy']:.3f}  {loss} {mlm[cond][loss]:.3f}")
    for other in ("mismatched", "none"):
        gap = mlm[f"gap_matched_vs_{other}"]["accuracy"]
        lo, hi = gap["ci95"]
        table.add_row(f"accuracy gain vs {other}", f"{gap['mean']:+.3f} [95% CI {lo:+.3f}, {hi:+.3f}]")
    return table


def _print_eval(path: Path | str) -> None:
    from rich.console import Console

    from data_schemas import storage

    console = Console()
    data = json.loads(storage.read_text(path))
    console.print(_eval_table(f"{data['model']['preset']} model", data["model"]))
    if "baseline" in data:
        console.print(_eval_table("seed baseline", data["baseline"]))
    console.print(f"wrote [bold]{path}[/bold]")


def _print_train(run: Path | str) -> None:
    from rich.console import Console

    from data_schemas import storage

    console = Console()
    summary_path = storage.join(run, "train_summary.json")
    if storage.exists(summary_path):
        s = json.loads(storage.read_text(summary_path))
        console.print(f"trained [bold]{s['preset']}[/bold] ({s['parameters']:,} parameters) for {s['steps']} steps "
                      f"on {s['world_size']} process(es): {s['samples_seen']:,} samples, "
                      f"{s['corrupt_rows_skipped']} corrupt row(s) skipped")
    if storage.exists(storage.join(run, "eval.json")):
        _print_eval(storage.join(run, "eval.json"))
    files = [f for f in ("model.safetensors", "metrics.jsonl", "metrics.png", "eval.json")
             if storage.exists(storage.join(run, f))]
    console.print(f"run directory: [bold]{run}[/bold] ({', '.join(files)})")


def _print_scores(out: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    from rich.console import Console

    from data_schemas import SCORE_PART_GLOB

    table = pads.dataset(sorted(out.glob(SCORE_PART_GLOB)), format="parquet").to_table(columns=["alignment"])
    col = table.column("alignment")
    q = pc.quantile(col, q=[0.05, 0.5, 0.95]).to_pylist() if table.num_rows else [float("nan")] * 3
    Console().print(f"scored [bold]{table.num_rows:,}[/bold] rows into [bold]{out}[/bold]; alignment p5 {q[0]:.3f}, "
                    f"median {q[1]:.3f}, p95 {q[2]:.3f} ({col.null_count} without a decodable image)")


def train_command(
    data: Annotated[str, typer.Option("--data", help="CLEAN dataset directory or URL (with _manifest.json).")],
    out: Annotated[str, typer.Option("--out", help="Run directory or URL, e.g. runs/NAME.")],
    config: Annotated[Path | None, typer.Option("--config", help="YAML file of TrainConfig fields.")] = None,
    preset: Annotated[str | None, typer.Option(help="tiny | base | seed")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides epochs).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs, when --steps is not given.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Per-process micro-batch size.")] = None,
    resume: Annotated[str | None, typer.Option(help="'latest' or a checkpoint directory.")] = None,
    nproc: Annotated[int, typer.Option(help="Processes (DDP via torchrun) on this machine.")] = 1,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    num_workers: Annotated[int | None, typer.Option(help="Loader worker processes per rank.")] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile it.")] = None,
    eval_at_end: Annotated[bool | None, typer.Option("--eval/--no-eval", help="Evaluate on val after.")] = None,
) -> None:
    """Train the image-text model on CLEAN shards; checkpoints, metrics and the model go to --out."""
    import logging

    from rich.logging import RichHandler

    from training.config import TrainConfig

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    try:
        cfg = TrainConfig.from_yaml(config, data=data, out=out, preset=preset, steps=steps, epochs=epochs,
                                    batch_size=batch_size, resume=resume, device=device,
                                    num_workers=num_workers, compile=compile, eval_at_end=eval_at_end)
        if nproc > 1:
            from training.launch import launch_torchrun

            run = launch_torchrun(cfg, nproc)
        else:
            from training.train import train

            run = train(cfg)
    except _expected_errors() as exc:
        _fail(str(exc))
    _print_train(run)

def score_command(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory (with _manifest.json).")],
    run: Annotated[Path | None, typer.Option("--run", help="Training run whose model scores the rows.")] = None,
    open_clip: Annotated[str | None, typer.Option("--open-clip", help="An open_clip model name, or its JSON "
                                                                      "model config, instead of --run.")] = None,
    pretrained: Annotated[Path | None, typer.Option(help="open_clip weights file on disk (never downloaded).")]
    = None,
    name: Annotated[str | None, typer.Option(help="Scores go to DATA/_scores/NAME (default: the run's name).")]
    = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per forward pass.")] = None,
    num_workers: Annotated[int | None, typer.Option(help="Image-decoding loader processes.")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
) -> None:
    """Embed every row (image, caption) and write their alignment (cosine) beside the dataset; resumable."""
    import logging

    from rich.logging import RichHandler

    from training.config import ScoreConfig
    from training.score import score

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    try:
        out = score(ScoreConfig(data=data, **given(run=run, open_clip=open_clip, pretrained=pretrained, name=name,
                                                   batch_size=batch_size, num_workers=num_workers,
                                                   device=device)))
    except (*_expected_errors(), ModuleNotFoundError) as exc:
        _fail(str(exc))
    _print_scores(out)

def eval_command(
    run: Annotated[Path, typer.Option("--run", help="Run directory written by `mmpipe train`.")],
    data: Annotated[Path | None, typer.Option(help="Dataset whose val split to use (default: the run's).")] = None,
    baseline: Annotated[bool | None, typer.Option(help="Also score the seed baseline (trained if missing).")]
    = None,
    batch_size: Annotated[int | None, typer.Option(help="Evaluation batch size.")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
) -> None:
    """Evaluate a run on the val split: retrieval R@1/5/10 and whether the image helps masked-token prediction."""
    from training.config import EvalConfig
    from training.evaluate import evaluate
    from training.train import train_baseline

    try:
        cfg = EvalConfig(run=run, **given(data=data, baseline=baseline, batch_size=batch_size, device=device))
        if cfg.baseline:
            train_baseline(run)
        path = evaluate(cfg)
    except _expected_errors() as exc:
        _fail(str(exc))
    _print_eval(path)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("score")(score_command)
    app.command("eval")(eval_command)
