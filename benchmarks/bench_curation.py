"""Curation proven by training: train `tiny` at equal compute on raw, clean and curated pairs of one demo site.

On a demo site (default 1,000 articles, small photos) whose truth marks the planted caption noise:
  (a) raw     - every decodable image (normalised like the clean stage, no size filter) with its first caption
                candidate as the page gave it: no filters, no dedup;
  (b) clean   - the clean stage's output (its train split);
  (c) curated - (b) through `mmpipe curate`: alignment filter and semantic dedup, with the scores of the model
                trained on (b) (the flow's round 1 -> score -> curate -> round 2);
  floor       - the `seed` preset trained on (b).
Every arm trains for the same steps and batch size (so the same number of samples) from scratch, once per
training seed, and is evaluated on the same held-out val set: the clean stage's val pairs whose caption truly
matches (truth `matches`), with every copy and re-shoot of a val picture kept out of all training sets.

Printed: image->text and text->image R@1 / R@5 and the matched-minus-mismatched masked-token accuracy gap, each
with a 95% bootstrap CI (val pairs resampled; retrieval averaged over the training seeds inside each resample;
the MLM gap is evaluate()'s own bootstrap, averaged over seeds), the paired differences (b)-(a) and (c)-(b) in mean
R@1 with their CIs, and how well the alignment score separates the planted mismatched captions (swapped, generic)
from true ones in (b)'s train split (ROC AUC), plus what the semantic dedup found among the planted re-shoots.

    python benchmarks/bench_curation.py [--articles 1000] [--steps 500] [--seeds 0 1 2] [--keep-top 0.7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from data_schemas import (  # noqa: E402
    CLEAN_SCHEMA,
    SCORE_PART_GLOB,
    Manifest,
    ShardInfo,
    atomic_write_parquet,
    file_sha256,
    has_manifest,
    row_id,
)

BASE_URL = "http://127.0.0.1:8800"  # what tests/pipeline/clean_demo_raw.py writes into the RAW rows


@dataclass
class Arm:
    name: str
    data: list[Path] = field(default_factory=list)  # per training seed
    runs: list[Path] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)


# --- data ----------------------------------------------------------------------------------------------------------


def write_dataset(out: Path, rows: list[dict], *, split: str, rows_per_shard: int = 1000) -> Path:
    """A CLEAN dataset holding ``rows`` (all in one split), with its manifest, as the training stage expects."""
    shards = []
    for n, start in enumerate(range(0, len(rows), rows_per_shard)):
        chunk = [{**r, "split": split} for r in rows[start:start + rows_per_shard]]
        name = f"shards/{split}-{n:05d}.parquet"
        path = atomic_write_parquet(out / name, pa.Table.from_pylist(chunk, schema=CLEAN_SCHEMA), row_group_size=250)
        shards.append(ShardInfo(name=name, rows=len(chunk), bytes=path.stat().st_size, sha256=file_sha256(path),
                                split=split))
    Manifest(parameters={"bench_curation": split}, rows_in=len(rows), rows_out=len(rows),
             per_source=_count(r["source"] for r in rows), per_split={split: len(rows)}, shards=shards).write(out)
    return out


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def read_rows(data: Path, split: str) -> list[dict]:
    out = []
    for s in Manifest.read(data).shards:
        out += [r for r in pq.read_table(data / s.name).to_pylist() if r["split"] == split]
    return out


def raw_pairs(raw_rows: list[dict]) -> list[dict]:
    """(a): every decodable image, normalised as the clean stage stores it but never filtered, with its first
    caption candidate untouched."""
    from pipeline.config import CleanConfig
    from pipeline.images import normalise

    cfg = CleanConfig(raw=".", out=".", min_side=1, max_aspect=1e9)  # no size filter; the stage's resize
    out = []
    for r in raw_rows:
        if r["image_bytes"] is None or not r["caption_candidates"]:
            continue
        img = normalise(r["image_bytes"], cfg)
        if isinstance(img, str):
            continue
        out.append(dict(key=r["id"], caption=r["caption_candidates"][0]["text"],
                        caption_origin=r["caption_candidates"][0]["origin"], image=img.data, width=img.width,
                        height=img.height, original_width=img.original_width, original_height=img.original_height,
                        sha256=img.sha256, phash=img.phash, lang=r["page_lang"] or "und", source=r["source"],
                        source_kind=r["source_kind"], page_url=r["page_url"], image_url=r["image_url"],
                        published_at=r["published_at"], crawled_at=r["crawled_at"], license=None, credit=None,
                        split="train", dup_cluster=r["id"], role=r.get("role")))
    return out


def build_data(args, tmp: Path):
    from crawlers.demo import generate_site
    from pipeline.clean import clean
    from pipeline.config import CleanConfig
    from tests.pipeline.clean_demo_raw import write_demo_raw

    t0 = time.monotonic()
    site = generate_site(articles=args.articles, seed=args.site_seed, photo_size="small")
    truth = {row_id(t.page_url, t.image_url): t for t in site.absolute_truth(BASE_URL)}
    data = {"val": tmp / "val", "raw": tmp / "a-raw", "clean": tmp / "b-clean"}
    if all(has_manifest(d) for d in data.values()):  # --keep DIR of an earlier run: reuse
        print(f"reusing the datasets in {tmp}", flush=True)
        return data, truth
    raw_rows = write_demo_raw(site, tmp / "raw")
    clean_dir = clean(CleanConfig(raw=tmp / "raw", out=tmp / "clean", n_workers=2, progress=False,
                                  val_fraction=args.val_fraction))
    val = [r for r in read_rows(clean_dir, "val") if truth[r["key"]].matches]
    held = {("dup", truth[r["key"]].dup_group) for r in val} | {("scene", truth[r["key"]].scene_group) for r in val
                                                                if truth[r["key"]].scene_group >= 0}

    def outside(key: str) -> bool:
        t = truth[key]
        return ("dup", t.dup_group) not in held and ("scene", t.scene_group) not in held

    clean_train = [r for r in read_rows(clean_dir, "train") if outside(r["key"])]
    raw_train = [r for r in raw_pairs(raw_rows) if outside(r["key"])]
    data = {"val": write_dataset(tmp / "val", val, split="val"),
            "raw": write_dataset(tmp / "a-raw", raw_train, split="train"),
            "clean": write_dataset(tmp / "b-clean", clean_train, split="train")}
    print(f"site: {args.articles} articles, {len(site.truth)} pairs; RAW rows {len(raw_rows)}; clean kept "
          f"{Manifest.read(clean_dir).rows_out}; train rows: (a) {len(raw_train)}, (b) {len(clean_train)}; held-out "
          f"val {len(val)} truly matching pairs ({time.monotonic() - t0:.0f} s)", flush=True)
    return data, truth


# --- training, scoring, curating ------------------------------------------------------------------------------------


def train_run(data: Path, out: Path, *, preset: str, steps: int, seed: int) -> Path:
    from training.config import TrainConfig
    from training.train import train

    summary = out / "train_summary.json"
    if summary.exists() and json.loads(summary.read_text())["steps"] == steps:  # --keep: a finished run is reused
        return out
    shutil.rmtree(out, ignore_errors=True)
    return train(TrainConfig(data=data, out=out, preset=preset, steps=steps, seed=seed, num_workers=1,
                             progress=False, plot=False, eval_at_end=False))


def curated_copy(clean: Path, run: Path, out: Path, args) -> tuple[Path, Path]:
    from pipeline.config import CurateConfig
    from pipeline.curate import curate
    from training.config import ScoreConfig
    from training.score import score

    work = out.parent / f"{out.name}-scored"  # a copy, so the scores land beside it (and resume with --keep)
    if not has_manifest(work):
        shutil.copytree(clean, work)
    scores = score(ScoreConfig(data=work, run=run, num_workers=1, progress=False))
    return curate(CurateConfig(data=work, scores=scores, out=out, keep_top=args.keep_top,
                               semantic_threshold=args.semantic_threshold, semantic_max_drop=args.semantic_max_drop,
                               progress=False)), scores


def evaluate_run(run: Path, val: Path, seed: int) -> dict:
    """evaluate()'s MLM numbers plus the embeddings of every val pair (through `mmpipe score` on the val set)."""
    from training.config import EvalConfig, ScoreConfig
    from training.evaluate import evaluate
    from training.score import score

    result = json.loads(evaluate(EvalConfig(run=run, data=val, bootstrap=1000, seed=seed)).read_text())["model"]
    scores = score(ScoreConfig(data=val, run=run, name=f"{run.parent.name}-{run.name}", num_workers=0,
                               progress=False))
    table = pa.concat_tables([pq.read_table(p) for p in sorted(scores.glob(SCORE_PART_GLOB))])
    caps = {r["key"]: r["caption"] for r in read_rows(val, "val")}
    return {"mlm": result["mlm"], "retrieval": result["retrieval"], "keys": table.column("key").to_pylist(),
            "img": _matrix(table.column("image_embedding")), "txt": _matrix(table.column("text_embedding")),
            "captions": [caps[k] for k in table.column("key").to_pylist()]}


def _matrix(col) -> np.ndarray:
    return np.stack(col.to_numpy(zero_copy_only=False)).astype(np.float32)


# --- statistics -----------------------------------------------------------------------------------------------------


def hits(ev: dict) -> dict[str, np.ndarray]:
    """Per query: did the right caption (image) come within the top k, both directions (as eval_metrics)."""
    norm = [" ".join(c.lower().split()) for c in ev["captions"]]
    ids = {c: i for i, c in enumerate(dict.fromkeys(norm))}
    g = np.array([ids[c] for c in norm])
    correct = g[:, None] == g[None, :]
    sim = ev["img"].astype(np.float64) @ ev["txt"].astype(np.float64).T
    out = {}
    for name, s, c in (("i2t", sim, correct), ("t2i", sim.T, correct.T)):
        top = np.argsort(-s, axis=1, kind="stable")[:, :5]
        got = np.take_along_axis(c, top, axis=1)
        out[f"{name}_R@1"], out[f"{name}_R@5"] = got[:, 0].astype(float), got.any(axis=1).astype(float)
    out["mean_R@1"] = (out["i2t_R@1"] + out["t2i_R@1"]) / 2
    return out


def bootstrap(per_seed: list[dict[str, np.ndarray]], *, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """metric -> resampled means (val queries resampled, averaged over training seeds); index 0 is the point."""
    n = len(per_seed[0]["mean_R@1"])
    rng = np.random.default_rng(seed)
    idx = np.vstack([np.arange(n), rng.integers(0, n, size=(n_boot, n))])
    return {m: np.mean([h[m][idx].mean(axis=1) for h in per_seed], axis=0) for m in per_seed[0]}


def ci(samples: np.ndarray) -> str:
    lo, hi = np.percentile(samples[1:], [2.5, 97.5])
    return f"{samples[0]:.3f} [{lo:.3f}, {hi:.3f}]"


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a true pair > score of a mismatched pair), ties counted half (Mann-Whitney)."""
    scores = np.concatenate([positive, negative])
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="stable")
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tie = scores == value
        ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2)
                 / (len(positive) * len(negative)))


def separation(scores: Path, truth: dict) -> tuple[float, int, int]:
    table = pa.concat_tables([pq.read_table(p, columns=["key", "alignment"]) for p in scores.glob(SCORE_PART_GLOB)])
    align = dict(zip(table.column("key").to_pylist(), table.column("alignment").to_pylist(), strict=True))
    true = np.array([a for k, a in align.items() if a is not None and truth[k].matches])
    bad = np.array([a for k, a in align.items() if a is not None and not truth[k].matches])
    return roc_auc(true, bad), len(true), len(bad)


def curate_report(curated: Path, clean: Path, truth: dict) -> str:
    dropped = pq.read_table(curated / "_curate" / "dropped.pq").to_pylist()
    train = read_rows(clean, "train")
    noisy = {r["key"] for r in train if not truth[r["key"]].matches}
    low = {r["key"] for r in dropped if r["reason"] == "low_alignment"}
    sem = [r for r in dropped if r["reason"] == "duplicate_semantic"]
    same_scene = sum(1 for r in sem if truth[r["key"]].scene_group >= 0
                     and truth[r["key"]].scene_group == truth[r["duplicate_of"]].scene_group)
    copies = sum(1 for r in train if truth[r["key"]].scene_group >= 0) - len({truth[r["key"]].scene_group
                                                                             for r in train
                                                                             if truth[r["key"]].scene_group >= 0})
    caught = len(low & noisy)
    return (f"low_alignment dropped {len(low)} rows: {caught} of the {len(noisy)} mismatched "
            f"(recall {caught / max(1, len(noisy)):.2f}, precision {caught / max(1, len(low)):.2f});"
            f" duplicate_semantic dropped {len(sem)}, {same_scene} of them re-shoots of the kept row's scene "
            f"({copies} re-shoot copies in train)")


# --- main -----------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=1000)
    ap.add_argument("--site-seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--keep-top", type=float, default=0.7)
    ap.add_argument("--semantic-threshold", type=float, default=0.95)
    ap.add_argument("--semantic-max-drop", type=float, default=0.1)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--keep", type=Path, help="keep the work directory here instead of a temporary one")
    args = ap.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench-curation-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        run_all(args, tmp)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_all(args, tmp: Path) -> None:
    t0 = time.monotonic()
    data, truth = build_data(args, tmp)
    arms = {k: Arm(k) for k in ("a", "b", "c", "floor")}
    aucs, reports = [], []
    for seed in args.seeds:
        for key, name in (("a", "raw"), ("b", "clean")):
            run = train_run(data[name], tmp / "runs" / f"{key}-{seed}", preset="tiny", steps=args.steps, seed=seed)
            arms[key].runs.append(run)
        curated, scores = curated_copy(data["clean"], arms["b"].runs[-1], tmp / f"c-curated-{seed}", args)
        aucs.append(separation(scores, truth))
        reports.append(curate_report(curated, data["clean"], truth))
        arms["c"].runs.append(train_run(curated, tmp / "runs" / f"c-{seed}", preset="tiny", steps=args.steps,
                                        seed=seed))
        print(f"seed {seed}: trained (a), (b), (c); AUC {aucs[-1][0]:.3f}; {reports[-1]} "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    arms["floor"].runs.append(train_run(data["clean"], tmp / "runs" / "floor-0", preset="seed", steps=args.steps,
                                        seed=args.seeds[0]))
    for arm in arms.values():
        arm.evals = [evaluate_run(r, data["val"], seed=i) for i, r in enumerate(arm.runs)]
    report(args, arms, aucs, reports, data, time.monotonic() - t0)


def report(args, arms: dict[str, Arm], aucs, reports, data, seconds: float) -> None:
    boots = {k: bootstrap([hits(e) for e in arm.evals], n_boot=args.bootstrap, seed=7) for k, arm in arms.items()}
    n_val = len(arms["b"].evals[0]["keys"])
    labels = {"a": "(a) raw pairs", "b": "(b) clean stage", "c": "(c) clean + curate", "floor": "seed preset on (b)"}
    print(f"\n{args.articles}-article demo site, tiny x {args.steps} steps x batch 32 per arm, training seeds "
          f"{args.seeds} (floor: seed {args.seeds[0]}); held-out val: {n_val} truly matching pairs "
          f"(chance R@1 {arms['b'].evals[0]['retrieval']['chance_R@1']:.4f}); 95% bootstrap CIs over val pairs; "
          f"curate keep_top {args.keep_top}, semantic threshold {args.semantic_threshold} (max drop "
          f"{args.semantic_max_drop}); {seconds / 60:.0f} min\n")
    print("| arm | train rows | mean R@1 | i2t R@1 | t2i R@1 | i2t R@5 | t2i R@5 | MLM acc gap (matched - "
          "mismatched) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, arm in arms.items():
        b = boots[key]
        gaps = [e["mlm"]["gap_matched_vs_mismatched"]["accuracy"] for e in arm.evals]
        gap = (f"{np.mean([g['mean'] for g in gaps]):+.4f} [{np.mean([g['ci95'][0] for g in gaps]):+.4f}, "
               f"{np.mean([g['ci95'][1] for g in gaps]):+.4f}]")
        rows = np.mean([Manifest.read(json.loads((r / "config.json").read_text())["data"]).rows_out
                        for r in arm.runs])
        print(f"| {labels[key]} | {rows:.0f} | {ci(b['mean_R@1'])} | {ci(b['i2t_R@1'])} | {ci(b['t2i_R@1'])} | "
              f"{ci(b['i2t_R@5'])} | {ci(b['t2i_R@5'])} | {gap} |")
    for hi, lo in (("b", "a"), ("c", "b")):
        d = boots[hi]["mean_R@1"] - boots[lo]["mean_R@1"]
        lo_ci, hi_ci = np.percentile(d[1:], [2.5, 97.5])
        verdict = "target met" if lo_ci > 0 else "TARGET MISSED"
        per_seed = ", ".join(f"{x['mean_R@1'].mean() - y['mean_R@1'].mean():+.3f}"
                             for x, y in zip(map(hits, arms[hi].evals), map(hits, arms[lo].evals), strict=True))
        print(f"\nmean R@1 ({hi}) - ({lo}): {d[0]:+.4f} [95% CI {lo_ci:+.4f}, {hi_ci:+.4f}]: {verdict} "
              f"(per training seed: {per_seed})")
    auc = np.mean([a for a, _, _ in aucs])
    print(f"\nalignment ROC AUC, planted mismatched (swapped, generic) vs true captions in (b)'s train split, "
          f"scored by (b)'s model: {auc:.3f} (per seed {', '.join(f'{a:.3f}' for a, _, _ in aucs)}; "
          f"{aucs[0][1]} true, {aucs[0][2]} mismatched): {'target met' if auc >= 0.90 else 'TARGET MISSED'} (>= 0.90)")
    for seed, text in zip(args.seeds, reports, strict=True):
        print(f"curate, seed {seed}: {text}")


if __name__ == "__main__":
    main()
