"""Which MLM masking default: uniform whole words, a configured focus list, or a focus list learned from the data?

Trains `tiny` on the same data with three policies and evaluates each on the same val split (retrieval R@1 and the
matched-minus-mismatched masked-token accuracy gap):
  * uniform  - whole words, every word as likely as any other (the default: no vocabulary);
  * visual   - configs/mask_focus_words.visual.txt (colours, counts, shapes, positions in en/fr/de/es), weight 4:
               the old default, which knew the demo generator's words;
  * learned  - two passes: a uniform run, then the words whose masked-token loss falls most when the matched image
               is shown (against no image), scored by that run on the train split, become the focus list (weight
               4) of a second run from scratch.  What "a list learned from the data" would buy, measured before
               building it into the training loop.
Data: ``demo`` (a demo site through the real clean stage, as tests/training/test_train_demo_quality.py) or
``shapes`` (training.synthetic).

    python benchmarks/bench_masking.py --data demo --seeds 0 1 [--articles 200] [--steps 400]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from training.config import EvalConfig, TrainConfig  # noqa: E402
from training.data import open_split  # noqa: E402
from training.evaluate import evaluate, load_run_model  # noqa: E402
from training.masking import mask_folds  # noqa: E402
from training.stream import Layout, ShardStream  # noqa: E402
from training.tokenizer import SPECIALS  # noqa: E402
from training.train import train  # noqa: E402

VISUAL = REPO / "configs" / "mask_focus_words.visual.txt"


def make_data(kind: str, root: Path, *, articles: int, seed: int) -> Path:
    if kind == "shapes":
        from training.synthetic import SyntheticSpec, write_synthetic_clean

        return write_synthetic_clean(root / "shapes", SyntheticSpec(rows=1200, val_fraction=0.3, seed=seed))
    from crawlers.demo import generate_site
    from pipeline.clean import clean
    from pipeline.config import CleanConfig
    from tests.pipeline.clean_demo_raw import write_demo_raw

    site = generate_site(articles=articles, seed=seed, photo_size="small")
    write_demo_raw(site, root / "raw")
    return clean(CleanConfig(raw=root / "raw", out=root / "clean", n_workers=2, progress=False, val_fraction=0.3))


def learned_words(run: Path, data: Path, *, top: int, min_count: int = 8) -> list[str]:
    """Words whose masked-token cross-entropy falls most with the matched image (vs none), over the train split:
    the third of the words seen ``min_count`` times with the largest mean fall, at most ``top``."""
    model, cfg, tok = load_run_model(run, torch.device("cpu"))
    stream = ShardStream(open_split(data, "train"), tok, Layout(batch_size=64, shuffle=False),
                         image_size=cfg.image_size, mask_prob=cfg.mask_prob, train=False, max_epochs=1)
    gain, count = defaultdict(float), defaultdict(int)
    with torch.no_grad():
        for n, batch in enumerate(torch.utils.data.DataLoader(stream, batch_size=None)):
            if batch.get("placeholder") or not batch["keys"]:
                continue
            encodings = tok.encode_batch(batch["captions"])
            tokens = model.image_tokens(batch["image"])
            ones, zeros = torch.ones(len(tokens)), torch.zeros(len(tokens))
            for mlm_ids, labels in mask_folds(batch["ids"].numpy(), batch["valid"].numpy(),
                                              np.random.default_rng([n, 7]), prob=cfg.mask_prob):
                ids, lab = torch.from_numpy(mlm_ids), torch.from_numpy(labels)
                ce = {}
                for name, gate in (("matched", ones), ("none", zeros)):
                    logits = model.mlm_logits(ids, batch["valid"], tokens, gate).float()
                    ce[name] = torch.nn.functional.cross_entropy(logits.flatten(0, 1), lab.flatten(),
                                                                 ignore_index=-100, reduction="none").view_as(lab)
                diff = (ce["none"] - ce["matched"]).numpy()
                for r, t in zip(*np.nonzero(labels != -100), strict=True):
                    w = encodings[r].word_ids[t]
                    if w is None or labels[r, t] < len(SPECIALS):
                        continue
                    start, end = encodings[r].word_to_chars(w)
                    word = batch["captions"][r][start:end].lower()
                    gain[word] += float(diff[r, t])
                    count[word] += 1
    mean = {w: gain[w] / count[w] for w in gain if count[w] >= min_count}
    return sorted(mean, key=mean.get, reverse=True)[:min(top, max(1, len(mean) // 3))]


def run_one(data: Path, out: Path, *, steps: int, seed: int, words: Path | None) -> dict:
    cfg = TrainConfig(data=data, out=out, preset="tiny", steps=steps, seed=seed, num_workers=1, progress=False,
                      plot=False, eval_at_end=False, mask_focus_words=str(words) if words else None)
    run = train(cfg)
    model = json.loads(evaluate(EvalConfig(run=run, bootstrap=500, seed=seed)).read_text())["model"]
    gap = model["mlm"]["gap_matched_vs_mismatched"]["accuracy"]
    return {"R@1": model["retrieval"]["mean_R@1"], "gap": gap["mean"], "gap_lo": gap["ci95"][0],
            "chance": model["retrieval"]["chance_R@1"], "n": model["retrieval"]["n"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("demo", "shapes"), default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--site-seed", type=int, default=0)
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--top", type=int, default=48, help="learned: words in the focus list")
    ap.add_argument("--policies", nargs="+", default=["uniform", "visual", "learned"],
                    choices=("uniform", "visual", "learned"), help="learned needs uniform")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-masking-"))
    try:
        data = make_data(args.data, tmp, articles=args.articles, seed=args.site_seed)
        results = defaultdict(list)
        for seed in args.seeds:
            for policy in args.policies:
                words = VISUAL if policy == "visual" else None
                if policy == "learned":
                    learned = learned_words(tmp / f"uniform-{seed}", data, top=args.top)
                    words = tmp / f"learned-{seed}.txt"
                    words.write_text("\n".join(learned) + "\n")
                    print(f"seed {seed}: learned focus words: {' '.join(learned)}", flush=True)
                r = run_one(data, tmp / f"{policy}-{seed}", steps=args.steps, seed=seed, words=words)
                results[policy].append(r)
                print(f"{args.data} seed {seed} {policy:8s} R@1 {r['R@1']:.3f} (chance {r['chance']:.4f}, n {r['n']})"
                      f"  acc gap {r['gap']:+.4f} (CI low {r['gap_lo']:+.4f})", flush=True)
        print(f"\n{args.data}: mean over training seeds {args.seeds}")
        for policy, rs in results.items():
            r1 = ", ".join(f"{r['R@1']:.3f}" for r in rs)
            gaps = ", ".join(f"{r['gap']:+.4f}" for r in rs)
            print(f"  {policy:8s} R@1 {statistics.mean(r['R@1'] for r in rs):.3f}  "
                  f"acc gap {statistics.mean(r['gap'] for r in rs):+.4f}  (per seed R@1 {r1}; gap {gaps})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
