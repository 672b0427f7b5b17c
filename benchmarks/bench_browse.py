"""`mmpipe browse` latency: start-up (views + caption index) and each view's request, against pandas doing the same
query over the same shards (image column left out, as the browser does) in the same run.  Medians of --repeat.

    .venv/bin/python benchmarks/bench_browse.py --rows 20000
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from starlette.testclient import TestClient

from pipeline.tools._read import open_dataset
from pipeline.tools.browse import DatasetQueries, create_app
from training.synthetic import SyntheticSpec, write_synthetic_clean

COLUMNS = ["key", "caption", "width", "height", "split", "source", "lang", "page_url", "crawled_at"]


def median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def pandas_page(files: list[Path], *, words: list[str] | None = None, split: str | None = None) -> pd.DataFrame:
    df = pd.concat([pd.read_parquet(f, columns=COLUMNS) for f in files], ignore_index=True)
    if split:
        df = df[df["split"] == split]
    if words:
        df = df[df["caption"].str.lower().str.contains("|".join(map(re.escape, words)))]
    return df.sort_values("key").head(48)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-browse-"))
    t = time.perf_counter()
    data = write_synthetic_clean(root, SyntheticSpec(rows=args.rows, rows_per_shard=2000, row_group_size=500))
    print(f"dataset: {args.rows:,} rows in {time.perf_counter() - t:.1f} s ({data})")
    files = open_dataset(data).files

    start = median_s(lambda: DatasetQueries(data).close(), max(args.repeat // 2, 1))
    client = TestClient(create_app(data), base_url="http://127.0.0.1")
    keys = re.findall(r'data-key="([^"]+)"', client.get("/").text)
    cases = [
        ("grid page", lambda: client.get("/"), lambda: pandas_page(files)),
        ("grid, split filter", lambda: client.get("/?split=val"), lambda: pandas_page(files, split="val")),
        ("caption search (BM25)", lambda: client.get("/?q=red+circle"),
         lambda: pandas_page(files, words=["red", "circle"])),
        ("SQL group by", lambda: client.get("/sql?q=SELECT+split,+count(*)+FROM+rows+GROUP+BY+1"),
         lambda: pd.concat([pd.read_parquet(f, columns=["split"]) for f in files]).groupby("split").size()),
    ]
    print(f"start-up (views + caption index): {start:.2f} s")
    print(f"{'request':28s} {'browse s':>9s} {'pandas s':>9s} {'ratio':>6s}")
    for name, ours, base in cases:
        a, b = median_s(ours, args.repeat), median_s(base, args.repeat)
        print(f"{name:28s} {a:9.3f} {b:9.3f} {b / a:6.2f}x")
    thumbs = median_s(lambda: [client.get(f"/thumb/row/{k}.jpg?size=large") for k in keys], 1)
    print(f"48 thumbnails, first view (decode + re-encode): {thumbs:.2f} s; cached: "
          f"{median_s(lambda: [client.get(f'/thumb/row/{k}.jpg?size=large') for k in keys], 3):.3f} s")
    for plot in ("funnel", "caption_length", "image_size", "lang", "source"):
        print(f"plot {plot}: {median_s(lambda p=plot: client.get(f'/plot/{p}.png'), 3):.3f} s")


if __name__ == "__main__":
    main()
