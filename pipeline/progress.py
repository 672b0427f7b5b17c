"""Gather Dask futures as they finish, with a rich progress bar (or log lines when not on a terminal)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def gather(client, futures: list, label: str, *, progress: bool = True,
           on_result: Callable[[Any], None] | None = None) -> list:
    """Results in completion order; a task's exception (or one raised by ``on_result``) cancels the rest."""
    from distributed import as_completed
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results = []
    show = progress and sys.stderr.isatty()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   transient=True, disable=not show)
    step = max(1, len(futures) // 10)
    try:
        with bar:
            task = bar.add_task(label, total=len(futures))
            for n, future in enumerate(as_completed(futures), 1):
                result = future.result()
                if on_result is not None:
                    on_result(result)
                results.append(result)
                bar.advance(task)
                if progress and not show and (n % step == 0 or n == len(futures)):
                    log.info("%s: %d/%d", label, n, len(futures))
    except BaseException:
        client.cancel(futures)
        raise
    return results
