"""The `mmpipe` subcommands, one module per stage.

A command's options are named after the stage config's fields and default to None, "not given": only options the
user gave override the config (or its YAML), so each default lives in the stage's config alone.
"""

from __future__ import annotations

from typing import Any


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave (None: not given, the config's value stands)."""
    return {k: v for k, v in options.items() if v is not None}


def renamed_option(old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """The value of an option given under its old name (still accepted), with a warning naming the new one."""
    if old_value is None:
        return new_value
    from rich.console import Console

    Console(stderr=True).print(f"[yellow]warning:[/yellow] {old} is deprecated; use {new}", highlight=False)
    return old_value if new_value is None else new_value
