"""Every input of the hostile site gets its drop reason or error kind, bounded in time, and nothing else is lost.

One crawl of the whole site (five sources at once, `conftest.hostile_crawl`) and one clean of its RAW files; each
test reads its part.  What each input is and what it must get is in the tables of `hostile_site.py`.
"""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq

from crawlers.stage import crawl_source
from tests.crawlers.crawl_testlib import raw_rows
from tests.hostile.hostile_site import (
    API_PAGE_LIMIT,
    DISCOVERY_LIMIT,
    FEED_ITEMS,
    FEED_PAGES,
    IMAGE_CASES,
    PAGE_CASES,
    REFUSED_IMAGE,
    SITEMAP_DEPTH,
    STALE_LIMIT,
    SVG_IMAGE,
)


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _rows(config, source: str) -> list[dict]:
    return [r for r in raw_rows(config.out, with_bytes=True) if r["source"] == source]


def test_every_hostile_image_gets_its_fetch_error(hostile, hostile_crawl):
    config, summary = hostile_crawl
    rows = {_path(r["image_url"]): r for r in _rows(config, "hostile-news") if r["page_url"].endswith("/images.html")}
    assert set(rows) == {c.path for c in IMAGE_CASES}, "one RAW row per fetched image, no more, no less"
    for case in IMAGE_CASES:
        row = rows[case.path]
        assert row["fetch_error"] == case.fetch_error, (case.path, case.what, row["fetch_error"])
        assert (row["image_bytes"] is not None) == (case.fetch_error is None), case.path
    assert hostile.hits[("main", SVG_IMAGE)] == 0, "vector graphics are not image candidates"
    errors = summary["hostile-news"]["errors"]
    expected = Counter(f"image_{c.fetch_error}" for c in IMAGE_CASES if c.fetch_error)
    assert {k: errors.get(k, 0) for k in expected} == dict(expected)
    # the cuts came early: 60 MB images stopped at 1 MB, timeouts after their 1.5 s (+1 retry), loops at 20 hops
    assert hostile.hits[("main", "/img/drip.jpg")] == hostile.hits[("main", "/img/silent.jpg")] == 2
    assert hostile.hits[("main", "/img/redirect-loop.jpg")] == 21
    assert hostile.hits[("main", "/img/burst-429.jpg")] == 3 and hostile.hits[("main", "/img/odd-retry.jpg")] == 3
    assert summary["hostile-news"]["backoff"]["429"] >= 2 and summary["hostile-news"]["duration_s"] < 30


def test_a_redirect_to_another_loopback_address_is_refused_before_connecting(hostile, hostile_crawl):
    _, summary = hostile_crawl
    assert summary["hostile-news"]["errors"]["private_address"] == 2  # the image and the page that redirect
    assert hostile.count("other") == 0, "127.0.0.2 is outside private_networks: it must never be connected to"
    assert REFUSED_IMAGE not in {_path(r["image_url"]) for r in raw_rows(hostile_crawl[0].out)}


def test_clean_drops_each_hostile_image_with_its_reason(hostile_clean):
    out, manifest = hostile_clean
    reasons = {}
    for name in manifest.extra["rejected"]:
        table = pq.read_table(out / name)
        if "image_url" in table.column_names:
            reasons.update({_path(u): r for u, r in zip(table.column("image_url").to_pylist(),
                                                        table.column("reason").to_pylist(), strict=True)})
    kept = {_path(u) for s in manifest.shards for u in pq.read_table(out / s.name, columns=["image_url"])
            .column("image_url").to_pylist()}
    for case in IMAGE_CASES:
        if case.clean is None:
            assert case.path in kept, (case.path, reasons.get(case.path))
        else:
            assert reasons.get(case.path) == case.clean, (case.path, case.what)
    assert manifest.rows_in == sum(manifest.drops.values()) + manifest.rows_out


def test_hostile_pages_get_their_error_kind_and_the_readable_ones_their_rows(hostile, hostile_crawl):
    config, summary = hostile_crawl
    errors = summary["hostile-news"]["errors"]
    expected = Counter(c.error for c in PAGE_CASES if c.error and c.error != "private_address")
    assert {k: errors.get(k, 0) for k in expected} == dict(expected)
    assert "spider_exception" not in errors
    by_page = Counter(_path(r["page_url"]) for r in _rows(config, "hostile-news"))
    assert by_page["/p/busy.html"] == 1 and hostile.hits[("main", "/p/busy.html")] == 3  # 503, 503, 200
    [utf8] = [r for r in _rows(config, "hostile-news") if r["page_url"].endswith("/bad-utf8.html")]
    caption = next(c["text"] for c in utf8["caption_candidates"] if c["origin"] == "figcaption")
    assert caption.startswith("Caf\u00e9 de la Paix at noon") and "\ufffd" in caption  # decoded, not lost
    # 100,000 nested <div>s: read without a crash or a lost neighbour (its figure sits past libxml2's depth limit)
    assert hostile.hits[("main", "/p/deep.html")] == 1 and summary["hostile-news"]["status"] == "ok"
    assert hostile.hits[("main", "/p/loop-b.html")] == 1 and hostile.hits[("main", "/p/loop.html")] == 1


def test_robots_txt_unreachable_means_disallow_and_only_500_kib_are_read(hostile, hostile_crawl):
    _, summary = hostile_crawl
    news = summary["hostile-news"]
    # r500 (HTTP 500) and rslow (timeout): their start pages refused, nothing but robots.txt asked for
    assert news["pages_refused"]["robots_unreachable"] == 2 and news["robots"]["unreachable"] == 2
    for host in ("r500", "rslow"):
        assert {p for (h, p) in hostile.hits if h == host} <= {"/robots.txt", "/.well-known/tdmrep.json"}, host
    # rbig (5 MB): its first rule holds, the one after 500 KiB is not read; r404: no rules at all
    assert news["robots"]["truncated"] == 1 and news["pages_refused"]["robots_disallowed"] == 1
    assert hostile.hits[("rbig", "/private/p.html")] == 0 and hostile.hits[("rbig", "/late/l.html")] == 1
    assert all(hostile.hits[("r404", p)] == 1 for p in ("/a.html", "/private/p.html", "/late/l.html"))


def test_a_retry_after_above_the_cap_gives_up_the_host(hostile, hostile_crawl):
    config, summary = hostile_crawl
    backoff = summary["hostile-news"]["backoff"]
    assert hostile.count("b", "/img/") == 1, "after 'Retry-After: 3600' the host got more image requests"
    assert backoff["gave_up_host"] == 1 and backoff["skipped"] == 4
    # the skipped images' page stays unfinished: the next run fetches it again
    assert not [r for r in _rows(config, "hostile-news") if r["page_url"].endswith("/later.html")]
    assert summary["hostile-news"]["pages_incomplete"] >= 1


def test_discovery_is_bounded_by_default_limits(hostile, hostile_crawl):
    _, summary = hostile_crawl
    assert hostile.count("main", "/sm/") == SITEMAP_DEPTH + 1  # an endless sitemap-index chain
    assert summary["hostile-news"]["limit_cuts"]["max_sitemap_depth"] == 1
    assert hostile.count("main", "/sm2/") == DISCOVERY_LIMIT  # an endless, growing index tree
    assert summary["hostile-discovery"]["limits_hit"] == ["max_discovery"]
    loop, fresh = summary["hostile-loop"], summary["hostile-fresh"]
    assert hostile.hits[("api", "/api/v1/timelines/tag/loop")] == 1 + STALE_LIMIT  # same posts on every page
    assert loop["limits_hit"] == ["max_stale_pages"] and loop["rows"] == 2
    assert hostile.hits[("api", "/api/v1/timelines/tag/fresh")] == API_PAGE_LIMIT  # new posts forever
    assert fresh["limits_hit"] == ["max_api_pages"] and fresh["api_pages"] == API_PAGE_LIMIT


def test_a_feed_of_100k_items_is_read_and_cut_at_max_pages(hostile, hostile_crawl):
    _, summary = hostile_crawl
    feed = summary["hostile-feed"]
    assert feed["pages"] == FEED_PAGES and feed["limits_hit"] == ["max_pages"]
    assert feed["limit_cuts"]["max_pages"] == FEED_ITEMS - FEED_PAGES
    assert hostile.count("main", "/f/") == FEED_PAGES and feed["duration_s"] < 20


def test_a_100000_deep_json_timeline_costs_its_page_only(hostile, make_hostile_config, tmp_path):
    """Deeply nested JSON must not raise out of the page object: the timeline is dropped, the crawl goes on."""
    from crawlers.config import SourceConfig

    source = SourceConfig(name="deep", kind="mastodon", instance=hostile.base["api"], hashtags=["deep", "loop"],
                          max_stale_pages=STALE_LIMIT)
    summary = crawl_source(make_hostile_config([source], tmp_path / "raw"), "deep")
    assert summary["status"] == "ok" and "spider_exception" not in summary["errors"]
    assert summary["rows"] == 2, "the other timeline of the source lost its rows"
