"""The caption noise the demo plants and a correct clean stage keeps: swapped captions (~20% of the kept pairs,
each the true description of another picture), generic alt texts, and re-shoots of one scene under their own
captions, which pHash keeps apart.  The truth marks every one (`PairTruth.noise`, `scene_group`)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from crawlers.demo import captions as C
from crawlers.demo import generate_site
from crawlers.demo.phash import hamming, phash_bytes
from pipeline.captions import clean_caption
from pipeline.config import CleanConfig


@pytest.fixture(scope="module")
def noisy():
    return generate_site(articles=200, seed=3, photo_size="small")


def _slots(site):
    plan = site.plan
    for owner in (*plan.articles, *plan.statuses, *plan.posts):
        yield from owner.slots


def test_noise_sits_only_on_kept_pairs_and_swaps_are_a_fifth(noisy):
    kept = [t for t in noisy.truth if t.kept]
    noisy_rows = [t for t in noisy.truth if t.noise]
    assert noisy_rows and all(t.kept for t in noisy_rows), "noise never changes what the clean stage keeps"
    swapped = sum("swapped" in t.noise for t in kept)
    assert 0.17 < swapped / len(kept) < 0.25, swapped / len(kept)
    assert {t.noise for t in noisy_rows} == {"swapped", "generic", "reshoot", "reshoot+swapped"}
    assert all(t.matches == ("swapped" not in t.noise and t.noise != "generic") for t in noisy.truth)
    assert not any(t.noise for t in generate_site(articles=60, seed=0, trouble=0).truth)


def test_a_swapped_caption_describes_another_picture_of_the_site(noisy):
    pics = noisy.plan.pictures
    by_url = {t.image_url: t for t in noisy.truth}
    swapped = [s for s in _slots(noisy) if "swapped" in s.noise]
    assert swapped
    for slot in swapped:
        truth = by_url[slot.url]
        theirs = C.describe(pics[slot.text_pid].scene, slot.lang)
        own = C.describe(pics[slot.pid].scene, slot.lang)
        assert slot.text_pid != slot.pid and theirs != own
        assert theirs[1:] in truth.caption and own[1:] not in truth.caption, (truth.caption, own)


def test_generic_alt_texts_pass_every_caption_rule(noisy):
    generic = [t for t in noisy.truth if t.noise == "generic"]
    assert len(generic) >= 3
    for t in generic:
        assert t.caption in C.GENERIC and t.caption_candidates == ((t.caption, "alt"),)
        candidates = [{"text": x, "origin": o} for x, o in t.caption_candidates]
        caption = clean_caption(candidates, CleanConfig(raw="r", out="o"), page_lang=t.lang)
        assert not isinstance(caption, str), caption  # no reason: the rules keep it


def test_reshoots_share_a_scene_but_not_a_phash(noisy):
    groups = defaultdict(list)
    for t in noisy.truth:
        if t.scene_group >= 0:
            groups[t.scene_group].append(t)
    assert len(groups) >= 5 and all(len(g) >= 2 for g in groups.values())
    for members in groups.values():
        assert len({t.dup_group for t in members}) == len(members), "pHash dedup does not merge them"
        hashes = [phash_bytes(noisy.response(t.image_url)[2]) for t in members]
        assert min(hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1:]) > 4
        scenes = {C.describe(noisy.plan.pictures[_pid(noisy, t)].scene, "en") for t in members}
        assert len(scenes) == 1, scenes  # one scene: the same shapes, colours and places


def _pid(site, truth) -> int:
    return next(s.pid for s in _slots(site) if s.url == truth.image_url.removeprefix(site.base_url))
