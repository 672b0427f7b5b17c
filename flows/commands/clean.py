"""`mmpipe clean`: RAW Parquet -> CLEAN shards + manifest (the stage lives in pipeline/clean.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from flows.commands import given, renamed_option


def _funnel_table(title: str, data: dict[str, Any]):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("step")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    total = max(1, data["rows_in"])
    table.add_row("rows in", f"{data['rows_in']:,}", "100.0%")
    from data_schemas import reasons

    order = {r: i for i, r in enumerate((*reasons.CLEAN_REASONS, *reasons.CURATE_REASONS))}
    for reason, n in sorted(data["drops"].items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
        table.add_row(f"  - {reason}", f"{n:,}", f"{100 * n / total:.1f}%")
    table.add_row("rows out", f"{data['rows_out']:,}", f"{100 * data['rows_out'] / total:.1f}%", style="bold")
    return table


def _report(out_dir: Path | str) -> None:
    from rich.console import Console

    from data_schemas import Manifest

    console = Console()
    manifest = Manifest.read(out_dir)
    runs = manifest.extra.get("runs", [])
    if runs:
        console.print(_funnel_table(f"clean run {runs[-1]['run']}", runs[-1]))
    if len(runs) > 1:
        console.print(_funnel_table("whole dataset (all runs)", manifest.to_dict()))
    for skipped in manifest.extra.get("skipped_inputs", []):
        console.print(f"[yellow]skipped[/yellow] {skipped['path']}: {skipped['reason']}")
    splits = ", ".join(f"{k}: {v:,}" for k, v in manifest.per_split.items())
    console.print(f"{len(manifest.shards)} shards ({splits}) in [bold]{out_dir}[/bold]")


def register(app: typer.Typer) -> None:
    register_curate(app)

    @app.command("clean")
    def clean_command(
        raw: Annotated[str, typer.Option("--raw", help="RAW directory or URL (every *.parquet below it), or one "
                                                     "file.")],
        out: Annotated[str, typer.Option("--out", help="Dataset directory or URL (s3://...); an existing dataset is "
                                                     "extended.")],
        scheduler: Annotated[str | None, typer.Option(help="Running Dask scheduler, tcp://host:8786.")] = None,
        n_workers: Annotated[int | None, typer.Option(help="LocalCluster processes (default: one per core).")] = None,
        workers: Annotated[int | None, typer.Option(hidden=True, help="Deprecated name of --n-workers.")] = None,
        strict: Annotated[bool | None, typer.Option(help="Fail on a bad RAW file instead of skipping it.")] = None,
        langs: Annotated[str | None, typer.Option(help="Allowed caption languages, e.g. en,fr.")] = None,
        image_size: Annotated[int | None, typer.Option(help="Longest side (or crop side) of stored images.")] = None,
        resize_mode: Annotated[str | None, typer.Option(help="keep_ratio_largest | center_crop | no")] = None,
        val_fraction: Annotated[float | None, typer.Option(help="Share of dup clusters put in val.")] = None,
        phash_threshold: Annotated[int | None, typer.Option(
            help="Near-duplicate candidates: pHash (or mirrored) distance of 64 bits.")] = None,
        pdq_threshold: Annotated[int | None, typer.Option(
            help="PDQ distance, of 256 bits, that confirms a candidate.")] = None,
        rehash_index: Annotated[bool | None, typer.Option(
            help="Recompute an older dataset's dedup index from its stored images before this run.")] = None,
        rebuild: Annotated[bool | None, typer.Option(
            help="Rebuild the whole dataset from its RAW inputs, applying changed parameters to every row.")] = None,
        write_rejected: Annotated[bool | None, typer.Option(help="Keep dropped rows in _rejected/.")] = None,
        blocklist: Annotated[Path | None, typer.Option(help="Extra takedown list (JSON lines).")] = None,
    ) -> None:
        """Clean, deduplicate and split RAW pairs into training shards with a manifest."""
        import logging
        import os

        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # before distributed is imported
        from rich.console import Console
        from rich.logging import RichHandler

        from data_schemas import SchemaError
        from pipeline.clean import clean
        from pipeline.config import CleanConfig
        from pipeline.inputs import CleanError

        logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
        console = Console(stderr=True)
        options = given(scheduler=scheduler, n_workers=renamed_option("--workers", "--n-workers", workers, n_workers),
                        strict=strict, langs=langs.split(",") if langs else None, image_size=image_size,
                        resize_mode=resize_mode, val_fraction=val_fraction, phash_threshold=phash_threshold,
                        pdq_threshold=pdq_threshold, rehash_index=rehash_index, rebuild=rebuild,
                        write_rejected=write_rejected, blocklist=blocklist)
        try:
            config = CleanConfig(raw=raw, out=out, **options)
            out_dir = clean(config)
        except (CleanError, SchemaError, ValueError, FileNotFoundError) as exc:
            console.print(f"[red]clean failed:[/red] {exc}")
            raise typer.Exit(code=1) from None
        _report(out_dir)


def _curate_report(out_dir: Path) -> None:
    from rich.console import Console

    from data_schemas import Manifest

    console = Console()
    manifest = Manifest.read(out_dir)
    cur = manifest.extra["curate"]
    console.print(_funnel_table(f"curate pass over {manifest.extra['parent']['path']}", cur))
    cut = cur.get("alignment_cut")
    console.print(f"alignment cut {cut:.4f}" if cut is not None else "no alignment cut",
                  f"(pool {cur['pool']:,} rows of {', '.join(cur['splits'])}); {cur['clusters']} k-means cluster(s), "
                  f"semantic threshold applied {cur.get('semantic_threshold_applied')}")
    figures = ", ".join(str(out_dir / f) for f in cur.get("figures", []))
    console.print(f"new version [bold]{out_dir}[/bold]: {manifest.rows_out:,} rows in {len(manifest.shards)} "
                  f"shard(s){'; figures: ' + figures if figures else ''}")


def register_curate(app: typer.Typer) -> None:
    @app.command("curate")
    def curate_command(
        data: Annotated[Path, typer.Argument(help="The dataset to curate (it is not changed).")],
        scores: Annotated[str | None, typer.Option(help="Scores dir, or its name under DATA/_scores (default: "
                                                        "the only one).")] = None,
        out: Annotated[Path | None, typer.Option(help="The new version (default: DATA-curated beside it).")] = None,
        keep_top: Annotated[float | None, typer.Option(help="Keep this fraction with the best alignment.")] = None,
        min_alignment: Annotated[float | None, typer.Option(help="Also drop rows below this alignment.")] = None,
        semantic_threshold: Annotated[float | None, typer.Option(
            help="Image-embedding cosine above which a less aligned row is a duplicate.")] = None,
        no_semantic: Annotated[bool, typer.Option("--no-semantic", help="Skip semantic dedup.")] = False,
        splits: Annotated[str | None, typer.Option(help="Splits to filter, e.g. train,val (others pass unchanged).")]
        = None,
    ) -> None:
        """Alignment filter and semantic dedup from `mmpipe score`'s output, as a new dataset version."""
        import logging

        from rich.console import Console
        from rich.logging import RichHandler

        from data_schemas import SchemaError
        from pipeline.config import CurateConfig
        from pipeline.curate import curate
        from pipeline.inputs import CleanError

        logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
        try:
            options = given(scores=scores, out=out, keep_top=keep_top, min_alignment=min_alignment,
                            semantic_threshold=semantic_threshold,
                            splits=tuple(s.strip() for s in splits.split(",") if s.strip()) if splits else None)
            if no_semantic:
                options["semantic_threshold"] = None
            config = CurateConfig(data=data, **options)
            out_dir = curate(config)
        except (CleanError, SchemaError, ValueError, FileNotFoundError) as exc:
            Console(stderr=True).print(f"[red]curate failed:[/red] {exc}")
            raise typer.Exit(code=1) from None
        _curate_report(out_dir)
