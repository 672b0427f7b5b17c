"""`mmpipe crawl`: run the crawl stage (crawlers.stage.crawl) and print its summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.commands import given, renamed_option

console = Console()


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="crawl summary", show_lines=False)
    for col in ("source", "pages", "images", "MB", "rows", "drops", "errors", "seconds"):
        table.add_column(col, justify="left" if col in ("source", "drops", "errors") else "right")

    def fmt(d: dict[str, int]) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(d.items())) or "-"

    rows = list(summary.get("per_source", {}).items()) + [("TOTAL", summary.get("overall", {}))]
    for name, s in rows:
        table.add_row(name, str(s.get("pages", 0) + s.get("posts", 0)), str(s.get("images", 0)),
                      f"{s.get('image_bytes', 0) / 1e6:.1f}", str(s.get("rows", 0)), fmt(s.get("drops", {})),
                      fmt(s.get("errors", {})), f"{s.get('duration_s') or 0:.1f}")
    return table


def crawl_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="sources YAML (see configs/sources.example.yaml)",
                                         exists=False)],
    out: Annotated[str | None, typer.Option("--out", "-o", help="output dir or URL for RAW Parquet (default: `out:`)")]
    = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="crawl only this source (repeatable; the flow's "
                                                   "crawl.only)")] = None,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", hidden=True, help="deprecated name of --only")]
    = None,
    allow_private: Annotated[bool | None, typer.Option("--allow-private", help="allow private/loopback addresses")]
    = None,
    parallel_sources: Annotated[int | None, typer.Option(help="source processes at once")] = None,
    parallel: Annotated[int | None, typer.Option(hidden=True, help="deprecated name of --parallel-sources")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Running Dask scheduler, tcp://host:8786: each source's "
                                                  "shards (`processes`) run as tasks on its workers, which must "
                                                  "share the output directory.")] = None,
) -> None:
    """Crawl the configured news/social sources into RAW Parquet files (resumable, incremental)."""
    from crawlers.config import ConfigError, CrawlConfig
    from crawlers.stage import CrawlError, crawl, read_summary

    overrides = given(out=out, allow_private=allow_private,
                      parallel_sources=renamed_option("--parallel", "--parallel-sources", parallel, parallel_sources))
    try:
        cfg = CrawlConfig.from_yaml(config, **overrides).select(renamed_option("--source", "--only", source, only))
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None

    last: dict[str, float] = {}

    def progress(name: str, data: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last.get(name, 0.0) < 5:
            return
        last[name] = now
        console.print(f"[dim]{name}[/dim] pages={data.get('pages', 0) + data.get('posts', 0)} "
                      f"images={data.get('images', 0)} MB={data.get('image_bytes', 0) / 1e6:.1f} "
                      f"rows={data.get('rows', 0)}")

    console.print(f"crawling {len(cfg.sources)} source(s) into [bold]{cfg.out}[/bold]")
    try:
        out_dir = crawl(cfg, progress=progress, scheduler=scheduler)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None
    except CrawlError as exc:
        console.print(f"[red]error:[/red] {exc}")
        console.print("re-run the same command to resume; finished pages are not fetched again")
        raise typer.Exit(code=1) from None
    console.print(summary_table(read_summary(out_dir)))
    console.print(f"RAW Parquet and crawl_summary.json in [bold]{out_dir}[/bold]")


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl_command)
