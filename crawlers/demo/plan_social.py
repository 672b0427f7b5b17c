"""Mastodon accounts and statuses, Bluesky authors and posts, with their social-specific trouble."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

from crawlers.demo.model import Account, BskyAuthor, Post, Slot, Status
from crawlers.demo.pictures import PictureFactory
from crawlers.demo.plan_base import EPOCH, SOCIAL_RATES, trouble_count

MASTODON_USERS = (("lena", "Lena Park"), ("marco", "Marco Bellini"), ("sofia", "Sofía Ruiz"),
                  ("tom", "Tom Becker"), ("yuki", "Yuki Tanaka"), ("noor", "Noor Rahman"))
BSKY_USERS = (("alice", "Alice Moreau"), ("bob", "Bob Fischer"), ("chen", "Chen Wei"), ("dana", "Dana Levi"))
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_TID = "234567abcdefghijklmnopqrstuvwxyz"  # sortable base32 used by atproto record keys


def _b32(data: bytes, n: int) -> str:
    bits = int.from_bytes(data, "big")
    return "".join(_B32[(bits >> (5 * i)) & 31] for i in range(n))


def snowflake(created, seq: int) -> str:
    """Mastodon ids: milliseconds since the epoch shifted left 16 bits, plus a sequence."""
    return str((int(created.timestamp() * 1000) << 16) | (seq & 0xFFFF))


def tid(created, seq: int) -> str:
    value = (int(created.timestamp() * 1_000_000) << 10) | (seq & 0x3FF)
    return "".join(_TID[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def cid(*parts: object) -> str:
    return "bafkrei" + _b32(hashlib.sha256(repr(parts).encode()).digest(), 52)


def build_social(plan, rng: random.Random, factory: PictureFactory, *, trouble: float) -> None:
    n = plan.articles_n
    noindex_user = rng.randrange(len(MASTODON_USERS)) if trouble > 0 else -1
    plan.accounts = [Account(id=str(100 + i), username=u, display_name=d, noindex=(i == noindex_user),
                             created=EPOCH - timedelta(days=400 + 37 * i)) for i, (u, d) in enumerate(MASTODON_USERS)]
    for j in range(max(12, round(n * SOCIAL_RATES["statuses"]))):
        created = EPOCH - timedelta(minutes=53 * j, seconds=-17)
        others = [a for a in plan.accounts if not a.noindex]
        account = plan.accounts[noindex_user] if noindex_user >= 0 and j % 12 == 1 else rng.choice(others)
        lang = rng.choice(("fr", "de", "es")) if rng.random() < 0.15 else "en"
        status = Status(id=snowflake(created, j), account=account, created=created, tag=rng.choice(plan.tags),
                        lang=lang, text="", sensitive=False)
        n_media = 0 if j % 17 == 16 else rng.choices((1, 2, 3), weights=(70, 22, 8))[0]
        for k in range(n_media):
            pic = factory.photo("social")
            status.slots.append(Slot(kind="mastodon", pid=pic.pid, lang=lang, media_id=str(int(status.id) + k + 1)))
        status.videos = 1 if j % 11 == 5 else 0
        plan.statuses.append(status)
    _mark_sensitive(plan, rng, trouble_count(n, SOCIAL_RATES["sensitive"], trouble))

    labelled = rng.randrange(len(BSKY_USERS)) if trouble > 0 else -1
    for i, (name, display) in enumerate(BSKY_USERS):
        did = "did:plc:" + _b32(hashlib.sha256(f"{plan.seed}:{name}".encode()).digest(), 24)
        plan.authors.append(BskyAuthor(did=did, handle=f"{name}.bsky.social", display_name=display,
                                       no_unauthenticated=(i == labelled)))
    for j in range(max(8, round(n * SOCIAL_RATES["posts"]))):
        created = EPOCH - timedelta(minutes=71 * j, seconds=-41)
        unlabelled = [a for a in plan.authors if not a.no_unauthenticated]
        author = plan.authors[labelled] if labelled >= 0 and j % 8 == 2 else rng.choice(unlabelled)
        lang = rng.choice(("fr", "de", "es")) if rng.random() < 0.15 else "en"
        post = Post(author=author, rkey=tid(created, j), cid="", created=created, lang=lang, text="")
        post.cid = cid("post", plan.seed, post.rkey).replace("bafkrei", "bafyrei")
        n_media = 0 if j % 13 == 12 else rng.choices((1, 2), weights=(80, 20))[0]
        for k in range(n_media):
            pic = factory.photo("social", fmt="jpeg")
            post.slots.append(Slot(kind="bluesky", pid=pic.pid, lang=lang, media_id=cid("blob", plan.seed, j, k)))
        plan.posts.append(post)
    _mark_alt_missing(plan, rng, trouble)


FEED_RKEY = "demo-photos"  # the demo's one Bluesky feed generator, run by the first author


def feed_generators(plan) -> dict[str, list[Post]]:
    """at:// URI of each Bluesky feed generator -> its posts, newest first (what app.bsky.feed.getFeed serves).

    "demo-photos" lists every post with images, of every author (the labelled one too), so crawling it reaches
    exactly the Bluesky pairs of the ground truth, drops included: the same posts as the author feeds and search,
    not new ones, so the truth needs no change."""
    if not plan.authors:
        return {}
    uri = f"at://{plan.authors[0].did}/app.bsky.feed.generator/{FEED_RKEY}"
    return {uri: [p for p in plan.posts if p.slots]}


def plain_status(status: Status) -> bool:
    return not status.sensitive and not status.account.noindex and bool(status.slots)


def plain_post(post: Post) -> bool:
    return not post.author.no_unauthenticated and bool(post.slots)


def _mark_sensitive(plan, rng: random.Random, count: int) -> None:
    candidates = [s for s in plan.statuses if plain_status(s)]
    for status in rng.sample(candidates, min(count, len(candidates))):
        status.sensitive = True


def _mark_alt_missing(plan, rng: random.Random, trouble: float) -> None:
    """Posts whose single image has no alt text: the post text becomes the caption (or is too short to be one)."""
    n = plan.articles_n
    singles = [s.slots[0] for s in plan.statuses if plain_status(s) and len(s.slots) == 1]
    singles += [p.slots[0] for p in plan.posts if plain_post(p) and len(p.slots) == 1]
    rng.shuffle(singles)
    missing = trouble_count(n, SOCIAL_RATES["alt_missing"], trouble)
    short = trouble_count(n, SOCIAL_RATES["short_text"], trouble)
    for slot in singles[:missing]:
        slot.trouble = "alt_missing"
    for slot in singles[missing:missing + short]:
        slot.trouble = "short_text"
