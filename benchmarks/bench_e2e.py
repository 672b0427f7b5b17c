"""End to end: crawl + clean of the demo news site into 256-px shards, against img2dataset on the same image URLs.

    python benchmarks/bench_e2e.py                    # the 5,000-article bench site (~14,000 images of ~120 KB)
    python benchmarks/bench_e2e.py --articles 1000    # a quicker run
    python benchmarks/bench_e2e.py --articles 1000 --repeats 3   # medians of 3 interleaved runs
    python benchmarks/bench_e2e.py --skip-img2dataset

Ours: the real crawl stage (sitemap -> every article page fetched and parsed -> every image fetched and sniffed ->
RAW Parquet), then the real clean stage on a LocalCluster (caption cleaning and filters, decode, pHash, exact and
near dedup, resize to 256 px on the largest side, JPEG q90, train/val split, Parquet shards + manifest).
Theirs: img2dataset 1.47.0 fetching the same image URLs (our RAW rows' `image_url`, in crawl order), resizing
(`--resize_mode keep_ratio --image_size 256`, JPEG q90) and writing Parquet shards: no page fetching, no text, no
dedup.  Both run in this process's session against the same nginx, one after the other.

Everything except the timing is borrowed from bench_crawl.py: the cached static export of the site under
bench_out/crawl/, nginx, the img2dataset venv, the crawl itself and the URL list.  Our outputs go to bench_out/e2e/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

import bench_crawl as bc  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench_e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_s() -> float:
    """CPU seconds of this process and its reaped children (crawl processes, Dask workers, img2dataset): on a
    machine shared with other jobs, CPU per image is the number that does not depend on the load."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_clean(raw: Path, out: Path, *, image_size: int, workers: int | None) -> tuple[dict, float]:
    from data_schemas import Manifest
    from pipeline.clean import clean
    from pipeline.config import CleanConfig

    shutil.rmtree(out, ignore_errors=True)
    cfg = CleanConfig(raw=raw, out=out, image_size=image_size, resize_mode="keep_ratio_largest", n_workers=workers,
                      progress=False)
    log(f"our clean: {cfg.workers} Dask workers, {image_size} px (keep_ratio_largest), dedup, Parquet shards")
    t0, c0 = time.monotonic(), cpu_s()
    clean(cfg)
    wall = time.monotonic() - t0
    m = Manifest.read(out)
    return {"rows_in": m.rows_in, "rows_out": m.rows_out, "drops": m.drops, "shards": len(m.shards),
            "bytes": sum(s.bytes for s in m.shards), "clean_cpu_s": cpu_s() - c0}, wall


def run_ours(base: str, work: Path, *, concurrency: int, processes: int, image_size: int,
             workers: int | None) -> dict:
    t0, c0 = time.monotonic(), cpu_s()
    summary, crawl_wall, raw = bc.run_ours(base, work, concurrency=concurrency, processes=processes)
    crawl_cpu = cpu_s() - c0
    if summary.get("errors"):
        log(f"crawl errors: {summary['errors']}")
    cleaned, clean_wall = run_clean(raw, work / "clean", image_size=image_size, workers=workers)
    total = time.monotonic() - t0
    ours = {"pages": summary["pages"], "images_fetched": summary["images"], "raw_rows": summary["rows"],
            "image_mb": summary["image_bytes"] / 1e6, **cleaned, "crawl_s": crawl_wall, "clean_s": clean_wall,
            "total_s": total, "crawl_images_per_s": summary["images"] / crawl_wall,
            "clean_images_per_s": cleaned["rows_in"] / clean_wall, "images_per_s": cleaned["rows_out"] / total,
            "crawl_cpu_s": crawl_cpu, "cpu_ms_per_image": 1000 * (crawl_cpu + cleaned["clean_cpu_s"])
            / max(1, cleaned["rows_out"])}
    log(f"ours: crawl {ours['pages']} pages + {ours['images_fetched']} images in {crawl_wall:.1f} s "
        f"({ours['crawl_images_per_s']:.0f} images/s); clean {ours['rows_in']} rows -> {ours['rows_out']} in "
        f"{clean_wall:.1f} s ({ours['clean_images_per_s']:.0f} images/s); drops {ours['drops']}")
    log(f"ours end to end: {ours['rows_out']} images in shards in {total:.1f} s = {ours['images_per_s']:.0f} "
        f"images/s; CPU {crawl_cpu:.0f} s crawl + {cleaned['clean_cpu_s']:.0f} s clean = "
        f"{ours['cpu_ms_per_image']:.0f} CPU-ms/image")
    return ours


def run_img2dataset(exe: Path, urls: list[str], work: Path, *, image_size: int, resize_mode: str,
                    output_format: str) -> dict | None:
    url_file = work / "i2d-urls.txt"
    url_file.write_text("\n".join(urls) + "\n")
    out = work / "i2d-out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(exe), "--url_list", str(url_file), "--input_format", "txt", "--output_folder", str(out),
           "--output_format", output_format, "--processes_count", "2", "--thread_count", "32",
           "--number_sample_per_shard", "500", "--resize_mode", resize_mode, "--image_size", str(image_size),
           "--encode_quality", "90", "--timeout", "30", "--retries", "0", "--enable_wandb", "False",
           "--distributor", "multiprocessing"]
    log(f"img2dataset {bc.I2D_VERSION}: {len(urls)} URLs, 2 processes x 32 threads, --resize_mode {resize_mode} "
        f"--image_size {image_size}, {output_format} output")
    t0, c0 = time.monotonic(), cpu_s()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall, cpu = time.monotonic() - t0, cpu_s() - c0
    if res.returncode != 0:
        log(f"img2dataset failed ({res.returncode}): {res.stderr[-800:]}")
        return None
    stats = [json.loads(p.read_text()) for p in out.glob("*_stats.json")]
    ok = sum(s.get("successes", 0) for s in stats)
    failed = sum(s.get("failed_to_download", 0) + s.get("failed_to_resize", 0) for s in stats)
    log(f"img2dataset: {ok} images in {wall:.1f} s = {ok / wall:.0f} images/s ({failed} failed); CPU {cpu:.0f} s = "
        f"{1000 * cpu / max(1, ok):.0f} CPU-ms/image")
    return {"images": ok, "failed": failed, "wall_s": wall, "images_per_s": ok / wall, "cpu_s": cpu,
            "cpu_ms_per_image": 1000 * cpu / max(1, ok)}


def serve(site_dir: Path, port: int, work: Path, *, install: bool):
    """nginx over the static export (bench_crawl's), or the slow Python server when nginx is unavailable."""
    nginx = bc.start_nginx(site_dir, port, work, install=install)
    if nginx is not None:
        return nginx, None, "nginx (1 worker)"
    return None, bc.start_python_server(site_dir, port), "python http.server"


def stop(nginx, server) -> None:
    if nginx is not None:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
    if server is not None:
        server.shutdown()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved runs of ours and theirs; medians reported")
    ap.add_argument("--concurrency", type=int, default=128, help="our crawl's concurrent requests per process")
    ap.add_argument("--crawl-processes", type=int, default=2, help="crawl processes (img2dataset gets 2 as well)")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=None, help="clean LocalCluster workers (default: one per core)")
    ap.add_argument("--i2d-resize-mode", default="keep_ratio")
    ap.add_argument("--i2d-output-format", default="parquet", choices=("parquet", "webdataset", "files"))
    ap.add_argument("--port", type=int, default=0, help="0: bench_crawl's port for this site (its cached export)")
    ap.add_argument("--work", type=Path, default=REPO / "bench_out" / "e2e")
    ap.add_argument("--site-cache", type=Path, default=REPO / "bench_out" / "crawl",
                    help="where bench_crawl.py keeps static exports and the img2dataset venv")
    ap.add_argument("--skip-img2dataset", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install nginx")
    return ap.parse_args()


def compare(args: argparse.Namespace, base: str, work: Path, cache: Path) -> dict:
    """Ours then theirs, `--repeats` times, interleaved so a change in machine load hits both alike."""
    runs: dict[str, list[dict]] = {"ours": [], "img2dataset": []}
    exe = None if args.skip_img2dataset else bc.ensure_img2dataset(cache)
    for r in range(args.repeats):
        log(f"--- repeat {r + 1}/{args.repeats} (load average {os.getloadavg()[0]:.1f})")
        runs["ours"].append(run_ours(base, work, concurrency=args.concurrency, processes=args.crawl_processes,
                                     image_size=args.image_size, workers=args.workers))
        theirs = exe and run_img2dataset(exe, bc.image_urls(work / "raw"), work, image_size=args.image_size,
                                         resize_mode=args.i2d_resize_mode, output_format=args.i2d_output_format)
        if theirs:
            runs["img2dataset"].append(theirs)
    result: dict = {"runs": runs}
    med = {name: {k: statistics.median(run[k] for run in rs) for k in ("images_per_s", "cpu_ms_per_image")}
           for name, rs in runs.items() if rs}
    result["median"] = med
    for part in ("crawl_images_per_s", "clean_images_per_s"):
        med["ours"][part] = statistics.median(run[part] for run in runs["ours"])
    log(f"ours, median of {args.repeats}: {med['ours']['images_per_s']:.1f} images/s end to end (crawl "
        f"{med['ours']['crawl_images_per_s']:.1f}, clean {med['ours']['clean_images_per_s']:.1f}), "
        f"{med['ours']['cpu_ms_per_image']:.0f} CPU-ms/image")
    if "img2dataset" in med:
        theirs = med["img2dataset"]
        result["ratio_images_per_s"] = med["ours"]["images_per_s"] / theirs["images_per_s"]
        result["ratio_cpu_per_image"] = theirs["cpu_ms_per_image"] / med["ours"]["cpu_ms_per_image"]
        log(f"img2dataset, median: {theirs['images_per_s']:.1f} images/s, {theirs['cpu_ms_per_image']:.0f} "
            f"CPU-ms/image")
        log(f"ratio ours (crawl+clean+dedup) / img2dataset (fetch+resize), images/s: "
            f"{result['ratio_images_per_s']:.2f}; by CPU per image (theirs/ours): {result['ratio_cpu_per_image']:.2f}")
    return result


def main() -> int:
    args = parse_args()
    work, cache = args.work.resolve(), args.site_cache.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DASK_TEMPORARY_DIRECTORY", str(work / "dask-tmp"))
    port = args.port or 20000 + (args.articles * 7 + args.seed) % 20000  # the export's URLs embed this port
    if port_in_use(port):
        log(f"port {port} is busy (another benchmark serving this site?): wait for it or pass --port")
        return 2
    partial = cache / f"site-{args.articles}-{args.seed}-{port}"
    if partial.exists() and not (partial / ".complete").exists() and time.time() - partial.stat().st_mtime < 120:
        log(f"{partial} is being exported by another process (no .complete yet): wait for it to finish")
        return 2
    site_dir = bc.export(cache, args.articles, args.seed, port)
    nginx, server, served_by = serve(site_dir, port, work, install=not args.no_install)
    result: dict = {"articles": args.articles, "served_by": served_by, "cpus": os.cpu_count(),
                    "crawl_processes": args.crawl_processes, "concurrency": args.concurrency,
                    "repeats": args.repeats, "load_avg_at_start": os.getloadavg()[0]}
    try:
        result.update(compare(args, f"http://127.0.0.1:{port}", work, cache))
    finally:
        stop(nginx, server)
    result["load_avg_at_end"] = os.getloadavg()[0]
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
