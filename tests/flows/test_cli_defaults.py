"""Each default lives in the stage's config alone: a CLI option named after a config field means "not given" by
default, so the config (or its YAML) decides; one name per concept across the CLI, the configs and the flows."""

from __future__ import annotations

import dataclasses

import pytest
import typer
from typer.core import TyperOption

from crawlers.config import CrawlConfig
from crawlers.demo import DemoSiteConfig
from flows.cli import app
from flows.demo import DemoOptions
from pipeline.config import CleanConfig, CurateConfig
from pipeline.tools import ExportConfig
from training.config import EvalConfig, ScoreConfig, TrainConfig

STAGE_CONFIGS = {"crawl": CrawlConfig, "clean": CleanConfig, "curate": CurateConfig, "train": TrainConfig,
                 "score": ScoreConfig, "eval": EvalConfig, "demo": DemoOptions, "export": ExportConfig,
                 "demo-site": DemoSiteConfig}


def _options(command: str) -> list[TyperOption]:
    cmd = typer.main.get_command(app).commands[command]
    return [p for p in cmd.params if isinstance(p, TyperOption) and not p.hidden]


@pytest.mark.parametrize("command", sorted(STAGE_CONFIGS))
def test_stage_options_default_to_not_given_and_the_config_holds_the_default(command: str) -> None:
    fields = {f.name for f in dataclasses.fields(STAGE_CONFIGS[command])}
    mapped = [p for p in _options(command) if p.name in fields]
    assert len(mapped) >= 3, f"{command}: expected its options to be named after {STAGE_CONFIGS[command].__name__}"
    for param in mapped:
        assert param.default is None, f"mmpipe {command} --{param.name.replace('_', '-')} restates a default " \
                                      f"({param.default!r}); default it to None and let the config decide"


def test_one_name_per_concept_between_the_cli_and_the_stage_configs() -> None:
    clean = {p.name for p in _options("clean")}
    crawl = {p.name for p in _options("crawl")}
    assert "n_workers" in clean and "workers" not in clean
    assert "parallel_sources" in crawl and "parallel" not in crawl


def test_the_old_option_names_still_work_and_warn(tmp_path) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["clean", "--raw", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                                      "--workers", "1"])
    output = " ".join(result.output.split())
    assert "--workers is deprecated; use --n-workers" in output
    assert "no such RAW directory" in output  # the run went on with the old name's value


def test_the_crawl_picks_its_sources_under_one_name_in_the_cli_and_the_flow(tmp_path) -> None:
    from typer.testing import CliRunner

    from flows.config import CrawlSection

    assert "only" in {p.name for p in _options("crawl")} and "source" not in {p.name for p in _options("crawl")}
    assert "only" in CrawlSection.model_fields
    config = tmp_path / "sources.yaml"
    config.write_text("out: raw\nsources:\n  - {name: a, kind: news, start_urls: ['http://127.0.0.1:9/']}\n")
    for args, warned in ((["--only", "nope"], False), (["--source", "nope"], True), (["-s", "nope"], True)):
        result = CliRunner().invoke(app, ["crawl", "--config", str(config), *args])
        output = " ".join(result.output.split())
        assert result.exit_code == 1 and "nope" in output, output  # the unknown source is named, nothing crawled
        assert ("--source is deprecated; use --only" in output) is warned, output


# Options whose concept only the CLI has (no function or config holds a default for it).
CLI_ONLY = {("train", "nproc"), ("run", "flow")}


def _commands(group, prefix: str = ""):
    for name, cmd in getattr(group, "commands", {}).items():
        yield from _commands(cmd, f"{prefix}{name} ") if hasattr(cmd, "commands") else [(f"{prefix}{name}", cmd)]


def test_no_command_restates_a_default_that_its_function_or_config_holds() -> None:
    restated = [(name, p.name, p.default) for name, cmd in _commands(typer.main.get_command(app))
                for p in cmd.params if isinstance(p, TyperOption) and not p.hidden and not p.is_flag
                and p.default not in (None, ()) and p.name != "help" and (name, p.name) not in CLI_ONLY]
    assert restated == [], "default these options to None and let the function or config decide"
