"""Fixtures of the crawl tests: a running demo site, one full crawl of it, and a scriptable local site."""

from __future__ import annotations

import pytest

from crawlers.config import CrawlConfig, demo_sources
from crawlers.demo import running_demo_site
from tests.crawlers.crawl_testlib import LocalSite, fast_config


@pytest.fixture(scope="session")
def demo():
    with running_demo_site(articles=60, seed=0, photo_size="small") as site:
        yield site


@pytest.fixture(scope="module")
def own_demo():
    """A demo site of one test module's own: its one-shot troubles (a 429 and a 500, once each) stay unspent on
    the shared site, whose full crawl (`demo_crawl`) counts them."""
    with running_demo_site(articles=60, seed=0, photo_size="small") as site:
        yield site


@pytest.fixture(scope="session")
def demo_config(demo, tmp_path_factory) -> CrawlConfig:
    return fast_config(demo_sources(demo.base_url), tmp_path_factory.mktemp("demo-raw"))


@pytest.fixture(scope="session")
def demo_crawl(demo, demo_config):
    """One full crawl of the demo site; returns (out, requests the crawl made)."""
    from crawlers.stage import crawl

    before = demo.requests
    out = crawl(demo_config)
    return out, demo.requests - before


@pytest.fixture
def local_site():
    site = LocalSite()
    site.thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()
