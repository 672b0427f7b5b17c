"""Same arguments -> the same bytes for every URL, even in a fresh process; another seed -> another site."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from crawlers.demo import generate_site

REPO = Path(__file__).resolve().parents[2]
FINGERPRINT = """
import hashlib, sys
from crawlers.demo import generate_site
site = generate_site(articles=int(sys.argv[1]), seed=int(sys.argv[2]))
h = hashlib.sha256()
for t in site.truth:
    h.update(t.to_json().encode())
for path in sys.argv[3:]:
    status, headers, body = site.response(path, base_url="http://127.0.0.1:8800")
    h.update(repr((status, sorted(headers.items()))).encode() + body)
print(h.hexdigest())
"""


def _urls(site) -> list[str]:
    plan = site.plan
    sections = Counter(a.section for a in plan.articles if a.trouble != "robots")
    biggest = sections.most_common(1)[0][0]
    urls = ["/", "/robots.txt", "/feeds/rss.xml", "/feeds/atom.xml", "/sitemap.xml", "/sitemaps/news.xml",
            f"/section/{biggest}/", f"/section/{biggest}/?page=2", "/.well-known/tdmrep.json",
            "/api/v1/timelines/public?limit=40", f"/api/v1/timelines/tag/nature?limit=5&max_id={plan.statuses[3].id}",
            f"/xrpc/app.bsky.feed.getAuthorFeed?actor={plan.authors[0].handle}&limit=4",
            "/xrpc/app.bsky.feed.searchPosts?q=circles&limit=3&cursor=3"]
    urls += [a.path for a in plan.articles]
    urls += [t.image_url for t in site.truth[::16]]
    return urls


def _fingerprint(site, urls: list[str]) -> str:
    h = hashlib.sha256()
    for t in site.truth:
        h.update(t.to_json().encode())
    for path in urls:
        status, headers, body = site.response(path, base_url="http://127.0.0.1:8800")
        h.update(repr((status, sorted(headers.items()))).encode() + body)
    return h.hexdigest()


def test_same_seed_same_bytes_in_a_fresh_process(site):
    urls = _urls(site)
    assert all(site.response(u)[0] == 200 for u in urls if not u.startswith("/img/"))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", FINGERPRINT, "60", "0", *urls], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == _fingerprint(site, urls)


def test_other_seed_other_site(site):
    other = generate_site(articles=50, seed=1)
    assert other.response("/")[2] != site.response("/")[2]
    assert {t.caption for t in other.truth} != {t.caption for t in site.truth}
    assert other.response(other.truth[0].image_url)[2] != site.response(site.truth[0].image_url)[2]
    assert sum(other.expected_crawl_drops().values()) > 0 and other.expected_kept() > 0
    assert len(other.expected_clean_drops()) == len(site.expected_clean_drops())


def test_truth_json_round_trip(site):
    row = json.loads(site.truth[0].to_json())
    assert set(row) >= {"source", "source_kind", "page_url", "image_url", "caption", "caption_candidates", "credit",
                        "lang", "stage", "reason", "dup_group", "published_at"}
