"""The plan of a demo site: plain data that every renderer (HTML, feeds, APIs, images, truth) reads.

Nothing here renders anything; ``plan.py`` fills these objects deterministically from (articles, seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from crawlers.demo.scenes import Scene

EXT = {"jpeg": "jpg", "png": "png", "webp": "webp"}
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


@dataclass(slots=True)
class Picture:
    """One distinct encoded image (a near-duplicate variant is its own Picture with ``base`` set)."""

    pid: int
    scene: Scene
    width: int
    height: int
    fmt: str  # jpeg | png | webp
    quality: int
    grain: int = 0
    base: int | None = None  # near-duplicate of this pid
    transform: str = ""  # quality | resize | crop | flip | pad | rotate (near-duplicates)
    crop: tuple[int, int, int, int] | None = None  # box in the base picture's pixels
    step: int = 0  # which setting of the transform (rotation angle, border colour)
    serve: str = ""  # serving trouble: truncated | not_image | http_404 | http_500_once | slow | bomb | noimageai
    group: int = -1  # dup group id (the base pid); -1 when the picture has no planted copies
    scene_of: int = -1  # a re-shoot of this pid's scene (same shapes and colours, its own light and jitter)


@dataclass(slots=True)
class Slot:
    """One (page, image) pair: where the image sits on its page and what text surrounds it."""

    kind: str  # lead | figure | lazy | srcset | picture | inline | mastodon | bluesky
    pid: int
    url: str = ""  # the image URL a crawler records (path)
    trouble: str = ""  # planted pair-level trouble (see README)
    lang: str = "en"
    figcaption: str | None = None  # text as it appears after one HTML unescape
    figcaption_html: str | None = None  # raw HTML (differs for the entity trouble)
    clean_figcaption: str | None = None  # the figcaption after ftfy / entity / credit repair
    alt: str | None = None
    social_alt: str | None = None
    context: str | None = None
    caption: str | None = None  # clean caption (None when no candidate passes)
    credit: str | None = None
    origin: str | None = None  # the candidate origin the clean caption comes from
    media_id: str = ""  # mastodon media id / bluesky blob cid
    text_pid: int = -1  # caption noise "swapped": the texts describe this picture instead of its own (-1: own)
    noise: str = ""  # caption noise a correct clean stage keeps (swapped | generic | reshoot), see plan_noise.py


@dataclass(slots=True)
class Article:
    index: int
    section: str
    slug: str
    lang: str
    title: str
    published: datetime
    author: str
    paragraphs: list[str]
    slots: list[Slot] = field(default_factory=list)
    trouble: str = ""  # robots | noai_header | noai_meta | tdm_section | tdm_header | http_429_once | slow

    @property
    def path(self) -> str:
        if self.trouble == "robots":
            return f"/private/{self.slug}.html"
        return f"/news/{self.section}/{self.slug}.html"


@dataclass(slots=True)
class Account:
    id: str
    username: str
    display_name: str
    noindex: bool
    created: datetime


@dataclass(slots=True)
class Status:
    id: str
    account: Account
    created: datetime
    tag: str
    lang: str
    text: str
    sensitive: bool
    slots: list[Slot] = field(default_factory=list)
    videos: int = 0  # non-image attachments a crawler must skip

    @property
    def path(self) -> str:
        return f"/@{self.account.username}/{self.id}"


@dataclass(slots=True)
class BskyAuthor:
    did: str
    handle: str
    display_name: str
    no_unauthenticated: bool


@dataclass(slots=True)
class Post:
    author: BskyAuthor
    rkey: str
    cid: str
    created: datetime
    lang: str
    text: str
    slots: list[Slot] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/bsky/profile/{self.author.handle}/post/{self.rkey}"

    @property
    def uri(self) -> str:
        return f"at://{self.author.did}/app.bsky.feed.post/{self.rkey}"
