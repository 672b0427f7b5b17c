"""The deterministic plan of a demo site: articles, social posts, pictures and the trouble planted in them.

``build_plan(articles, seed)`` draws everything from one ``random.Random(seed)``, in a fixed order, so the same
arguments always give the same site.  Trouble amounts scale with the number of articles (at least one of each
kind), see ``trouble_counts``.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from crawlers.demo.model import EXT, Account, Article, BskyAuthor, Picture, Post, Slot, Status
from crawlers.demo.pictures import PictureFactory

SECTIONS = ("world", "science", "city", "culture", "sport")
TDM_SECTION = "reserved"
EPOCH = datetime(2024, 5, 20, 12, 0, tzinfo=timezone.utc)
BODY_KINDS = ("figure", "lazy", "srcset", "picture", "inline", "figure")
SRCSET_WIDTHS = (320, 400, 480, 640, 800, 960)
AUTHORS = ("Jane Doe", "Omar Haddad", "Priya Nair", "Lukas Weber", "Ana Souza", "Tom Becker")
PAGE_TROUBLE_RATES = {"robots": 1 / 30, "noai_header": 1 / 60, "noai_meta": 1 / 60, "tdm_section": 1 / 30,
                      "tdm_header": 1 / 60, "slow": 1 / 120}
PAIR_TROUBLE_RATES = {
    "truncated": 1 / 30, "not_image": 1 / 60, "http_404": 1 / 30, "http_500_once": 1 / 30, "slow": 1 / 60,
    "tiny": 1 / 30, "wide": 1 / 30, "bomb": 1 / 60, "noimageai": 1 / 30, "mojibake": 1 / 20, "entity": 1 / 20,
    "credit": 1 / 10, "boilerplate": 1 / 20, "too_short": 1 / 30, "empty": 1 / 30, "too_long": 1 / 60,
}
DUP_RATES = {"exact_groups": 1 / 15, "near_groups": 1 / 15}
NOISE_RATES = {"generic": 1 / 25, "reshoot_groups": 1 / 25}  # per article; "swapped" is a share (plan_noise.py)
SOCIAL_RATES = {"statuses": 0.6, "posts": 0.4, "sensitive": 1 / 20, "alt_missing": 1 / 15, "short_text": 1 / 60}


def trouble_count(articles: int, rate: float, scale: float) -> int:
    if scale <= 0:
        return 0
    return max(1, round(articles * rate * scale))


@dataclass
class Plan:
    articles_n: int
    seed: int
    photo_size: str
    pictures: list[Picture] = field(default_factory=list)
    articles: list[Article] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    authors: list[BskyAuthor] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    stems: dict[int, str] = field(default_factory=dict)  # pid -> "/img/yyyy/mm/<pid>-<slug>" (article pictures)
    aliases: dict[str, tuple[int, int | None, str]] = field(default_factory=dict)  # path -> (pid, width, fmt)
    tags: tuple[str, ...] = ("nature", "city", "art")
    prerendered: dict[tuple[int, int | None, str], bytes] = field(default_factory=dict)  # bodies made while planning


def slugify(text: str, limit: int = 48) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:limit].rstrip("-") or "story"


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
    from crawlers.demo import plan_noise, plan_social, plan_text, plan_trouble

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
