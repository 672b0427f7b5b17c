"""`mmpipe run`, `mmpipe serve`, `mmpipe demo`: the Prefect flows from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    crawl_cron: Annotated[str, typer.Option(help="Cron of the daily crawl+clean ('' = none).")] = DAILY_CRAWL,
    train_cron: Annotated[str, typer.Option(help="Cron of the nightly train+evaluate ('' = none).")] = NIGHTLY_TRAIN,
    timezone: Annotated[str, typer.Option(help="Time zone of the cron schedules (IANA name).")] = "UTC",
    train_pool: Annotated[str | None, typer.Option(help="Register training in this work pool (run it with "
                                                        "`prefect worker start --pool NAME` on a GPU machine) "
                                                        "instead of serving it here.")] = None,
    no_schedules: Annotated[bool, typer.Option("--no-schedules", help="Register without schedules.")] = False,
) -> None:
    """Register the deployments (daily crawl+clean, nightly train, on-demand runs) and serve them until Ctrl-C.

    Uses the Prefect server in PREFECT_API_URL; without one, Prefect starts a local server for this process.
    """
    from flows.config import FlowConfigError
    from flows.deployments import DeploymentError, ServeOptions, serve
    from flows.pipeline import validate_enabled

    cfg = _load(config)
    try:
        validate_enabled(cfg)  # a scheduled run at 2 am should not be the first to find a typo
    except FlowConfigError as exc:
        raise _fail(f"{exc}" + ("" if config else " (no --config given: the default config has no sources)")) from None
    options = ServeOptions(crawl_cron=None if no_schedules else (crawl_cron or None),
                           train_cron=None if no_schedules else (train_cron or None),
                           timezone=timezone, train_pool=train_pool)
    try:
        serve(cfg, options)
    except (DeploymentError, ValueError) as exc:  # ValueError: e.g. an invalid cron expression or time zone
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
