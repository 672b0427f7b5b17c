"""Shared fixtures for the clean stage: one real Dask cluster for the session, and a RAW set with planted trouble."""

from __future__ import annotations

import logging

import pytest
from clean_planted import Planted, planted_rows
from clean_rawdata import write_raw

from data_schemas import BlockEntry, Blocklist


@pytest.fixture(scope="session")
def dask_address():
    """A real LocalCluster (2 worker processes, 1 thread each) on loopback, shared by the end-to-end tests."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                           host="127.0.0.1", silence_logs=logging.WARNING)
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Planted:
    root = tmp_path_factory.mktemp("planted")
    rows, drops, captions = planted_rows()
    write_raw(root / "raw" / "part-0.parquet", rows[:20], row_group_size=8)
    write_raw(root / "raw" / "part-1.parquet", rows[20:], row_group_size=8)
    blocklist = Blocklist([BlockEntry(kind="domain", value="blocked.example")])
    return Planted(raw=root / "raw", rows=rows, funnel=drops, kept_captions=captions, blocklist=blocklist)
