"""`mmpipe demo-site`: serve (or export) the local demo news + social site.  The `demo` command lives elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.commands import given


def register(app: typer.Typer) -> None:
    @app.command("demo-site")
    def demo_site(
        port: Annotated[int | None, typer.Option(help="TCP port to listen on (0 picks a free one).")]
        = None,
        articles: Annotated[int | None, typer.Option(min=1, help="Number of news articles (social posts scale with "
                                                                 "it).")] = None,
        seed: Annotated[int | None, typer.Option(help="Seed: the same seed and size always give the same site.")]
        = None,
        host: Annotated[str | None, typer.Option(help="Interface to bind; keep loopback unless you mean it.")] = None,
        photo_size: Annotated[str | None, typer.Option(help="mixed | bench (800-1024 px, ~120 KB JPEG) | small.")]
        = None,
        trouble: Annotated[float | None, typer.Option(min=0.0, help="Scale of every planted trouble amount (0 = "
                                                                    "none).")] = None,
        export: Annotated[Path | None, typer.Option(help="Write the news site as static files to DIR and exit.")]
        = None,
        truth: Annotated[Path | None, typer.Option(help="Write the ground truth as JSON lines to FILE.")] = None,
        base_url: Annotated[str | None, typer.Option(help="Absolute URL prefix for --export / --truth "
                                                          "(default http://HOST:PORT).")] = None,
    ) -> None:
        """Serve the deterministic demo site (news pages, feeds, sitemaps, Mastodon and Bluesky APIs)."""
        from rich.console import Console

        from crawlers.demo import DemoSiteConfig, generate_site
        from crawlers.demo.server import DemoHTTPServer
        from data_schemas import atomic_write_bytes

        console = Console()
        config = DemoSiteConfig(**given(port=port, articles=articles, seed=seed, host=host, photo_size=photo_size,
                                        trouble=trouble))
        host, port, articles, seed = config.host, config.port, config.articles, config.seed
        try:
            site = generate_site(articles, seed, photo_size=config.photo_size, trouble=config.trouble)
        except ValueError as exc:
            console.print(f"[red]demo-site: {exc}[/red]")
            raise typer.Exit(code=1) from exc
        server = None
        if export is None:
            try:
                server = DemoHTTPServer(site, host, port)
            except OSError as exc:
                console.print(f"[red]demo-site: cannot listen on {host}:{port} ({exc.strerror}); "
                              "pick another --port or stop whatever uses it[/red]")
                raise typer.Exit(code=1) from exc
        base = (base_url or (server.base_url if server else f"http://{host}:{port}")).rstrip("/")
        if truth is not None:
            atomic_write_bytes(truth, "".join(t.to_json() + "\n" for t in site.absolute_truth(base)).encode())
            console.print(f"wrote {len(site.truth)} ground-truth rows to [bold]{truth}[/bold]")
        if server is None:
            _export(site, export, base, console)
            return
        kept, total = site.expected_kept(), len(site.truth)
        console.print(f"[green]demo site[/green] serving [bold]{server.base_url}/[/bold]  "
                      f"({articles} articles, seed {seed}, {total} image pairs, {kept} keepable)  Ctrl-C to stop")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("stopped")
        finally:
            server.server_close()


def _export(site, out: Path, base: str, console) -> None:
    from rich.progress import Progress

    from crawlers.demo.export import export_paths, export_site

    total = len(set(export_paths(site)))
    with Progress(console=console) as progress:
        task = progress.add_task("exporting", total=total)
        export_site(site, out, base_url=base, progress=lambda: progress.advance(task))
    console.print(f"[green]exported[/green] {total} URLs to [bold]{out}[/bold] for base {base} "
                  "(see export-map.json and export-headers.json)")
