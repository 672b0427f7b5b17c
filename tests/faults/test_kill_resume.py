"""Kill -9 at the named commit points of crawl, clean and takedown (`data_schemas.faults`), run the same command
again, and get exactly what an uninterrupted run gives: the same RAW rows (none missing, none twice), byte-identical
clean shards, index and manifest, the same takedown record.  (Training: tests/training/test_train_resume.py.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from crawlers.stage import CrawlError, crawl_source
from data_schemas import MANIFEST_NAME, TAKEDOWN_PENDING, Manifest, file_sha256
from data_schemas.faults import ENV_AT
from pipeline.clean import clean
from pipeline.config import CleanConfig
from pipeline.tools import TakedownRequest, takedown, verify_dataset
from tests.crawlers.crawl_testlib import LocalSite, article_html, fast_config, raw_rows
from tests.faults.faultlib import dataset_state, points_of, run_killed_at
from tests.pipeline.clean_rawdata import jpeg, photo, raw_row, write_raw
from tests.tools.tools_data import build_clean

pytestmark = pytest.mark.slow


# --- crawl ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site():
    site = LocalSite()
    for i in range(12):
        imgs = [(f"/img/{i}-{k}.jpg", f"The harbour crane number {i} seen from pier {k}") for k in range(2)]
        for k, (src, _) in enumerate(imgs):
            site.add(src, jpeg(photo(2 * i + k, (320, 240))), "image/jpeg")
        site.add(f"/news/{i}.html", article_html(f"Story {i}", imgs))
    site.add("/", "<html><body>" + "".join(f"<a href='/news/{i}.html'>{i}</a>" for i in range(12)) + "</body></html>")
    site.thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()


def _crawl_config(site, out: Path):
    from crawlers.config import SourceConfig

    source = SourceConfig(name="local", kind="news", start_urls=[site.base + "/"], max_depth=1, page_text=False)
    return fast_config([source], out, rows_per_file=4, per_domain_concurrency=2)


def _rows(out: Path) -> dict[str, dict]:
    rows = raw_rows(out, with_bytes=True)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a row was written twice"
    return {r["id"]: {k: v for k, v in r.items() if k != "crawled_at"} for r in rows}


@pytest.fixture(scope="module")
def straight_crawl(site, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("straight") / "raw"
    crawl_source(_crawl_config(site, out), "local")
    return _rows(out)


@pytest.mark.parametrize("point", ["publish:local-*-00002.parquet", "published:local-*-00002.parquet",
                                   "crawl.committed:local-*-00002.parquet"])
def test_crawl_killed_at_a_commit_resumes_to_the_uninterrupted_rows(site, straight_crawl, tmp_path, monkeypatch,
                                                                     point):
    config = _crawl_config(site, tmp_path / "raw")
    monkeypatch.setenv(ENV_AT, point)  # read by the source process only
    with pytest.raises(CrawlError, match="exit status -9"):
        crawl_source(config, "local")
    monkeypatch.delenv(ENV_AT)
    left = list(config.out.glob(".*.tmp"))
    assert bool(left) == point.startswith("publish:"), "the killed writer's temporary file"
    crawl_source(config, "local")  # the same command again
    assert _rows(config.out) == straight_crawl, "rows missing, doubled or different after the resume"
    assert not list(config.out.glob(".*.tmp")), "the killed crawl's temporary file was left in raw/"


# --- clean ---------------------------------------------------------------------------------------------------
def _raw(tmp: Path) -> tuple[Path, Path]:
    rows = [raw_row(i, jpeg(photo(i, (400, 300))), f"A view of the river bank number {i} at noon") for i in range(24)]
    rows.append(raw_row(90, jpeg(photo(3, (400, 300))), "The same river bank again, photographed at noon"))
    return write_raw(tmp / "raw1" / "a.parquet", rows[:12]).parent, write_raw(tmp / "raw2" / "b.parquet",
                                                                             rows[12:]).parent


def _clean_script(raw: Path, out: Path, scheduler: str, *, fallback: bool = False) -> str:
    patch = "import pipeline.dataset as d; d._exchange = lambda a, b: False; " if fallback else ""
    return (f"{patch}from pipeline.clean import clean; from pipeline.config import CleanConfig; "
            f"clean(CleanConfig(raw={str(raw)!r}, out={str(out)!r}, scheduler={scheduler!r}, progress=False, "
            "write_rejected=True))")


def two_runs(tmp: Path, dask_address: str) -> tuple[Path, Path, Path, Path]:
    """(raw1, raw2, the dataset after run 1, the dataset after an uninterrupted run 2)."""
    raw1, raw2 = _raw(tmp)
    first = tmp / "first" / "ds"
    clean(CleanConfig(raw=raw1, out=first, scheduler=dask_address, progress=False, write_rejected=True))
    straight = tmp / "straight" / "ds"
    shutil.copytree(first, straight)
    clean(CleanConfig(raw=raw2, out=straight, scheduler=dask_address, progress=False, write_rejected=True))
    return raw1, raw2, first, straight


@pytest.fixture(scope="module")
def clean_runs(dask_address, tmp_path_factory):
    """(raw1, raw2, the dataset after run 1, the state after an uninterrupted run 2)."""
    raw1, raw2, first, straight = two_runs(tmp_path_factory.mktemp("clean"), dask_address)
    return raw1, raw2, first, dataset_state(straight)


@pytest.mark.parametrize("point,fallback", [("publish:part-00001.pq", False), ("publish:_manifest.json", False),
                                            ("clean.swap", False), ("clean.merged:*@2", True),
                                            ("clean.merged:manifest", True)])
def test_clean_killed_at_a_commit_resumes_to_byte_identical_shards(clean_runs, dask_address, tmp_path, point,
                                                                    fallback):
    _raw1, raw2, first, expected = clean_runs
    out = tmp_path / "ds"
    shutil.copytree(first, out)
    before = (out / MANIFEST_NAME).read_bytes()
    run_killed_at(_clean_script(raw2, out, dask_address, fallback=fallback), point, cwd=tmp_path)
    # readers always find a complete dataset: the previous one, or (killed after the manifest) the new one
    assert out.is_dir() and (out / MANIFEST_NAME).exists()
    for shard in Manifest.read(out).shards:
        assert file_sha256(out / shard.name) == shard.sha256, shard.name
    if point != "clean.merged:manifest":
        assert (out / MANIFEST_NAME).read_bytes() == before
    clean(CleanConfig(raw=raw2, out=out, scheduler=dask_address, progress=False, write_rejected=True))
    assert dataset_state(out) == expected
    assert verify_dataset(out).ok and not list(tmp_path.glob(".ds.tmp-*")) + list(tmp_path.glob(".ds.old-*"))


# --- takedown ------------------------------------------------------------------------------------------------
def _takedown_script(path: Path) -> str:
    return ("from pipeline.tools import TakedownRequest, takedown; "
            f"takedown({str(path)!r}, TakedownRequest(domains=['news-a.test'], reason='kill test'))")


def _takedown_state(root: Path) -> dict:
    state = dataset_state(root)
    state["blocklist"] = [line.split('"added_at"')[0] for line in (root / "_blocklist.jsonl").read_text().splitlines()]
    state["log"] = [{k: v for k, v in rec.items() if k not in ("time", "id")}
                    for rec in map(json.loads, (root / "_takedowns.jsonl").read_text().splitlines())]
    return state


def test_takedown_killed_at_each_point_resumes_to_the_uninterrupted_result(tmp_path):
    built = build_clean(tmp_path / "template" / "ds")
    straight = tmp_path / "straight" / "ds"
    shutil.copytree(built.path, straight)
    points = points_of(_takedown_script(straight), cwd=tmp_path, log=tmp_path / "points.log")
    expected = _takedown_state(straight)
    assert {"publish:_takedown-pending.json", "publish:_blocklist.jsonl", "publish:_manifest.json",
            "publish:_takedowns.jsonl", "takedown.logged"} <= set(points)
    assert any(p.startswith("publish:train-") for p in points)
    for n, point in enumerate(points):
        ds = tmp_path / f"k{n}" / "ds"
        shutil.copytree(built.path, ds)
        run_killed_at(_takedown_script(ds), point, cwd=tmp_path)
        blocklist = ds / "_blocklist.jsonl"
        assert not blocklist.exists() or blocklist.read_bytes().endswith(b"\n"), f"{point}: a cut blocklist line"
        if (ds / TAKEDOWN_PENDING).exists():
            assert not verify_dataset(ds).ok, f"{point}: verify must report the pending takedown"
            takedown(ds, TakedownRequest())  # `mmpipe takedown DATASET --resume`, as verify says
        else:  # killed before it started: the takedown is simply asked for again
            takedown(ds, TakedownRequest(domains=["news-a.test"], reason="kill test"))
        assert _takedown_state(ds) == expected, point
        assert verify_dataset(ds).ok, point


@pytest.mark.parametrize("point", ["publish:_manifest.json", "takedown.logged"])
def test_a_takedown_killed_before_a_clean_is_finished_first_and_counted_once(clean_runs, dask_address, tmp_path,
                                                                             point):
    """Issue 16, defect 1: a clean run after an interrupted takedown (killed before or after its manifest) finishes
    the takedown first, keeps its count, and `takedown --resume` then counts nothing twice."""
    _raw1, raw2, first, _ = clean_runs
    urls = [u for u in _image_urls(first) if u.endswith(("/img/0.jpg", "/img/4.jpg"))]
    assert len(urls) == 2
    request = TakedownRequest(urls=urls, reason="defect 1")
    script = ("from pipeline.tools import TakedownRequest, takedown; "
              f"takedown({str(tmp_path / 'ds')!r}, TakedownRequest(urls={urls!r}, reason='defect 1'))")
    straight, ds = tmp_path / "straight" / "ds", tmp_path / "ds"
    for path in (straight, ds):
        shutil.copytree(first, path)
    takedown(straight, request)
    clean(CleanConfig(raw=raw2, out=straight, scheduler=dask_address, progress=False, write_rejected=True))

    run_killed_at(script, point, cwd=tmp_path)
    clean(CleanConfig(raw=raw2, out=ds, scheduler=dask_address, progress=False, write_rejected=True))
    assert not (ds / TAKEDOWN_PENDING).exists(), "the clean run left the takedown pending (or copied its file)"
    takedown(ds, TakedownRequest())  # --resume: nothing left to do, nothing counted again
    report = verify_dataset(ds)
    assert report.ok, [str(p) for p in report.problems]
    manifest = Manifest.read(ds)
    assert manifest.extra["takedown"] == 2 and manifest.drops["blocklisted"] == 2
    assert dataset_state(ds) == dataset_state(straight)


def _image_urls(dataset: Path) -> list[str]:
    return [u for s in Manifest.read(dataset).shards
            for u in pq.read_table(dataset / s.name, columns=["image_url"]).column("image_url").to_pylist()]
