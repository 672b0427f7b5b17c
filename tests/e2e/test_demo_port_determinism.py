"""Two demo runs, each on its own random port, give the same dataset and the same eval numbers (#19: the split
followed URLs that carry the port: 141/32 one run, 135/38 the next, and another R@1).

Shards are equal byte for byte in every column but the two that record the crawl itself: the URLs (which carry
the port; compared with the base URL taken out) and ``crawled_at`` (the clock).  Same shard names, same row
order, same keys, splits, clusters, captions and image bytes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from data_schemas import Manifest

pytestmark = pytest.mark.slow  # two whole demo runs (tiny model, few steps)

MMPIPE = str(Path(sys.executable).with_name("mmpipe"))


def _demo(workdir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    done = subprocess.run([MMPIPE, "demo", "--workdir", str(workdir), "--articles", "6", "--steps", "10"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return re.search(r"demo site was\s+(http://127\.0\.0\.1:\d+)", done.stdout).group(1)


def _shards(workdir: Path, base: str) -> dict[str, pa.Table]:
    root = workdir / "data" / "clean"
    out = {}
    for shard in Manifest.read(root).shards:
        table = pq.read_table(root / shard.name).drop_columns(["crawled_at"])
        for name in ("page_url", "image_url"):
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, pc.replace_substring(table.column(name), base, "BASE"))
        out[shard.name] = table
    return out


def test_two_demo_runs_on_different_ports_give_the_same_shards_and_eval(tmp_path):
    base_a, base_b = _demo(tmp_path / "a"), _demo(tmp_path / "b")
    assert base_a != base_b, "both runs got the same port: nothing was tested"
    a, b = _shards(tmp_path / "a", base_a), _shards(tmp_path / "b", base_b)
    assert list(a) == list(b) and a
    for name in a:
        assert a[name].equals(b[name]), name
        assert a[name].column("key").to_pylist() == sorted(a[name].column("key").to_pylist())  # key order
    ma, mb = (Manifest.read(w / "data" / "clean") for w in (tmp_path / "a", tmp_path / "b"))
    assert ma.per_split == mb.per_split and [s.rows for s in ma.shards] == [s.rows for s in mb.shards]
    eval_a, eval_b = (json.loads((w / "runs" / "demo" / "eval.json").read_text())["model"]
                      for w in (tmp_path / "a", tmp_path / "b"))
    assert eval_a == eval_b
