"""The one expensive thing every end-to-end test reads: a real crawl of the demo site followed by a real clean.

Session scope, so `test_crawl_clean_demo.py` and `test_takedown_e2e.py` share it; a test that changes the data
works on its own copy (`e2e_lib.copy_run`).
"""

from __future__ import annotations

import pytest

from crawlers.demo import running_demo_site
from crawlers.stage import crawl, read_summary
from data_schemas import Manifest
from pipeline.clean import clean
from tests.e2e.e2e_lib import (
    PipelineRun,
    clean_config,
    crawl_config,
    read_clean,
    read_raw,
    read_rejected,
    truth_by_key,
)


@pytest.fixture(scope="session")
def demo():
    """The default demo site (60 articles, seed 0, mixed photo sizes and formats) on a free loopback port."""
    with running_demo_site(articles=60, seed=0) as site:
        yield site


@pytest.fixture(scope="session")
def e2e_run(demo, tmp_path_factory) -> PipelineRun:
    root = tmp_path_factory.mktemp("e2e")
    raw = crawl(crawl_config(demo, root / "raw"))
    dataset = clean(clean_config(raw, root / "clean"))
    manifest = Manifest.read(dataset)
    return PipelineRun(demo=demo, raw=raw, clean=dataset, summary=read_summary(raw), raw_rows=read_raw(raw),
                       manifest=manifest, rows=read_clean(dataset), rejected=read_rejected(dataset, manifest),
                       truth=truth_by_key(demo))

