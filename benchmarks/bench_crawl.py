"""Crawl-stage throughput against img2dataset, on one machine, over loopback.

    python benchmarks/bench_crawl.py [--articles 5000] [--concurrency 128] [--skip-img2dataset]

1. Exports a demo news site (crawlers.demo, `photo_size="bench"`: 800-1024 px JPEGs of about 120 KB) to static
   files under bench_out/crawl/ (cached between runs) and serves it with nginx (installed with apt-get when
   missing; a Python static server is the fallback, with a warning, because it becomes the bottleneck).
2. Crawls it with the real crawl stage (`python -m crawlers.run` processes, 2 by default like img2dataset's:
   sitemap -> every article page fetched and parsed -> every image fetched, sniffed, written to RAW Parquet) and
   reports pages/s, images/s, MB/s.
3. Fetches the same image URLs with img2dataset 1.47.0 (its own venv under bench_out/; 2 processes x 32 threads,
   500 samples per shard, `--disable_all_reencoding True`: fetch-only) and prints our/their images-per-second
   ratio.  img2dataset only downloads images; we also fetch and parse every page.
4. Fetches the same image URLs with a bare Scrapy spider (`benchmarks/scrapy_floor.py`, as many processes as
   ours): Scrapy's own per-request cost, with no middleware, parsing or writing; then the same spider under our
   crawl's Scrapy settings.  Ours/floor says how much of the gap to img2dataset is Scrapy's and how much is our
   work.
With --repeats R the three runs are interleaved R times and medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crawlers.config import CrawlConfig, SourceConfig  # noqa: E402
from crawlers.stage import crawl_source  # noqa: E402

I2D_VERSION = "1.47.0"


def log(msg: str) -> None:
    print(f"[bench_crawl {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SITE = None


def _init_worker(articles: int, seed: int, base: str) -> None:
    global _SITE
    from crawlers.demo import generate_site

    _SITE = generate_site(articles, seed, photo_size="bench", trouble=0.0, base_url=base)


def _write_chunk(root: str, paths: list[str]) -> int:
    from crawlers.demo.export import file_for

    written = 0
    for path in paths:
        status, _headers, body = _SITE.response(path)
        if status != 200:
            continue
        target = Path(root) / file_for(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        written += 1
    return written


def lean_paths(site) -> list[str]:
    """What the benchmark crawl can request: every export path except the srcset/<picture> size variants (our
    crawler takes the largest candidate only), which would double the export time."""
    from crawlers.demo.export import export_paths
    from crawlers.demo.plan import srcset_widths

    variants = set()
    for article in site.plan.articles:
        for slot in article.slots:
            stem = slot.url.rpartition(".")[0]
            for w in srcset_widths(site.plan.pictures[slot.pid], 2):
                variants.update((f"{stem}-{w}w.jpg", f"{stem}-{w}w.webp"))
    return [p for p in dict.fromkeys(export_paths(site)) if p not in variants]


def export(work: Path, articles: int, seed: int, port: int) -> Path:
    from concurrent.futures import ProcessPoolExecutor

    from crawlers.demo import generate_site

    site_dir = work / f"site-{articles}-{seed}-{port}"
    if (site_dir / ".complete").exists():
        log(f"reusing static export {site_dir}")
        return site_dir
    shutil.rmtree(site_dir, ignore_errors=True)
    base = f"http://127.0.0.1:{port}"
    log(f"exporting a {articles}-article demo site (photo_size=bench) to {site_dir} (cached for later runs)")
    t0 = time.monotonic()
    paths = lean_paths(generate_site(articles, seed, photo_size="bench", trouble=0.0, base_url=base))
    chunks = [paths[i:i + 200] for i in range(0, len(paths), 200)]
    workers = max(1, os.cpu_count() or 1)
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(articles, seed, base)) as pool:
        done = 0
        for n in pool.map(partial(_write_chunk, str(site_dir)), chunks):
            done += n
            if done % 2000 < 200:
                log(f"  {done}/{len(paths)} files")
    (site_dir / ".complete").write_text("ok\n")
    log(f"export done in {time.monotonic() - t0:.0f} s ({len(paths)} files)")
    return site_dir


NGINX_CONF = """worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include {mime};
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ try_files $uri $uri/index.html =404; }}
    }}
}}
"""


def start_nginx(root: Path, port: int, work: Path, *, install: bool) -> subprocess.Popen | None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None and install:
        log("nginx not found: apt-get install -y nginx")
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=False, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        return None
    (work / "nginx-tmp").mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=1, work=work, port=port, root=root, mime="/etc/nginx/mime.types"))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                log(f"nginx failed: {proc.stderr.read().decode()[-500:]}")
                return None
            time.sleep(0.1)
    proc.kill()
    return None


def start_python_server(root: Path, port: int) -> ThreadingHTTPServer:
    log("WARNING: serving with Python's http.server: the server, not the crawler, will be the bottleneck")
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_ours(base: str, work: Path, concurrency: int, processes: int, *,
             transport: str = "aiohttp") -> tuple[dict, float, Path]:
    out = work / "raw"
    shutil.rmtree(out, ignore_errors=True)
    source = SourceConfig(name="bench-news", kind="news", sitemaps=[f"{base}/sitemap.xml"], follow_links=False,
                          page_text=True, processes=processes)
    config = CrawlConfig(sources=[source], out=out, allow_private=True, benchmark=True, concurrency=concurrency,
                         per_domain_concurrency=concurrency, incremental=False, log_level="WARNING",
                         download_timeout=60, transport=transport)
    log(f"our crawl: {processes} process(es) x concurrency {concurrency}, {transport} transport, sitemap -> pages "
        f"-> images -> RAW Parquet in {out}")
    t0 = time.monotonic()
    summary = crawl_source(config, "bench-news")
    return summary, time.monotonic() - t0, out


def image_urls(raw: Path) -> list[str]:
    import pyarrow.parquet as pq

    urls: dict[str, None] = {}
    for f in sorted(raw.glob("*.parquet")):
        for u in pq.read_table(f, columns=["image_url"]).column("image_url").to_pylist():
            urls.setdefault(u, None)
    return list(urls)


def ensure_img2dataset(work: Path) -> Path | None:
    venv = work / "img2dataset-venv"
    exe = venv / "bin" / "img2dataset"
    if exe.exists():
        return exe
    log(f"installing img2dataset=={I2D_VERSION} into {venv}")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"img2dataset=={I2D_VERSION}"],
                         capture_output=True, text=True)
    if res.returncode != 0 or not exe.exists():
        log(f"img2dataset install failed: {res.stderr[-800:]}")
        return None
    return exe


def run_img2dataset(exe: Path, urls: list[str], work: Path) -> tuple[int, float] | None:
    url_file = work / "i2d-urls.txt"
    url_file.write_text("\n".join(urls) + "\n")
    out = work / "i2d-out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(exe), "--url_list", str(url_file), "--input_format", "txt", "--output_folder", str(out),
           "--output_format", "files", "--processes_count", "2", "--thread_count", "32",
           "--number_sample_per_shard", "500", "--disable_all_reencoding", "True", "--timeout", "30",
           "--retries", "0", "--enable_wandb", "False", "--distributor", "multiprocessing"]
    log(f"img2dataset: {len(urls)} URLs, 2 processes x 32 threads, fetch-only")
    return run_img2dataset_cmd(cmd, out)


def run_img2dataset_cmd(cmd: list[str], out: Path) -> tuple[int, float] | None:
    """(images img2dataset fetched, wall seconds from process start to exit), or None when it failed."""
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    if res.returncode != 0:
        log(f"img2dataset failed ({res.returncode}): {res.stderr[-800:]}")
        return None
    ok = sum(json.loads(p.read_text()).get("successes", 0) for p in out.glob("*_stats.json"))
    return ok, elapsed


def run_floor(urls: list[str], work: Path, processes: int, concurrency: int, *,
              transport: str, settings: str = "bare") -> tuple[int, float]:
    """(images, wall seconds) of the bare-Scrapy floor: ``processes`` parallel spiders, each a slice of the URLs."""
    url_file = work / "floor-urls.txt"
    url_file.write_text("\n".join(urls) + "\n")
    script = REPO / "benchmarks" / "scrapy_floor.py"
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, str(script), str(url_file), "--part", str(k), "--parts",
                               str(processes), "--concurrency", str(concurrency), "--handler", transport,
                               "--settings", settings],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
             for k in range(processes)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return sum(o["images"] for o in outs), time.monotonic() - t0


def _ours(base: str, work: Path, args) -> tuple[dict, Path]:
    summary, wall, raw = run_ours(base, work, args.concurrency, args.processes, transport=args.transport)
    secs = summary["duration_s"]
    ours = {"pages": summary["pages"], "images": summary["images"], "bytes": summary["image_bytes"],
            "rows": summary["rows"], "crawl_s": secs, "process_wall_s": wall,
            "pages_per_s": summary["pages"] / secs, "images_per_s": summary["images"] / secs,
            "mb_per_s": summary["image_bytes"] / 1e6 / secs, "errors": summary["errors"],
            # like img2dataset's and the floor's figures: from process start to exit, startup included
            "images_per_s_wall": summary["images"] / wall}
    log(f"ours: {ours['pages']} pages, {ours['images']} images, {ours['bytes'] / 1e6:.0f} MB in {secs:.1f} s "
        f"(process wall {wall:.1f} s): {ours['pages_per_s']:.0f} pages/s, {ours['images_per_s']:.0f} "
        f"images/s, {ours['mb_per_s']:.1f} MB/s")
    return ours, raw


def _compare(base: str, work: Path, args) -> dict:
    runs: dict[str, list] = {"ours": [], "img2dataset": [], "scrapy_floor": [], "scrapy_floor_our_settings": []}
    exe = None if args.skip_img2dataset else ensure_img2dataset(work)
    for r in range(args.repeats):  # interleaved, so a change in machine load hits every variant alike
        ours, raw = _ours(base, work, args)
        runs["ours"].append(ours)
        urls = image_urls(raw)
        theirs = run_img2dataset(exe, urls, work) if exe else None
        if theirs:
            ok, elapsed = theirs
            runs["img2dataset"].append({"images": ok, "wall_s": elapsed, "images_per_s": ok / elapsed})
            log(f"run {r + 1}: img2dataset {I2D_VERSION}: {ok} images in {elapsed:.1f} s: {ok / elapsed:.0f} images/s")
        for settings, key in (("bare", "scrapy_floor"), ("ours", "scrapy_floor_our_settings")):
            n, elapsed = run_floor(urls, work, args.processes, args.concurrency, transport=args.transport,
                                   settings=settings)
            runs[key].append({"images": n, "wall_s": elapsed, "images_per_s": n / elapsed})
            log(f"run {r + 1}: Scrapy floor, {settings} settings: {n} images in {elapsed:.1f} s: "
                f"{n / elapsed:.0f} images/s")
    med = {k: statistics.median(x["images_per_s_wall" if k == "ours" else "images_per_s"] for x in v)
           for k, v in runs.items() if v}
    result = {"transport": args.transport, "runs": runs, "median_images_per_s": med}
    if "img2dataset" in med:
        result["ratio_images_per_s"] = med["ours"] / med["img2dataset"]
        log(f"ratio ours/img2dataset (median images/s, process start to exit): {result['ratio_images_per_s']:.2f} "
            "(we also fetched and parsed every article page)")
        result["floor_vs_img2dataset"] = med["scrapy_floor"] / med["img2dataset"]
    result["ours_vs_floor"] = med["ours"] / med["scrapy_floor"]
    # the same spider under our Scrapy settings: the most our crawl could do with no work of its own, were it
    # fetching images only (it also fetches 35% more requests: the pages)
    theirs = med.get("img2dataset", float("nan"))
    result["floor_our_settings_vs_img2dataset"] = med["scrapy_floor_our_settings"] / theirs
    log(f"ours / bare Scrapy floor: {result['ours_vs_floor']:.2f}; floor / img2dataset: "
        f"{result.get('floor_vs_img2dataset', float('nan')):.2f}; floor under our settings / img2dataset: "
        f"{result['floor_our_settings_vs_img2dataset']:.2f}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=128, help="requests in flight per crawl process")
    parser.add_argument("--processes", type=int, default=2, help="crawl processes (img2dataset gets 2 as well)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--transport", choices=["aiohttp", "twisted"], default="aiohttp",
                        help="HTTP client under Scrapy, for our crawl and the bare-Scrapy floor alike")
    parser.add_argument("--work", type=Path, default=REPO / "bench_out" / "crawl")
    parser.add_argument("--port", type=int, default=0, help="0: a fixed port derived from the site (cached export)")
    parser.add_argument("--skip-img2dataset", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install nginx")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    port = args.port or 20000 + (args.articles * 7 + args.seed) % 20000
    site_dir = export(work, args.articles, args.seed, port)
    nginx = start_nginx(site_dir, port, work, install=not args.no_install)
    server = None if nginx else start_python_server(site_dir, port)
    served_by = "nginx (1 worker)" if nginx else "python http.server"
    try:
        result = {"served_by": served_by, "articles": args.articles, "processes": args.processes,
                  "concurrency": args.concurrency, "cpus": os.cpu_count(),
                  **_compare(f"http://127.0.0.1:{port}", work, args)}
        (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)
        if server is not None:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
