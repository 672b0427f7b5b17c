"""Shared fixtures for the training tests: small synthetic CLEAN datasets, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.synthetic import SyntheticSpec, write_synthetic_clean


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    """480 96-px pictures of coloured shapes with exact captions: 320 train (13 row groups), 160 val."""
    return write_synthetic_clean(tmp_path_factory.mktemp("shapes"), SyntheticSpec(rows=480, val_fraction=1 / 3,
                                                                                   seed=1))


@pytest.fixture(scope="session")
def few_groups_data(tmp_path_factory) -> Path:
    """96 train rows in only 3 row groups (fewer than 2 ranks x 2 workers), 24 val rows."""
    spec = SyntheticSpec(rows=120, val_fraction=0.2, rows_per_shard=60, row_group_size=50, seed=2)
    return write_synthetic_clean(tmp_path_factory.mktemp("few_groups"), spec)


@pytest.fixture(scope="session")
def corrupt_data(tmp_path_factory) -> Path:
    """Like shapes_data but smaller, and 6 train rows carry truncated or non-image bytes."""
    spec = SyntheticSpec(rows=100, corrupt=6, rows_per_shard=40, row_group_size=10, seed=3)
    return write_synthetic_clean(tmp_path_factory.mktemp("corrupt"), spec)
