"""takedown: exactly the matching rows go; manifest, index, log and blocklist stay consistent; crashes resume."""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json

import pyarrow.parquet as pq
import pytest

from data_schemas import Blocklist, Manifest
from pipeline.tools import TakedownRequest, ToolError, takedown, verify_dataset
from tests.tools.tools_data import REJECTED_BYTES, read_all

takedown_module = importlib.import_module("pipeline.tools.takedown")  # the package's `takedown` is the function


def _keys(path) -> set[str]:
    return set(read_all(path).column("key").to_pylist())


def _check_consistent(ds, removed: set[str]) -> Manifest:
    """Removed rows are gone everywhere, everything else is untouched, and verify agrees."""
    all_keys = {r["key"] for r in ds.rows}
    assert _keys(ds.path) == all_keys - removed
    # removed rows stay in the dedup index as tombstones, so later near copies of them are dropped
    assert set(pq.read_table(ds.path / "_index" / "phash.pq").column("key").to_pylist()) == all_keys
    rep = verify_dataset(ds.path)
    assert rep.ok, [str(p) for p in rep.problems]
    m = Manifest.read(ds.path)
    kept = [r for r in ds.rows if r["key"] not in removed]
    assert m.rows_out == len(kept) and m.extra["takedown"] == len(removed)
    assert m.per_source == {s: n for s in {r["source"] for r in kept} if (n := sum(r["source"] == s for r in kept))}
    assert m.per_split == {s: n for s in ("train", "val") if (n := sum(r["split"] == s for r in kept))}
    return m


def test_by_url_page_and_image(clean_ds):
    a, b = clean_ds.rows[4], clean_ds.rows[7]
    res = takedown(clean_ds.path, TakedownRequest(urls=[a["page_url"], b["image_url"]], reason="DMCA #1"))
    assert set(res.keys) == {a["key"], b["key"]} and res.rows_removed == 2
    _check_consistent(clean_ds, {a["key"], b["key"]})
    log = [json.loads(line) for line in (clean_ds.path / "_takedowns.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["rows_removed"] == 2 and set(log[0]["keys"]) == {a["key"], b["key"]}
    assert log[0]["request"]["urls"] == [a["page_url"], b["image_url"]] and log[0]["request"]["reason"] == "DMCA #1"
    assert log[0]["time"]


def test_by_domain_includes_subdomains_only(clean_ds):
    # news-a.test covers www.news-a.test (pages) and cdn.news-a.test (images), but "a.test" must not match it
    assert takedown(clean_ds.path, TakedownRequest(domains=["a.test"])).rows_removed == 0
    res = takedown(clean_ds.path, TakedownRequest(domains=["NEWS-A.test."]))
    expected = {r["key"] for r in clean_ds.by(source="news-a")}
    assert set(res.keys) == expected and len(expected) == 12
    m = _check_consistent(clean_ds, expected)
    assert "news-a" not in m.per_source
    assert m.drops["blocklisted"] == 12 and m.rows_in - sum(m.drops.values()) == m.rows_out


def test_by_sha256_and_empty_shard_is_dropped(clean_ds):
    val = clean_ds.shards["shards/val-00000.parquet"]
    res = takedown(clean_ds.path, TakedownRequest(sha256=[r["sha256"].upper() for r in val]))
    assert set(res.keys) == {r["key"] for r in val}
    assert res.shards_removed == ["shards/val-00000.parquet"]
    assert not (clean_ds.path / "shards" / "val-00000.parquet").exists()
    m = _check_consistent(clean_ds, {r["key"] for r in val})
    assert [s.name for s in m.shards] == ["shards/train-00000.parquet", "shards/train-00001.parquet",
                                          "shards/train-00002.parquet"]


def test_by_file_autodetects_and_rewrites_keep_row_groups(clean_ds, tmp_path):
    r1, r2 = clean_ds.rows[1], clean_ds.rows[2]
    listing = tmp_path / "takedown.txt"
    listing.write_text(f"# complaint 2024-05-03\n{r1['sha256']}\n\n{r2['page_url']}  from the author\n"
                       "bsky.test\n")  # cdn.bsky.test hosts every bluesky image
    req = TakedownRequest.from_lines(listing.read_text().splitlines(), reason="privacy", file=str(listing))
    assert (req.sha256, req.urls, req.domains) == ([r1["sha256"]], [r2["page_url"]], ["bsky.test"])
    res = takedown(clean_ds.path, req)
    expected = {r1["key"]} | {r["key"] for r in clean_ds.by(source="bluesky")}  # r2 is a bluesky row too
    assert set(res.keys) == expected
    _check_consistent(clean_ds, expected)
    pf = pq.ParquetFile(clean_ds.path / "shards" / "train-00000.parquet")
    assert pf.metadata.row_group(0).num_rows == 4  # the clean stage's row-group size is kept
    assert pf.schema_arrow.metadata[b"mmpipe.schema"] == b"clean"


def test_blocklist_and_log_are_appended(clean_ds):
    a, b = clean_ds.rows[10], clean_ds.rows[11]
    takedown(clean_ds.path, TakedownRequest(urls=[a["page_url"]], reason="first"))
    takedown(clean_ds.path, TakedownRequest(sha256=[b["sha256"]], reason="second"))
    assert len((clean_ds.path / "_takedowns.jsonl").read_text().splitlines()) == 2
    lines = [json.loads(x) for x in (clean_ds.path / "_blocklist.jsonl").read_text().splitlines()]
    assert {x["reason"] for x in lines} == {"first", "second"} and all(x["added_at"] for x in lines)
    bl = Blocklist.load(clean_ds.path)
    # what a later crawl / clean asks: the requested page, each removed image URL and image hash are blocked
    assert bl.blocks_url(a["page_url"]) and bl.blocks_url(a["image_url"]) and bl.blocks_url(b["image_url"])
    assert bl.blocks_sha256(a["sha256"]) and bl.blocks_sha256(b["sha256"])
    assert not bl.blocks_url(clean_ds.rows[12]["image_url"]) and not bl.blocks_url(b["page_url"])
    # asking again adds no duplicate entries, and removes nothing more
    before = len(lines)
    assert takedown(clean_ds.path, TakedownRequest(urls=[a["page_url"]])).rows_removed == 0
    assert len((clean_ds.path / "_blocklist.jsonl").read_text().splitlines()) == before


def test_dry_run_writes_nothing(clean_ds):
    before = {p: p.read_bytes() for p in clean_ds.path.rglob("*") if p.is_file()}
    res = takedown(clean_ds.path, TakedownRequest(domains=["social.example"]), dry_run=True)
    assert res.dry_run and res.rows_removed == 12
    after = {p: p.read_bytes() for p in clean_ds.path.rglob("*") if p.is_file()}
    assert after == before


def test_waits_for_a_running_clean(clean_ds):
    """The clean stage holds `.<name>.lock` beside the dataset while it writes; a takedown must not interleave."""
    with open(clean_ds.path.parent / f".{clean_ds.path.name}.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ToolError, match="a clean run or another takedown"):
            takedown(clean_ds.path, TakedownRequest(domains=["news-a.test"]))
    assert takedown(clean_ds.path, TakedownRequest(domains=["news-a.test"])).rows_removed == 12


def test_interrupted_takedown_resumes(clean_ds, monkeypatch):
    target = {r["key"] for r in clean_ds.by(source="mastodon")}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed after the shards were rewritten")

    monkeypatch.setattr(takedown_module, "_update_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        takedown(clean_ds.path, TakedownRequest(domains=["social.example"]))
    assert Blocklist.load(clean_ds.path).blocks_url("https://social.example/@x/1")  # blocklisted before anything
    rep = verify_dataset(clean_ds.path)
    assert not rep.ok and any("interrupted takedown" in p.message for p in rep.problems)
    monkeypatch.undo()
    res = takedown(clean_ds.path, TakedownRequest())  # = `mmpipe takedown DATASET --resume`
    assert res.rows_removed == len(target) and set(res.keys) == target
    assert takedown(clean_ds.path, TakedownRequest()).log is None  # nothing pending any more
    _check_consistent(clean_ds, target)
    log = [json.loads(x) for x in (clean_ds.path / "_takedowns.jsonl").read_text().splitlines()]
    assert len(log) == 1 and set(log[0]["keys"]) == target


def test_bad_requests(clean_ds, raw_dir):
    for bad in (dict(urls=["notaurl"]), dict(domains=["http://x.com/a"]), dict(sha256=["abc"])):
        with pytest.raises(ValueError):
            TakedownRequest(**bad)
    with pytest.raises(ToolError, match="CLEAN dataset"):
        takedown(raw_dir[0], TakedownRequest(domains=["news-a.test"]))


def test_rejected_audit_rows_are_purged_too(clean_ds):
    path = clean_ds.path / "_rejected" / "r00000-p000000.pq"
    takedown(clean_ds.path, TakedownRequest(domains=["news-a.test"]))
    assert pq.read_table(path).column("page_url").to_pylist() == ["https://social.example/@x/9",
                                                                  "https://other.test/p"]
    # an original image kept in the audit file is matched by the sha256 of its bytes
    takedown(clean_ds.path, TakedownRequest(sha256=[hashlib.sha256(REJECTED_BYTES).hexdigest()]))
    assert pq.read_table(path).column("page_url").to_pylist() == ["https://other.test/p"]
    log = [json.loads(x) for x in (clean_ds.path / "_takedowns.jsonl").read_text().splitlines()]
    assert [x["rejected_rows_removed"] for x in log] == [1, 1]
    assert verify_dataset(clean_ds.path).ok


def test_crash_after_the_manifest_is_counted_once(clean_ds, monkeypatch):
    target = {r["key"] for r in clean_ds.by(source="bluesky")}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed after the manifest was written")

    monkeypatch.setattr(takedown_module, "_append_log", crash)
    with pytest.raises(KeyboardInterrupt):
        takedown(clean_ds.path, TakedownRequest(domains=["bsky.test"]))
    monkeypatch.undo()
    assert takedown(clean_ds.path, TakedownRequest()).rows_removed == len(target)
    m = _check_consistent(clean_ds, target)  # per-source / per-split / drops not subtracted twice
    assert m.drops["blocklisted"] == len(target)
    assert not (clean_ds.path / "shards" / "val-00000.parquet").exists()  # val was all bluesky: emptied, deleted
