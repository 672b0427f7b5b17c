"""Terminal rendering (rich) of the tools' reports; the reports themselves stay plain dataclasses."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pipeline.tools.inspect import InspectReport
from pipeline.tools.report_html import human_bytes
from pipeline.tools.takedown import TakedownResult
from pipeline.tools.verify import VerifyReport

_BAR = 28
_PCT_KEYS = ("min", "p5", "p25", "p50", "p75", "p95", "max", "mean")


def _counts_table(title: str, counts: dict[str, int] | list[tuple[str, int]], total: int | None = None) -> Table:
    items = list(counts.items()) if isinstance(counts, dict) else list(counts)
    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    top = max([v for _, v in items] + [1])
    for label, v in items:
        pct = f" {100 * v / total:5.1f}%" if total else ""
        table.add_row(Text(str(label)), f"{v:,}{pct}", "█" * max(1 if v else 0, round(_BAR * v / top)))
    return table


def _overview(r: InspectReport) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold cyan")
    t.add_column()
    t.add_row("dataset", Text(f"{r.path} ({r.kind.upper()} schema v{r.schema_version})"))
    if r.created_at:
        t.add_row("created", r.created_at)
    t.add_row("shards", f"{len(r.shards):,} files, {human_bytes(r.bytes)}")
    t.add_row("rows", f"{r.rows:,}")
    if r.where:
        t.add_row("where", Text(f"{r.where}  →  {r.matched:,} matching rows"))
    if r.splits:
        t.add_row("splits", Text(", ".join(f"{k} {v:,}" for k, v in r.splits.items())))
    if r.extra.get("takedown"):
        t.add_row("taken down", f"{int(r.extra['takedown']):,} rows (see _takedowns.jsonl)")
    return t


def _distributions(r: InspectReport) -> Table:
    t = Table(title="Distributions", title_justify="left")
    t.add_column("")
    for k in _PCT_KEYS:
        t.add_column(k, justify="right")
    for name, d in (("caption length (chars)", r.caption_length), ("image width (px)", r.width),
                    ("image height (px)", r.height)):
        t.add_row(name, *(f"{d[k]:g}" if k in d else "" for k in _PCT_KEYS))
    return t


def _sample_table(r: InspectReport, width: int) -> Table:
    """A full table on wide terminals; on narrow ones, two columns (what/where, caption) so captions stay legible."""
    t = Table(title=f"Sample ({len(r.sample)} rows)", title_justify="left", show_lines=width < 120)
    cols = list(r.sample[0].keys())
    if width >= 120:
        for c in cols:
            if c == "caption":
                t.add_column(c, overflow="fold", ratio=1)
            else:
                t.add_column(c, overflow="ellipsis", no_wrap=True, max_width=34 if c.endswith("url") else 12)
        for row in r.sample:
            t.add_row(*(Text("" if row[c] is None else str(row[c])) for c in cols))  # Text: data is never markup
        return t
    t.add_column("row", overflow="fold", max_width=max(24, width // 3))
    t.add_column("caption", overflow="fold", ratio=1)
    for row in r.sample:
        short = " · ".join(str(row[c]) for c in cols if c not in ("key", "caption") and not c.endswith("url")
                           and row[c] is not None)
        urls = [str(row[c]) for c in cols if c.endswith("url") and row[c]]
        t.add_row(Text("\n".join([str(row["key"]), short, *urls])), Text(row["caption"] or ""))
    return t


def render_inspect(r: InspectReport, console: Console) -> None:
    parts = [_overview(r)]
    if r.funnel:
        title = "Cleaning funnel (manifest)" if r.funnel_from == "manifest" else "Crawl summary"
        parts.append(_counts_table(title, r.funnel))
    parts.append(_counts_table("Sources", r.per_source, r.matched))
    if r.languages:
        parts.append(_counts_table("Languages", r.languages, r.matched))
    if r.caption_origins:
        parts.append(_counts_table("Caption origins", r.caption_origins, r.matched))
    if r.fetch_errors and set(r.fetch_errors) != {"(none)"}:
        parts.append(_counts_table("Fetch errors", r.fetch_errors, r.matched))
    parts.append(_distributions(r))
    console.print(Panel(Group(*parts), title="mmpipe inspect", expand=False))
    if r.sample:
        console.print(_sample_table(r, console.width))
    for label, path in (("HTML report", r.html), ("contact sheet", r.grid)):
        if path:
            console.print(Text.assemble(("wrote ", "green"), f"{label}: {path}"))


def render_verify(r: VerifyReport, console: Console) -> None:
    for w in r.warnings:
        console.print(Text(f"warning: {w}", style="yellow"))
    for p in r.problems:
        console.print(Text(f"✗ {p}", style="red"))
    summary = (f"{r.shards_checked} shard(s), {r.rows_checked:,} rows, {r.images_decoded:,} images decoded")
    if r.ok:
        console.print(f"[bold green]OK[/]: {summary}; every check passed")
    else:
        console.print(f"[bold red]FAILED[/]: {len(r.problems)} problem(s); checked {summary}")


def render_takedown(r: TakedownResult, console: Console) -> None:
    if r.log is None and not r.dry_run:
        console.print("nothing to do: no interrupted takedown was pending")
        return
    verb = "would remove" if r.dry_run else "removed"
    console.print(f"[bold]{verb} {r.rows_removed} row(s)[/] from {len(r.shards_rewritten)} shard(s)"
                  + (f"; {len(r.shards_removed)} emptied shard(s) deleted" if r.shards_removed else ""))
    for key in r.keys[:50]:
        console.print(f"  {key}")
    if len(r.keys) > 50:
        console.print(f"  … and {len(r.keys) - 50} more (all listed in the takedown log)")
    if r.dry_run:
        console.print(f"dry run: nothing written; {r.blocklist_added} blocklist entries would be added")
        return
    console.print(Text(f"blocklist: {r.blocklist_added} entr(y/ies) appended to {r.blocklist}"))
    if r.log:
        console.print(Text(f"logged in {r.log}"))
