"""URL-list crawl (`kind: urls`) against img2dataset on the same list, its native input: a Parquet file with
`url` and `caption` columns.

    python benchmarks/bench_urls.py [--articles 2000] [--repeats 3] [--concurrency 128]

The demo site's news images (bench_crawl.py's static export, `photo_size="bench"`: ~120 KB JPEGs, served by nginx,
or Python's http.server with a warning) are listed once in bench_out/urls/list.parquet.  Ours: the real crawl stage,
2 processes (the list split by image host: both take a share only when there are two hosts, so the list names the
site as 127.0.0.1 and as localhost, half each), every image through Scrapy's downloader with robots.txt, opt-out,
address and size checks, written to RAW Parquet with the caption and provenance.  Theirs: img2dataset 1.47.0,
2 processes x 32 threads, `--disable_all_reencoding True` (fetch-only), Parquet output.  Runs are interleaved;
medians of images/s from process start to exit, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_crawl as bc  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench_urls {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write_list(site_dir: Path, base: str, path: Path) -> int:
    """Every exported news image (the JPEGs the articles show), as a URL list over two host names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(p for p in (site_dir / "img").rglob("*.jpg"))
    other = base.replace("127.0.0.1", "localhost")
    rows = [{"url": f"{other if i % 2 else base}/{f.relative_to(site_dir).as_posix()}", "caption": f"photo {i}",
             "key": f"{i:06d}"} for i, f in enumerate(files)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return len(rows)


def run_ours(url_list: Path, work: Path, *, concurrency: int) -> dict:
    from crawlers.config import CrawlConfig, SourceConfig
    from crawlers.stage import crawl_source

    out = work / "raw"
    shutil.rmtree(out, ignore_errors=True)
    source = SourceConfig(name="bench-urls", kind="urls", paths=[str(url_list)], processes=2)
    config = CrawlConfig(sources=[source], out=out, allow_private=True, benchmark=True, concurrency=concurrency,
                         per_domain_concurrency=concurrency, incremental=False, log_level="WARNING",
                         download_timeout=60)
    t0 = time.monotonic()
    summary = crawl_source(config, "bench-urls")
    wall = time.monotonic() - t0
    return {"images": summary["images"], "rows": summary["rows"], "wall_s": wall, "images_per_s": summary["images"]
            / wall, "errors": summary["errors"]}


def run_img2dataset(exe: Path, url_list: Path, work: Path) -> dict | None:
    out = work / "i2d-out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(exe), "--url_list", str(url_list), "--input_format", "parquet", "--url_col", "url", "--caption_col",
           "caption", "--output_folder", str(out), "--output_format", "parquet", "--processes_count", "2",
           "--thread_count", "32", "--number_sample_per_shard", "500", "--disable_all_reencoding", "True",
           "--timeout", "30", "--retries", "0", "--enable_wandb", "False", "--distributor", "multiprocessing"]
    done = bc.run_img2dataset_cmd(cmd, out)
    if done is None:
        return None
    ok, wall = done
    return {"images": ok, "wall_s": wall, "images_per_s": ok / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--port", type=int, default=18431)
    ap.add_argument("--work", type=Path, default=REPO / "bench_out" / "urls")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install nginx")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    crawl_work = REPO / "bench_out" / "crawl"
    crawl_work.mkdir(parents=True, exist_ok=True)
    site_dir = bc.export(crawl_work, args.articles, 0, args.port)
    base = f"http://127.0.0.1:{args.port}"
    nginx = bc.start_nginx(site_dir, args.port, args.work, install=not args.no_install)
    server = None if nginx else bc.start_python_server(site_dir, args.port)
    exe = bc.ensure_img2dataset(crawl_work)
    url_list = args.work / "list.parquet"
    n = write_list(site_dir, base, url_list)
    log(f"{n} image URLs in {url_list}; server: {'nginx' if nginx else 'python http.server'}")
    runs: dict[str, list[dict]] = {"ours": [], "img2dataset": []}
    try:
        for r in range(args.repeats):
            ours = run_ours(url_list, args.work, concurrency=args.concurrency)
            runs["ours"].append(ours)
            log(f"run {r + 1}: ours {ours['images']} images in {ours['wall_s']:.1f} s = {ours['images_per_s']:.0f}/s "
                f"(errors {ours['errors']})")
            theirs = run_img2dataset(exe, url_list, args.work) if exe else None
            if theirs:
                runs["img2dataset"].append(theirs)
                log(f"run {r + 1}: img2dataset {theirs['images']} images in {theirs['wall_s']:.1f} s = "
                    f"{theirs['images_per_s']:.0f}/s")
    finally:
        if nginx is not None:
            nginx.terminate()
        if server is not None:
            server.shutdown()
    med = {k: statistics.median(x["images_per_s"] for x in v) for k, v in runs.items() if v}
    result = {"images": n, "median_images_per_s": med, "runs": runs}
    if "img2dataset" in med:
        result["ratio"] = med["ours"] / med["img2dataset"]
        log(f"median images/s: ours {med['ours']:.0f}, img2dataset {med['img2dataset']:.0f}, "
            f"ratio {result['ratio']:.2f}")
    (args.work / "result.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
