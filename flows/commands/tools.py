"""`mmpipe inspect | verify | takedown | export | browse`: thin wrappers over `pipeline.tools`, imported inside
each command."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from flows.commands import given

console = Console()
err_console = Console(stderr=True)


class ExportFormat(str, Enum):
    webdataset = "webdataset"
    img2dataset_parquet = "img2dataset-parquet"


class Split(str, Enum):
    both = "both"
    train = "train"
    val = "val"
    all = "all"


def _fail(message: str) -> typer.Exit:
    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False)
    return typer.Exit(code=1)


def _run(fn, *args, **kwargs):
    """Expected errors (bad path, bad predicate, bad entry) become one clear line and exit status 1."""
    from pipeline.tools import ToolError

    try:
        return fn(*args, **kwargs)
    except (ToolError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None


def _print_json(obj) -> None:
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    console.print_json(json.dumps(data, default=str))


def inspect_cmd(
    dataset: Annotated[Path, typer.Argument(help="A CLEAN dataset dir, a RAW crawl dir, or one .parquet shard.")],
    sample: Annotated[int | None, typer.Option("--sample", "-n", help="Show N matching rows: a random sample, "
                                                                  "stratified by source (see --seed).")] = None,
    where: Annotated[str | None, typer.Option(
        help="SQL predicate over the rows' columns (DuckDB), e.g. \"lang = 'de'\"; no subqueries, no table or "
             "file functions (read_csv, read_text, ...), no getenv: it can only filter the rows.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report here.")] = None,
    grid: Annotated[Path | None, typer.Option(help="Write a PNG contact sheet of thumbnails here.")] = None,
    thumbs: Annotated[int | None, typer.Option(help="Images in the report/sheet (default: --sample or 24).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the sample (the same seed shows the same rows).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Summarise a dataset: shards, rows, splits, sources, funnel, caption and image sizes, languages."""
    from pipeline.tools import inspect_dataset
    from pipeline.tools.render import render_inspect

    report = _run(inspect_dataset, dataset, where=where, html=html, grid=grid, thumbs=thumbs,
                  **given(sample=sample, seed=seed))
    if as_json:
        _print_json(report)
    else:
        render_inspect(report, console)


def verify_cmd(
    dataset: Annotated[Path, typer.Argument(help="A CLEAN dataset dir (or a RAW dir / one shard).")],
    max_pixels: Annotated[int | None, typer.Option(
        help="Images above this many pixels fail (decompression bombs; default: the clean stage's limit).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every shard against the manifest, the schema, unique keys and image decoding; exit 1 on any problem."""
    from rich.progress import Progress

    from pipeline.tools import verify_dataset
    from pipeline.tools.render import render_verify

    with Progress(console=err_console, transient=True, disable=as_json or not err_console.is_terminal) as bar:
        task = bar.add_task("verifying rows", total=None)
        report = _run(verify_dataset, dataset, progress=lambda n: bar.advance(task, n), **given(max_pixels=max_pixels))
    if as_json:
        _print_json(report)
    else:
        render_verify(report, console)
    if not report.ok:
        raise typer.Exit(code=1)


def takedown_cmd(
    dataset: Annotated[Path, typer.Argument(help="The CLEAN dataset dir to remove content from.")],
    url: Annotated[list[str] | None, typer.Option("--url", help="Exact page or image URL (repeatable).")] = None,
    domain: Annotated[list[str] | None, typer.Option("--domain", help="Domain incl. subdomains (repeatable).")]
    = None,
    sha256: Annotated[list[str] | None, typer.Option("--sha256", help="sha256 of the stored image (repeatable).")]
    = None,
    file: Annotated[Path | None, typer.Option("--file", help="One entry per line: sha256, URL or domain.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in _takedowns.jsonl and _blocklist.jsonl).")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; write nothing.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Only finish an interrupted takedown.")] = False,
) -> None:
    """Remove matching rows, rewrite the manifest, log the request and blocklist the content for later runs."""
    from pipeline.tools import TakedownRequest, takedown
    from pipeline.tools.render import render_takedown

    lines: list[str] = []
    if file is not None:
        if not file.is_file():
            raise _fail(f"{file}: takedown list not found")
        lines = file.read_text(encoding="utf-8").splitlines()
    request = _run(TakedownRequest.from_lines, lines, **given(reason=reason), file=str(file) if file else None)
    extra = _run(TakedownRequest, urls=list(url or []), domains=list(domain or []), sha256=list(sha256 or []))
    request.urls += extra.urls
    request.domains += extra.domains
    request.sha256 += extra.sha256
    if request.is_empty() and not resume:
        raise _fail("nothing to take down: give --url, --domain, --sha256 or --file (or --resume)")
    result = _run(takedown, dataset, request, dry_run=dry_run)
    render_takedown(result, console)


def export_cmd(
    dataset: Annotated[str, typer.Argument(help="The CLEAN dataset dir (or s3:// URL) to export.")],
    format: Annotated[ExportFormat, typer.Option("--format", help="Output format.")],
    out: Annotated[str, typer.Option("--out", help="Output folder or URL (empty, or use --overwrite).")],
    split: Annotated[Split | None, typer.Option(help="both: OUT/train/ and OUT/val/; train or val alone; all: one "
                                                     "mixed set in OUT/all/ (default: both).")] = None,
    samples_per_shard: Annotated[int | None, typer.Option(help="Samples per output shard (at most).")] = None,
    min_shards: Annotated[int | None, typer.Option(help="At least this many shards per set (open_clip needs one per "
                                                        "data loader worker); fewer only for fewer samples.")] = None,
    with_images: Annotated[bool | None, typer.Option(help="img2dataset-parquet: include the `jpg` column.")] = None,
    overwrite: Annotated[bool | None, typer.Option(help="Replace an earlier export in --out.")] = None,
) -> None:
    """Write webdataset tars (open_clip) or img2dataset-style parquet."""
    from rich.progress import Progress

    from data_schemas import storage
    from pipeline.tools import ExportConfig, export_dataset

    config = ExportConfig(format=format.value, out=out, **given(
        split=split.value if split else None, samples_per_shard=samples_per_shard, min_shards=min_shards,
        with_images=with_images, overwrite=overwrite))
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("exporting", total=None)
        path = _run(export_dataset, dataset, config, progress=lambda n: bar.advance(task, n))
    info = json.loads(storage.read_text(storage.join(path, "export.json")))
    sets = ", ".join(f"{name}/ {s['samples']:,} samples in {len(s['shards'])} shard(s)"
                     for name, s in info["sets"].items())
    console.print(Text.assemble(("exported ", "green"), f"{info['samples']:,} samples ({format.value}) to {path}: "
                                f"{sets}"), soft_wrap=True)
    for name, s in info["sets"].items():
        if s.get("note"):
            console.print(Text(f"note: {name}/: {s['note']}", style="yellow"), soft_wrap=True)
    if info.get("open_clip"):
        console.print(Text("train with open_clip:"))
        console.print(Text(f"  {info['open_clip']}"), soft_wrap=True)


def browse_cmd(
    dataset: Annotated[Path, typer.Argument(help="The CLEAN dataset dir to browse.")],
    run: Annotated[Path | None, typer.Option("--run", help="A training run: text-to-image search and 'more like "
                                             "this' with its model (scores missing rows first).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8765).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: this machine only).")] = None,
    device: Annotated[str | None, typer.Option(help="With --run: auto, cpu or cuda.")] = None,
) -> None:
    """A local web app over the dataset: images, filters, search, SQL, drop reasons, duplicates, plots, takedown."""
    from pipeline.tools.browse import browse
    from pipeline.tools.browse.app import DEFAULT_HOST, DEFAULT_PORT

    host, port = host or DEFAULT_HOST, DEFAULT_PORT if port is None else port
    search = None
    if run is not None:
        from flows.browse_search import run_search

        search = _run(run_search, dataset, run, **given(device=device), progress=err_console.is_terminal)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"warning: listening on {host}: anyone who can reach it can browse this dataset")
    console.print(Text.assemble(("browse ", "green"), f"{dataset} at http://{host}:{port}/ (Ctrl+C to stop)"))
    _run(browse, dataset, host=host, port=port, search=search)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_cmd)
    app.command("verify")(verify_cmd)
    app.command("takedown")(takedown_cmd)
    app.command("export")(export_cmd)
    app.command("browse")(browse_cmd)
