"""Discovery beyond the configured URLs: robots.txt Sitemap: lines for news sources, Bluesky custom feeds."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from crawlers.config import SourceConfig
from crawlers.demo.plan_social import feed_generators
from crawlers.stage import crawl_source
from tests.crawlers.crawl_testlib import article_html, fast_config, jpeg, raw_rows

pytestmark = pytest.mark.slow

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def _sitemap_site(site, *, robots_sitemap: bool = True) -> None:
    """Home links to a0 only; s0 and s1 are listed only in a news sitemap, reached from a sitemap index that only
    robots.txt names (relative URL, as some sites write it)."""
    robots = "User-agent: *\nDisallow: /private/\n" + ("Sitemap: /sitemaps/index.xml\n" if robots_sitemap else "")
    site.add("/robots.txt", robots, "text/plain")
    for name in ("a0", "s0", "s1"):
        site.add(f"/img/{name}.jpg", jpeg(len(name) + ord(name[1])), "image/jpeg")
        site.add(f"/news/{name}.html", article_html(f"Story {name}", [(f"/img/{name}.jpg", f"Photo of {name}")]))
    site.add("/", "<html><body><a href='/news/a0.html'>a0</a></body></html>")
    site.add("/sitemaps/index.xml", f"<?xml version='1.0'?><sitemapindex xmlns='{SITEMAP_NS}'><sitemap><loc>"
             f"{site.base}/sitemaps/news.xml</loc></sitemap></sitemapindex>", "application/xml")
    urls = "".join(f"<url><loc>{site.base}/news/{n}.html</loc></url>" for n in ("s0", "s1"))
    site.add("/sitemaps/news.xml", f"<?xml version='1.0'?><urlset xmlns='{SITEMAP_NS}'>{urls}</urlset>",
             "application/xml")


def _source(site, **kw) -> SourceConfig:
    kw = {"max_depth": 1, **kw}
    return SourceConfig(name="local", kind="news", start_urls=[site.base + "/"], page_text=False, **kw)


def _pages(out) -> set[str]:
    return {r["page_url"].rsplit("/", 1)[1] for r in raw_rows(out)}


def test_robots_sitemaps_reach_articles_only_listed_there(local_site, tmp_path):
    site = local_site
    _sitemap_site(site)
    summary = crawl_source(fast_config([_source(site)], tmp_path / "raw"), "local")
    assert _pages(tmp_path / "raw") == {"a0.html", "s0.html", "s1.html"}
    assert summary["pages"] == 3 and summary["rows"] == 3
    assert site.count("/robots.txt") == 1, "robots.txt must be fetched once per host (shared with the middleware)"
    assert site.count("/sitemaps/news.xml") == 1

    # the same site without asking robots.txt for sitemaps: only the linked article
    off = crawl_source(fast_config([_source(site, sitemaps_from_robots=False)], tmp_path / "off"), "local")
    assert _pages(tmp_path / "off") == {"a0.html"} and off["pages"] == 1
    assert site.count("/sitemaps/news.xml") == 1

    # robots.txt not obeyed (the operator's own site): the spider downloads it itself, for its Sitemap: lines only
    free = crawl_source(fast_config([_source(site, max_depth=0, ignore_robots=["127.0.0.1"])], tmp_path / "free"),
                        "local")
    assert free["ignore_robots"] == ["127.0.0.1"] and free["robots"]["ignored"] >= 4  # requests not checked
    assert _pages(tmp_path / "free") == {"s0.html", "s1.html"} and free["pages"] == 2
    assert site.count("/robots.txt") == 3


def test_configured_sitemaps_are_not_widened_by_robots(local_site, tmp_path):
    site = local_site
    _sitemap_site(site)
    site.add("/mine.xml", f"<?xml version='1.0'?><urlset xmlns='{SITEMAP_NS}'><url><loc>{site.base}/news/s0.html"
             "</loc></url></urlset>", "application/xml")
    source = _source(site, sitemaps=[site.base + "/mine.xml"], max_depth=0)
    summary = crawl_source(fast_config([source], tmp_path / "raw"), "local")
    assert _pages(tmp_path / "raw") == {"s0.html"} and summary["pages"] == 1
    assert site.count("/sitemaps/index.xml") == 0


def test_demo_bluesky_get_feed_pages_with_a_cursor(demo):
    (uri, posts), = feed_generators(demo.site.plan).items()
    status, _, body = demo.site.response(f"/xrpc/app.bsky.feed.getFeed?feed={uri}&limit=5", base_url=demo.base_url)
    page = json.loads(body)
    assert status == 200 and [v["post"]["uri"] for v in page["feed"]] == [p.uri for p in posts[:5]]
    status, _, body = demo.site.response(f"/xrpc/app.bsky.feed.getFeed?feed={uri}&limit=5&cursor={page['cursor']}",
                                         base_url=demo.base_url)
    assert [v["post"]["uri"] for v in json.loads(body)["feed"]] == [p.uri for p in posts[5:10]]
    assert demo.site.response("/xrpc/app.bsky.feed.getFeed?feed=at://did:plc:x/app.bsky.feed.generator/nope")[0] == 400
    assert demo.site.response("/xrpc/app.bsky.feed.getFeed")[0] == 400


def test_bluesky_custom_feed_reaches_exactly_the_bluesky_pairs(demo, tmp_path):
    (uri, posts), = feed_generators(demo.site.plan).items()
    source = SourceConfig(name="demo-bluesky", kind="bluesky", appview=demo.base_url, feeds=[uri],
                          web_base=f"{demo.base_url}/bsky", page_limit=7)
    before = demo.requests
    summary = crawl_source(fast_config([source], tmp_path / "raw"), "demo-bluesky")
    calls = [p for p in demo.requests - before if p.startswith("/xrpc/app.bsky.feed.getFeed")]
    assert len(calls) == math.ceil(len(posts) / 7) > 1 and sum("cursor=" in c for c in calls) == len(calls) - 1

    truth = {(t.page_url, t.image_url): t for t in demo.truth if t.source_kind == "bluesky" and t.stage != "crawl"}
    rows = {(r["page_url"], r["image_url"]): r for r in raw_rows(tmp_path / "raw")}
    assert set(rows) == set(truth)
    for key, t in truth.items():
        assert tuple((c["text"], c["origin"]) for c in rows[key]["caption_candidates"]) == t.caption_candidates
        assert rows[key]["source"] == t.source
    dropped = Counter(t.reason for t in demo.truth if t.source_kind == "bluesky" and t.stage == "crawl")
    assert summary["drops"] == dict(dropped) and summary["rows"] == len(truth)
