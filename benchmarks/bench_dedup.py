"""Near-duplicate quality and speed of the clean stage's dedup, measured on real photos and at scale.

    python benchmarks/bench_dedup.py quality                  # edited copies of real photos: recall per edit
    python benchmarks/bench_dedup.py search --n 1000000 --t 8  # candidate search alone on random hashes
    python benchmarks/bench_dedup.py scale --pictures 200000   # false merges among distinct demo pictures (long)

``quality`` builds an edited-copy set from every real photo available offline: ``../shared/fixtures/images`` and
the photos that ship inside pip packages (scikit-image, scikit-learn, matplotlib, PyWavelets, mahotas; with
``pip install --no-deps gradio imgaug ultralytics`` nine more, read as files, never imported).  Each photo is
scaled to a 1024-px long side and stored as JPEG q95 (the original); every edit is made from that picture.  All
images go through the clean stage's own path (`pipeline.images.normalise`, the canonical decode and its hashes)
and the stage's own dedup; brute-force pHash at several thresholds is computed on the same hashes in the same run.
Recall of an edit = share of its copies that end up in their original's cluster; a false merge = two distinct
photos whose images share a cluster.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXTURES = Path(os.environ.get("MMPIPE_FIXTURES", REPO.parent / "shared" / "fixtures"))
LONG_SIDE = 1024

# (package, folder inside it): photos that pip packages ship as data files
PACKAGE_PHOTOS = (
    ("skimage", "data"), ("sklearn", "datasets/images"), ("matplotlib", "mpl-data/sample_data"), ("pywt", "data"),
    ("mahotas", "demos/data"), ("gradio", "media_assets/images"), ("gradio", "test_data"), ("imgaug", ""),
    ("ultralytics", "assets"),
)
# not photographs (graphics, synthetic patterns, plots, depth maps, icons, an illustration), too small (< 200 px),
# a second exposure of the same scene (motorcycle_right: the stereo twin of motorcycle_left), or a test image we do
# not use (lena)
NOT_PHOTOS = {
    "chessboard_GRAY", "chessboard_RGB", "color", "horse", "logo", "microaneurysms", "phantom", "motorcycle_right",
    "Minduka_Present_Blue_Pack", "logo2", "ecg", "sst_nino3", "avatar", "bus.png", "hf-logo_transpng",
    "quokka_depth_map_halfres", "DepartmentStore", "lena", "multipage", "multipage_rgb", "no_time_for_that_tiny",
}
SUFFIXES = (".png", ".jpg", ".jpeg", ".npz")


def _candidates() -> list[Path]:
    files = sorted((FIXTURES / "images").glob("*")) if (FIXTURES / "images").is_dir() else []
    for package, folder in PACKAGE_PHOTOS:
        spec = importlib.util.find_spec(package)  # finds the package's folder without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        base = Path(next(iter(spec.submodule_search_locations))) / folder
        if base.is_dir():
            files.extend(sorted(base.iterdir()))
    return [f for f in files if f.suffix.lower() in SUFFIXES]


def _open(path: Path) -> Image.Image | None:
    try:
        if path.suffix == ".npz":
            with np.load(path) as data:
                if "data" not in data or data["data"].dtype != np.uint8 or data["data"].ndim not in (2, 3):
                    return None
                return Image.fromarray(data["data"])
        img = Image.open(path)
        img.load()
        return img
    except (OSError, ValueError):
        return None


def real_photos() -> dict[str, Image.Image]:
    """name -> RGB photo at a 1024-px long side; the same pixels found twice (fixtures = scikit-image) count once."""
    photos: dict[str, Image.Image] = {}
    seen: set[str] = set()
    for path in _candidates():
        if path.stem in NOT_PHOTOS or path.name in NOT_PHOTOS:
            continue
        img = _open(path)
        if img is None or min(img.size) < 200:
            continue
        rgb = img.convert("RGB")
        digest = hashlib.sha256(rgb.tobytes()).hexdigest()
        if digest in seen or path.stem in photos:
            continue
        seen.add(digest)
        scale = LONG_SIDE / max(rgb.size)
        photos[path.stem] = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)),
                                       Image.Resampling.LANCZOS)
    return photos


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _crop(img: Image.Image, share: float) -> Image.Image:
    """Keep the centre (1 - share) of each side (share/2 off each edge)."""
    dx, dy = round(img.width * share / 2), round(img.height * share / 2)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _pad(img: Image.Image, share: float, colour=(255, 255, 255)) -> Image.Image:
    dx, dy = round(img.width * share), round(img.height * share)
    out = Image.new("RGB", (img.width + 2 * dx, img.height + 2 * dy), colour)
    out.paste(img, (dx, dy))
    return out


def _watermark(img: Image.Image) -> Image.Image:
    out = img.copy()
    draw = ImageDraw.Draw(out)
    size = max(12, img.height // 20)
    font = ImageFont.load_default(size=size)
    text = "© Example Press 2026"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = img.width - (right - left) - size // 2, img.height - (bottom - top) - size // 2
    draw.text((x + 2, y + 2), text, font=font, fill=(0, 0, 0))
    draw.text((x, y), text, font=font, fill=(255, 255, 255))
    return out


def _thumb_up(img: Image.Image) -> Image.Image:
    small = img.copy()
    small.thumbnail((256, 256), Image.Resampling.LANCZOS)
    return small.resize(img.size, Image.Resampling.BICUBIC)


def _webp(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "WEBP", quality=80)
    return out.getvalue()


def _letterbox(img: Image.Image) -> Image.Image:
    """Black bars to a 16:9 frame (or pillar bars for a wider photo), as video stills and social previews do."""
    w, h = img.size
    target_w, target_h = (w, round(w * 9 / 16)) if w / h < 16 / 9 else (round(h * 16 / 9), h)
    if (target_w, target_h) == (w, h) or target_h < h:
        target_w, target_h = round(h * 16 / 9) + 2, h  # pillarbox
    out = Image.new("RGB", (max(w, target_w), max(h, target_h)), (0, 0, 0))
    out.paste(img, ((out.width - w) // 2, (out.height - h) // 2))
    return out


# name -> bytes of the edited copy; the list, then extras (reported, not in the mean)
EDITS = {
    "jpeg_q30": lambda im: _jpeg(im, 30),
    "resize_40": lambda im: _jpeg(im.resize((round(im.width * 0.4), round(im.height * 0.4)),
                                            Image.Resampling.LANCZOS)),
    "crop_3": lambda im: _jpeg(_crop(im, 0.03)),
    "crop_8": lambda im: _jpeg(_crop(im, 0.08)),
    "brightness_+15": lambda im: _jpeg(ImageEnhance.Brightness(im).enhance(1.15)),
    "contrast_-20": lambda im: _jpeg(ImageEnhance.Contrast(im).enhance(0.8)),
    "grayscale": lambda im: _jpeg(im.convert("L")),
    "rotate_2": lambda im: _jpeg(im.rotate(2, resample=Image.Resampling.BICUBIC)),
    "watermark": lambda im: _jpeg(_watermark(im)),
    "pad_5": lambda im: _jpeg(_pad(im, 0.05)),
    "flip": lambda im: _jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "blur": lambda im: _jpeg(im.filter(ImageFilter.GaussianBlur(2))),
    "webp": _webp,
    "thumb_256_up": lambda im: _jpeg(_thumb_up(im)),
}
EXTRA_EDITS = {
    "pad_5_black": lambda im: _jpeg(_pad(im, 0.05, (0, 0, 0))),
    "letterbox": lambda im: _jpeg(_letterbox(im)),
    "flip_crop_3": lambda im: _jpeg(_crop(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 0.03)),
    "rotate_-1_crop_3": lambda im: _jpeg(_crop(im.rotate(-1, resample=Image.Resampling.BICUBIC), 0.03)),
}


@dataclass
class Item:
    photo: str
    edit: str  # "original" or an EDITS / EXTRA_EDITS name
    data: bytes


def edited_set(photos: dict[str, Image.Image]) -> list[Item]:
    items = []
    for name, img in photos.items():
        items.append(Item(name, "original", _jpeg(img, 95)))
        for edit, make in {**EDITS, **EXTRA_EDITS}.items():
            items.append(Item(name, edit, make(img)))
    return items


def _normalise(data: bytes):
    from pipeline.config import CleanConfig
    from pipeline.images import normalise

    return normalise(data, CleanConfig(raw="-", out="-"))


def hash_items(items: list[Item], *, jobs: int) -> tuple[list, float]:
    """The clean stage's own per-image path on every item; returns the results and CPU-ms per image."""
    from multiprocessing import Pool

    t = time.process_time()
    start = time.perf_counter()
    with Pool(jobs) as pool:
        out = pool.map(_normalise, [it.data for it in items], chunksize=8)
    wall = time.perf_counter() - start
    del t
    return out, 1000 * wall * jobs / len(items)


def stage_labels(items: list[Item], images: list) -> np.ndarray:
    """Cluster label per item under the clean stage's own dedup rule and default threshold."""
    from pipeline.config import CleanConfig
    from pipeline.dedup import DedupInput, dedup, exact_key

    cfg = CleanConfig(raw="-", out="-")
    n = len(items)
    sig = signal_arrays(images)
    x = DedupInput(
        keys=np.array([f"{it.photo}/{it.edit}" for it in items], dtype=str), phash=sig["p"],
        exact=exact_key([im.sha256 for im in images]),
        pixels=np.array([im.original_width * im.original_height for im in images], np.int64),
        caption_rank=np.zeros(n, np.int64), published=np.arange(n, dtype=np.int64),
        crawled=np.arange(n, dtype=np.int64), old=np.zeros(n, bool), old_cluster=np.full(n, "", object),
        phash_flip=sig["pf"], pdq=sig["q"], pdq_flip=sig["qf"])
    result = dedup(x, **cfg.dedup_rule())
    _, labels = np.unique(result.cluster.astype(str), return_inverse=True)
    return labels


def brute_labels(hashes: np.ndarray, t: int, *, mirrored: np.ndarray | None = None) -> np.ndarray:
    from pipeline.dedup import components

    h = hashes.astype(np.uint64)
    d = np.bitwise_count(h[:, None] ^ h[None, :])
    if mirrored is not None:
        d = np.minimum(d, np.bitwise_count(mirrored.astype(np.uint64)[:, None] ^ h[None, :]))
    i, j = np.nonzero(np.triu(d <= t, 1))
    return components(len(h), i, j)


def signal_arrays(images: list) -> dict[str, np.ndarray]:
    from pipeline.dedup import colour_array, pdq_words

    return {"p": np.array([im.phash for im in images], np.uint64),
            "pf": np.array([im.phash_flip for im in images], np.uint64),
            "q": pdq_words([im.pdq for im in images]), "qf": pdq_words([im.pdq_flip for im in images]),
            "c": colour_array([im.colour for im in images]),
            "a": np.array([im.aspect for im in images], np.float32)}


def distance_matrices(sig: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All-pairs distances: pHash direct, pHash mirrored (the smaller of the two ways), and PDQ likewise."""
    def d64(a, b):
        return np.bitwise_count(a[:, None] ^ b[None, :]).astype(np.int16)

    def d256(a, b):
        return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2).astype(np.int16)

    def colour(a, b):
        return np.abs(a[:, None, :].astype(np.int16) - b[None, :, :]).mean(axis=2)

    from pipeline.dedup import is_grey

    mirror_p = d64(sig["pf"], sig["p"])
    mirror_q = d256(sig["qf"], sig["q"])
    mirror_c = colour(sig["c"].reshape(-1, 4, 4, 2)[:, :, ::-1].reshape(-1, 32), sig["c"])
    grey = is_grey(sig["c"])
    return {"p": d64(sig["p"], sig["p"]), "pm": np.minimum(mirror_p, mirror_p.T),
            "q": d256(sig["q"], sig["q"]), "qm": np.minimum(mirror_q, mirror_q.T),
            "c": colour(sig["c"], sig["c"]), "cm": np.minimum(mirror_c, mirror_c.T),
            "grey": grey[:, None] | grey[None, :], "a": np.abs(sig["a"][:, None] - sig["a"][None, :])}


def rule_labels(dist: dict[str, np.ndarray], t: int, q: int | None, c: int | None = None,
                a: float | None = None) -> np.ndarray:
    """Components under: pHash (or its mirror) within t, and, when q is set, PDQ (the same way round) within q,
    and, when c is set, the colour layouts within c unless either picture is grey."""
    from pipeline.dedup import components

    direct, mirror = dist["p"] <= t, dist["pm"] <= t
    if q is not None:
        direct, mirror = direct & (dist["q"] <= q), mirror & (dist["qm"] <= q)
    if c is not None:
        direct &= dist["grey"] | (dist["c"] <= c)
        mirror &= dist["grey"] | (dist["cm"] <= c)
    if a is not None:
        direct &= dist["a"] <= a
        mirror &= dist["a"] <= a
    i, j = np.nonzero(np.triu(direct | mirror, 1))
    return components(len(dist["p"]), i, j)


def analyse(items: list[Item], dist: dict[str, np.ndarray]) -> None:
    """Distances of every copy to its original, per edit, and the closest pairs of distinct photos."""
    index = {(it.photo, it.edit): k for k, it in enumerate(items)}
    print(f"{'edit':<18}{'pHash med/p90/max':>20}{'mirror med/max':>16}{'PDQ med/p90/max':>20}")
    for edit in [*EDITS, *EXTRA_EDITS]:
        ks = [(index[(p, "original")], index[(p, edit)]) for p, e in index if e == edit]
        p = np.array([min(dist["p"][o, k], dist["pm"][o, k]) for o, k in ks])
        use_m = np.array([dist["pm"][o, k] < dist["p"][o, k] for o, k in ks])
        q = np.array([dist["qm"][o, k] if m else dist["q"][o, k] for (o, k), m in zip(ks, use_m, strict=True)])
        pm = np.array([dist["pm"][o, k] for o, k in ks])
        print(f"{edit:<18}{np.median(p):>8.0f}/{np.percentile(p, 90):>3.0f}/{p.max():>3d}"
              f"{np.median(pm):>9.0f}/{pm.max():>3d}    "
              f"{np.median(q):>8.0f}/{np.percentile(q, 90):>3.0f}/{q.max():>3d}")
    photo = np.array([it.photo for it in items])
    other = photo[:, None] != photo[None, :]
    dp = np.minimum(dist["p"], dist["pm"])
    close = np.argwhere(np.triu(other & (dp <= 14), 1))
    rows = sorted(((int(dp[a, b]), int(min(dist["q"][a, b], dist["qm"][a, b])), items[a].photo + "/" + items[a].edit,
                    items[b].photo + "/" + items[b].edit) for a, b in close))
    print(f"distinct photos: smallest pHash distance {dp[other].min()}, pairs within 14: {len(rows)}; "
          f"smallest PDQ distance {np.minimum(dist['q'], dist['qm'])[other].min()}")
    for row in rows[:25]:
        print("   pHash {:2d}  PDQ {:3d}  {} ~ {}".format(*row))


def score(items: list[Item], labels: np.ndarray, *, val_fraction: float = 0.05) -> dict:
    from pipeline.dedup import split_of

    original = {it.photo: labels[k] for k, it in enumerate(items) if it.edit == "original"}
    hits: dict[str, list[bool]] = defaultdict(list)
    for k, it in enumerate(items):
        if it.edit != "original":
            hits[it.edit].append(bool(labels[k] == original[it.photo]))
    members: dict[int, set[str]] = defaultdict(set)
    clusters: dict[str, set[int]] = defaultdict(set)
    for k, it in enumerate(items):
        members[int(labels[k])].add(it.photo)
        clusters[it.photo].add(int(labels[k]))
    merged = sorted({tuple(sorted((a, b))) for ps in members.values() for a in ps for b in ps if a < b})
    splits = {p: {split_of(f"c{c}", val_fraction=val_fraction) for c in cs} for p, cs in clusters.items()}
    recall = {e: sum(v) / len(v) for e, v in hits.items()}
    listed = [recall[e] for e in EDITS]
    return {"recall": recall, "mean": statistics.mean(listed), "false_merges": merged,
            "split_photos": sum(len(cs) > 1 for cs in clusters.values()),
            "straddle": sum(len(s) > 1 for s in splits.values())}


def _print_table(items: list[Item], rules: dict[str, dict]) -> None:
    names = list(rules)
    print(f"{'edit':<18}" + "".join(f"{n:>14}" for n in names))
    for edit in [*EDITS, *EXTRA_EDITS]:
        mark = "" if edit in EDITS else " *"
        print(f"{edit + mark:<18}" + "".join(f"{rules[n]['recall'][edit]:>14.2f}" for n in names))
    print(f"{'MEAN (listed)':<18}" + "".join(f"{rules[n]['mean']:>14.3f}" for n in names))
    print(f"{'false merges':<18}" + "".join(f"{len(rules[n]['false_merges']):>14d}" for n in names))
    print(f"{'photos >1 cluster':<18}" + "".join(f"{rules[n]['split_photos']:>14d}" for n in names))
    for n in names:
        if rules[n]["false_merges"]:
            print(f"  {n}: merged distinct photos {rules[n]['false_merges'][:12]}")
    print("(* extra edits, not in the mean)")


def _ms(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1000 * (time.perf_counter() - start) / repeats


def _costs_of(img: Image.Image, repeats: int) -> dict[str, float]:
    from pipeline.phash import phash, phash_pair
    from pipeline.signals import colour_cells, content_box, pdq_pair, reduced, signals

    gray = img.convert("L")
    pixels, luma = np.asarray(gray), np.asarray(reduced(gray))
    return {"pHash (before)": _ms(lambda: phash(img), repeats),
            "+ border check": _ms(lambda: content_box(pixels), repeats),
            "+ mirrored pHash": _ms(lambda: phash_pair(gray), repeats) - _ms(lambda: phash(img), repeats)
            + _ms(lambda: img.convert("L"), repeats),
            "+ 64x64 luminance reduction": _ms(lambda: reduced(gray), repeats),
            "+ PDQ and its mirror": _ms(lambda: pdq_pair(luma), repeats),
            "+ colour layout": _ms(lambda: colour_cells(np.asarray(img.resize((64, 64), Image.Resampling.NEAREST))),
                                   repeats),
            "all signals": _ms(lambda: signals(img), repeats)}


def signal_costs(photos: dict[str, Image.Image], *, repeats: int = 20) -> dict[str, float]:
    """Median ms per 1024-px photo: the stage's pHash alone (what it hashed before), each added signal, and all."""
    rows = [_costs_of(img, repeats) for img in photos.values()]
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def run_quality(args) -> None:
    photos = real_photos()
    items = edited_set(photos)
    print(f"{len(photos)} real photos, {len(items)} images ({len(EDITS)} listed edits + {len(EXTRA_EDITS)} extras)")
    print("photos:", ", ".join(photos))
    images, ms = hash_items(items, jobs=args.jobs)
    dropped = Counter(im for im in images if isinstance(im, str))
    if dropped:
        raise SystemExit(f"the stage dropped some images before dedup: {dict(dropped)}")
    print(f"stage path (normalise): {ms:.1f} ms per image (wall x jobs)")
    if args.costs:
        costs = signal_costs(photos)
        print("signal costs, median ms per photo (1024 px long side): "
              + ", ".join(f"{k} {v:.3f}" for k, v in costs.items()))
    hashes = np.array([im.phash for im in images], dtype=np.uint64)
    rules = {"stage": score(items, stage_labels(items, images))}
    for t in args.brute:
        rules[f"pHash t={t}"] = score(items, brute_labels(hashes, t))
    dist = distance_matrices(signal_arrays(images))
    for rule in args.rules:
        t, q, c, a = (*rule, None, None)[:4]
        rules[f"{t},{q},{c},{a}"] = score(items, rule_labels(dist, t, q, c, a))
    _print_table(items, rules)
    if args.analyse:
        analyse(items, dist)


# --- candidate search alone -----------------------------------------------------------------------------------

def planted_hashes(n: int, t: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n random 64-bit hashes; n/20 of them are copies of another with exactly t bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    chosen = rng.choice(n, n // 10, replace=False)
    src, dst = chosen[: n // 20], chosen[n // 20:]
    flips = np.zeros(len(dst), np.uint64)
    short = np.arange(len(dst))
    while short.size:  # add random bits until every copy differs in exactly t (a drawn bit may already be set)
        flips[short] |= np.uint64(1) << rng.integers(0, 64, short.size).astype(np.uint64)
        short = short[np.bitwise_count(flips[short]) < t]
    hashes[dst] = hashes[src] ^ flips
    return hashes, src, dst


def banded_pairs(hashes: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """The stage's search before this benchmark (commit fe7c900): t+2 bands, every pair of bands as a sort key."""
    import itertools

    n = hashes.size
    widths = [64 // (t + 2) + (1 if i < 64 % (t + 2) else 0) for i in range(t + 2)]
    shifts = [64 - sum(widths[: i + 1]) for i in range(t + 2)]
    found_i, found_j = [], []
    for (sa, wa), (sb, wb) in itertools.combinations(list(zip(shifts, widths, strict=True)), 2):
        key = (((hashes >> np.uint64(sa)) & np.uint64((1 << wa) - 1)) << np.uint64(wb)) | (
            (hashes >> np.uint64(sb)) & np.uint64((1 << wb) - 1))
        order = np.argsort(key)
        sorted_key, sorted_hash = key[order], hashes[order]
        active = np.flatnonzero(sorted_key[:-1] == sorted_key[1:])
        d = 1
        while active.size:
            close = active[np.bitwise_count(sorted_hash[active] ^ sorted_hash[active + d]) <= t]
            a, b = order[close], order[close + d]
            found_i.append(np.minimum(a, b))
            found_j.append(np.maximum(a, b))
            d += 1
            active = active[active + d < n]
            active = active[sorted_key[active] == sorted_key[active + d]]
    pairs = np.unique(np.concatenate(found_i).astype(np.int64) * n + np.concatenate(found_j))
    return pairs // n, pairs % n


def faiss_pairs(hashes: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's IndexBinaryMultiHash (multi-index hashing, 3 tables of 21 bits, nflip = t // 3) range search."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    codes = hashes.view(np.uint8).reshape(-1, 8)
    index = faiss.IndexBinaryMultiHash(64, 3, 21)
    index.nflip = t // 3  # 3 tables, 63 bits covered: some table is within t // 3 when 3 (t // 3 + 1) > t
    index.add(codes)
    lims, _dist, labels = index.range_search(codes, t + 1)  # faiss keeps distances < radius
    q = np.repeat(np.arange(len(hashes)), np.diff(lims).astype(np.int64))
    keep = labels > q
    return q[keep], labels[keep]


def _search_child(method: str, n: int, t: int) -> None:
    import resource

    hashes, src, dst = planted_hashes(n, t)
    if method == "mih":
        from pipeline.hamming import radius_pairs

        radius_pairs(hashes[:5000], t)  # numba loads its cached kernels once per process
        run = lambda: radius_pairs(hashes, t)  # noqa: E731
    else:
        run = {"banded": lambda: banded_pairs(hashes, t), "faiss": lambda: faiss_pairs(hashes, t)}[method]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    i, j = run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    found = np.unique(lo * n + hi)
    planted = np.unique(np.minimum(src, dst) * n + np.maximum(src, dst))
    print(json.dumps({"method": method, "n": n, "t": t, "seconds": seconds, "cpu_s": cpu, "pairs": int(len(i)),
                      "unique": int(len(found)), "digest": hashlib.sha256(found.tobytes()).hexdigest()[:12],
                      "recall": float(np.isin(planted, found).mean()), "planted": int(len(planted)),
                      "rss_before_gb": rss0 / 1e6,
                      "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))


def run_search(args) -> None:
    import subprocess

    for n in args.n:
        for t in args.t:
            for method in args.methods:
                cmd = [sys.executable, __file__, "_search-child", method, str(n), str(t)]
                try:
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=True)
                except subprocess.TimeoutExpired:
                    print(f"{method:>7} n={n:>10,} t={t:>2}: did not finish in {args.timeout} s", flush=True)
                    continue
                except subprocess.CalledProcessError as exc:
                    print(f"{method:>7} n={n:>10,} t={t:>2}: failed: {exc.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{method:>7} n={n:>10,} t={t:>2}: {r['seconds']:7.1f} s wall, {r['cpu_s']:7.1f} CPU-s, "
                      f"peak RSS {r['peak_rss_gb']:.2f} GB (data alone {r['rss_before_gb']:.2f}), "
                      f"pairs {r['unique']:,} "
                      f"(digest {r['digest']}), planted recall {r['recall']:.4f} of {r['planted']:,}", flush=True)


# --- false merges at scale: distinct demo pictures ------------------------------------------------------------

_PICTURES: list = []


def _picture_signals(pids: list[int]) -> list[tuple]:
    from crawlers.demo.images import picture_bytes

    out = []
    for pid in pids:
        pic = _PICTURES[pid]
        im = _normalise(picture_bytes(_PICTURES, pid, None, pic.fmt))
        out.append((pid, None) if isinstance(im, str) else
                   (pid, (im.phash, im.phash_flip, im.pdq, im.pdq_flip, im.colour, im.aspect)))
    return out


def scale_signals(count: int, *, photo_size: str, jobs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The clean stage's hashes of ``count`` distinct demo pictures (planned distinct: see crawlers/demo/README)."""
    import random
    from multiprocessing import Pool

    from crawlers.demo.pictures import PictureFactory

    cache = REPO / "bench_out" / f"dedup-scale-{photo_size}-{count}-{seed}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return dict(data)
    start = time.perf_counter()
    factory = PictureFactory(random.Random(seed), photo_size)
    kinds = ("lead", "body", "body", "social")
    for k in range(count):
        factory.photo(kinds[k % 4])
    _PICTURES[:] = factory.pictures
    print(f"planned {count:,} distinct pictures in {time.perf_counter() - start:.0f} s "
          f"({factory.redrawn:,} light fields redrawn)", flush=True)
    chunks = [list(range(a, min(a + 500, count))) for a in range(0, count, 500)]
    rows: list[tuple] = []
    with Pool(jobs) as pool:
        for i, part in enumerate(pool.imap_unordered(_picture_signals, chunks), 1):
            rows.extend(part)
            if i % 20 == 0 or i == len(chunks):
                print(f"  hashed {len(rows):,}/{count:,} ({time.perf_counter() - start:.0f} s)", flush=True)
    rows = sorted(r for r in rows if r[1] is not None)
    from pipeline.dedup import colour_array, pdq_words

    out = {"pid": np.array([r[0] for r in rows]), "p": np.array([r[1][0] for r in rows], np.uint64),
           "pf": np.array([r[1][1] for r in rows], np.uint64), "q": pdq_words([r[1][2] for r in rows]),
           "qf": pdq_words([r[1][3] for r in rows]), "c": colour_array([r[1][4] for r in rows]),
           "a": np.array([r[1][5] for r in rows], np.float32)}
    cache.parent.mkdir(exist_ok=True)
    np.savez(cache, **out)
    return out


def run_scale(args) -> None:
    """Every merge among distinct pictures is false: count them under the final rule, and what PDQ rejected."""
    from pipeline.config import CleanConfig
    from pipeline.dedup import DedupInput, colour_distance, dedup, is_grey, pdq_distance
    from pipeline.hamming import radius_pairs

    cfg = CleanConfig(raw="-", out="-")
    t, q = args.t if args.t is not None else cfg.phash_threshold, args.q if args.q is not None else cfg.pdq_threshold
    sig = scale_signals(args.pictures, photo_size=args.photo_size, jobs=args.jobs)
    n = len(sig["p"])
    start = time.perf_counter()
    x = DedupInput(keys=np.char.mod("%012d", np.arange(n)), phash=sig["p"],
                   exact=np.stack([np.arange(n), np.zeros(n)], 1).astype(np.uint64), pixels=np.ones(n, np.int64),
                   caption_rank=np.zeros(n, np.int64), published=np.arange(n), crawled=np.arange(n),
                   old=np.zeros(n, bool), old_cluster=np.full(n, "", object), phash_flip=sig["pf"], pdq=sig["q"],
                   pdq_flip=sig["qf"], colour=sig["c"], aspect=sig["a"])
    result = dedup(x, **{**cfg.dedup_rule(), "threshold": t, "pdq_threshold": q})
    seconds = time.perf_counter() - start
    sizes = np.unique(result.cluster.astype(str), return_counts=True)[1]
    merged_pairs = int((sizes * (sizes - 1) // 2).sum())
    i, j = radius_pairs(sig["p"], t)
    mi, mj = radius_pairs(sig["p"], t, queries=sig["pf"])
    keep = mi != mj
    mi, mj = mi[keep], mj[keep]
    direct_q, mirror_q = pdq_distance(sig["q"][i], sig["q"][j]), pdq_distance(sig["qf"][mi], sig["q"][mj])
    grey = is_grey(sig["c"])
    colour = np.concatenate([np.where(grey[i] | grey[j], 0, colour_distance(sig["c"][i], sig["c"][j])),
                             np.where(grey[mi] | grey[mj], 0,
                                      colour_distance(sig["c"][mi], sig["c"][mj], mirror_a=True))])
    both_q = np.concatenate([direct_q, mirror_q])
    aspect_ok = np.concatenate([np.abs(sig["a"][i] - sig["a"][j]), np.abs(sig["a"][mi] - sig["a"][mj])]) <= (
        cfg.aspect_tolerance)
    total = n * (n - 1) // 2
    print(f"{n:,} distinct pictures ({args.photo_size}), rule pHash/mirror <= {t} and PDQ <= {q}: "
          f"dedup {seconds:.1f} s")
    print(f"  pHash candidates: {len(i):,} direct + {len(mi):,} mirrored "
          f"(of {total:,} pairs: {(len(i) + len(mi)) / total:.2e})")
    for name, d in (("direct", direct_q), ("mirrored", mirror_q)):
        if len(d):
            print(f"  PDQ distance of {name} candidates: min {d.min()}, 1st pct {np.percentile(d, 1):.0f}, "
                  f"median {np.median(d):.0f}; <= {q}: {(d <= q).sum()}")
    print(f"  FALSE MERGES under the rule: {int((~result.keep).sum())} rows dropped, {merged_pairs} merged pairs "
          f"(rate {merged_pairs / total:.1e} of pairs)")
    print(f"  colour distance of candidates (0 where one is grey): min {colour.min() if len(colour) else 0:.1f}, "
          f"median {np.median(colour) if len(colour) else 0:.1f}")
    for pq_t in (70, 80, 90, 100, 110, 256):
        passing = [int(((both_q <= pq_t) & (colour <= c)).sum()) for c in (6, 9, 12, 16, 255)]
        with_aspect = [int(((both_q <= pq_t) & (colour <= c) & aspect_ok).sum()) for c in (6, 9, 12, 16, 255)]
        print(f"  PDQ <= {pq_t:>3}: candidates passing with colour <= 6/9/12/16/any: {passing}, "
              f"and aspect: {with_aspect}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    q = sub.add_parser("quality", help="recall per edit and false merges on real photos")
    q.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    q.add_argument("--brute", type=int, nargs="*", default=[4, 8, 10])
    q.add_argument("--rules", type=lambda v: tuple(float(x) if x != "-" else None for x in v.split(",")), nargs="*",
                   default=[], help="extra rules T,Q[,C[,A]]: pHash or mirror within T, PDQ within Q ('-': no PDQ), "
                   "colour within C, log aspect within A")
    q.add_argument("--analyse", action="store_true", help="print distance distributions per edit")
    q.add_argument("--costs", action="store_true", help="time each signal per photo (single process)")
    c = sub.add_parser("search", help="candidate search alone on random hashes with planted pairs at distance t")
    c.add_argument("--n", type=int, nargs="+", default=[1_000_000])
    c.add_argument("--t", type=int, nargs="+", default=[8])
    c.add_argument("--methods", nargs="+", default=["mih", "banded", "faiss"], choices=["mih", "banded", "faiss"])
    c.add_argument("--timeout", type=int, default=900, help="seconds per method before it counts as unfinished")
    g = sub.add_parser("scale", help="false merges among distinct demo pictures (hours for 200,000 on 2 cores)")
    g.add_argument("--pictures", type=int, default=200_000)
    g.add_argument("--photo-size", default="small", choices=["small", "bench", "mixed"])
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    g.add_argument("--t", type=int, default=None, help="pHash threshold (default: the stage's)")
    g.add_argument("--q", type=int, default=None, help="PDQ threshold (default: the stage's)")
    if len(sys.argv) > 1 and sys.argv[1] == "_search-child":
        _search_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    args = ap.parse_args()
    if args.mode == "quality":
        run_quality(args)
    elif args.mode == "search":
        run_search(args)
    elif args.mode == "scale":
        run_scale(args)


if __name__ == "__main__":
    main()
