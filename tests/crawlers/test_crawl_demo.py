"""End to end against the demo site: real Scrapy processes over loopback HTTP, compared with the ground truth."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from crawlers.config import demo_sources
from crawlers.shardproc import REPO_ROOT
from crawlers.stage import crawl, crawl_source, read_summary
from data_schemas import reasons as R
from data_schemas import row_id
from tests.crawlers.crawl_testlib import fast_config, raw_rows

pytestmark = pytest.mark.slow


def _truth_raw(demo) -> dict[tuple[str, str], object]:
    return {(t.page_url, t.image_url): t for t in demo.truth if t.stage != "crawl"}


def test_demo_sources_reach_every_social_pair(demo):
    sources = {s.kind: s for s in demo_sources(demo.base_url)}
    assert tuple(sources["mastodon"].hashtags) == demo.site.mastodon_tags
    assert tuple(sources["bluesky"].actors) == demo.site.bluesky_actors


def test_raw_rows_match_ground_truth(demo, demo_crawl):
    out, _requests = demo_crawl
    rows = raw_rows(out, with_bytes=True)
    truth = _truth_raw(demo)
    got = {(r["page_url"], r["image_url"]): r for r in rows}
    assert len(got) == len(rows), "duplicate (page, image) rows"
    assert len({r["id"] for r in rows}) == len(rows)
    assert set(got) == set(truth), (sorted(set(truth) - set(got))[:5], sorted(set(got) - set(truth))[:5])
    for key, t in truth.items():
        r = got[key]
        assert r["id"] == row_id(*key)
        assert (r["source"], r["source_kind"]) == (t.source, t.source_kind)
        assert tuple((c["text"], c["origin"]) for c in r["caption_candidates"]) == t.caption_candidates, key
        assert r["credit"] == t.credit, key
        assert r["role"] == t.role, key
        if t.trouble in ("http_404", "not_image"):
            assert r["image_bytes"] is None and r["fetch_error"] in ("http_error", "not_image"), key
        else:
            assert r["fetch_error"] is None and r["http_status"] == 200, key
            path = t.image_url[len(demo.base_url):]
            assert r["image_bytes"] == demo.site.response(path, base_url=demo.base_url)[2], key  # bytes as served
    news = [r for r in rows if r["source_kind"] == "news"]
    assert all(r["published_at"] is not None and r["title"] for r in news)


def test_summary_counts_every_crawl_drop(demo, demo_crawl):
    out, _ = demo_crawl
    summary = read_summary(out)
    drops = summary["overall"]["drops"]
    expected = Counter(t.reason for t in demo.truth if t.stage == "crawl")
    # pairs on fetched pages/images are counted pair by pair
    for reason in (R.OPT_OUT_PAGE, R.OPT_OUT_IMAGE, R.SOCIAL_SENSITIVE, R.SOCIAL_NOINDEX,
                   R.SOCIAL_NO_UNAUTHENTICATED, R.TEASER_IMAGE):
        assert drops.get(reason, 0) == expected[reason], reason
    # pages refused before fetching (robots.txt, tdmrep.json) count once each: their images are unknown
    articles = demo.site.plan.articles
    robots_pages = {demo.base_url + a.path for a in articles if a.trouble == "robots"}
    tdm_json_pages = {demo.base_url + a.path for a in articles if a.trouble == "tdm_section"}
    tdm_header_pairs = sum(len(a.slots) for a in articles if a.trouble == "tdm_header")
    refused = summary["per_source"]["demo-news"]["refused_urls"]
    assert set(refused[R.ROBOTS_DISALLOWED]) >= robots_pages
    assert set(refused[R.OPT_OUT_TDMREP]) == tdm_json_pages
    assert drops[R.OPT_OUT_TDMREP] == len(tdm_json_pages) + tdm_header_pairs
    assert summary["overall"]["rows"] == len(_truth_raw(demo))
    assert summary["overall"]["errors"] == {"image_http_error": 2, "image_not_image": 1}
    assert summary["overall"]["opt_outs"] == {k: v for k, v in drops.items() if k.startswith("opt_out")}


def test_politeness_on_demo(demo, demo_crawl):
    out, requests = demo_crawl
    paths = Counter()
    for path_q, n in requests.items():
        paths[path_q.split("?", 1)[0]] += n
    assert not [p for p in paths if p.startswith("/private/")], "robots.txt-disallowed page fetched"
    assert not [p for p in paths if p.startswith("/news/reserved/")], "TDMRep-reserved page fetched"
    retried = {a.path for a in demo.site.plan.articles if a.trouble == "http_429_once"}
    retried |= {url for url, how in demo.site.stateful().items() if how == "500_once"}
    images = {p: n for p, n in paths.items() if p.startswith("/img/")}
    wrong = {p: n for p, n in images.items() if n != (2 if p in retried else 1)}
    assert images and not wrong, f"image fetched the wrong number of times: {wrong}"
    for path in retried:
        assert paths[path] == 2
    per_source = read_summary(out)["per_source"]
    assert per_source["demo-news"]["backoff"].get("429") == 1
    assert paths["/robots.txt"] == 3  # once per source process


def test_incremental_recrawl_fetches_nothing_new(demo, demo_config, demo_crawl):
    out, _ = demo_crawl
    before_rows = {r["id"] for r in raw_rows(out)}
    before = demo.requests
    crawl(demo_config)
    new = demo.requests - before
    fetched = {p.split("?", 1)[0] for p in new}
    assert not [p for p in fetched if p.startswith(("/news/", "/img/"))], sorted(fetched)
    summary = read_summary(out)["overall"]
    assert summary["pages"] == 0 and summary["posts"] == 0 and summary["images"] == 0 and summary["rows"] == 0
    assert summary["pages_skipped_seen"] > 0
    after_rows = [r["id"] for r in raw_rows(out)]
    assert set(after_rows) == before_rows and len(after_rows) == len(before_rows)


def test_sigkill_and_resume_gives_the_same_rows(demo, demo_crawl, tmp_path):
    """Kill the news crawl mid-way with SIGKILL (rows still buffered are lost), run the same command again."""
    out_full, _ = demo_crawl
    expected = {r["id"] for r in raw_rows(out_full) if r["source"] == "demo-news"}
    config = fast_config(_news_only(demo), tmp_path / "raw",
                         rows_per_file=7, per_domain_concurrency=4, concurrency=4)
    config.state_dir.mkdir(parents=True)
    from crawlers.stage import _config_file

    cmd = [sys.executable, "-m", "crawlers.run", "--config-json", str(_config_file(config, "demo-news")),
           "--source", "demo-news"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while len(list(config.out.glob("*.parquet"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the crawl finished before it could be killed"
    partial = {r["id"] for r in raw_rows(config.out)}
    assert partial and partial < expected
    summary = crawl_source(config, "demo-news")
    rows = raw_rows(config.out)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate rows after resume"
    assert set(ids) == expected
    assert summary["pages_skipped_seen"] > 0


def _news_only(demo):
    return [s for s in demo_sources(demo.base_url) if s.kind == "news"]


def test_demo_bytes_are_stored_unchanged(demo, demo_crawl):
    out, _ = demo_crawl
    rows = [r for r in raw_rows(Path(out), with_bytes=True) if r["image_bytes"]]
    mimes = Counter(r["image_mime"] for r in rows)
    assert set(mimes) <= {"image/jpeg", "image/png", "image/webp"}
    digests = {hashlib.sha256(r["image_bytes"]).hexdigest() for r in rows}
    assert len(digests) > len(rows) * 0.8
