"""A source's wall-clock limit against a slow server, and the private-address refusal against names that resolve
(or rebind) to loopback through a test DNS resolver."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from crawlers.config import SourceConfig
from crawlers.middlewares import PRIVATE_ADDRESS, PRIVATE_CONNECTED
from crawlers.stage import crawl_source
from tests.crawlers.crawl_testlib import article_html, fast_config, jpeg, raw_rows

pytestmark = pytest.mark.slow

MAX_SECONDS = 4.0
GRACE = 1.5  # closing: flushing the last file, the spider_closed handlers


def _site(site, *, fast: int, slow: int = 0, release: threading.Event | None = None) -> None:
    """Articles f0.. answer at once; s0.. only when `release` is set (at most after 25 s)."""
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    site.add("/img/shared.jpg", jpeg(9), "image/jpeg")
    names = [f"f{i}" for i in range(fast)] + [f"s{i}" for i in range(slow)]
    for i, name in enumerate(names):
        site.add(f"/img/{name}.jpg", jpeg(i), "image/jpeg")
        site.add(f"/news/{name}.html", article_html(f"Story {name}", [(f"/img/{name}.jpg", f"Photo of tower {i}"),
                                                                      ("/img/shared.jpg", "The shared harbour")]))
        if name.startswith("s") and release is not None:
            site.routes[f"/news/{name}.html"] = _held(site.routes[f"/news/{name}.html"], release)
    site.add("/", "<html><body>" + "".join(f"<a href='/news/{n}.html'>{n}</a>" for n in names) + "</body></html>")


def _held(route, release: threading.Event):
    def answer(n):
        release.wait(25)
        return route(n)
    return answer


def _source(base: str, **kw) -> SourceConfig:
    return SourceConfig(name="local", kind="news", start_urls=[base + "/"], max_depth=1, page_text=False, **kw)


@pytest.mark.parametrize("transport", ["aiohttp", "twisted"])
def test_max_seconds_stops_on_time_and_keeps_what_was_fetched(local_site, tmp_path, transport):
    release = threading.Event()
    _site(local_site, fast=3, slow=4, release=release)
    config = fast_config([_source(local_site.base, max_seconds=MAX_SECONDS)], tmp_path / "raw", transport=transport)
    try:
        started = time.monotonic()
        summary = crawl_source(config, "local")
        wall = time.monotonic() - started
    finally:
        release.set()
    assert summary["finish_reason"] == "closespider_timeout" and summary["status"] == "ok"
    assert summary["limit_hit"] and summary["limits_hit"] == ["max_seconds"]
    assert summary["duration_s"] <= MAX_SECONDS + GRACE, "in-flight downloads held the close past max_seconds"
    assert wall <= MAX_SECONDS + GRACE + 10  # + starting the source process
    # the held pages were cut at the deadline: stopped, not errors, and not retried
    assert summary["stopped_at_limit"] == 4 and summary["errors"] == {}
    assert all(local_site.count(f"/news/s{i}.html") == 1 for i in range(4))
    # what was fetched before the deadline is on disk, and its pages are done
    rows = raw_rows(config.out)
    assert {r["page_url"].rsplit("/", 1)[1] for r in rows} == {"f0.html", "f1.html", "f2.html"}
    assert summary["rows"] == len(rows) == 6 and summary["pages"] == 3

    # the next run, without the limit, fetches only the rest
    config.sources[0].max_seconds = None
    again = crawl_source(config, "local")
    assert again["pages"] == 4 and again["pages_skipped_seen"] == 3 and again["limits_hit"] == []
    assert all(local_site.count(f"/news/f{i}.html") == 1 for i in range(3))
    assert len({r["id"] for r in raw_rows(config.out)}) == len(raw_rows(config.out)) == 14


@pytest.fixture
def table_dns(monkeypatch):
    """The source process loads `crawl_resolvers.TableResolver` (pinned.test, multi.test, rebind.test)."""
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    return {"TWISTED_DNS_RESOLVER": "crawl_resolvers.TableResolver"}


def test_a_name_with_any_private_address_is_refused_before_connecting(local_site, tmp_path, table_dns):
    _site(local_site, fast=2)
    port = local_site.server.server_address[1]
    source = SourceConfig(name="local", kind="news", start_urls=[f"http://pinned.test:{port}/",
                                                                 f"http://multi.test:{port}/"])
    config = fast_config([source], tmp_path / "raw", allow_private=False, scrapy_settings=table_dns)
    summary = crawl_source(config, "local")
    assert dict(local_site.hits) == {}, "a name with a loopback A record was connected to"
    # each host's start page and its robots.txt (asked for Sitemap: lines) are refused
    assert summary["errors"] == {PRIVATE_ADDRESS: 4} and summary["rows"] == 0


@pytest.mark.parametrize("transport", ["aiohttp", "twisted"])
def test_a_rebound_name_is_dropped_after_connecting(local_site, tmp_path, table_dns, transport):
    """Both transports resolve through the reactor's resolver: the rebinding reaches the connection either way."""
    _site(local_site, fast=2)
    port = local_site.server.server_address[1]
    source = SourceConfig(name="local", kind="news", start_urls=[f"http://rebind.test:{port}/"], max_depth=1)
    config = fast_config([source], tmp_path / "raw", allow_private=False, scrapy_settings=table_dns,
                         transport=transport)
    summary = crawl_source(config, "local")
    assert local_site.count("/") == 1, "the rebinding never reached the connection: nothing was tested"
    # the home page and the spider's robots.txt request (the middleware's own robots.txt fetch was dropped too)
    assert summary["errors"] == {PRIVATE_CONNECTED: 2}
    assert summary["rows"] == 0 and summary["pages"] == 0 and summary["listing_pages"] == 0
    assert not [p for p in local_site.hits if p.startswith(("/news/", "/img/"))], "a dropped page was followed"
    # the same crawl with private addresses allowed reads the site through the same resolver
    allowed = fast_config([source], tmp_path / "ok", allow_private=True, scrapy_settings=table_dns,
                          transport=transport)
    assert crawl_source(allowed, "local")["rows"] == 4


def test_max_seconds_does_not_wait_out_download_delays(local_site, tmp_path):
    """At the deadline, requests queued behind DOWNLOAD_DELAY are given up at once, not sent one per delay."""
    _site(local_site, fast=30)
    config = fast_config([_source(local_site.base, max_seconds=3.0)], tmp_path / "raw", download_delay=1.0)
    summary = crawl_source(config, "local")
    assert summary["finish_reason"] == "closespider_timeout" and summary["duration_s"] <= 3.0 + GRACE
    assert summary["stopped_at_limit"] > 10 and summary["errors"] == {}
