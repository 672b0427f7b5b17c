"""Shared fixtures for the clean stage: a RAW set with planted trouble (the Dask cluster is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from data_schemas import BlockEntry, Blocklist
from tests.pipeline.clean_planted import Planted, planted_rows
from tests.pipeline.clean_rawdata import write_raw


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Planted:
    root = tmp_path_factory.mktemp("planted")
    rows, drops, captions = planted_rows()
    write_raw(root / "raw" / "part-0.parquet", rows[:20], row_group_size=8)
    write_raw(root / "raw" / "part-1.parquet", rows[20:], row_group_size=8)
    blocklist = Blocklist([BlockEntry(kind="domain", value="blocked.example")])
    return Planted(raw=root / "raw", rows=rows, funnel=drops, kept_captions=captions, blocklist=blocklist)
