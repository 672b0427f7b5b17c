"""The clean stage against the demo site's ground truth: funnel, captions, credits, languages, duplicates."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_schemas import Manifest, row_id
from pipeline.clean import clean
from pipeline.config import CleanConfig
from tests.pipeline.clean_demo_raw import write_demo_raw

demo = pytest.importorskip("crawlers.demo")


@pytest.mark.slow
def test_clean_funnel_and_output_equal_the_ground_truth(dask_address, tmp_path: Path) -> None:
    site = demo.generate_site(articles=60, seed=0, photo_size="small")
    rows = write_demo_raw(site, tmp_path / "raw")
    assert len(rows) == site.expected_raw_rows()
    # default filters: every "small" demo photo the truth keeps has a short side >= 200
    out = clean(CleanConfig(raw=tmp_path / "raw", out=tmp_path / "clean", scheduler=dask_address, progress=False))
    m = Manifest.read(out)
    assert m.rows_in == site.expected_raw_rows()
    assert m.drops == dict(site.expected_clean_drops())
    assert m.rows_out == site.expected_kept()

    truth = {row_id(t.page_url, t.image_url): t for t in site.absolute_truth("http://127.0.0.1:8800")}
    kept = pa.concat_tables([pq.read_table(out / s.name) for s in m.shards]).to_pylist()
    expected_keys = {k for k, t in truth.items() if t.stage is None}
    assert {r["key"] for r in kept} == expected_keys
    wrong = []
    for r in kept:
        t = truth[r["key"]]
        got, want = (r["caption"], r["caption_origin"], r["credit"], r["lang"]), (t.caption, t.caption_origin,
                                                                                   t.credit, t.lang)
        if got != want:
            wrong.append((t.trouble, got, want))
    assert not wrong
    # every planted duplicate is gone and no two distinct pictures were merged
    groups = Counter(truth[r["key"]].dup_group for r in kept)
    assert all(n == 1 for n in groups.values())
    clusters = Counter(r["dup_cluster"] for r in kept)
    assert all(n == 1 for n in clusters.values())
