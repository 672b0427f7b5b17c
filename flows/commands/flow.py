"""`mmpipe run`, `mmpipe serve`, `mmpipe demo`: the Prefect flows from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from flows.commands import given
from flows.deployments import DAILY_CRAWL, NIGHTLY_TRAIN

_FLOW_NAMES = ("crawl-clean-train", "crawl", "clean", "train")


def _fail(message: str) -> typer.Exit:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


def _reason(message: str | None) -> str:
    """Prefect's state message without its 'Flow run encountered an exception: StageFailed:' preamble."""
    text = message or "no message"
    marker = "StageFailed: "
    return text.split(marker, 1)[1] if marker in text else text


def _load(config: Path | None):
    from flows.config import FlowConfigError, PipelineConfig

    if config is None:
        return PipelineConfig()
    try:
        return PipelineConfig.from_yaml(config)
    except FlowConfigError as exc:
        raise _fail(str(exc)) from None


def run_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Pipeline YAML (see configs/flow.example.yaml).")],
    flow: Annotated[str, typer.Option(help=f"Which flow: {', '.join(_FLOW_NAMES)}.")] = "crawl-clean-train",
) -> None:
    """Run the pipeline once (crawl -> clean -> train -> evaluate) as a Prefect flow run, and summarise it."""
    if flow not in _FLOW_NAMES:
        raise _fail(f"--flow {flow!r} is not one of {', '.join(_FLOW_NAMES)}")
    cfg = _load(config)
    from flows.config import FlowConfigError
    from flows.pipeline import FLOWS
    from flows.report import print_summary

    try:
        state = FLOWS[flow](cfg, return_state=True)
    except FlowConfigError as exc:
        raise _fail(str(exc)) from None
    if not state.is_completed():
        raise _fail(f"flow run {state.name.lower()}: {_reason(state.message)}")
    result = state.result()
    print_summary(result if flow in ("crawl-clean-train", "train") else {flow: result, "data_dir": str(cfg.data_dir)})


def serve_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Pipeline YAML the deployments run.")] = None,
    crawl_cron: Annotated[str | None, typer.Option(help=f"Cron of the daily crawl+clean ('' = none; default "
                                                        f"'{DAILY_CRAWL}', with --demo every 5 minutes).")] = None,
    train_cron: Annotated[str | None, typer.Option(help=f"Cron of the nightly train+evaluate ('' = none; default "
                                                        f"'{NIGHTLY_TRAIN}', with --demo every 15 minutes).")] = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone of the cron schedules (IANA name; default UTC).")]
    = None,
    train_pool: Annotated[str | None, typer.Option(help="Register training in this work pool (run it with "
                                                        "`prefect worker start --pool NAME` on a GPU machine) "
                                                        "instead of serving it here.")] = None,
    no_schedules: Annotated[bool, typer.Option("--no-schedules", help="Register without schedules.")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Serve against a local demo site (started here), with a "
                                                      "Prefect server and UI unless PREFECT_API_URL names one; "
                                                      "one crawl+clean run starts at once.")] = False,
    workdir: Annotated[Path | None, typer.Option(help="--demo: where data/ and runs/ go (default: here).")] = None,
    ui_port: Annotated[int | None, typer.Option(help="--demo: port of the Prefect server it starts (a free one when "
                                              "taken; default 4200).")] = None,
    articles: Annotated[int | None, typer.Option(min=4, help="--demo: articles on the demo site.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="--demo: training steps per scheduled training run.")]
    = None,
) -> None:
    """Register the deployments (daily crawl+clean, nightly train, on-demand runs) and serve them until Ctrl-C.

    Uses the Prefect server in PREFECT_API_URL; without one, Prefect starts a local server for this process.
    """
    from flows.config import FlowConfigError
    from flows.deployments import DeploymentError, ServeOptions, serve
    from flows.pipeline import validate_enabled

    if demo:
        from flows.demo import DemoOptions

        _serve_demo(config, DemoOptions(**given(workdir=workdir, articles=articles, steps=steps)), ui_port=ui_port,
                    timezone=timezone, no_schedules=no_schedules, crawl_cron=crawl_cron, train_cron=train_cron)
        return
    crawl_cron = DAILY_CRAWL if crawl_cron is None else crawl_cron
    train_cron = NIGHTLY_TRAIN if train_cron is None else train_cron
    cfg = _load(config)
    try:
        validate_enabled(cfg)  # a scheduled run at 2 am should not be the first to find a typo
    except FlowConfigError as exc:
        raise _fail(f"{exc}" + ("" if config else " (no --config given: the default config has no sources)")) from None
    options = ServeOptions(crawl_cron=None if no_schedules else (crawl_cron or None),
                           train_cron=None if no_schedules else (train_cron or None),
                           train_pool=train_pool, **given(timezone=timezone))
    try:
        serve(cfg, options)
    except (DeploymentError, ValueError) as exc:  # ValueError: e.g. an invalid cron expression or time zone
        raise _fail(str(exc)) from None


def _serve_demo(config: Path | None, demo: Any, *, ui_port: int | None, timezone: str | None, no_schedules: bool,
                crawl_cron: str | None, train_cron: str | None) -> None:
    from rich.console import Console

    from flows.demo import DEMO_CRAWL_CRON, DEMO_TRAIN_CRON, DemoError, serve_demo
    from flows.deployments import DeploymentError, ServeOptions

    if config is not None:
        raise _fail("--demo builds its own config against the demo site; drop --config")
    console = Console()
    crawl = DEMO_CRAWL_CRON if crawl_cron is None else crawl_cron
    train = DEMO_TRAIN_CRON if train_cron is None else train_cron
    options = ServeOptions(crawl_cron=None if no_schedules else (crawl or None),
                           train_cron=None if no_schedules else (train or None), **given(timezone=timezone))

    def announce(site: str, ui: str) -> None:
        console.print(f"[green]demo site[/green] {site}; [green]Prefect UI[/green] [bold]{ui}[/bold] "
                      f"(Deployments, Runs); crawl+clean '{options.crawl_cron}', train '{options.train_cron}', "
                      "one crawl+clean run now.  Ctrl-C stops.", highlight=False, soft_wrap=True)

    try:
        serve_demo(demo, options, announce=announce, **given(ui_port=ui_port))
    except (DemoError, DeploymentError, ValueError) as exc:
        raise _fail(str(exc)) from None


def demo_cmd(
    workdir: Annotated[Path | None, typer.Option(help="Where data/ and runs/ go (default: here).")] = None,
    articles: Annotated[int | None, typer.Option(min=4, help="Articles on the demo site.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps (tiny preset, CPU).")] = None,
    seed: Annotated[int | None, typer.Option(help="Demo site seed.")] = None,
) -> None:
    """The whole pipeline on a local demo site: crawl, clean, train (tiny, CPU), evaluate, in a few minutes."""
    from rich.console import Console

    from flows.demo import DemoError, DemoOptions, run_demo
    from flows.report import print_summary

    console = Console()
    options = DemoOptions(**given(workdir=workdir, articles=articles, steps=steps, seed=seed))
    workdir = options.workdir
    console.print(f"[bold]mmpipe demo[/bold]: {options.articles} articles, {options.steps} training steps, output "
                  f"in [cyan]{workdir.resolve()}[/cyan]")
    try:
        demo = run_demo(options)
    except DemoError as exc:
        raise _fail(str(exc)) from None
    console.rule("[bold]Summary")
    print_summary(demo.result, console=console, next_steps=False)
    kept = demo.result.get("clean", {}).get("rows_out")
    console.print(f"Ground truth: {demo.expected_kept} pairs should be kept (pipeline kept {kept}); "
                  f"demo site was {demo.base_url}")
    console.print(f"[bold green]Done in {demo.seconds:.0f} s.[/bold green] Data: [cyan]{workdir / 'data'}[/cyan]  "
                  f"Runs: [cyan]{workdir / 'runs'}[/cyan]")
    from flows.report import print_next_steps

    print_next_steps(demo.result, console=console)


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("serve")(serve_cmd)
    app.command("demo")(demo_cmd)
