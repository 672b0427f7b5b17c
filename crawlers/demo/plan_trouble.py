"""Planting the deliberate trouble: page-level opt-outs, broken or odd images, bad captions, duplicates."""

from __future__ import annotations

import hashlib
import random

from crawlers.demo.model import EXT, Article, Slot
from crawlers.demo.pictures import PictureFactory
from crawlers.demo.plan_base import DUP_RATES, PAGE_TROUBLE_RATES, PAIR_TROUBLE_RATES, TDM_SECTION, trouble_count
from crawlers.demo.plan_social import plain_post, plain_status

SERVE_TROUBLE = ("truncated", "not_image", "http_404", "http_500_once", "slow", "noimageai")
FIGURE_TROUBLE = ("tiny", "wide", "bomb", "boilerplate", "too_long")
INLINE_TROUBLE = ("empty", "too_short")
TEXT_TROUBLE = ("mojibake", "entity", "credit")
NEAR_TRANSFORMS = ("quality", "flip", "resize", "pad", "crop", "rotate")
MAX_NEAR_DISTANCE = 4
CHECK_NEAR_UP_TO = 500  # articles; larger sites skip rendering near-duplicates at planning time


def assign_page_trouble(plan, rng: random.Random, *, trouble: float) -> None:
    order = list(range(1, len(plan.articles)))  # article 0 (the newest) always stays plain
    rng.shuffle(order)
    budget = len(plan.articles) // 2
    kinds = [k for k, rate in PAGE_TROUBLE_RATES.items() for _ in range(trouble_count(plan.articles_n, rate, trouble))]
    if trouble > 0:
        kinds.append("http_429_once")  # exactly one page answers 429 + Retry-After once
    for kind, index in zip(kinds[:budget], order, strict=False):
        article = plan.articles[index]
        article.trouble = kind
        if kind == "tdm_section":
            article.section = TDM_SECTION


def _plain(article: Article) -> bool:
    return article.trouble in ("", "slow", "http_429_once")


class SlotPool:
    """Plain body slots of plain articles, handed out once each; grows an article when it runs dry."""

    def __init__(self, plan, rng: random.Random, factory: PictureFactory):
        self.plan, self.rng, self.factory = plan, rng, factory
        self.articles = [a for a in plan.articles if _plain(a) and a.trouble == ""] or plan.articles
        self.free = [(a, s) for a in self.articles for s in a.slots if s.kind != "lead"]
        rng.shuffle(self.free)

    def take(self, *, avoid: set[int] = frozenset(), english: bool = False) -> tuple[Article, Slot]:
        def ok(article: Article) -> bool:
            return article.index not in avoid and (not english or article.lang == "en")

        for i, (article, _slot) in enumerate(self.free):
            if ok(article):
                return self.free.pop(i)
        article = self.rng.choice([a for a in self.articles if ok(a)] or self.articles)
        slot = Slot(kind="figure", pid=self.factory.photo("body").pid, lang=article.lang)
        article.slots.append(slot)
        return article, slot


def assign_pair_trouble(plan, rng: random.Random, factory: PictureFactory, *, trouble: float) -> None:
    plan._pool = pool = SlotPool(plan, rng, factory)
    for kind, rate in PAIR_TROUBLE_RATES.items():
        for _ in range(trouble_count(plan.articles_n, rate, trouble)):
            _article, slot = pool.take(english=kind in TEXT_TROUBLE)
            slot.trouble = kind
            if kind in FIGURE_TROUBLE:
                slot.kind = "figure"
            elif kind in INLINE_TROUBLE:
                slot.kind = "inline"
            elif kind in SERVE_TROUBLE and slot.kind in ("srcset", "picture"):
                slot.kind = "figure"
            elif kind in TEXT_TROUBLE and slot.kind == "inline":  # the trouble lives in the figcaption
                slot.kind = "figure"
            if kind == "tiny":
                slot.pid = factory.tiny().pid
            elif kind == "wide":
                slot.pid = factory.wide().pid
            elif kind == "bomb":
                slot.pid = factory.add(640, 480, "png", 85, serve="bomb").pid
            elif kind in SERVE_TROUBLE:
                pic = factory.photo("body", fmt="jpeg")
                pic.serve = kind
                slot.pid = pic.pid


def _social_slots(plan, rng: random.Random) -> list[Slot]:
    slots = [s for st in plan.statuses if plain_status(st) for s in st.slots if not s.trouble]
    slots += [s for p in plan.posts if plain_post(p) for s in p.slots if not s.trouble]
    rng.shuffle(slots)
    return slots


def plant_duplicates(plan, rng: random.Random, factory: PictureFactory, *, trouble: float) -> None:
    """Exact copies (same bytes, other URL) and near-duplicates (re-encoded / resized / cropped) on other pages."""
    pool: SlotPool = plan._pool
    social = _social_slots(plan, rng)
    places = ("news", "mastodon", "news", "bluesky")
    for g in range(trouble_count(plan.articles_n, DUP_RATES["exact_groups"], trouble)):
        article, original = pool.take()
        original.kind = rng.choice(("figure", "lazy", "inline"))
        pic = factory.photo("body", fmt="jpeg")
        original.pid, pic.group = pic.pid, pic.pid
        for c in range(1 + g % 2):
            _place_copy(plan, pool, social, places[(g + c) % 4], pic.pid, avoid={article.index}, exact=True, tag=c)
    copies = 0  # every transform in turn, so even the smallest site plants each one
    for g in range(trouble_count(plan.articles_n, DUP_RATES["near_groups"], trouble)):
        article, original = pool.take()
        original.kind = rng.choice(("figure", "lazy", "inline"))
        base = factory.photo("body", fmt="jpeg")
        original.pid, base.group = base.pid, base.pid
        for c in range(1 + g % 2):
            variant = _near_variant(plan, factory, base, NEAR_TRANSFORMS[copies % len(NEAR_TRANSFORMS)])
            copies += 1
            _place_copy(plan, pool, social, places[(g + c + 1) % 4], variant.pid, avoid={article.index},
                        exact=False, tag=c)
    plan.__dict__.pop("_pool", None)


def _place_copy(plan, pool: SlotPool, social: list[Slot], place: str, pid: int, *, avoid: set[int], exact: bool,
                tag: int) -> None:
    wanted = {"mastodon": "mastodon", "bluesky": "bluesky"}.get(place)
    slot = next((s for s in social if s.kind == wanted), None) if wanted else None
    if slot is not None:
        social.remove(slot)
    else:
        _article, slot = pool.take(avoid=avoid)
        slot.kind = "figure" if slot.kind in ("srcset", "picture", "lead") else slot.kind
    slot.pid = pid
    slot.trouble = "dup_exact" if exact else "dup_near"
    pic = pool.factory.pictures[pid]
    pic.group = pic.group if pic.group >= 0 else (pic.base if pic.base is not None else pid)
    if exact and slot.kind not in ("mastodon", "bluesky"):
        digest = hashlib.sha256(f"{plan.seed}:{pid}:{tag}".encode()).hexdigest()[:16]
        slot.url = f"/img/archive/{digest}.{EXT[pic.fmt]}"
        plan.aliases[slot.url] = (pid, None, pic.fmt)


def _comparable(variant, base, body: bytes) -> int:
    """The pHash of a near-duplicate as the clean stage compares it: mirrored back, its frame trimmed."""
    import io

    from PIL import Image

    from crawlers.demo.phash import phash_image

    with Image.open(io.BytesIO(body)) as image:
        image = image.convert("RGB")
    if variant.transform == "flip":
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif variant.transform == "pad":
        dx, dy = (variant.width - base.width) // 2, (variant.height - base.height) // 2
        image = image.crop((dx, dy, dx + base.width, dy + base.height))
    return phash_image(image)


def _near_variant(plan, factory: PictureFactory, base, transform: str):
    """The first setting of ``transform`` whose real pHash distance to the base (as the clean stage compares them)
    is <= 4 (checked on small sites)."""
    from crawlers.demo.images import picture_bytes
    from crawlers.demo.phash import hamming, phash_bytes

    check = plan.articles_n <= CHECK_NEAR_UP_TO
    first = 0 if check else (3 if transform == "rotate" else 1)  # unchecked (large) sites: gentler settings
    for step in range(first, 4):
        variant = factory.variant(base, transform, step)
        variant.group = base.pid
        if not check:
            return variant
        pics = factory.pictures
        base_body = plan.prerendered.get((base.pid, None, base.fmt)) or picture_bytes(pics, base.pid, None, base.fmt)
        body = picture_bytes(pics, variant.pid, None, variant.fmt)
        real = _comparable(variant, base, body)
        near = hamming(phash_bytes(base_body), real) <= MAX_NEAR_DISTANCE
        if near and variant.transform == "rotate":  # not designed: its real hash must be far from other groups too
            near = factory.far_enough(real, base.pid)
            if near:
                factory.index.add(real, base.pid)
        if near:
            plan.prerendered[(base.pid, None, base.fmt)] = base_body
            plan.prerendered[(variant.pid, None, variant.fmt)] = body
            return variant
        factory.pictures.pop()
    return factory.variant(base, "quality", 3)
