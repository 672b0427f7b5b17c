"""`mmpipe demo`: the whole pipeline on the local demo site, on CPU, in a few minutes.

The demo site (crawlers.demo) serves news articles and social posts with planted trouble (opt-outs, broken images,
duplicates, boilerplate captions ...) on a free loopback port; the flow crawls it, cleans it, trains the tiny
preset and evaluates.  Everything lands in ``<workdir>/data`` and ``<workdir>/runs``.  A second demo in the same
workdir replaces the first demo's output (and only a demo's: a marker file says who wrote it), because the site's
port, and so every URL, changes between runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.config import CleanSection, CrawlSection, EvaluateSection, PipelineConfig, TrainSection

DEMO_MARKER = ".mmpipe-demo"
# `mmpipe serve --demo`: schedules short enough to watch runs happen (a fresh crawl is then *Cached* for
# crawl.fresh_hours, so later crawl runs are quick), and one crawl+clean run right away
DEMO_CRAWL_CRON = "*/5 * * * *"
DEMO_TRAIN_CRON = "*/15 * * * *"
DEMO_RUN_NOW = "crawl-clean-train/daily-crawl-clean"
UI_PORT = 4200  # Prefect's own default


class DemoError(RuntimeError):
    """The demo cannot run here; the message says what to change."""


@dataclass
class DemoOptions:
    workdir: Path = Path(".")
    articles: int = 60
    steps: int = 300  # fewer leave the tiny model's matched-vs-mismatched MLM gap at about zero on 60 articles
    seed: int = 0


@dataclass
class DemoResult:
    result: dict[str, Any]
    seconds: float
    base_url: str
    expected_clean_drops: dict[str, int] = field(default_factory=dict)
    expected_crawl_drops: dict[str, int] = field(default_factory=dict)
    expected_kept: int = 0
    flow_run_id: str | None = None


def demo_config(base_url: str, workdir: Path, *, steps: int) -> PipelineConfig:
    from crawlers.config import demo_sources

    workdir = workdir.resolve()
    sources = demo_sources(base_url)
    return PipelineConfig(
        data_dir=workdir / "data", runs_dir=workdir / "runs",
        crawl=CrawlSection(sources=sources, parallel_sources=len(sources), allow_private=True, retries=1,
                           retry_delay_s=2),  # every demo source at once
        # A larger val split than the default 5%, so retrieval R@k is measured on ~30 pairs, not a handful.
        clean=CleanSection(val_fraction=0.2),
        train=TrainSection(preset="tiny", steps=steps, device="cpu", resume=False, run_name="demo"),
        evaluate=EvaluateSection(),
    )


def prepare_workdir(workdir: Path) -> None:
    """Refuse to touch data a demo did not write; clear a previous demo's output."""
    marker = workdir / "data" / DEMO_MARKER
    targets = [workdir / "data", workdir / "runs"]
    if any(t.exists() for t in targets) and not marker.exists():
        raise DemoError(f"{workdir.resolve()} already has data/ or runs/ that the demo did not write; "
                        "run the demo elsewhere with --workdir DIR")
    for t in targets:
        shutil.rmtree(t, ignore_errors=True)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by `mmpipe demo`; its data/ and runs/ are replaced by the next demo\n")


def quiet_prefect_env() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def run_demo(options: DemoOptions) -> DemoResult:
    """Start the demo site, run `crawl_clean_train` on it, and return the flow's result with the ground truth."""
    from crawlers.demo import running_demo_site

    quiet_prefect_env()
    from flows.pipeline import crawl_clean_train

    prepare_workdir(options.workdir)
    start = time.monotonic()
    with running_demo_site(articles=options.articles, seed=options.seed) as demo:
        config = demo_config(demo.base_url, options.workdir, steps=options.steps)
        state = crawl_clean_train(config, return_state=True)
        if not state.is_completed():
            raise DemoError(f"the demo flow run ended {state.name}: {state.message}")
        result = state.result()
        site = demo.site
        return DemoResult(result=result, seconds=time.monotonic() - start, base_url=demo.base_url,
                          expected_clean_drops=dict(site.expected_clean_drops()),
                          expected_crawl_drops=dict(site.expected_crawl_drops()),
                          expected_kept=int(site.expected_kept()),
                          flow_run_id=str(state.state_details.flow_run_id))


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(api: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"`prefect server start` exited with status {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=5) as resp:  # noqa: S310 - our own loopback URL
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise DemoError(f"the Prefect server did not answer {api}/health within {timeout:.0f} s; see {log}")


@contextmanager
def prefect_api(workdir: Path, *, port: int = UI_PORT) -> Iterator[str]:
    """The Prefect API to register with: PREFECT_API_URL when set, else a `prefect server start` of our own on
    ``port`` (or a free one when it is taken), with the UI, stopped on exit."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        yield configured.rstrip("/")
        return
    port = port if _port_free(port) else _free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = workdir / "prefect-server.log"
    exe = Path(sys.executable).with_name("prefect")
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(exe if exe.exists() else "prefect"), "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(api, proc, log)
        with temporary_settings({PREFECT_API_URL: api}):
            yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve_demo(options: DemoOptions, serve_options: Any, *, ui_port: int = UI_PORT,
               announce: Callable[[str, str], None] | None = None) -> None:
    """`mmpipe serve --demo`: start the demo site (and a Prefect server unless PREFECT_API_URL names one), register
    the deployments against the site with short schedules, start one crawl+clean run now, serve until Ctrl-C."""
    from crawlers.demo import running_demo_site
    from flows.deployments import serve

    quiet_prefect_env()
    prepare_workdir(options.workdir)
    with running_demo_site(articles=options.articles, seed=options.seed) as demo, \
            prefect_api(options.workdir / "data", port=ui_port) as api:
        config = demo_config(demo.base_url, options.workdir, steps=options.steps)
        if announce:
            announce(demo.base_url, api.removesuffix("/api"))
        serve(config, serve_options, run_now=[DEMO_RUN_NOW])
