"""Dedup: near-duplicate search against brute force, the verified rule on real photos, components, the keep rule,
reasons, previous runs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from data_schemas import reasons
from pipeline.config import CleanConfig
from pipeline.dedup import (
    DedupInput,
    colour_array,
    components,
    dedup,
    exact_key,
    near_pairs,
    pdq_words,
    split_of,
)
from pipeline.images import normalise

CFG = CleanConfig(raw="r", out="o")


def _brute(hashes: np.ndarray, t: int) -> set[tuple[int, int]]:
    h = [int(v) for v in hashes]
    return {(i, j) for i in range(len(h)) for j in range(i + 1, len(h)) if (h[i] ^ h[j]).bit_count() <= t}


def _flip(h: int, bits: list[int]) -> int:
    for b in bits:
        h ^= 1 << int(b)
    return h


@pytest.mark.parametrize("threshold", [0, 2, 4, 6])
def test_banded_search_equals_brute_force_on_synthetic_hashes(threshold: int) -> None:
    rng = np.random.default_rng(threshold)
    base = [int(v) for v in rng.integers(0, 2**63, 120, dtype=np.uint64)]
    hashes = list(base)
    for h in base:  # neighbours at distances 0..8 around every base hash
        for _ in range(3):
            hashes.append(_flip(h, rng.choice(64, int(rng.integers(0, 9)), replace=False)))
    hashes += [0, 0, 2**64 - 1, 1, 3]  # degenerate values and exact repeats
    arr = np.array(hashes, dtype=np.uint64)
    i, j = near_pairs(arr, threshold)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == _brute(arr, threshold)


def _variants(img: Image.Image) -> dict[str, bytes]:
    """Everyday edits (benchmarks/bench_dedup.py measures these and more on every real photo available)."""
    def enc(im: Image.Image, q: int = 90) -> bytes:
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=q)
        return out.getvalue()

    img = img.convert("RGB")
    w, h = img.size
    framed = Image.new("RGB", (w + w // 10, h + h // 10), "white")
    framed.paste(img, (w // 20, h // 20))
    return {
        "original": enc(img, 95),
        "reencode": enc(img, 40),
        "resize": enc(img.resize((int(w * 0.5), int(h * 0.5)), Image.Resampling.BICUBIC)),
        "crop": enc(img.crop((w * 15 // 1000, h * 15 // 1000, w - w * 15 // 1000, h - h * 15 // 1000))),
        "brightness": enc(ImageEnhance.Brightness(img).enhance(1.15)),
        "flip": enc(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "pad": enc(framed),
        "rotate": enc(img.rotate(1.5, resample=Image.Resampling.BICUBIC)),
    }


def _stage_input(images: list, keys: list[str]) -> DedupInput:
    n = len(images)
    return DedupInput(
        keys=np.array(keys, str), phash=np.array([im.phash for im in images], np.uint64),
        exact=exact_key([im.sha256 for im in images]), pixels=np.full(n, 100, np.int64),
        caption_rank=np.zeros(n, np.int64), published=np.arange(n, dtype=np.int64),
        crawled=np.arange(n, dtype=np.int64), old=np.zeros(n, bool), old_cluster=np.full(n, "", object),
        phash_flip=np.array([im.phash_flip for im in images], np.uint64), pdq=pdq_words([im.pdq for im in images]),
        pdq_flip=pdq_words([im.pdq_flip for im in images]), colour=colour_array([im.colour for im in images]),
        aspect=np.array([im.aspect for im in images]))


@pytest.mark.fixtures
def test_stage_rule_finds_real_edits_flips_and_pads_and_merges_no_two_photos(fixtures: Path) -> None:
    names, images = [], []
    for path in sorted((fixtures / "images").glob("*.[pj][np]g")):
        img = Image.open(path)
        img.load()
        for kind, data in _variants(img).items():
            out = normalise(data, CFG)
            if isinstance(out, str):  # a fixture under 200 px after resizing would be dropped, not hashed
                continue
            names.append((path.stem, kind))
            images.append(out)
    result = dedup(_stage_input(images, [f"{a}/{b}" for a, b in names]), **CFG.dedup_rule())
    cluster = dict(zip(names, result.cluster.tolist(), strict=True))
    photos = {stem for stem, _ in names}
    for stem in photos:
        for kind in ("reencode", "resize", "crop", "brightness", "flip", "pad", "rotate"):
            if (stem, kind) in cluster:
                assert cluster[(stem, kind)] == cluster[(stem, "original")], (stem, kind)
    by_cluster: dict[str, set[str]] = {}
    for (stem, _), c in cluster.items():
        by_cluster.setdefault(c, set()).add(stem)
    assert all(len(stems) == 1 for stems in by_cluster.values()), "two different photos were merged"


def _pair(**b) -> DedupInput:
    """Two rows whose pHashes are 2 apart; row b's other signals as given (row a's are all zero / grey)."""
    grey = np.full(32, 85, np.uint8)
    return DedupInput(
        keys=np.array(["a", "b"]), phash=np.array([0, 0b11], np.uint64), exact=np.array([[1, 0], [2, 0]], np.uint64),
        pixels=np.array([200, 100]), caption_rank=np.zeros(2, np.int64), published=np.zeros(2, np.int64),
        crawled=np.zeros(2, np.int64), old=np.zeros(2, bool), old_cluster=np.full(2, "", object),
        phash_flip=np.array([2**64 - 1, b.get("flip", 2**64 - 1)], np.uint64),
        pdq=np.array([[0] * 4, b.get("pdq", [0] * 4)], np.uint64), pdq_flip=np.zeros((2, 4), np.uint64),
        colour=np.stack([grey, b.get("colour", grey)]).astype(np.uint8), aspect=np.array([0.0, b.get("aspect", 0.0)]))


def test_candidates_merge_only_when_the_other_signals_agree() -> None:
    rule = {"threshold": 8, "pdq_threshold": 90, "colour_threshold": 12, "aspect_tolerance": 0.1}
    red = np.tile([200, 30], 16).astype(np.uint8)
    cases = {
        "all agree": ({}, True),
        "PDQ 128 bits apart": ({"pdq": [2**64 - 1, 2**64 - 1, 0, 0]}, False),
        "one picture grey, the other red": ({"colour": red}, True),  # a grey copy of a colour picture
        "aspect 3:2 against 1:1": ({"aspect": np.log(1.5)}, False),
    }
    for name, (b, merged) in cases.items():
        assert (not dedup(_pair(**b), **rule).keep[1]) == merged, name
    coloured = _pair(colour=red)
    coloured.colour[0] = np.tile([30, 200], 16)  # both in colour, and different colours
    assert dedup(coloured, **rule).keep.all()


def test_a_mirrored_copy_is_found_through_the_mirrored_hash() -> None:
    x = _pair()
    x.phash[1] = 0xFFFF0000FFFF0000  # 32 bits from a: no direct candidate ...
    x.phash_flip[0] = 0xFFFF0000FFFF0001  # ... but a's mirror image is 1 bit from b
    assert not dedup(x, threshold=8, pdq_threshold=90).keep[1]
    x.phash_flip[0] = 0
    assert dedup(x, threshold=8, pdq_threshold=90).keep.all()
    x.phash_flip[0] = 0xFFFF0000FFFF0001
    x.pdq[1] = [2**64 - 1, 0, 0, 0]  # 64 bits from a's mirrored PDQ: enough for a direct candidate, not a mirrored one
    assert not dedup(x, threshold=8, pdq_threshold=90).keep[1]
    assert dedup(x, threshold=8, pdq_threshold=90, pdq_threshold_mirrored=50).keep.all()


def test_components_against_python_union_find() -> None:
    rng = np.random.default_rng(1)
    n = 500
    a, b = rng.integers(0, n, 300), rng.integers(0, n, 300)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        rx, ry = find(x), find(y)
        parent[max(rx, ry)] = min(rx, ry)
    expected = [min(k for k in range(n) if find(k) == find(x)) for x in range(n)]
    assert components(n, a, b).tolist() == expected


def _input(rows: list[dict]) -> DedupInput:
    def col(name: str, default, dtype=None):
        return np.array([r.get(name, default) for r in rows], dtype=dtype)

    return DedupInput(
        keys=col("key", "", str), phash=col("phash", 0, np.uint64),
        exact=np.array([[r.get("pix", i), 0] for i, r in enumerate(rows)], dtype=np.uint64),
        pixels=col("pixels", 100, np.int64), caption_rank=col("rank", 0, np.int64),
        published=col("published", 0, np.int64), crawled=col("crawled", 0, np.int64),
        old=col("old", False, bool), old_cluster=col("cluster", "", object),
    )


def test_keep_rule_order() -> None:
    h = 0x0123456789ABCDEF
    base = {"phash": h, "pixels": 100, "rank": 3, "published": 10, "crawled": 10}
    cases = [  # (winner overrides, loser overrides)
        ({"pixels": 200}, {"rank": 0, "published": 1, "crawled": 1}),
        ({"rank": 1}, {"rank": 2, "published": 1, "crawled": 1}),
        ({"published": 5}, {"published": np.iinfo(np.int64).max, "crawled": 1}),  # nulls last
        ({"key": "0", "crawled": 6}, {"crawled": 5}),  # crawled_at (arrival order) never decides: the key does
    ]
    for winner, loser in cases:
        rows = [{**base, "key": "b", "phash": _flip(h, [3]), **winner}, {**base, "key": "a", **loser}]
        result = dedup(_input(rows))
        assert result.keep.tolist() == [True, False], (winner, loser)
        assert result.reason.tolist() == ["", reasons.DUPLICATE_NEAR]
        assert result.cluster.tolist() == [rows[0]["key"]] * 2
    tie = dedup(_input([{**base, "key": "b", "pix": 7}, {**base, "key": "a", "pix": 7}]))
    assert tie.keep.tolist() == [False, True] and tie.reason[0] == reasons.DUPLICATE_EXACT


def test_exact_losers_and_near_losers_and_chains() -> None:
    h = 0xF0F0F0F0F0F0F0F0
    rows = [
        {"key": "a", "phash": h, "pix": 1, "rank": 1},  # A
        {"key": "a2", "phash": h, "pix": 1, "rank": 4},  # A' (same pixels, worse caption)
        {"key": "b", "phash": _flip(h, [1, 2, 3]), "pix": 2, "pixels": 900},  # B: near, bigger: kept
        {"key": "c", "phash": _flip(h, [1, 2, 3, 10, 11, 12]), "pix": 3},  # 3 bits from B, 6 from A: chained
        {"key": "d", "phash": _flip(h, list(range(20, 40))), "pix": 4},  # distinct
    ]
    r = dedup(_input(rows), threshold=4)
    assert r.keep.tolist() == [False, False, True, False, True]
    assert r.reason.tolist() == [reasons.DUPLICATE_NEAR, reasons.DUPLICATE_EXACT, "", reasons.DUPLICATE_NEAR, ""]
    assert r.cluster.tolist() == ["b", "b", "b", "b", "d"]


def test_previous_run_rows_win_and_keep_their_cluster() -> None:
    h = 0x1111222233334444
    rows = [
        {"key": "new1", "phash": _flip(h, [5]), "pixels": 10**6},  # bigger, but the old row stays
        {"key": "new2", "phash": _flip(h, [50, 51, 52, 53, 54, 55])},  # unrelated to the old row
        {"key": "old", "phash": h, "old": True, "cluster": "c-old"},
        {"key": "old2", "phash": _flip(h, [1]), "old": True, "cluster": "c-old2"},  # two old rows, settled
    ]
    r = dedup(_input(rows))
    assert r.keep.tolist() == [False, True, True, True]
    assert r.reason.tolist() == [reasons.DUPLICATE_PREVIOUS_RUN, "", "", ""]
    assert r.cluster.tolist()[:1] == ["c-old"] and r.cluster.tolist()[2:] == ["c-old", "c-old2"]


def test_split_is_by_cluster_and_near_the_fraction() -> None:
    splits = [split_of(f"cluster-{i}", val_fraction=0.05, seed=0) for i in range(20_000)]
    assert 0.04 < splits.count("val") / len(splits) < 0.06
    assert split_of("x", val_fraction=0.05, seed=0) == split_of("x", val_fraction=0.05, seed=0)
    assert {split_of(f"c{i}", val_fraction=0.0) for i in range(100)} == {"train"}
    assert {split_of(f"c{i}", val_fraction=1.0) for i in range(100)} == {"val"}
