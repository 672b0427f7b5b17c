"""The demo site over real HTTP: pages, feeds, sitemaps, robots, social APIs with paging, and the trouble URLs."""

from __future__ import annotations

import html
import http.client
import json
import re
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9", "image": "http://www.google.com/schemas/sitemap-image/1.1",
      "news": "http://www.google.com/schemas/sitemap-news/0.9", "atom": "http://www.w3.org/2005/Atom"}


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_pages_feeds_sitemaps_robots(demo):
    site, base = demo.site, demo.base_url
    status, headers, home = get(base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for name in ("world", "science", "city", "culture", "sport", "reserved"):
        assert f'href="/section/{name}/"'.encode() in home
    private = [a.path for a in site.plan.articles if a.trouble == "robots"]
    assert private and all(p.encode() in home for p in private)

    status, _, robots = get(base + "/robots.txt")
    assert status == 200 and b"Disallow: /private/" in robots and f"Sitemap: {base}/sitemap.xml".encode() in robots

    rss = ET.fromstring(get(base + "/feeds/rss.xml")[2])
    links = [i.findtext("link") for i in rss.iter("item")]
    assert len(links) == min(50, len(site.plan.articles)) and any("/private/" in u for u in links)
    atom = ET.fromstring(get(base + "/feeds/atom.xml")[2])
    assert len(atom.findall("atom:entry", NS)) == len(links)

    index = ET.fromstring(get(base + "/sitemap.xml")[2])
    maps = [e.text for e in index.findall("sm:sitemap/sm:loc", NS)]
    assert maps == [base + "/sitemaps/news.xml"]
    news = ET.fromstring(get(maps[0])[2])
    pages = {u.findtext("sm:loc", namespaces=NS) for u in news.findall("sm:url", NS)}
    images = {i.text for i in news.iterfind(".//image:image/image:loc", NS)}
    assert all(u.findtext(".//news:title", namespaces=NS) for u in news.findall("sm:url", NS))
    news_truth = [t for t in demo.truth if t.source_kind == "news" and "/private/" not in t.page_url
                  and t.role != "teaser"]  # a teaser card's picture belongs to another story
    assert pages == {t.page_url for t in news_truth}
    assert images == {t.image_url for t in news_truth}

    status, _, body = get(base + "/.well-known/tdmrep.json")
    rules = json.loads(body)
    assert rules[0]["location"] == "/news/reserved/*" and rules[0]["tdm-reservation"] == 1


def test_opt_out_headers_and_trouble_statuses(demo):
    site, base = demo.site, demo.base_url
    by_trouble = {}
    for a in site.plan.articles:
        by_trouble.setdefault(a.trouble, a)
    assert get(base + by_trouble["noai_header"].path)[1]["X-Robots-Tag"] == "noai, noimageai"
    assert b'<meta name="robots" content="noai, noimageai">' in get(base + by_trouble["noai_meta"].path)[2]
    assert get(base + by_trouble["tdm_header"].path)[1]["tdm-reservation"] == "1"
    assert "tdm-reservation" not in get(base + by_trouble["tdm_section"].path)[1]
    assert "X-Robots-Tag" not in get(base + by_trouble[""].path)[1]
    rows = {t.trouble: t for t in demo.truth}
    assert get(rows["http_404"].image_url)[0] == 404
    assert get(rows["noimageai"].image_url)[1]["X-Robots-Tag"] == "noimageai"
    status, headers, body = get(rows["not_image"].image_url)
    assert (status, headers["Content-Type"]) == (200, "image/jpeg") and not body.startswith(b"\xff\xd8")
    assert get(base + "/img/2024/05/999999-nothing.jpg")[0] == 404
    assert get(base + "/no/such/page.html")[0] == 404


def test_stateful_behaviours(demo):
    behaviours = demo.site.stateful()
    assert sorted(set(behaviours.values())) == ["429_once", "500_once", "slow"]
    for path, behaviour in behaviours.items():
        url = demo.base_url + path
        if behaviour == "slow":
            continue
        first = get(url)
        if behaviour == "429_once":
            assert first[0] == 429 and first[1]["Retry-After"] == "1"
        else:
            assert first[0] == 500
        assert get(url)[0] == 200
        assert demo.request_paths[path] >= 2
    slow = next(p for p, b in behaviours.items() if b == "slow")
    started = time.monotonic()
    assert get(demo.base_url + slow)[0] == 200
    assert 1.0 <= time.monotonic() - started < 10


def test_keep_alive_and_concurrency(demo):
    host = urlsplit(demo.base_url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    for path in ("/", "/robots.txt", "/feeds/rss.xml"):
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Length") == str(len(resp.read()))
    conn.close()
    urls = [demo.base_url + a.path for a in demo.site.plan.articles if a.trouble not in ("slow", "http_429_once")]
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda u: get(u)[0], urls))
    assert statuses == [200] * len(urls)
    before = demo.requests["/robots.txt"]
    get(demo.base_url + "/robots.txt")
    assert demo.requests["/robots.txt"] == before + 1


def test_mastodon_paging_reaches_every_status(demo):
    site, base = demo.site, demo.base_url
    seen = {}
    for tag in site.mastodon_tags:
        url, pages = f"{base}/api/v1/timelines/tag/{tag}?limit=7", 0
        while url:
            status, headers, body = get(url)
            assert status == 200 and headers["Content-Type"].startswith("application/json")
            page = json.loads(body)
            pages += 1
            ids = [int(s["id"]) for s in page]
            assert ids == sorted(ids, reverse=True) and len(page) <= 7
            for s in page:
                assert s["account"]["acct"] == s["account"]["username"] and "noindex" in s["account"]
                assert s["tags"][0]["name"] == tag
                seen[s["url"]] = s
            nxt = [p.split(";")[0].strip("<> ") for p in headers.get("Link", "").split(",") if 'rel="next"' in p]
            if nxt:
                assert f"max_id={page[-1]['id']}" in nxt[0]
            url = nxt[0] if nxt else None
        assert pages >= 2
    assert len(seen) == len(site.plan.statuses)
    truth_pages = {t.page_url for t in demo.truth if t.source_kind == "mastodon"}
    assert truth_pages <= set(seen)
    media = {m["url"]: m for s in seen.values() for m in s["media_attachments"] if m["type"] == "image"}
    for t in (t for t in demo.truth if t.source_kind == "mastodon"):
        m = media[t.image_url]
        assert m["description"] == next((c for c, o in t.caption_candidates if o == "social_alt"), None)
        assert (m["meta"]["original"]["width"], m["meta"]["original"]["height"]) == (t.width, t.height)
    assert any(s["sensitive"] for s in seen.values()) and any(s["account"]["noindex"] for s in seen.values())
    assert any(m["type"] == "gifv" for s in seen.values() for m in s["media_attachments"])
    public = json.loads(get(f"{base}/api/v1/timelines/public?local=true&limit=40")[2])
    assert len(public) == min(40, len(site.plan.statuses))
    assert json.loads(get(f"{base}/api/v1/timelines/tag/nosuchtag")[2]) == []


def _bsky_pages(url: str) -> list[dict]:
    out, cursor = [], None
    while True:
        status, _, body = get(url + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        data = json.loads(body)
        out.append(data)
        cursor = data.get("cursor")
        if not cursor:
            return out


def test_bluesky_cursor_paging(demo):
    site, base = demo.site, demo.base_url
    posts = {}
    for actor in site.bluesky_actors:
        pages = _bsky_pages(f"{base}/xrpc/app.bsky.feed.getAuthorFeed?actor={actor}&limit=3")
        for page in pages:
            for item in page["feed"]:
                post = item["post"]
                assert post["author"]["handle"] == actor and post["record"]["$type"] == "app.bsky.feed.post"
                posts[post["uri"]] = post
    assert len(posts) == len(site.plan.posts)
    labelled = {p["author"]["handle"] for p in posts.values()
                if any(label["val"] == "!no-unauthenticated" for label in p["author"]["labels"])}
    assert len(labelled) == 1
    fullsize = {i["fullsize"]: i for p in posts.values() for i in p.get("embed", {}).get("images", [])}
    for t in (t for t in demo.truth if t.source_kind == "bluesky"):
        image = fullsize[t.image_url]
        assert image["alt"] == next((c for c, o in t.caption_candidates if o == "social_alt"), "")
        assert (image["aspectRatio"]["width"], image["aspectRatio"]["height"]) == (t.width, t.height)
        handle, rkey = t.page_url.split("/profile/")[1].split("/post/")
        did = next(a.did for a in site.plan.authors if a.handle == handle)
        assert f"at://{did}/app.bsky.feed.post/{rkey}" in posts
    search = _bsky_pages(f"{base}/xrpc/app.bsky.feed.searchPosts?q=nature&limit=2")
    found = [p for page in search for p in page["posts"]]
    assert found and all("nature" in p["record"]["text"].lower() for p in found)
    assert search[0]["hitsTotal"] == len(found)
    assert get(f"{base}/xrpc/app.bsky.feed.getAuthorFeed?actor=nobody.bsky.social")[0] == 400


@pytest.mark.parametrize("path", ["/static/logo.png", "/ads/banner-728x90.jpg", "/px/track.gif",
                                  "/static/icons/share.svg"])
def test_non_content_assets_are_served(demo, path):
    status, headers, body = get(demo.base_url + path)
    assert status == 200 and body and headers["Content-Type"].startswith("image/")


def test_larger_site_chunks_sitemaps_and_pages(site, monkeypatch):
    """What a 1,000+ article site does (several sitemaps, a shorter home page), with the limits scaled down."""
    from crawlers.demo import feeds, html_pages

    monkeypatch.setattr(feeds, "SITEMAP_CHUNK", 25)
    monkeypatch.setattr(html_pages, "HOME_LIMIT", 30)
    index = ET.fromstring(site.response("/sitemap.xml")[2])
    maps = [urlsplit(e.text).path for e in index.findall("sm:sitemap/sm:loc", NS)]
    assert maps == ["/sitemaps/news.xml", "/sitemaps/news-2.xml", "/sitemaps/news-3.xml"]
    listed = set()
    for name in maps:
        doc = ET.fromstring(site.response(name)[2])
        listed |= {urlsplit(u.findtext("sm:loc", namespaces=NS)).path for u in doc.findall("sm:url", NS)}
    assert listed == {a.path for a in site.plan.articles if a.trouble != "robots"}
    home = site.response("/")[2].decode()
    assert all(a.path in home for a in site.plan.articles if a.trouble)
    assert home.count('class="teaser"') < len(site.plan.articles)
    for section in ("world", "science", "city", "culture", "sport", "reserved"):
        found, url = set(), f"/section/{section}/"
        while url:
            body = site.response(url)[2].decode()
            found |= {a.path for a in site.plan.articles if f'href="{a.path}"' in body}
            nxt = re.search(r'<a rel="next" class="next" href="([^"]+)"', body)
            url = html.unescape(nxt.group(1)) if nxt else None
        assert found == {a.path for a in site.plan.articles if a.section == section and a.trouble != "robots"}
