"""A successful clean logs the stage's own lines, not the Dask cluster's start-up and shutdown chatter."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.clean import clean
from pipeline.config import CleanConfig


def test_local_cluster_chatter_stays_out_of_the_log(planted, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    import distributed  # noqa: F401  (its import sets its loggers up; the stage must leave them as found)

    before = logging.getLogger("distributed").level
    clean(CleanConfig(raw=planted.raw, out=tmp_path / "clean", n_workers=1, progress=False))
    dask_lines = [r for r in caplog.records if r.name.startswith("distributed") and r.levelno < logging.WARNING]
    assert not dask_lines, [f"{r.name}: {r.getMessage()}" for r in dask_lines[:5]]
    assert any(r.name.startswith("pipeline") for r in caplog.records)  # the stage's own lines still come through
    assert logging.getLogger("distributed").level == before  # the caller's logging is left as it was
