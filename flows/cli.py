"""The `mmpipe` command line.

Each stage's commands live in ``flows/commands/<stage>.py`` and import their stage only inside the command body,
so `mmpipe --help` stays fast and a broken optional dependency of one stage never breaks another's command.
"""

from __future__ import annotations

import importlib
import os

import typer

app = typer.Typer(
    name="mmpipe",
    help="Crawl the web into a clean multimodal dataset and train on it.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)

# Each module exposes `register(app)`; the order here is the order in `mmpipe --help`.
_COMMAND_MODULES = ("crawl", "clean", "train", "tools", "demo", "flow")


def _quiet_defaults() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"flows.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"flows.commands.{name}":
                raise
            continue
        module.register(app)


@app.callback()
def _main() -> None:
    """Crawl the web into a clean multimodal dataset and train on it."""


@app.command("version")
def version() -> None:
    """Print the mmpipe version and the schema versions it reads and writes."""
    from importlib.metadata import version as pkg_version

    from data_schemas import CLEAN_VERSION, MANIFEST_VERSION, RAW_VERSION

    typer.echo(f"mmpipe {pkg_version('mmpipe')} (raw schema {RAW_VERSION}, clean schema {CLEAN_VERSION}, "
               f"manifest {MANIFEST_VERSION})")


_quiet_defaults()
_register_all()

if __name__ == "__main__":
    app()
