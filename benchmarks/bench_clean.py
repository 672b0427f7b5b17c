"""Benchmark the clean stage: images/s of the whole Dask job vs a single-process pandas + Pillow loop doing the
same per-row work (same functions: caption cleaning, decode, pHash, pixel hash, resize, re-encode, dedup, write),
plus the dedup step alone on a million synthetic hashes (time and peak memory).

    python benchmarks/bench_clean.py                 # 20,000 images, 3 repeats
    python benchmarks/bench_clean.py --n 2000        # quick run
    python benchmarks/bench_clean.py --configs 2x1,1x2   # workers x threads per worker to compare

The generated RAW input is cached under bench_out/ (photo-like JPEGs, 800-1600 px: random crops, sizes and colour
shifts of the real fixture photos and of synthetic photos, so every image hashes differently).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from multiprocessing import Pool
from pathlib import Path

# The baseline is one process on one core, like the Dask workers (which get these from distributed's defaults):
# keep BLAS (the pHash's matrix products) from borrowing the second core for it.  Set before numpy loads BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
FIXTURES = Path(os.environ.get("MMPIPE_FIXTURES", REPO.parent / "shared" / "fixtures"))
OUT = REPO / "bench_out"
ROWS_PER_FILE = 1000
_BASES: list = []


def _bases():
    """Large source pictures: the fixture photos and a few synthetic ones, upscaled to ~2000 px."""
    from PIL import Image

    if _BASES:
        return _BASES
    from tests.pipeline.clean_rawdata import photo

    for path in sorted((FIXTURES / "images").glob("*.[pj][np]g")):
        img = Image.open(path).convert("RGB")
        scale = 2000 / max(img.size)
        _BASES.append(img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC))
    _BASES.extend(photo(1000 + i, (2000, 1500)) for i in range(8))
    return _BASES


def _make_image(seed: int) -> bytes:
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng(seed)
    bases = _bases()
    base = bases[int(rng.integers(len(bases)))]
    cw, ch = (int(base.width * rng.uniform(0.45, 1.0)), int(base.height * rng.uniform(0.45, 1.0)))
    x, y = int(rng.integers(0, base.width - cw + 1)), int(rng.integers(0, base.height - ch + 1))
    img = base.crop((x, y, x + cw, y + ch))
    longest = int(rng.integers(800, 1601))
    scale = longest / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=int(rng.integers(80, 96)))
    return out.getvalue()


def _make_file(args: tuple[Path, int, int]) -> Path:
    from data_schemas import RAW_SCHEMA, atomic_write_parquet, row_id

    path, start, n = args
    import pyarrow as pa

    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(start, start + n):
        page, image = f"https://news.example/{i // 4}.html", f"https://news.example/img/{i}.jpg"
        rows.append({"id": row_id(page, image), "source": "bench-news", "source_kind": "news", "page_url": page,
                     "image_url": image, "caption_candidates": [
                         {"text": f"Photo {i}: crowds gather near the river on a bright morning, officials said.",
                          "origin": "figcaption"}],
                     "title": "Bench page", "page_lang": "en", "published_at": t0 + timedelta(minutes=i),
                     "crawled_at": t0 + timedelta(days=1, seconds=i), "license": None, "credit": None,
                     "image_bytes": _make_image(i), "image_mime": "image/jpeg", "http_status": 200,
                     "fetch_error": None, "opt_out": []})
    # row groups of 64 rows, as the crawler writes them
    atomic_write_parquet(path, pa.Table.from_pylist(rows, schema=RAW_SCHEMA), row_group_size=64)
    return path


def make_raw(n: int) -> Path:
    raw = OUT / f"raw-{n}"
    done = raw / ".complete"
    if done.exists():
        return raw
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    jobs = [(raw / f"part-{k:05d}.parquet", s, min(ROWS_PER_FILE, n - s)) for k, s in
            enumerate(range(0, n, ROWS_PER_FILE))]
    t = time.perf_counter()
    with Pool(os.cpu_count()) as pool:
        for i, _ in enumerate(pool.imap_unordered(_make_file, jobs), 1):
            print(f"  generated {i}/{len(jobs)} files ({time.perf_counter() - t:.0f} s)", flush=True)
    done.touch()
    return raw


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the LocalCluster's worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_job(raw: Path, *, workers: int, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of client + scheduler + workers) of the whole `clean()` call."""
    from pipeline.clean import clean
    from pipeline.config import CleanConfig

    out = OUT / "job-out"
    shutil.rmtree(out, ignore_errors=True)
    t, c = time.perf_counter(), _cpu()
    clean(CleanConfig(raw=raw, out=out, n_workers=workers, threads_per_worker=threads, progress=False))
    return time.perf_counter() - t, _cpu() - c


def run_baseline(raw: Path) -> tuple[float, float]:
    """One process, no Dask: pandas reads each file, a Python loop calls the same per-row functions."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_schemas import Blocklist
    from pipeline.config import CleanConfig
    from pipeline.dedup import DedupInput, colour_array, dedup, exact_key, pdq_words, time_ns
    from pipeline.rows import STAGE_SCHEMA, Accepted, row_reason, staged_record

    cfg = CleanConfig(raw=raw, out=OUT / "baseline-out")
    shutil.rmtree(cfg.out, ignore_errors=True)
    cfg.out.mkdir(parents=True)
    blocklist, kept = Blocklist(), []
    t, c = time.perf_counter(), _cpu()
    for path in sorted(raw.glob("*.parquet")):
        frame = pd.read_parquet(path)
        for row in frame.to_dict("records"):
            row = {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}  # NaN -> null
            outcome = row_reason(row, cfg, blocklist)
            if isinstance(outcome, Accepted):
                kept.append(staged_record(row, outcome))
    table = pa.Table.from_pylist(kept, schema=STAGE_SCHEMA)
    pix = exact_key(table.column("sha256").to_pylist())
    n = table.num_rows
    result = dedup(DedupInput(
        keys=np.asarray(table.column("key").to_pylist(), str), phash=table.column("phash").to_numpy(),
        exact=pix, pixels=np.asarray(table.column("original_width").to_numpy(), np.int64)
        * table.column("original_height").to_numpy(), caption_rank=table.column("caption_rank").to_numpy(),
        published=time_ns(table.column("published_at").to_numpy()), crawled=time_ns(
            table.column("crawled_at").to_numpy()), old=np.zeros(n, bool), old_cluster=np.full(n, "", object),
        phash_flip=table.column("phash_flip").to_numpy(), pdq=pdq_words(table.column("pdq").to_pylist()),
        pdq_flip=pdq_words(table.column("pdq_flip").to_pylist()),
        colour=colour_array(table.column("colour").to_pylist()), aspect=table.column("aspect").to_numpy()),
        **cfg.dedup_rule())
    pq.write_table(table.filter(pa.array(result.keep)), cfg.out / "out.parquet", compression="zstd",
                   row_group_size=1000)
    return time.perf_counter() - t, _cpu() - c


def bench_dedup(n: int = 1_000_000) -> dict:
    """The stage's dedup() on n random rows with every near-duplicate signal (pHash, its mirror, PDQ, its mirror,
    colour, aspect) and the config's thresholds; 5% of rows are near copies of another (pHash within the threshold,
    PDQ 20 bits off, the same colour and aspect)."""
    from pipeline.config import CleanConfig
    from pipeline.dedup import DedupInput, dedup

    cfg = CleanConfig(raw="-", out="-")
    rng = np.random.default_rng(0)

    def random64(*shape):
        return rng.integers(0, 2**64 - 1, shape, dtype=np.uint64, endpoint=True)

    hashes, flip, pdq, pdq_flip = random64(n), random64(n), random64(n, 4), random64(n, 4)
    colour, aspect = rng.integers(0, 256, (n, 32)).astype(np.uint8), rng.normal(0, 0.3, n)
    planted = rng.choice(n, n // 10, replace=False)
    src, dst = planted[: n // 20], planted[n // 20:]
    bits = np.zeros(len(dst), np.uint64)
    for _ in range(cfg.phash_threshold):  # up to the threshold's number of differing bits
        bits |= np.uint64(1) << rng.integers(0, 64, len(dst)).astype(np.uint64)
    hashes[dst], flip[dst] = hashes[src] ^ bits, flip[src]
    pdq[dst] = pdq[src] ^ np.uint64(0xFFFFF)  # 20 bits
    pdq_flip[dst], colour[dst], aspect[dst] = pdq_flip[src], colour[src], aspect[src]
    keys = np.char.mod("%032x", np.arange(n))
    x = DedupInput(keys=keys, phash=hashes, exact=np.stack([np.arange(n), np.zeros(n)], 1).astype(np.uint64),
                   pixels=rng.integers(1, 10**7, n), caption_rank=rng.integers(0, 8, n),
                   published=rng.integers(0, 10**15, n), crawled=rng.integers(0, 10**15, n),
                   old=np.zeros(n, bool), old_cluster=np.full(n, "", object), phash_flip=flip, pdq=pdq,
                   pdq_flip=pdq_flip, colour=colour, aspect=aspect)
    rule = cfg.dedup_rule()
    dedup(x, **rule)  # numba loads its cached kernels once per process
    t, c = time.perf_counter(), time.process_time()
    result = dedup(x, **rule)
    elapsed, cpu = time.perf_counter() - t, time.process_time() - c
    tracemalloc.start()  # a second, traced run for the peak (tracing slows numpy's allocations down)
    dedup(x, **rule)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"n": n, "seconds": elapsed, "cpu_s": cpu, "peak_mb": peak / 1e6, "dropped": int((~result.keep).sum()),
            "planted": len(dst)}


def bench_end_to_end(crawl: Callable[[Path], Path], label: str, *, workdir: Path = OUT / "e2e") -> dict:
    """Hook for the crawl+clean comparison (vs img2dataset): ``crawl(workdir)`` must return a RAW directory; the
    clean stage then runs on it with defaults.  Returns the seconds of each part and images/s overall."""
    from data_schemas import Manifest
    from pipeline.clean import clean
    from pipeline.config import CleanConfig

    shutil.rmtree(workdir, ignore_errors=True)
    t = time.perf_counter()
    raw = crawl(workdir)
    t_crawl = time.perf_counter() - t
    out = clean(CleanConfig(raw=raw, out=workdir / "clean", progress=False))
    total = time.perf_counter() - t
    rows = Manifest.read(out).rows_out
    return {"label": label, "crawl_s": t_crawl, "clean_s": total - t_crawl, "rows_out": rows,
            "images_per_s": rows / total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configs", default=f"{os.cpu_count()}x1", help="workers x threads, comma separated")
    ap.add_argument("--dedup-n", type=int, default=1_000_000)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    raw = make_raw(args.n)
    results: dict = {"n": args.n, "cpus": os.cpu_count(), "jobs": {}}
    specs = args.configs.split(",")
    timings: dict[str, list[tuple[float, float]]] = {spec: [] for spec in [*specs, "baseline"]}
    for r in range(args.repeats):  # interleaved, so a change in machine load hits every variant alike
        for spec in specs:
            w, th = (int(v) for v in spec.split("x"))
            timings[spec].append(run_job(raw, workers=w, threads=th))
            print(f"  run {r + 1}: dask {spec} {timings[spec][-1][0]:.1f} s", flush=True)
        if not args.skip_baseline:
            timings["baseline"].append(run_baseline(raw))
            print(f"  run {r + 1}: baseline {timings['baseline'][-1][0]:.1f} s", flush=True)
    for name, runs in timings.items():
        if not runs:
            continue
        wall = statistics.median(t for t, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        results["jobs"][name] = {"wall_s": [t for t, _ in runs], "cpu_s": [c for _, c in runs], "median_s": wall,
                                 "images_per_s": args.n / wall, "cpu_ms_per_image": 1000 * cpu / args.n}
        label = "baseline (1 process, pandas + Pillow loop)" if name == "baseline" else f"dask job {name}"
        print(f"{label}: median {wall:.1f} s = {args.n / wall:.1f} images/s; {1000 * cpu / args.n:.0f} CPU-ms/image "
              f"(runs: {', '.join(f'{t:.1f}' for t, _ in runs)})")
    if timings["baseline"]:
        base = results["jobs"]["baseline"]
        for spec in specs:
            job = results["jobs"][spec]
            job["speedup_vs_baseline"] = base["median_s"] / job["median_s"]
            print(f"ratio dask {spec} / baseline (wall, same run): {job['speedup_vs_baseline']:.2f}x; "
                  f"CPU-ms per image {job['cpu_ms_per_image']:.0f} vs {base['cpu_ms_per_image']:.0f}")
    runs = [bench_dedup(args.dedup_n) for _ in range(args.repeats)]
    med = statistics.median(r["seconds"] for r in runs)
    results["dedup"] = {**runs[0], "seconds": [r["seconds"] for r in runs], "median_s": med}
    cpu = statistics.median(r["cpu_s"] for r in runs)
    print(f"dedup alone on {args.dedup_n:,} hashes: median {med:.2f} s ({cpu:.2f} CPU-s), "
          f"peak {runs[0]['peak_mb']:.0f} MB (python allocations incl. numpy), "
          f"{runs[0]['dropped']:,} dropped of {runs[0]['planted']:,} planted")
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_clean.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
