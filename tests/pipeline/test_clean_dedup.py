"""Dedup: banded near-duplicate search against brute force, components, the keep rule, reasons, previous runs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from data_schemas import reasons
from pipeline.config import CleanConfig
from pipeline.dedup import DedupInput, components, dedup, near_pairs, split_of
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
    def enc(im: Image.Image, q: int = 90) -> bytes:
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=q)
        return out.getvalue()

    w, h = img.size
    dx, dy = max(1, w // 40), max(1, h // 40)
    return {
        "original": enc(img, 95),
        "reencode": enc(img, 60),
        "resize": enc(img.resize((int(w * 0.7), int(h * 0.7)), Image.Resampling.BICUBIC)),
        "crop": enc(img.crop((dx, dy, w - dx, h - dy))),
        "brightness": enc(ImageEnhance.Brightness(img.convert("RGB")).enhance(1.15)),
    }


@pytest.mark.fixtures
def test_banded_search_finds_every_real_near_duplicate(fixtures: Path) -> None:
    names, hashes = [], []
    for path in sorted((fixtures / "images").glob("*.[pj][np]g")):
        img = Image.open(path)
        img.load()
        for kind, data in _variants(img).items():
            out = normalise(data, CFG)
            if isinstance(out, str):  # a fixture under 200 px after cropping would be dropped, not hashed
                continue
            names.append((path.stem, kind))
            hashes.append(out.phash)
    arr = np.array(hashes, dtype=np.uint64)
    i, j = near_pairs(arr, 4)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert found == _brute(arr, 4)
    # mild edits stay within the threshold; distinct photos never come close
    pairs = {(names[a], names[b]) for a, b in found}
    for stem in {n for n, _ in names}:
        for kind in ("reencode", "resize", "brightness"):
            assert ((stem, "original"), (stem, kind)) in pairs, (stem, kind)
    assert all(a[0] == b[0] for a, b in pairs), "two different photos were matched"


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
        ({"crawled": 5}, {"crawled": 6}),
    ]
    for winner, loser in cases:
        rows = [{**base, "key": "b", "phash": _flip(h, [3]), **winner}, {**base, "key": "a", **loser}]
        result = dedup(_input(rows))
        assert result.keep.tolist() == [True, False], (winner, loser)
        assert result.reason.tolist() == ["", reasons.DUPLICATE_NEAR]
        assert result.cluster.tolist() == ["b", "b"]
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
