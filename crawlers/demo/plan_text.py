"""Every text on the site: titles, paragraphs, figcaptions, alt texts, post texts, and the caption each pair ends
with.  The candidate texts are what a correct extractor reads; ``caption`` is what a correct cleaner makes of them.
"""

from __future__ import annotations

import html
import random

from crawlers.demo import captions as C
from crawlers.demo.model import Article, Slot
from crawlers.demo.plan_base import slugify
from crawlers.demo.scenes import Scene


def write_texts(plan, rng: random.Random) -> None:
    pics = plan.pictures
    for article in plan.articles:
        lead_scene = pics[article.slots[0].pid].scene
        article.title = C.title(lead_scene, article.lang, rng)
        article.slug = f"{slugify(article.title, 40)}-{article.index}"
        article.paragraphs = C.paragraphs(article.lang, rng, 2 + len(article.slots) // 2)
        for slot in article.slots:
            _news_slot(slot, described(pics, slot), article, rng)
    for status in plan.statuses:
        scene = described(pics, status.slots[0]) if status.slots else _any_scene(pics, rng)
        status.text = _post_text(status.slots, scene, status.lang, status.tag, rng)
        for slot in status.slots:
            _social_slot(slot, described(pics, slot), status.text)
    for post in plan.posts:
        scene = described(pics, post.slots[0]) if post.slots else _any_scene(pics, rng)
        post.text = _post_text(post.slots, scene, post.lang, rng.choice(plan.tags), rng)
        for slot in post.slots:
            _social_slot(slot, described(pics, slot), post.text)


def described(pics, slot: Slot) -> Scene:
    """The scene a pair's texts describe: its own picture's, or another's for a swapped caption (plan_noise)."""
    return pics[slot.text_pid if slot.text_pid >= 0 else slot.pid].scene


def _any_scene(pics, rng: random.Random) -> Scene:
    return pics[rng.randrange(len(pics))].scene


def _post_text(slots: list[Slot], scene: Scene, lang: str, tag: str, rng: random.Random) -> str:
    if any(s.trouble == "short_text" for s in slots):
        return f"wow #{tag}"
    return C.social_text(scene, lang, tag, rng)


def _social_slot(slot: Slot, scene: Scene, text: str) -> None:
    slot.lang = slot.lang or "en"
    slot.context = text
    if slot.trouble in ("alt_missing", "short_text"):
        slot.social_alt = None
    else:
        slot.social_alt = C.social_alt(scene, slot.lang)
    slot.caption, slot.origin = _choose(slot)


def _news_slot(slot: Slot, scene: Scene, article: Article, rng: random.Random) -> None:
    lang = slot.lang = article.lang
    fig = C.news_caption(scene, lang, rng)
    clean_fig = fig
    alt: str | None = C.describe(scene, lang)
    fig_html = None
    if slot.trouble == "mojibake":
        clean_fig = C.mojibake_source(scene, rng)
        fig = C.mojibake(clean_fig)
    elif slot.trouble == "entity":
        fig, clean_fig = C.entity_source(scene)
        fig_html = html.escape(fig, quote=False)  # "&amp;" in the text is "&amp;amp;" in the HTML
    elif slot.trouble == "credit":
        fig, slot.credit = C.with_credit(clean_fig, rng)
    elif slot.trouble == "boilerplate":
        fig = clean_fig = "Click to enlarge"
        alt = rng.choice(C.BOILERPLATE)
    elif slot.trouble == "too_long":
        fig = clean_fig = C.too_long(scene)
        alt = None
    elif slot.trouble == "empty":
        alt = None
    elif slot.trouble == "too_short":
        alt = rng.choice(C.SHORT)
    if slot.noise == "generic":
        alt = rng.choice(C.GENERIC)
    if slot.kind != "inline":
        slot.figcaption = fig
        slot.figcaption_html = fig_html or html.escape(fig, quote=False)
    slot.alt = alt
    slot.clean_figcaption = clean_fig if slot.kind != "inline" else None
    slot.caption, slot.origin = _choose(slot)


def candidates(slot: Slot) -> tuple[tuple[str, str], ...]:
    """(text, origin) pairs in CAPTION_PREFERENCE order, exactly what a correct extractor emits for the pair."""
    out: list[tuple[str, str]] = []
    if slot.kind in ("mastodon", "bluesky"):
        if slot.social_alt:
            out.append((slot.social_alt, "social_alt"))
        if slot.context:
            out.append((slot.context, "context"))
        return tuple(out)
    if slot.figcaption:
        out.append((slot.figcaption, "figcaption"))
        if slot.kind == "lead":
            out.append((slot.figcaption, "jsonld"))
    if slot.alt:
        out.append((slot.alt, "alt"))
        if slot.kind == "lead":
            out.append((slot.alt, "og_image_alt"))
    return tuple(out)


_FAILING = ("boilerplate", "too_long", "empty", "too_short", "short_text")


def _choose(slot: Slot) -> tuple[str | None, str | None]:
    """The clean caption and its origin; None when the planted caption trouble leaves no passing candidate."""
    if slot.trouble in _FAILING:
        return None, None
    if slot.kind in ("mastodon", "bluesky"):
        return (slot.social_alt, "social_alt") if slot.social_alt else (slot.context, "context")
    if slot.figcaption:
        return slot.clean_figcaption, "figcaption"
    return slot.alt, "alt"
