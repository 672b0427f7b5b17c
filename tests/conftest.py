"""Session-wide test setup: isolated Prefect/Dask state, and the shared fixtures folder."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="mmpipe-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_TMP / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DASK_TEMPORARY_DIRECTORY", str(_SESSION_TMP / "dask"))
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path:
    return Path(os.environ.get("MMPIPE_FIXTURES", REPO.parent / "shared" / "fixtures")).resolve()


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The real saved pages/feeds/images of ../shared/fixtures; a fresh user clone may not have them."""
    path = fixtures_dir()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"MMPIPE_FIXTURES={path} is missing; CI always has ../shared/fixtures")
        pytest.skip(f"real-page fixtures not found at {path}; set MMPIPE_FIXTURES to ../shared/fixtures to run these")
    return path


@pytest.fixture(scope="session")
def dask_address():
    """One real LocalCluster (2 worker processes, 1 thread each) on loopback for the whole session: the stages run
    on it by scheduler address, the other way (besides their own LocalCluster) they are meant to run."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                           host="127.0.0.1", silence_logs=logging.WARNING)
    yield cluster.scheduler_address
    cluster.close()
