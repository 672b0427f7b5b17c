"""Politeness, safety and incremental behaviour on a small scripted site (things the demo site does not plant)."""

from __future__ import annotations

import hashlib
import json

import pytest

from crawlers.config import SourceConfig
from crawlers.stage import CrawlError, crawl, crawl_source, read_summary
from data_schemas import BlockEntry, Blocklist
from data_schemas import reasons as R
from tests.crawlers.crawl_testlib import article_html, fast_config, jpeg, raw_rows

pytestmark = pytest.mark.slow


def _build(site, n_articles: int = 3, extra_links: tuple[str, ...] = ()) -> None:
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    site.add("/img/shared.jpg", jpeg(9), "image/jpeg")
    links = []
    for i in range(n_articles):
        site.add(f"/img/a{i}.jpg", jpeg(i), "image/jpeg")
        site.add(f"/news/a{i}.html", article_html(f"Story {i}", [(f"/img/a{i}.jpg", f"Photo of tower {i}"),
                                                             ("/img/shared.jpg", "The shared harbour view")]))
        links.append(f"<a href='/news/a{i}.html'>{i}</a>")
    links += [f"<a href='{path}'>x</a>" for path in extra_links]
    site.add("/", "<html><body>" + "".join(links) + "<a href='/private/p.html'>p</a></body></html>")
    site.add("/private/p.html", article_html("Private", [("/img/a0.jpg", "x")]))


def _source(site, **kw) -> SourceConfig:
    return SourceConfig(name="local", kind="news", start_urls=[site.base + "/"], max_depth=1, page_text=False, **kw)


def test_shared_image_fetched_once_retry_after_optouts_and_limits(local_site, tmp_path):
    site = local_site
    _build(site, extra_links=("/news/busy.html",))
    # a page answering 429 + Retry-After: 2 once; images that are opted out, too large, not images, taken down
    busy = article_html("Busy", [("/img/noai.jpg", "A quiet street at night"), ("/img/big.jpg", "A large photo"),
                             ("/img/html.jpg", "Not an image at all"), ("/img/blocked.jpg", "Taken down")]).encode()

    def throttled(n):
        if n == 1:
            return 429, {"Retry-After": "2", "Content-Type": "text/plain"}, b"slow down"
        return 200, {"Content-Type": "text/html"}, busy

    site.routes["/news/busy.html"] = throttled
    site.add("/img/noai.jpg", jpeg(5), "image/jpeg", X_Robots_Tag="noai")
    site.add("/img/big.jpg", jpeg(6, (2400, 2400)), "image/jpeg")
    site.add("/img/html.jpg", "<html>oops</html>")
    site.add("/img/blocked.jpg", jpeg(7), "image/jpeg")
    blocklist = tmp_path / "_blocklist.jsonl"
    Blocklist.append(blocklist, [BlockEntry("url", site.base + "/img/blocked.jpg", "takedown"),
                                 BlockEntry("sha256", hashlib.sha256(jpeg(2)).hexdigest(), "takedown by bytes")])
    config = fast_config([_source(site)], tmp_path / "raw", max_image_bytes=60_000, blocklist=blocklist,
                         backoff_base=0.1)
    summary = crawl_source(config, "local")

    assert site.count("/img/shared.jpg") == 1, "a shared image must be fetched once per run"
    assert site.count("/private/p.html") == 0
    assert site.count("/img/blocked.jpg") == 0
    first, second = site.hits["/news/busy.html"]
    assert second - first >= 1.9, "Retry-After: 2 not honoured"
    rows = raw_rows(config.out, with_bytes=True)
    shared = [r for r in rows if r["image_url"].endswith("/img/shared.jpg")]
    assert len(shared) == 3 and len({r["image_bytes"] for r in shared}) == 1 and shared[0]["image_bytes"]
    by_url = {r["image_url"].rsplit("/", 1)[1]: r for r in rows}
    assert by_url["big.jpg"]["fetch_error"] == "too_large" and by_url["big.jpg"]["image_bytes"] is None
    assert by_url["html.jpg"]["fetch_error"] == "not_image"
    assert "noai.jpg" not in by_url and "blocked.jpg" not in by_url and "a2.jpg" not in by_url
    assert summary["drops"] == {R.OPT_OUT_IMAGE: 1, R.BLOCKLISTED_URL: 2, R.ROBOTS_DISALLOWED: 1}
    assert summary["errors"] == {"image_too_large": 1, "image_not_image": 1}
    assert summary["backoff"]["429"] == 1
    assert summary["rows"] == len(rows) == 3 * 2 + 2 - 1
    assert json.loads((config.out / "crawl_summary.json").read_text())["per_source"]["local"]["rows"] == len(rows)


def test_images_are_fetched_with_the_page_as_referer_and_back_off_on_429(local_site, tmp_path):
    """Images bypass the scheduler (crawlers/spiders/imagefetch.py) but not the downloader middlewares: a 429 with
    Retry-After on an image is waited out and retried, and the image request names its page like a browser."""
    site = local_site
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    site.add("/news/a0.html", article_html("Story", [("/img/slow.jpg", "A lighthouse on a cliff at dusk")]))
    site.add("/", "<html><body><a href='/news/a0.html'>a</a></body></html>")

    def slow(n):
        if n == 1:
            return 429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"slow down"
        return 200, {"Content-Type": "image/jpeg"}, jpeg(3)

    site.routes["/img/slow.jpg"] = slow
    config = fast_config([_source(site)], tmp_path / "raw", backoff_base=0.1)
    summary = crawl_source(config, "local")

    first, second = site.hits["/img/slow.jpg"]
    assert second - first >= 0.9, "Retry-After on an image not honoured"
    assert [h.get("Referer") for h in site.request_headers["/img/slow.jpg"]] == [site.base + "/news/a0.html"] * 2
    [row] = raw_rows(config.out, with_bytes=True)
    assert row["image_bytes"] == jpeg(3) and row["fetch_error"] is None
    assert summary["backoff"]["429"] == 1 and summary["rows"] == 1


def test_growth_recrawl_fetches_only_new_pages_and_reuses_images(local_site, tmp_path):
    site = local_site
    _build(site, n_articles=2)
    config = fast_config([_source(site)], tmp_path / "raw")
    crawl_source(config, "local")
    assert site.count("/img/shared.jpg") == 1
    _build(site, n_articles=3)  # the site grows by one article that also shows the shared image
    summary = crawl_source(config, "local")
    assert [site.count(f"/news/a{i}.html") for i in range(3)] == [1, 1, 1]
    assert site.count("/img/a2.jpg") == 1 and site.count("/img/shared.jpg") == 1, "stored image fetched again"
    assert summary["pages"] == 1 and summary["pages_skipped_seen"] == 2 and summary["images_reused_stored"] == 1
    rows = raw_rows(config.out, with_bytes=True)
    shared = [r for r in rows if r["image_url"].endswith("/img/shared.jpg")]
    assert len(shared) == 3 and len({r["image_bytes"] for r in shared}) == 1
    assert len({r["id"] for r in rows}) == len(rows) == 6


def test_private_addresses_are_refused_without_allow_private(local_site, tmp_path):
    _build(local_site)
    config = fast_config([_source(local_site)], tmp_path / "raw", allow_private=False)
    summary = crawl_source(config, "local")
    assert dict(local_site.hits) == {}, "nothing, not even robots.txt, may reach a loopback address"
    assert summary["errors"].get("private_address", 0) >= 1 and summary["rows"] == 0


def test_max_pages_limit_and_failing_source_is_named(local_site, tmp_path):
    _build(local_site)
    config = fast_config([_source(local_site, max_pages=1)], tmp_path / "raw")
    summary = crawl_source(config, "local")
    assert summary["pages"] == 1 and summary["limit_hit"] and summary["limits_hit"] == ["max_pages"]
    assert sum(local_site.count(f"/news/a{i}.html") for i in range(3)) == 1
    bad = fast_config([SourceConfig(name="broken", kind="news", start_urls=[local_site.base + "/"])],
                      tmp_path / "raw2", rows_per_file=-5)
    with pytest.raises(Exception, match="rows_per_file"):
        crawl(bad)
    # a source process that cannot even start its crawl is reported with the source's name
    broken = fast_config([SourceConfig(name="broken", kind="news", start_urls=[local_site.base + "/"])],
                         tmp_path / "raw3", user_agent="")
    broken.state_dir.mkdir(parents=True)
    (broken.state_dir / "broken.sqlite").write_bytes(b"this is not a database")
    with pytest.raises(CrawlError, match="broken"):
        crawl(broken)
    assert read_summary(broken.out)["per_source"]["broken"]["status"] == "failed"


def test_one_source_split_over_two_processes(local_site, tmp_path):
    _build(local_site, n_articles=6)
    source = _source(local_site, processes=2)
    config = fast_config([source], tmp_path / "raw")
    summary = crawl_source(config, "local")
    assert [local_site.count(f"/news/a{i}.html") for i in range(6)] == [1] * 6, "a page crawled by both shards"
    rows = raw_rows(config.out)
    assert len({r["id"] for r in rows}) == len(rows) == 12
    assert summary["pages"] == 6 and summary["rows"] == 12 and summary["shard"] == "2 processes"
    assert {f.split("-")[0] for f in summary["files_written"]} == {"local.0of2", "local.1of2"}


def test_page_charset_from_the_http_header_wins_over_a_wrong_meta(local_site, tmp_path):
    """As in browsers, the Content-Type charset beats a contradicting <meta charset>: the spider hands the
    extractor Scrapy's decoded text, not the bytes (which the extractor alone would decode by the meta)."""
    site = local_site
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    page = article_html("Caf\u00e9 society", [("/img/cafe.jpg", "Caf\u00e9 de la Paix at noon")])
    page = page.replace("<head>", "<head><meta charset='utf-8'>")
    site.add("/news/a0.html", page.encode("cp1252"), "text/html; charset=windows-1252")
    site.add("/img/cafe.jpg", jpeg(4), "image/jpeg")
    site.add("/", "<html><body><a href='/news/a0.html'>a</a></body></html>")
    config = fast_config([_source(site)], tmp_path / "raw")
    crawl_source(config, "local")
    [row] = raw_rows(config.out)
    assert row["title"] == "Caf\u00e9 society"
    assert ("Caf\u00e9 de la Paix at noon in the city centre.", "figcaption") in [
        (c["text"], c["origin"]) for c in row["caption_candidates"]]


def _teaser_site(site) -> None:
    """A story whose lead is its og:image, with a card linking to another story (phys.org's markup)."""
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    for name in ("lead", "body", "card"):
        site.add(f"/img/{name}.jpg", jpeg(len(name)), "image/jpeg")
    story = ("<html lang='en'><head><title>Harbour story</title><meta property='og:type' content='article'>"
             "<meta property='og:image' content='/img/lead.jpg'></head><body><article><h1>Harbour story</h1>"
             "<figure><img src='/img/lead.jpg'><figcaption>The harbour at dawn</figcaption></figure>"
             "<p>A paragraph of the story that is long enough to count as the text of the story.</p>"
             "<figure><img src='/img/body.jpg'><figcaption>Boats in the harbour</figcaption></figure>"
             "<a href='/news/other.html'><article><figure><img src='/img/card.jpg'><figcaption><h5>Another "
             "story about the pier</h5></figcaption></figure></article></a></article></body></html>")
    site.add("/news/story.html", story)
    site.add("/", "<html><body><a href='/news/story.html'>story</a></body></html>")


@pytest.mark.parametrize("mode", ["drop", "emit"])
def test_roles_and_teasers_in_raw_rows(local_site, tmp_path, mode):
    _teaser_site(local_site)
    config = fast_config([_source(local_site, teasers=mode)], tmp_path / "raw")
    summary = crawl_source(config, "local")
    rows = {r["image_url"].rsplit("/", 1)[-1]: r for r in raw_rows(config.out)}
    assert rows["lead.jpg"]["role"] == "lead" and rows["body.jpg"]["role"] == "body"
    story = local_site.base + "/news/story.html"
    assert rows["lead.jpg"]["page_url"] == rows["body.jpg"]["page_url"] == story
    if mode == "drop":
        assert "card.jpg" not in rows and summary["drops"] == {R.TEASER_IMAGE: 1}
    else:
        card = rows["card.jpg"]
        assert card["role"] == "teaser" and card["page_url"] == local_site.base + "/news/other.html"
        assert card["title"] == "Another story about the pier"
        assert [c["text"] for c in card["caption_candidates"]] == ["Another story about the pier"]
        assert R.TEASER_IMAGE not in summary["drops"]
