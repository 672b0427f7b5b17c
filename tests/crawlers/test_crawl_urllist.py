"""`kind: urls`: img2dataset-style URL lists fetched through the crawl stage, against the demo site's images."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from crawl_testlib import fast_config, raw_rows

from crawlers.config import SourceConfig
from crawlers.stage import CrawlError, crawl_source
from data_schemas import reasons as R
from data_schemas.faults import ENV_AT


def list_truth(demo) -> dict[str, object]:
    """image URL -> the demo's truth for it, for images whose fate a URL list decides by the image alone: kept or
    dropped by the clean stage (fetched), or opted out by the image response itself."""
    out = {}
    for t in demo.truth:
        if t.source_kind == "news" and (t.stage != "crawl" or t.reason == R.OPT_OUT_IMAGE):
            out.setdefault(t.image_url, t)
    return out


def write_parquet_list(path, truth) -> list[dict]:
    rows = [{"url": url, "caption": f"caption {i}", "uid": f"u{i:04d}", "similarity": i / 100}
            for i, url in enumerate(truth)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return rows


def urls_source(path, **kw) -> SourceConfig:
    return SourceConfig(name="list", kind="urls", paths=[str(path)], **kw)


def test_url_list_rows_match_the_truth_and_image_opt_outs_hold(demo, tmp_path):
    truth = list_truth(demo)
    rows_in = write_parquet_list(tmp_path / "list.parquet", truth)
    config = fast_config([urls_source(tmp_path / "list.parquet")], tmp_path / "raw")
    summary = crawl_source(config, "list")
    got = {r["image_url"]: r for r in raw_rows(config.out)}
    opted_out = {u for u, t in truth.items() if t.reason == R.OPT_OUT_IMAGE}
    assert opted_out and set(got) == set(truth) - opted_out, "rows must be every listed image but the opted-out"
    assert summary["drops"].get(R.OPT_OUT_IMAGE) == len(opted_out)
    by_url = {r["url"]: r for r in rows_in}
    for url, row in got.items():
        t = truth[url]
        assert row["page_url"] == "" and row["source_kind"] == "urls"
        assert row["caption_candidates"] == [{"text": by_url[url]["caption"], "origin": "list"}]
        assert json.loads(row["provenance"]) == {"uid": by_url[url]["uid"], "similarity": by_url[url]["similarity"]}
        assert (row["fetch_error"] is not None) == (t.reason == R.FETCH_FAILED), url
    requests = demo.requests
    assert all(requests[u.removeprefix(demo.base_url)] >= 1 for u in opted_out), "opt-out is read on the response"


def test_malformed_rows_drop_with_a_reason_naming_file_and_row_and_keep_their_neighbours(demo, tmp_path):
    good = [u for u, t in list_truth(demo).items() if t.stage is None][:3]
    lines = [json.dumps({"url": good[0], "caption": "first"}), json.dumps({"caption": "no url"}),
             json.dumps({"url": "ftp://127.0.0.1/x.jpg"}), json.dumps({"url": 5}), "{not json",
             json.dumps([1, 2]), json.dumps({"url": good[1], "caption": 7}), json.dumps({"url": "javascript:x"}),
             json.dumps({"url": good[1], "caption": "second"}), "", json.dumps({"url": good[2]})]
    path = tmp_path / "list.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    csv_path = tmp_path / "list.tsv"
    csv_path.write_text(f"url\tcaption\n{good[2]}\tthird\nhttp://[::1\tbroken\n\tempty\n")
    source = SourceConfig(name="list", kind="urls", paths=[str(path), str(csv_path)])
    summary = crawl_source(fast_config([source], tmp_path / "raw"), "list")
    rows = raw_rows(tmp_path / "raw")
    # good[2] is listed twice for no page: one (page, image) pair, one row (the first listing's)
    assert sorted((r["image_url"], tuple(c["text"] for c in r["caption_candidates"])) for r in rows) == sorted(
        [(good[0], ("first",)), (good[1], ("second",)), (good[2], ())])
    assert summary["drops"] == {R.LIST_MISSING_URL: 2, R.LIST_BAD_URL: 3, R.LIST_BAD_ROW: 4}
    rejects = summary["input_rejects"]
    assert f"{path}:2: {R.LIST_MISSING_URL}" in "\n".join(rejects)
    assert any(r.startswith(f"{path}:4: {R.LIST_BAD_ROW}") and "int" in r for r in rejects)
    assert any(r.startswith(f"{path}:7: {R.LIST_BAD_ROW}") and "caption" in r for r in rejects)
    assert any(r.startswith(f"{csv_path}:2: {R.LIST_BAD_URL}") for r in rejects)


def test_an_unreadable_list_fails_the_source_naming_the_file(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("link,text\nhttp://127.0.0.1/a.jpg,a\n")
    with pytest.raises(CrawlError, match=r"list\.csv: no column 'url'"):
        crawl_source(fast_config([urls_source(path)], tmp_path / "raw"), "list")


def test_private_addresses_are_refused_unless_allowed(demo, tmp_path):
    write_parquet_list(tmp_path / "list.parquet", list_truth(demo))
    config = fast_config([urls_source(tmp_path / "list.parquet")], tmp_path / "raw", allow_private=False)
    summary = crawl_source(config, "list")
    assert raw_rows(config.out) == [] and summary["errors"].get("private_address", 0) > 0


def test_a_list_crawl_killed_at_a_commit_resumes_without_loss_or_duplicates(demo, tmp_path, monkeypatch):
    write_parquet_list(tmp_path / "list.parquet", list_truth(demo))
    straight = fast_config([urls_source(tmp_path / "list.parquet")], tmp_path / "straight", rows_per_file=10)
    crawl_source(straight, "list")
    want = sorted((r["id"], r["image_url"], r["fetch_error"]) for r in raw_rows(straight.out))
    config = fast_config([urls_source(tmp_path / "list.parquet")], tmp_path / "raw", rows_per_file=10)
    monkeypatch.setenv(ENV_AT, "crawl.committed:list-*-00002.parquet")
    with pytest.raises(CrawlError, match="exit status -9"):
        crawl_source(config, "list")
    monkeypatch.delenv(ENV_AT)
    assert 0 < len(raw_rows(config.out)) < len(want)
    summary = crawl_source(config, "list")
    assert sorted((r["id"], r["image_url"], r["fetch_error"]) for r in raw_rows(config.out)) == want
    assert summary["pages_skipped_seen"] > 0, "rows already written are not fetched again"
