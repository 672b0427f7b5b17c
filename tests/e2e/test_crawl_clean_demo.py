"""Crawl -> clean of the demo site, checked against its ground truth across the stage boundary.

One real crawl (Scrapy processes over loopback HTTP) and one real clean (a LocalCluster started by the clean stage)
are shared by every test here (`e2e_run` in conftest.py).  Every number comes from `demo.site.expected_*()` or the
per-pair truth, never from a constant.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from data_schemas import reasons as R
from pipeline.tools import verify_dataset

pytestmark = pytest.mark.slow

# Refused before fetching, so the crawler cannot know the page's images: the crawl summary counts such a page once
# (crawlers/README.md, "Output") while the ground truth counts its (page, image) pairs.
PAGE_REFUSALS = (R.ROBOTS_DISALLOWED, R.OPT_OUT_TDMREP)
DUPLICATES = (R.DUPLICATE_EXACT, R.DUPLICATE_NEAR)


def _refused_urls(summary: dict) -> dict[str, set[str]]:
    refused: dict[str, set[str]] = defaultdict(set)
    for source in summary["per_source"].values():
        for reason, urls in (source.get("refused_urls") or {}).items():
            refused[reason].update(urls)
    return refused


def test_crawl_summary_counts_every_crawl_drop(e2e_run):
    """expected_crawl_drops() key by key; page refusals in the unit the crawler can know (one per page)."""
    truth = e2e_run.truth.values()
    expected = e2e_run.demo.site.expected_crawl_drops()
    drops = e2e_run.summary["overall"]["drops"]
    refused = _refused_urls(e2e_run.summary)
    assert set(drops) == set(expected), (drops, dict(expected))
    for reason in expected:
        if reason not in PAGE_REFUSALS:
            assert drops[reason] == expected[reason], (reason, drops[reason], expected[reason])
            continue
        pages = {t.page_url for t in truth if t.reason == reason}
        unfetched = pages & refused[reason]
        fetched_pairs = sum(1 for t in truth if t.reason == reason and t.page_url not in unfetched)
        pair_pages = {t.page_url for t in truth}
        assert not (refused[reason] - pages) & pair_pages, f"{reason}: a page with other outcomes was refused"
        assert drops[reason] == fetched_pairs + len(refused[reason]), (reason, drops[reason], refused[reason])
        # every truth pair of this reason is accounted for: on a refused page or counted pair by pair
        assert fetched_pairs + sum(1 for t in truth if t.page_url in unfetched) == expected[reason], reason
    assert e2e_run.summary["overall"]["rows"] == e2e_run.demo.site.expected_raw_rows()


def test_raw_rows_are_exactly_the_pairs_the_clean_stage_must_see(e2e_run):
    ids = [r["id"] for r in e2e_run.raw_rows]
    assert len(ids) == len(set(ids)), "a pair was written twice"
    want = {k for k, t in e2e_run.truth.items() if t.stage != "crawl"}
    got = set(ids)
    assert got == want, (sorted(want - got)[:5], sorted(got - want)[:5])
    assert len(ids) == e2e_run.demo.site.expected_raw_rows()


def test_manifest_funnel_equals_the_ground_truth(e2e_run):
    m, site = e2e_run.manifest, e2e_run.demo.site
    expected = site.expected_clean_drops()
    assert m.rows_in == site.expected_raw_rows()
    for reason in sorted(set(m.drops) | set(expected)):
        assert m.drops.get(reason, 0) == expected[reason], (reason, m.drops.get(reason, 0), expected[reason])
    assert m.rows_out == site.expected_kept()
    assert m.rows_in - sum(m.drops.values()) == m.rows_out
    assert sum(m.per_source.values()) == m.rows_out
    kept_per_source = Counter(t.source for t in e2e_run.truth.values() if t.stage is None)
    assert m.per_source == dict(kept_per_source)


def test_every_kept_pair_is_in_the_shards_with_truth_caption_and_credit(e2e_run):
    rows = {r["key"]: r for r in e2e_run.rows}
    assert len(rows) == len(e2e_run.rows), "duplicate keys in the shards"
    kept = {k: t for k, t in e2e_run.truth.items() if t.stage is None}
    assert set(rows) == set(kept), (sorted(set(kept) - set(rows))[:5], sorted(set(rows) - set(kept))[:5])
    wrong = []
    for key, t in kept.items():
        r = rows[key]
        got = (r["caption"], r["caption_origin"], r["credit"], r["lang"], r["source"], r["source_kind"],
               r["page_url"], r["image_url"])
        want = (t.caption, t.caption_origin, t.credit, t.lang, t.source, t.source_kind, t.page_url, t.image_url)
        if got != want:
            wrong.append((t.trouble, got, want))
    assert not wrong, wrong[:5]
    # the planted repairs really travelled through both stages
    troubles = Counter(t.trouble for t in kept.values())
    assert troubles["mojibake"] and troubles["entity"] and troubles["credit"], troubles


def test_every_dropped_row_is_audited_with_its_truth_reason(e2e_run):
    audit = {r["id"]: r["reason"] for r in e2e_run.rejected}
    assert len(audit) == len(e2e_run.rejected), "a row was rejected twice"
    want = {k: t.reason for k, t in e2e_run.truth.items() if t.stage == "clean"}
    wrong = {k: (audit.get(k), v, e2e_run.truth[k].trouble) for k, v in want.items() if audit.get(k) != v}
    assert not wrong, list(wrong.values())[:5]
    assert set(audit) == set(want)


def test_each_duplicate_group_keeps_its_truth_row_and_nothing_distinct_is_merged(e2e_run):
    truth = e2e_run.truth
    groups: dict[int, list[str]] = defaultdict(list)
    for key, t in truth.items():
        if t.stage != "crawl" and (t.stage is None or t.reason in DUPLICATES):
            groups[t.dup_group].append(key)
    planted = {g: keys for g, keys in groups.items() if len(keys) > 1}
    assert planted, "the demo site planted no duplicates"
    kept_by_group: dict[int, list[str]] = defaultdict(list)
    for r in e2e_run.rows:
        kept_by_group[truth[r["key"]].dup_group].append(r["key"])
    for group, keys in planted.items():
        winner = [k for k in keys if truth[k].stage is None]
        assert kept_by_group[group] == winner, (group, kept_by_group[group], winner)
    # clusters: one per kept row, every copy in its original's cluster, never two pictures in one cluster
    cluster_of = {r["key"]: r["dup_cluster"] for r in e2e_run.rows}
    assert len(set(cluster_of.values())) == len(cluster_of)
    cluster_of.update({r["id"]: r["dup_cluster"] for r in e2e_run.rejected if r["reason"] in DUPLICATES})
    groups_in_cluster: dict[str, set[int]] = defaultdict(set)
    for key, cluster in cluster_of.items():
        groups_in_cluster[cluster].add(truth[key].dup_group)
    merged = {c: g for c, g in groups_in_cluster.items() if len(g) > 1}
    assert not merged, f"distinct pictures merged into one cluster: {merged}"
    for group, keys in planted.items():
        assert len({cluster_of[k] for k in keys}) == 1, f"copies of group {group} split over clusters"


def test_dataset_verifies(e2e_run):
    report = verify_dataset(e2e_run.clean)
    assert report.ok, [str(p) for p in report.problems][:10]
    assert {r["split"] for r in e2e_run.rows} <= {"train", "val"}
