"""The deterministic plan of a demo site: articles, social posts, pictures and the trouble planted in them.

``build_plan(articles, seed)`` draws everything from one ``random.Random(seed)``, in a fixed order, so the same
arguments always give the same site.  Trouble amounts scale with the number of articles (at least one of each
kind), see ``plan_base.trouble_count``.
"""

from __future__ import annotations

import random
from datetime import timedelta

from crawlers.demo import plan_noise, plan_social, plan_text, plan_trouble
from crawlers.demo.model import EXT, Article, Picture, Slot
from crawlers.demo.pictures import PictureFactory
from crawlers.demo.plan_base import AUTHORS, BODY_KINDS, EPOCH, SECTIONS, SRCSET_WIDTHS, Plan


def _new_article(plan: Plan, index: int, rng: random.Random, factory: PictureFactory) -> Article:
    lang = rng.choice(("fr", "de", "es")) if rng.random() < 0.12 else "en"
    article = Article(index=index, section=rng.choice(SECTIONS), slug="", lang=lang, title="",
                      published=EPOCH - timedelta(minutes=37 * index), author=rng.choice(AUTHORS), paragraphs=[])
    lead = factory.photo("lead")
    article.slots.append(Slot(kind="lead", pid=lead.pid, lang=lang))
    for _ in range(rng.choice((1, 1, 2, 2, 2, 3))):
        kind = rng.choice(BODY_KINDS)
        fmt = "jpeg" if kind in ("srcset", "picture") else None
        article.slots.append(Slot(kind=kind, pid=factory.photo("body", fmt=fmt).pid, lang=lang))
    return article


def build_plan(articles: int, seed: int, *, photo_size: str = "mixed", trouble: float = 1.0) -> Plan:
    if articles < 1:
        raise ValueError("a demo site needs at least one article")
    rng = random.Random(f"mmpipe-demo:{articles}:{seed}")
    plan = Plan(articles_n=articles, seed=seed, photo_size=photo_size)
    factory = PictureFactory(rng, photo_size)
    plan.articles = [_new_article(plan, i, rng, factory) for i in range(articles)]
    plan_social.build_social(plan, rng, factory, trouble=trouble)
    plan_trouble.assign_page_trouble(plan, rng, trouble=trouble)
    plan_trouble.assign_pair_trouble(plan, rng, factory, trouble=trouble)
    plan_trouble.plant_duplicates(plan, rng, factory, trouble=trouble)
    plan_noise.plant_caption_noise(plan, rng, factory, trouble=trouble)
    plan.pictures = factory.pictures
    plan_text.write_texts(plan, rng)
    assign_urls(plan)
    return plan


def assign_urls(plan: Plan) -> None:
    """Article pictures get '/img/yyyy/mm/<pid>-<slug>.<ext>'; copies and social media are aliases."""
    for article in plan.articles:
        for slot in article.slots:
            if slot.url:  # exact copies were given their alias URL when planted
                continue
            pic = plan.pictures[slot.pid]
            stem = f"/img/{article.published:%Y/%m}/{pic.pid:06d}-{article.slug[:32].rstrip('-')}"
            plan.stems[pic.pid] = stem
            slot.url = f"{stem}.{EXT[pic.fmt]}"
    for status in plan.statuses:
        for slot in status.slots:
            pic = plan.pictures[slot.pid]
            slot.url = f"/img/media/{slot.media_id}/original.{EXT[pic.fmt]}"
            plan.aliases[slot.url] = (pic.pid, None, pic.fmt)
            plan.aliases[f"/img/media/{slot.media_id}/small.{EXT[pic.fmt]}"] = (pic.pid, min(640, pic.width), pic.fmt)
    for post in plan.posts:
        for slot in post.slots:
            pic = plan.pictures[slot.pid]
            slot.url = f"/img/bsky/feed_fullsize/plain/{post.author.did}/{slot.media_id}@jpeg"
            plan.aliases[slot.url] = (pic.pid, None, "jpeg")
            thumb = f"/img/bsky/feed_thumbnail/plain/{post.author.did}/{slot.media_id}@jpeg"
            plan.aliases[thumb] = (pic.pid, min(1000, pic.width), "jpeg")


def srcset_widths(pic: Picture, count: int = 2) -> list[int]:
    """Smaller widths served for a picture's srcset, all strictly below its native width."""
    smaller = [w for w in SRCSET_WIDTHS if w < pic.width]
    return smaller[-count:] if smaller else []
