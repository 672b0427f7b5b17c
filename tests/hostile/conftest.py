"""The hostile site, one crawl of all of it (every source at once), and one clean of that crawl's RAW files."""

from __future__ import annotations

import pytest

from crawlers.config import CrawlConfig, SourceConfig
from tests.hostile.hostile_site import (
    API_PAGE_LIMIT,
    DISCOVERY_LIMIT,
    DOWNLOAD_TIMEOUT,
    FEED_PAGES,
    MAX_IMAGE_BYTES,
    MAX_PAGE_BYTES,
    ROBOTS_HOSTS,
    SITEMAP_DEPTH,
    STALE_LIMIT,
    HostileSite,
    build,
)

HOSTS = ("main", "b", "api", *ROBOTS_HOSTS)


@pytest.fixture(scope="session")
def hostile():
    site = HostileSite()
    site.start(*HOSTS)
    build(site)
    yield site
    site.stop()


def hostile_sources(site: HostileSite) -> list[SourceConfig]:
    main = site.base["main"]
    return [
        SourceConfig(name="hostile-news", kind="news", sitemaps=[f"{main}/sm/chain-0.xml"],
                     start_urls=[f"{site.base[h]}/" for h in ("main", *ROBOTS_HOSTS)], max_depth=2, page_text=False,
                     max_sitemap_depth=SITEMAP_DEPTH),
        SourceConfig(name="hostile-discovery", kind="news", sitemaps=[f"{main}/sm2/t-0.xml"], max_sitemap_depth=None,
                     max_discovery=DISCOVERY_LIMIT),
        SourceConfig(name="hostile-feed", kind="news", feeds=[f"{main}/feed-100k.xml"], max_pages=FEED_PAGES,
                     page_text=False),
        SourceConfig(name="hostile-loop", kind="mastodon", instance=site.base["api"], hashtags=["loop"],
                     max_stale_pages=STALE_LIMIT),
        SourceConfig(name="hostile-fresh", kind="mastodon", instance=site.base["api"], hashtags=["fresh"],
                     max_api_pages=API_PAGE_LIMIT),
    ]


def hostile_config(sources: list[SourceConfig], out) -> CrawlConfig:
    """Small limits and timeouts (test settings, not product defaults): every cut comes within seconds.  Loopback
    127.0.0.1 is allowed by network, not by `allow_private`, so a redirect to 127.0.0.2 must be refused."""
    return CrawlConfig(sources=sources, out=out, private_networks=["127.0.0.1/32"], autothrottle=False,
                       per_domain_concurrency=16, parallel_sources=5, rows_per_file=40, backoff_base=0.2,
                       max_image_bytes=MAX_IMAGE_BYTES, max_page_bytes=MAX_PAGE_BYTES,
                       download_timeout=DOWNLOAD_TIMEOUT, retry_times=1, max_retry_after=30)


@pytest.fixture(scope="session")
def make_hostile_config():
    """`hostile_config` for tests that crawl their own sources (a test module cannot import a conftest by name:
    every test folder has one, and the first imported wins)."""
    return hostile_config


@pytest.fixture(scope="session")
def hostile_crawl(hostile, tmp_path_factory):
    """(config, {source: summary}) of one crawl of the whole hostile site."""
    from crawlers.stage import crawl, read_summary

    config = hostile_config(hostile_sources(hostile), tmp_path_factory.mktemp("hostile") / "raw")
    crawl(config)
    return config, read_summary(config.out)["per_source"]


@pytest.fixture(scope="session")
def hostile_clean(hostile_crawl, dask_address):
    from data_schemas import Manifest
    from pipeline.clean import clean
    from pipeline.config import CleanConfig

    config, _ = hostile_crawl
    out = clean(CleanConfig(raw=config.out, out=config.out.parent / "clean", scheduler=dask_address,
                            write_rejected=True, progress=False))
    return out, Manifest.read(out)
