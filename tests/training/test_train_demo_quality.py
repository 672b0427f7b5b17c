"""A `tiny` CPU run on the demo site's data really learns: retrieval far above chance, and the matched image helps
masked-token prediction (with a bootstrap CI that excludes zero).

The data is the demo site's pairs as a correct crawl writes them (tests/pipeline/clean_demo_raw.py), through the
real clean stage: the captions carry news boilerplate ("..., officials said."), four languages and credits split
off, so only some caption words depend on the picture (colours, counts, shapes, positions).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from data_schemas import Manifest
from pipeline.clean import clean
from pipeline.config import CleanConfig
from training.config import EvalConfig, TrainConfig
from training.evaluate import evaluate
from training.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))  # shared with the clean-stage tests
from clean_demo_raw import write_demo_raw  # noqa: E402

demo = pytest.importorskip("crawlers.demo")

ARTICLES = 200  # ~600 kept pairs: ~420 to train on, ~180 to evaluate on


@pytest.fixture(scope="module")
def demo_clean(dask_address, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo_quality")
    site = demo.generate_site(articles=ARTICLES, seed=0, photo_size="small")
    write_demo_raw(site, root / "raw")
    out = clean(CleanConfig(raw=root / "raw", out=root / "clean", scheduler=dask_address, progress=False,
                            val_fraction=0.3))
    assert Manifest.read(out).rows_out == site.expected_kept()
    return out


@pytest.mark.slow
def test_tiny_run_on_demo_data_retrieves_and_uses_the_image(demo_clean, tmp_path):
    start = time.monotonic()
    # 400 steps (the preset's 300 leave the accuracy gap at ~0.02-0.03); one loader worker, so one torch thread:
    # a shared 2-core machine slows it least
    run = train(TrainConfig(data=demo_clean, out=tmp_path / "tiny", preset="tiny", steps=400, num_workers=1,
                            progress=False, plot=False, eval_at_end=False))
    model = json.loads(evaluate(EvalConfig(run=run, bootstrap=1000)).read_text())["model"]
    seconds = time.monotonic() - start
    r, mlm = model["retrieval"], model["mlm"]
    assert r["n"] >= 150 and r["chance_R@1"] < 0.01, r
    # seen on 3 site seeds x 1-3 training seeds (7 runs): mean R@1 0.16-0.26 against chance 0.005-0.006; accuracy
    # gap 0.030-0.044 with CI low 0.022-0.036; cross-entropy gap 0.12-0.20 with CI low 0.10-0.18
    assert r["mean_R@1"] > 10 * r["chance_R@1"] and r["mean_R@1"] > 0.08, r
    gap = mlm["gap_matched_vs_mismatched"]
    assert gap["accuracy"]["mean"] > 0.015 and gap["accuracy"]["ci95"][0] > 0, gap
    assert gap["cross_entropy"]["mean"] > 0.05 and gap["cross_entropy"]["ci95"][0] > 0, gap
    assert mlm["matched"]["accuracy"] > mlm["mismatched"]["accuracy"]
    assert seconds < 600, seconds  # ~2 min on an idle 2-core machine; the bound only catches a run gone wrong
