"""A takedown stays taken down: after `pipeline.tools.takedown`, neither a re-crawl into the same output (with the
dataset's blocklist) nor a fresh crawl into a new directory (without it) followed by an incremental clean brings
the removed rows back, and nothing else changes.

The selection names no domain: two image URLs (a news picture whose page keeps another picture, and a Mastodon
picture) and the sha256 of a picture that also lives, byte for byte, under other URLs (a planted exact duplicate
group), so the clean stage's sha256 match is what must stop those copies.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crawlers.stage import crawl, read_summary
from data_schemas import Blocklist, Manifest
from data_schemas import reasons as R
from pipeline.clean import clean
from pipeline.tools import TakedownRequest, takedown, verify_dataset
from tests.e2e.e2e_lib import PipelineRun, clean_config, copy_run, crawl_config, read_clean, read_raw

pytestmark = pytest.mark.slow


@dataclass
class TakenDown:
    base: Path  # raw/ and clean/ right after the takedown; each test works on its own copy
    urls: list[str]
    sha256: str
    removed: set[str]  # keys
    copies: set[str]  # keys of the exact copies (dropped as duplicates) of the sha256-selected picture
    remaining: set[str]


def _pick(run: PipelineRun) -> tuple[list[str], dict]:
    """Two image URLs and one row whose bytes are planted under other URLs too, all kept rows."""
    truth, rows = run.truth, sorted(run.rows, key=lambda r: r["key"])
    members: dict[int, list] = defaultdict(list)
    for t in truth.values():
        if t.stage != "crawl":
            members[t.dup_group].append(t)
    single = [r for r in rows if len(members[truth[r["key"]].dup_group]) == 1]
    per_page = Counter(r["page_url"] for r in rows)
    news = next(r for r in single if r["source_kind"] == "news" and per_page[r["page_url"]] > 1)
    social = next(r for r in single if r["source_kind"] == "mastodon")

    def exact_copies(r: dict) -> int:
        group = members[truth[r["key"]].dup_group]
        return -1 if any(t.reason == R.DUPLICATE_NEAR for t in group) else len(group) - 1

    by_sha = max(rows, key=exact_copies)
    assert exact_copies(by_sha) >= 1, "the demo site planted no exact-duplicate group"
    return [news["image_url"], social["image_url"]], by_sha


@pytest.fixture(scope="module")
def taken_down(e2e_run: PipelineRun, tmp_path_factory) -> TakenDown:
    base = tmp_path_factory.mktemp("takedown")
    _raw, dataset = copy_run(e2e_run.raw, e2e_run.clean, base)
    urls, by_sha = _pick(e2e_run)
    before = {r["key"] for r in read_clean(dataset)}
    result = takedown(dataset, TakedownRequest(urls=urls, sha256=[by_sha["sha256"]], reason="e2e takedown test"))
    removed = {r["key"] for r in e2e_run.rows if r["image_url"] in urls} | {by_sha["key"]}
    group = e2e_run.truth[by_sha["key"]].dup_group
    copies = {k for k, t in e2e_run.truth.items() if t.dup_group == group and t.reason == R.DUPLICATE_EXACT}
    assert result.rows_removed == 3 and set(result.keys) == removed
    return TakenDown(base=base, urls=urls, sha256=by_sha["sha256"], removed=removed, copies=copies,
                     remaining=before - removed)


def _private_copy(td: TakenDown, dest: Path) -> tuple[Path, Path]:
    return copy_run(td.base / "raw", td.base / "clean", dest)


def _assert_still_taken_down(td: TakenDown, dataset: Path) -> None:
    rows = read_clean(dataset)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "duplicate keys in the dataset"
    back = set(keys) & (td.removed | td.copies)
    assert not back, f"taken-down rows came back: {sorted(back)}"
    assert not [r for r in rows if r["sha256"] == td.sha256], "the taken-down picture came back under another key"
    assert not [r for r in rows if r["image_url"] in td.urls]
    assert set(keys) == td.remaining, (sorted(td.remaining - set(keys))[:5], sorted(set(keys) - td.remaining)[:5])
    manifest = Manifest.read(dataset)
    assert manifest.rows_out == len(td.remaining)
    assert manifest.rows_in - sum(manifest.drops.values()) == manifest.rows_out
    report = verify_dataset(dataset)
    assert report.ok, [str(p) for p in report.problems][:10]


def test_takedown_removes_the_selection_and_records_it(taken_down):
    dataset = taken_down.base / "clean"
    _assert_still_taken_down(taken_down, dataset)
    blocklist = Blocklist.load(dataset)
    assert all(blocklist.blocks_url(u) for u in taken_down.urls)
    assert blocklist.blocks_sha256(taken_down.sha256)
    assert not blocklist.domains, "a domain-less request must not block whole domains"
    assert Manifest.read(dataset).drops[R.BLOCKLISTED] == 3


def test_recrawl_into_the_same_output_with_the_blocklist(taken_down, e2e_run, dask_address, tmp_path):
    demo = e2e_run.demo
    raw, dataset = _private_copy(taken_down, tmp_path)
    old_files = {p.name for p in raw.glob("*.parquet")}
    blocked_paths = {urlsplit(t.image_url).path for k, t in e2e_run.truth.items() if k in taken_down.removed}
    pages = {urlsplit(t.page_url).path for k, t in e2e_run.truth.items()
             if k in taken_down.removed and t.source_kind == "news"}
    before = demo.request_paths
    # not incremental: every page is fetched again, so the blocklist (not the seen-page store) must do the work
    crawl(crawl_config(demo, raw, blocklist=dataset / "_blocklist.jsonl", incremental=False))
    fetched = demo.request_paths - before
    assert pages and all(fetched[p] for p in pages), "the re-crawl did not visit the pages again"
    assert not [p for p in blocked_paths if fetched[p]], "a blocklisted image was fetched"
    assert read_summary(raw)["overall"]["drops"].get(R.BLOCKLISTED_URL) == len(taken_down.removed)
    new_files = sorted(p for p in raw.glob("*.parquet") if p.name not in old_files)
    assert not {r["id"] for r in read_raw(new_files)} & taken_down.removed
    clean(clean_config(raw, dataset, scheduler=dask_address))
    _assert_still_taken_down(taken_down, dataset)


def test_fresh_crawl_without_blocklist_then_incremental_clean(taken_down, e2e_run, dask_address, tmp_path):
    _raw, dataset = _private_copy(taken_down, tmp_path)
    fresh = crawl(crawl_config(e2e_run.demo, tmp_path / "fresh-raw"))
    raw_ids = {r["id"] for r in read_raw(fresh)}
    assert taken_down.removed | taken_down.copies <= raw_ids, "the fresh crawl must find the pictures again"
    clean(clean_config(fresh, dataset, scheduler=dask_address))
    _assert_still_taken_down(taken_down, dataset)
    run = Manifest.read(dataset).extra["runs"][-1]
    assert run["rows_out"] == 0
    assert run["drops"] == _expected_second_run_drops(taken_down, e2e_run)


def _expected_second_run_drops(td: TakenDown, run: PipelineRun) -> dict[str, int]:
    """The funnel of an incremental clean of a complete re-crawl: taken-down pictures (by URL, or by the stored
    bytes' sha256 for the exact copies under other URLs) are blocklisted, every other picture already in the
    dataset is a duplicate of the previous run, and every other drop repeats its reason."""
    drops: Counter = Counter()
    for key, t in run.truth.items():
        if t.stage == "crawl":
            continue
        if key in td.removed or key in td.copies:
            drops[R.BLOCKLISTED] += 1
        elif t.stage is None or t.reason in (R.DUPLICATE_EXACT, R.DUPLICATE_NEAR):
            drops[R.DUPLICATE_PREVIOUS_RUN] += 1
        else:
            drops[t.reason] += 1
    return dict(drops)


def test_near_copies_of_taken_down_pictures_stay_out(e2e_run, dask_address, tmp_path):
    """A near copy (re-encoded, resized, cropped; other URL, other bytes) of a taken-down picture matches neither
    the URL nor the sha256 on the blocklist: the dedup index keeps the removed row as a tombstone so it stops it."""
    _raw, dataset = copy_run(e2e_run.raw, e2e_run.clean, tmp_path / "copy")
    groups: dict[int, list] = defaultdict(list)
    for key, t in e2e_run.truth.items():
        groups[t.dup_group].append((key, t))
    kept = {r["key"]: r for r in read_clean(dataset)}
    winner = next(kept[k] for k in sorted(kept)
                  if any(t.reason == R.DUPLICATE_NEAR for _, t in groups[e2e_run.truth[k].dup_group]))
    group_keys = {k for k, _ in groups[e2e_run.truth[winner["key"]].dup_group]}
    takedown(dataset, TakedownRequest(urls=[winner["image_url"]], reason="near-copy test"))
    fresh = crawl(crawl_config(e2e_run.demo, tmp_path / "fresh-raw"))
    assert group_keys <= {r["id"] for r in read_raw(fresh)}, "the fresh crawl must find the near copies again"
    clean(clean_config(fresh, dataset, scheduler=dask_address))
    back = {r["key"] for r in read_clean(dataset)} & group_keys
    assert not back, f"near copies of a taken-down picture came back: {sorted(back)}"
    assert verify_dataset(dataset).ok
