"""The demo plan's data and its rates: what every planting module reads, imported by all and importing none of them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone

from crawlers.demo.model import Account, Article, BskyAuthor, Picture, Post, Status

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
