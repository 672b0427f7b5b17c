"""Scaling curves: crawl -> clean of the demo news site at several sizes, time per image and peak memory per stage.

    python benchmarks/bench_scale.py                          # 1,000 / 5,000 / 20,000 articles
    python benchmarks/bench_scale.py --sizes 500,2000,5000    # what a loaded 2-core machine affords

For each size: the demo site (crawlers.demo, small photos, the usual planted trouble) is served from its own
process; the real crawl stage crawls it (sitemap -> articles -> images -> RAW Parquet, 1 process); the real clean
stage cleans the RAW files twice, on its own LocalCluster (2 worker processes) and on a multi-process cluster
started here (`dask scheduler` + 2 `dask worker` processes, 1 thread each) by address.  Printed per stage: wall
time per image (crawl: per image fetched; clean: per RAW row) and peak RSS of this process plus every descendant
(the crawl process, the Dask workers and scheduler; never the site's server), sampled every 0.1 s with psutil.
Targets (issue 20): time per image flat within 20% across sizes, peak RSS at 20x the data <= 1.2x the smallest's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


def log(msg: str) -> None:
    print(f"[bench_scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class PeakRss:
    """Peak of the summed RSS of this process and its descendants, except `exclude` (the site's server)."""

    def __init__(self, exclude: set[int]):
        self.exclude, self.peak, self._stop = exclude, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            if proc.pid in self.exclude:
                continue
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.1)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _serve(articles: int, port_box, ready) -> None:
    from crawlers.demo import running_demo_site

    with running_demo_site(articles=articles, seed=0, photo_size="small") as site:
        port_box.value = int(site.base_url.rsplit(":", 1)[1])
        ready.set()
        threading.Event().wait()


def start_site(articles: int) -> tuple[mp.Process, str]:
    ctx = mp.get_context("spawn")
    port, ready = ctx.Value("i", 0), ctx.Event()
    proc = ctx.Process(target=_serve, args=(articles, port, ready), daemon=True)
    proc.start()
    if not ready.wait(600):
        raise RuntimeError("the demo site did not start")
    return proc, f"http://127.0.0.1:{port.value}"


def start_cluster(work: Path) -> tuple[str, list[subprocess.Popen]]:
    dask = str(Path(sys.executable).with_name("dask"))
    info = work / "scheduler.json"
    info.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "DASK_TEMPORARY_DIRECTORY": str(work / "dask-tmp")}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                               "127.0.0.1:0", "--scheduler-file", str(info)], **quiet)]
    while not info.exists():
        time.sleep(0.2)
    address = json.loads(info.read_text())["address"]
    procs += [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                               cwd=work, **quiet) for _ in range(2)]
    from distributed import Client

    with Client(address) as client:
        client.wait_for_workers(2, timeout=120)
    return address, procs


def run_crawl(base: str, raw: Path) -> dict:
    from crawlers.config import CrawlConfig, SourceConfig
    from crawlers.stage import crawl_source

    shutil.rmtree(raw, ignore_errors=True)
    source = SourceConfig(name="scale", kind="news", sitemaps=[f"{base}/sitemap.xml"], follow_links=False)
    config = CrawlConfig(sources=[source], out=raw, allow_private=True, autothrottle=False, per_domain_concurrency=32,
                         concurrency=32, log_level="WARNING", incremental=False)
    t0 = time.monotonic()
    summary = crawl_source(config, "scale")
    return {"wall_s": time.monotonic() - t0, "images": summary["images"], "rows": summary["rows"]}


def run_clean(raw: Path, out: Path, *, scheduler: str | None) -> dict:
    from data_schemas import Manifest
    from pipeline.clean import clean
    from pipeline.config import CleanConfig

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    clean(CleanConfig(raw=raw, out=out, scheduler=scheduler, n_workers=None if scheduler else 2, progress=False))
    m = Manifest.read(out)
    return {"wall_s": time.monotonic() - t0, "rows_in": m.rows_in, "rows_out": m.rows_out}


def _cpu(pids: set[int]) -> float:
    """CPU seconds of this process, its reaped children (crawl processes, LocalCluster workers) and the live
    processes `pids` (the external cluster's): on a shared, loaded machine CPU per image is the figure that does
    not move with other jobs' load."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def measure(fn, exclude: set[int], *, cpu_of: set[int] = frozenset(), **kw) -> dict:
    c0 = _cpu(cpu_of)
    with PeakRss(exclude) as rss:
        result = fn(**kw)
    result["peak_rss_mb"] = rss.peak / 2**20
    result["cpu_s"] = _cpu(cpu_of) - c0
    return result


def one_size(articles: int, work: Path) -> dict:
    """One size, with a fresh site and a fresh cluster (no memory carried over from a smaller size)."""
    address, procs = start_cluster(work)
    cluster_pids = {p.pid for p in procs} | {c.pid for p in procs for c in psutil.Process(p.pid).children(True)}
    try:
        return _one_size(articles, work, address, cluster_pids)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


def _one_size(articles: int, work: Path, address: str, cluster_pids: set[int]) -> dict:
    site, base = start_site(articles)
    try:
        log(f"{articles} articles: site up at {base}")
        raw = work / f"raw-{articles}"
        crawl = measure(run_crawl, {site.pid} | cluster_pids, base=base, raw=raw)
    finally:
        site.kill()
        site.join()
    crawl["ms_per_image"] = 1000 * crawl["wall_s"] / max(1, crawl["images"])
    crawl["cpu_ms_per_image"] = 1000 * crawl["cpu_s"] / max(1, crawl["images"])
    log(f"  crawl: {crawl['images']} images in {crawl['wall_s']:.1f} s = {crawl['ms_per_image']:.2f} ms/image "
        f"({crawl['cpu_ms_per_image']:.2f} CPU-ms), peak RSS {crawl['peak_rss_mb']:.0f} MB")
    out = {"articles": articles, "crawl": crawl}
    for name, sched, excl in (("clean_local", None, cluster_pids), ("clean_cluster", address, set())):
        res = measure(run_clean, excl, cpu_of=cluster_pids if sched else set(), raw=raw,
                      out=work / f"clean-{articles}-{name}", scheduler=sched)
        res["ms_per_image"] = 1000 * res["wall_s"] / max(1, res["rows_in"])
        res["cpu_ms_per_image"] = 1000 * res["cpu_s"] / max(1, res["rows_in"])
        log(f"  {name}: {res['rows_in']} rows -> {res['rows_out']} in {res['wall_s']:.1f} s = "
            f"{res['ms_per_image']:.2f} ms/row ({res['cpu_ms_per_image']:.2f} CPU-ms), peak RSS "
            f"{res['peak_rss_mb']:.0f} MB")
        out[name] = res
    return out


def report(results: list[dict]) -> dict:
    first, last = results[0], results[-1]
    scale = last["articles"] / first["articles"]
    summary = {}
    stages = ("crawl", "clean_local", "clean_cluster")
    print(f"\n{'articles':>8} | " + " | ".join(f"{s:>13} ms/img CPU-ms  MB" for s in stages))
    for r in results:
        print(f"{r['articles']:>8} | " + " | ".join(
            f"{r[s]['ms_per_image']:>18.2f} {r[s]['cpu_ms_per_image']:>6.2f} {r[s]['peak_rss_mb']:>5.0f}"
            for s in stages))
    for stage in stages:
        times = [r[stage]["ms_per_image"] for r in results]
        cpus = [r[stage]["cpu_ms_per_image"] for r in results]
        summary[stage] = {"time_per_image_max_over_min": max(times) / min(times),
                          "cpu_per_image_max_over_min": max(cpus) / min(cpus),
                          f"peak_rss_at_{scale:g}x_over_1x": last[stage]["peak_rss_mb"] / first[stage]["peak_rss_mb"]}
    summary["cluster_over_local_time"] = [r["clean_cluster"]["wall_s"] / r["clean_local"]["wall_s"] for r in results]
    print(json.dumps(summary, indent=1))
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,5000,20000", help="article counts, comma-separated, smallest first")
    ap.add_argument("--work", type=Path, default=REPO / "bench_out" / "scale")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    results = [one_size(n, args.work) for n in sizes]
    summary = report(results)
    (args.work / "result.json").write_text(json.dumps({"results": results, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
