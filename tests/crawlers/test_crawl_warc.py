"""`kind: warc`: WAT and WARC files the test builds from the demo site's pages; images fetched from the site."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from archive_testlib import demo_pages, wat_pairs, write_warc, write_wat
from crawl_testlib import fast_config, raw_rows

from crawlers.config import SourceConfig
from crawlers.demo.truth_build import PAGE_REASONS
from crawlers.stage import CrawlError, crawl_source
from data_schemas import reasons as R
from data_schemas.faults import ENV_AT


@pytest.fixture(scope="module")
def pages(demo):
    return demo_pages(demo)


def page_drops(demo) -> dict[str, str]:
    """Article URL -> the reason its every pair is left out (robots.txt, noai, TDMRep), from the demo's plan."""
    return {demo.url(a.path): PAGE_REASONS[a.trouble] for a in demo.site.plan.articles if a.trouble in PAGE_REASONS}


def image_opted_out(demo, url: str) -> bool:
    _status, headers, _body = demo.site.response(url.removeprefix(demo.base_url), base_url=demo.base_url)
    return "noimageai" in headers.get("X-Robots-Tag", "")


def warc_source(path, **kw) -> SourceConfig:
    return SourceConfig(name="cc", kind="warc", paths=[str(path)], **kw)


def test_wat_images_with_alt_text_are_fetched_and_page_and_image_opt_outs_hold(demo, pages, tmp_path):
    wat = write_wat(tmp_path / "pages.warc.wat.gz", pages)
    summary = crawl_source(fast_config([warc_source(wat)], tmp_path / "raw"), "cc")
    pairs, drops = wat_pairs(pages), page_drops(demo)
    assert set(drops.values()) >= {R.OPT_OUT_PAGE, R.OPT_OUT_TDMREP, R.ROBOTS_DISALLOWED}
    want_drops = Counter(drops[p] for p, _ in pairs if p in drops)
    kept = {k: v for k, v in pairs.items() if k[0] not in drops}
    image_out = {k for k in kept if image_opted_out(demo, k[1])}
    want_drops.update({R.OPT_OUT_IMAGE: len(image_out)} if image_out else {})
    got = {(r["page_url"], r["image_url"]): r for r in raw_rows(tmp_path / "raw")}
    assert set(got) == set(kept) - image_out
    assert all(got[k]["caption_candidates"] == kept[k] for k in got)
    assert all(r["source_kind"] == "warc" for r in got.values())
    assert {k: v for k, v in summary["drops"].items()} == dict(want_drops)


def test_warc_html_goes_through_the_news_page_objects_and_matches_the_truth(demo, pages, tmp_path):
    warc = write_warc(tmp_path / "pages.warc.gz", pages)
    crawl_source(fast_config([warc_source(warc, html=True, page_text=False)], tmp_path / "raw"), "cc")
    truth = {(t.page_url, t.image_url): t for t in demo.truth if t.source_kind == "news"}
    got = {(r["page_url"], r["image_url"]): r for r in raw_rows(tmp_path / "raw")}
    want = {k for k, t in truth.items() if t.stage != "crawl" and t.role != "teaser"}
    assert set(got) == want
    for key, row in got.items():
        t = truth[key]
        assert row["role"] == t.role
        expected = [c for c in t.caption_candidates if c[1] != "feed"]  # the archive has no feeds
        assert [(c["text"], c["origin"]) for c in row["caption_candidates"]] == expected, key


def test_bad_and_truncated_records_are_rejected_naming_file_and_offset_and_keep_the_rest(demo, pages, tmp_path):
    plain = [p for p in pages if p[0] not in page_drops(demo)][:4]
    wat = write_wat(tmp_path / "bad.wat.gz", plain, extra=[b"{not json", json.dumps({"Envelope": []}).encode()])
    data = wat.read_bytes()
    cut = tmp_path / "cut.wat.gz"
    cut.write_bytes(data + data[: len(data) // 2])  # a second copy cut short: a truncated download
    summary = crawl_source(fast_config([warc_source(cut)], tmp_path / "raw"), "cc")
    pairs = {k for k in wat_pairs(plain) if not image_opted_out(demo, k[1])}
    assert {(r["page_url"], r["image_url"]) for r in raw_rows(tmp_path / "raw")} == pairs
    rejects = summary["input_rejects"]
    assert summary["drops"].get(R.WARC_BAD_RECORD, 0) >= 3 and len(rejects) >= 3
    assert all(r.startswith(f"{cut}@") for r in rejects)
    assert any("Envelope" in r for r in rejects)


def test_a_wat_crawl_killed_at_a_commit_resumes_without_loss_or_duplicates(demo, pages, tmp_path, monkeypatch):
    wat = write_wat(tmp_path / "pages.wat.gz", pages)
    straight = fast_config([warc_source(wat)], tmp_path / "straight", rows_per_file=10)
    crawl_source(straight, "cc")
    want = sorted((r["id"], r["fetch_error"]) for r in raw_rows(straight.out))
    config = fast_config([warc_source(wat)], tmp_path / "raw", rows_per_file=10)
    monkeypatch.setenv(ENV_AT, "crawl.committed:cc-*-00002.parquet")
    with pytest.raises(CrawlError, match="exit status -9"):
        crawl_source(config, "cc")
    monkeypatch.delenv(ENV_AT)
    crawl_source(config, "cc")
    assert sorted((r["id"], r["fetch_error"]) for r in raw_rows(config.out)) == want
