"""A source's shards as tasks on a real Dask cluster: `dask scheduler` and two `dask worker` processes started
here on 127.0.0.1, crawling a URL list whose images live on two hosts of the demo site."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from crawl_testlib import fast_config, raw_rows

from crawlers.config import SourceConfig
from crawlers.stage import crawl_source
from crawlers.urllist import host_shard

REPO = Path(__file__).resolve().parents[2]


def _dask() -> str:
    exe = Path(sys.executable).with_name("dask")
    return str(exe) if exe.exists() else shutil.which("dask") or pytest.fail("the `dask` command is not installed")


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, [worker processes]); everything stopped afterwards."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "DASK_TEMPORARY_DIRECTORY": str(tmp_path / "dask")}
    info = tmp_path / "scheduler.json"
    logs = [open(tmp_path / f"{n}.log", "w") for n in ("scheduler", "worker-a", "worker-b")]  # noqa: SIM115
    procs = [subprocess.Popen([_dask(), "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                               "127.0.0.1:0", "--scheduler-file", str(info)], env=env, stdout=logs[0],
                              stderr=subprocess.STDOUT)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        for log in logs[1:]:
            procs.append(subprocess.Popen([_dask(), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--host", "127.0.0.1", "--no-dashboard"], env=env, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=tmp_path))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def two_host_list(demo, path: Path) -> Path:
    """The demo's news images, every other one through `localhost`: two hosts, one per shard of two."""
    port = urlsplit(demo.base_url).port
    urls = sorted({t.image_url for t in demo.truth if t.source_kind == "news" and t.stage != "crawl"})
    rows = [{"url": u.replace("127.0.0.1", "localhost") if i % 2 else u, "caption": f"c{i}", "n": i}
            for i, u in enumerate(urls)]
    assert {host_shard(f"http://127.0.0.1:{port}/", 2), host_shard(f"http://localhost:{port}/", 2)} == {0, 1}
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_shards_run_once_each_on_two_workers_and_equal_a_single_process_crawl(demo, cluster, tmp_path):
    listed = two_host_list(demo, tmp_path / "list.parquet")
    single = fast_config([SourceConfig(name="list", kind="urls", paths=[str(listed)])], tmp_path / "single")
    crawl_source(single, "list")
    sharded = fast_config([SourceConfig(name="list", kind="urls", paths=[str(listed)], processes=2)],
                          tmp_path / "cluster")
    summary = crawl_source(sharded, "list", scheduler=cluster)
    shard_files = sorted((sharded.state_dir / "summaries" / "shards").glob("list.*.json"))
    shards = [json.loads(p.read_text()) for p in shard_files]
    assert [s["shard"] for s in shards] == ["0of2", "1of2"] and summary["shard"] == "2 processes"
    assert all(s["rows"] > 0 for s in shards) and len(set(summary["workers"])) == 2, summary["workers"]
    for s in shards:  # each shard's crawl process ran once
        assert Path(s["log"]).read_text().count("Spider opened") == 1, s["log"]

    def rows(out):
        return sorted((r["id"], r["image_url"], r["fetch_error"], r["provenance"]) for r in raw_rows(out))

    assert rows(sharded.out) == rows(single.out), "the union of the shards' rows differs from one process's"
    for f in sharded.out.glob("*.parquet"):  # each host fetched by one shard only: its politeness holds
        hosts = {urlsplit(u).hostname for u in pq.read_table(f, columns=["image_url"])["image_url"].to_pylist()}
        assert len(hosts) == 1, f
