"""The ground truth is exact and self-consistent, and every planted trouble is really there."""

from __future__ import annotations

import io
import itertools
import re
from collections import Counter, defaultdict

import ftfy
import pytest
from PIL import Image

from crawlers.demo import generate_site
from crawlers.demo.phash import hamming
from crawlers.demo.truth import rank
from data_schemas import CAPTION_ORIGINS, CAPTION_PREFERENCE
from data_schemas import reasons as R
from pipeline.config import CleanConfig
from pipeline.images import decode, orient, to_rgb
from pipeline.signals import signals

EXPECTED_REASONS = {
    "crawl": {R.ROBOTS_DISALLOWED, R.OPT_OUT_PAGE, R.OPT_OUT_IMAGE, R.OPT_OUT_TDMREP, R.SOCIAL_SENSITIVE,
              R.SOCIAL_NOINDEX, R.SOCIAL_NO_UNAUTHENTICATED, R.TEASER_IMAGE},
    "clean": {R.FETCH_FAILED, R.IMAGE_UNDECODABLE, R.IMAGE_DECOMPRESSION_BOMB, R.IMAGE_TOO_SMALL, R.IMAGE_BAD_ASPECT,
              R.CAPTION_BOILERPLATE, R.CAPTION_TOO_SHORT, R.CAPTION_EMPTY, R.CAPTION_TOO_LONG, R.DUPLICATE_EXACT,
              R.DUPLICATE_NEAR},
}
KEPT_TROUBLE = {"mojibake", "entity", "credit", "http_500_once", "slow", "alt_missing"}
BOILERPLATE = re.compile(r"^(image|photo|click to enlarge|placeholder|untitled|(img|dsc)_\d+\.(jpe?g|png))$", re.I)
CREDIT = re.compile(r"\s*(?:Photo: (?P<a>.+)|\((?P<b>AP Photo/.+)\)|Credit: (?P<c>.+))$")


def test_default_size_and_mix(site):
    truth = site.truth
    assert 200 <= len(truth) <= 400, len(truth)
    kinds = Counter(t.source_kind for t in truth)
    social = (kinds["mastodon"] + kinds["bluesky"]) / len(truth)
    assert 0.2 <= social <= 0.45, kinds
    assert kinds["bluesky"] > 0 and kinds["mastodon"] > 0
    assert len({t.image_url for t in truth}) == len(truth), "an image URL occurs in two pairs"


def test_every_reason_present_and_totals_add_up(site):
    crawl, clean, kept = site.expected_crawl_drops(), site.expected_clean_drops(), site.expected_kept()
    assert set(crawl) == EXPECTED_REASONS["crawl"] and all(v > 0 for v in crawl.values())
    assert set(clean) == EXPECTED_REASONS["clean"] and all(v > 0 for v in clean.values())
    assert kept + sum(crawl.values()) + sum(clean.values()) == len(site.truth)
    assert site.expected_raw_rows() == len(site.truth) - sum(crawl.values())
    assert set(crawl) <= set(R.CRAWL_REASONS) and set(clean) <= set(R.CLEAN_REASONS)
    troubles = Counter(t.trouble for t in site.truth if t.stage is None)
    assert KEPT_TROUBLE <= set(troubles), troubles


def test_rows_are_well_formed(site):
    for t in site.truth:
        assert (t.stage is None) == (t.reason is None)
        assert t.stage in (None, "crawl", "clean")
        assert t.lang in ("en", "fr", "de", "es")
        assert t.published_at.tzinfo is not None
        origins = [o for _, o in t.caption_candidates]
        assert set(origins) <= set(CAPTION_ORIGINS)
        assert origins == sorted(origins, key=CAPTION_PREFERENCE.index), t
        if t.stage is None or t.reason in (R.DUPLICATE_EXACT, R.DUPLICATE_NEAR):
            assert t.caption and t.caption_origin in origins
    langs = Counter(t.lang for t in site.truth if t.stage is None)
    assert {"fr", "de", "es"} & set(langs), langs


def _reference_caption(text: str) -> tuple[str, str | None]:
    """A minimal correct cleaner: ftfy, credit split, whitespace collapse."""
    text = ftfy.fix_text(text)
    credit = None
    m = CREDIT.search(text)
    if m:
        credit = m["a"] or m["b"] or m["c"]
        text = text[: m.start()]
    return " ".join(text.split()), credit


def _reference_reason(text: str) -> str | None:
    clean, _ = _reference_caption(text)
    if not clean:
        return R.CAPTION_EMPTY
    if len(clean) > 1000:
        return R.CAPTION_TOO_LONG
    if BOILERPLATE.match(clean):
        return R.CAPTION_BOILERPLATE
    if len(clean.split()) <= 2 or len(clean) <= 5:
        return R.CAPTION_TOO_SHORT
    return None


def test_captions_follow_the_preference_rule(site):
    """Re-derive every caption decision from the candidates with an independent reference cleaner."""
    for t in site.truth:
        passing = [(text, origin) for text, origin in t.caption_candidates if _reference_reason(text) is None]
        if t.reason in EXPECTED_REASONS["clean"] - {R.CAPTION_BOILERPLATE, R.CAPTION_TOO_SHORT, R.CAPTION_EMPTY,
                                                     R.CAPTION_TOO_LONG} or t.stage is None:
            if t.stage == "clean" and t.reason not in (R.DUPLICATE_EXACT, R.DUPLICATE_NEAR):
                continue  # image-level drops: the caption is never looked at
            assert passing, t
            caption, credit = _reference_caption(passing[0][0])
            assert (caption, passing[0][1]) == (t.caption, t.caption_origin), t
            assert credit == t.credit, t
        elif t.stage == "clean":
            assert not passing, t
            expected = _reference_reason(t.caption_candidates[0][0]) if t.caption_candidates else R.CAPTION_EMPTY
            assert expected == t.reason, t
    assert any(t.credit for t in site.truth) and any("Ã" in c for t in site.truth for c, _ in t.caption_candidates)


def test_served_bodies_match_the_reasons(site, image_responses):
    Image.MAX_IMAGE_PIXELS = 100_000_000
    for t in site.truth:
        status, headers, body = image_responses[t.image_url]
        if t.trouble == "http_404":
            assert status == 404
            continue
        assert status == 200, t
        if t.trouble == "not_image":
            assert headers["Content-Type"] == "image/jpeg" and body.lstrip().startswith(b"<!DOCTYPE html")
        elif t.trouble == "truncated":
            with pytest.raises(OSError):
                Image.open(io.BytesIO(body)).load()
        elif t.trouble == "bomb":
            assert len(body) < 200_000
            with pytest.raises(Image.DecompressionBombError):
                Image.open(io.BytesIO(body))
        else:
            with Image.open(io.BytesIO(body)) as im:
                im.load()
                assert im.size == (t.width, t.height), t
                assert headers["Content-Type"] == Image.MIME[im.format]
            side, aspect = max(im.size), max(im.size) / min(im.size)
            assert (side < 200) == (t.trouble == "tiny"), t
            assert (aspect > 3) == (t.trouble == "wide"), t
        assert ("X-Robots-Tag" in headers) == (t.trouble == "noimageai")
    sizes = [max(t.width, t.height) for t in site.truth]
    assert max(sizes) >= 1500, "realistic sizes reach ~1600 px"


def _stage_hashes(body: bytes) -> tuple[int, int]:
    """(pHash, mirrored pHash) as the clean stage computes them (uniform frames trimmed first)."""
    s = signals(to_rgb(orient(decode(body, max_pixels=CleanConfig.max_pixels))))
    return s.phash, s.phash_flip


def test_duplicates_and_distinct_pictures(site, image_responses):
    hashes = {}
    for t in site.truth:
        if t.width:
            hashes[t.image_url] = (t.dup_group, *_stage_hashes(image_responses[t.image_url][2]))
    groups = defaultdict(list)
    for url, (group, h, flip) in hashes.items():
        groups[group].append((url, h, flip))
    planted = {g: m for g, m in groups.items() if len(m) > 1}
    assert len(planted) >= 6
    for members in planted.values():
        for (u1, h1, f1), (u2, h2, f2) in itertools.combinations(members, 2):
            d = min(hamming(h1, h2), hamming(f1, h2), hamming(h1, f2))  # mirrored copies compare mirrored
            assert d <= 4, (u1, u2, d)
    closest = min(hamming(a[1], b[1]) for a, b in itertools.combinations(hashes.values(), 2) if a[0] != b[0])
    assert closest > 8, closest


def test_keep_rule_inside_each_group(site, image_responses):
    by_group = defaultdict(list)
    for t in site.truth:
        if t.trouble in ("dup_exact", "dup_near") or any(
                o.dup_group == t.dup_group and o.trouble in ("dup_exact", "dup_near") for o in site.truth
                if o is not t and o.stage != "crawl"):
            if t.stage != "crawl":
                by_group[t.dup_group].append(t)
    assert by_group
    exact_losers = near_losers = 0
    for members in by_group.values():
        kept = [t for t in members if t.stage is None]
        assert len(kept) == 1, members
        best = min(members, key=lambda t: (-t.width * t.height, rank(t.caption_origin), t.published_at))
        assert best is kept[0]
        winner_body = image_responses[kept[0].image_url][2]
        for t in members:
            if t is kept[0]:
                continue
            same = image_responses[t.image_url][2] == winner_body or any(
                o is not t and o.reason != R.DUPLICATE_EXACT and image_responses[o.image_url][2] ==
                image_responses[t.image_url][2] for o in members)
            assert t.reason == (R.DUPLICATE_EXACT if same else R.DUPLICATE_NEAR), t
            exact_losers += t.reason == R.DUPLICATE_EXACT
            near_losers += t.reason == R.DUPLICATE_NEAR
    assert exact_losers and near_losers
    social_winner = [t for ms in by_group.values() for t in ms if t.stage is None and t.source_kind != "news"]
    assert social_winner, "a social copy with alt text should win a tie on pixels at least once"


def test_absolute_truth(site):
    rows = site.absolute_truth("http://127.0.0.1:9999/")
    assert all(r.page_url.startswith("http://127.0.0.1:9999/") and r.image_url.startswith("http://127.0.0.1:9999/")
               for r in rows)
    assert rows[0].to_json().startswith("{")


def test_kept_pictures_pass_the_default_size_filter_at_every_photo_size():
    """The truth is what a pipeline with default settings keeps, so no kept picture may be under min_side 200."""
    for size in ("small", "mixed"):
        site = generate_site(articles=50, seed=3, photo_size=size)
        small = [t.image_url for t in site.truth if t.reason is None and min(t.width, t.height) < 200]
        assert not small, (size, small[:3])
