"""Fixtures for the tools' tests: a CLEAN dataset (fresh copy per test) and a RAW crawl directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tools.tools_data import Built, build_clean, build_raw


@pytest.fixture(scope="session")
def _clean_template(tmp_path_factory) -> Built:
    return build_clean(tmp_path_factory.mktemp("clean-template") / "ds")


@pytest.fixture
def clean_ds(_clean_template: Built, tmp_path: Path) -> Built:
    """A private copy per test, so tests that damage or change the dataset do not affect each other."""
    dest = tmp_path / "ds"
    shutil.copytree(_clean_template.path, dest)
    return Built(dest, _clean_template.rows, _clean_template.shards)


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("raw")
    return root, build_raw(root)
