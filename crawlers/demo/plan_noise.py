"""Caption noise that real crawls carry and no rule can see: the pairs stay in a correct clean stage's output.

  * ``swapped`` (about SWAPPED_SHARE of the kept pairs): every caption candidate of the pair describes another
    picture of the site, in the pair's own language (a CMS that attached the wrong caption, an alt text copied
    from the previous image).  Partners rotate within the chosen pairs, so a swapped caption is always some other
    picture's true description.
  * ``generic``: an inline image whose only text is a generic alt that passes every caption rule ("Photo of the
    day", "Scenes from the weekend"): words, but none about the picture.
  * ``reshoot``: another photo of one picture's scene (same shapes, colours and places; its own light, jitter,
    size) on other pages, each under its own caption.  pHash keeps them apart (they are tuned as distinct
    pictures), a model does not: what semantic dedup finds.  Their truth rows share ``scene_group``.

Only pairs that a correct clean stage keeps are touched (plain slots on plain pages, outside duplicate groups), so
every truth stage and reason stays as it was; ``PairTruth.noise`` marks what was planted.
"""

from __future__ import annotations

import random

from crawlers.demo import captions as C
from crawlers.demo.model import Slot
from crawlers.demo.pictures import PictureFactory
from crawlers.demo.plan_base import NOISE_RATES, trouble_count
from crawlers.demo.plan_social import plain_post, plain_status

SWAPPED_SHARE = 0.2  # of the pairs a correct pipeline keeps
_PLAIN_PAGE = ("", "slow", "http_429_once")


def _candidates(plan) -> list[tuple[Slot, bool]]:
    """(slot, is_english_news_body) for every plain pair outside duplicate groups, in plan order."""
    pics = plan.pictures_pending
    out = []
    for article in plan.articles:
        if article.trouble not in _PLAIN_PAGE:
            continue
        for slot in article.slots:
            if slot.trouble == "" and pics[slot.pid].group < 0:
                out.append((slot, article.lang == "en" and slot.kind != "lead"))
    for item in [s for s in plan.statuses if plain_status(s)] + [p for p in plan.posts if plain_post(p)]:
        if len(item.slots) == 1 and item.slots[0].trouble == "" and pics[item.slots[0].pid].group < 0:
            out.append((item.slots[0], False))  # one image: the post text describes it too
    return out


def plant_caption_noise(plan, rng: random.Random, factory: PictureFactory, *, trouble: float) -> None:
    if trouble <= 0:
        return
    plan.pictures_pending = factory.pictures
    pool = _candidates(plan)
    rng.shuffle(pool)
    kept_estimate = len(pool) / 0.66  # candidates are ~2/3 of the kept pairs (others: repaired text, duplicates)
    n_reshoot = trouble_count(plan.articles_n, NOISE_RATES["reshoot_groups"], trouble)
    n_generic = trouble_count(plan.articles_n, NOISE_RATES["generic"], trouble)
    n_swap = round(SWAPPED_SHARE * trouble * kept_estimate)
    news = [s for s, body_en in pool if body_en]
    _reshoots(plan, rng, factory, news, pool, n_reshoot)
    for slot in [s for s in news if not s.noise][:n_generic]:
        slot.kind, slot.noise = "inline", "generic"
    copies = [s for s, _ in pool if s.noise == "reshoot" and plan.pictures_pending[s.pid].scene_of >= 0]
    plain = [s for s, _ in reversed(pool) if s.noise == ""]  # the far end of the pool: apart from the reshoots
    _swap(plan, (copies[::2] + plain)[:n_swap])  # half the re-shoots carry another picture's caption
    del plan.pictures_pending


def _reshoots(plan, rng: random.Random, factory: PictureFactory, news: list[Slot], pool, groups: int) -> None:
    """Each group: a plain English body image and 1-2 other plain pairs that now show a re-shoot of its scene."""
    others = [s for s, _ in pool]
    used: set[int] = set()
    for g in range(groups):
        original = next((s for s in news if id(s) not in used), None)
        if original is None:
            return
        used.add(id(original))
        base = plan.pictures_pending[original.pid]
        original.noise = "reshoot"
        for _ in range(1 + g % 2):
            slot = next((s for s in others if id(s) not in used), None)
            if slot is None:
                return
            used.add(id(slot))
            kind = "social" if slot.kind in ("mastodon", "bluesky") else "lead" if slot.kind == "lead" else "body"
            slot.pid = factory.reshoot(base, kind).pid
            slot.noise = "reshoot"
            if slot.kind in ("srcset", "picture"):
                slot.kind = "figure"
    plan.pictures_pending = factory.pictures


def _swap(plan, chosen: list[Slot]) -> None:
    """chosen[i] is captioned with chosen[i + 1]'s picture (a rotation); a partner whose description happens to
    read the same is skipped, so every swapped caption is wrong for its picture."""
    pics = plan.pictures_pending
    for i, slot in enumerate(chosen):
        partner = chosen[(i + 1) % len(chosen)]
        if C.describe(pics[partner.pid].scene, slot.lang) == C.describe(pics[slot.pid].scene, slot.lang):
            continue
        slot.text_pid = partner.pid
        slot.noise = "swapped" if not slot.noise else f"{slot.noise}+swapped"
