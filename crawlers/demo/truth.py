"""Ground truth: for every (page, image) pair the demo site offers, what a correct pipeline does with it.

See README.md ("Ground truth") for the meaning of every field and the reason each kind of trouble maps to.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from data_schemas import CAPTION_PREFERENCE
from data_schemas import reasons as R


@dataclass(frozen=True)
class PairTruth:
    source: str  # demo-news | demo-mastodon | demo-bluesky
    source_kind: str  # news | mastodon | bluesky
    page_url: str
    image_url: str
    caption: str | None  # the clean caption a correct pipeline ends with; None when dropped before captioning
    caption_candidates: tuple[tuple[str, str], ...]  # (text, origin) in CAPTION_PREFERENCE order
    credit: str | None
    lang: str
    stage: str | None  # "crawl" | "clean" | None (kept)
    reason: str | None
    dup_group: int
    published_at: datetime
    trouble: str = ""  # the planted trouble kind (informational; "" for plain pairs)
    width: int = 0  # pixel size of the served image_url (0 when it is not a decodable image)
    height: int = 0
    caption_origin: str | None = None  # origin of the chosen caption (kept rows, and dup-group losers)
    role: str | None = None  # RAW role: lead (an article's lead picture) | body | teaser
    noise: str = ""  # caption noise the clean stage keeps: swapped | generic | reshoot | reshoot+swapped
    scene_group: int = -1  # shared by the photos of one scene (noise "reshoot"); -1 otherwise

    @property
    def matches(self) -> bool:
        """The caption truly describes the picture (no swapped or generic caption)."""
        return "swapped" not in self.noise and self.noise != "generic"

    @property
    def kept(self) -> bool:
        return self.stage is None

    def absolute(self, base_url: str) -> PairTruth:
        base = base_url.rstrip("/")
        return replace(self, page_url=_abs(base, self.page_url), image_url=_abs(base, self.image_url))

    def to_json(self) -> str:
        data = asdict(self)
        data["caption_candidates"] = [list(c) for c in self.caption_candidates]
        data["published_at"] = self.published_at.isoformat()
        return json.dumps(data, ensure_ascii=False)


def _abs(base: str, url: str) -> str:
    return base + url if url.startswith("/") else url


def rank(origin: str | None) -> int:
    return CAPTION_PREFERENCE.index(origin) if origin in CAPTION_PREFERENCE else len(CAPTION_PREFERENCE)


@dataclass
class DupMember:
    """A clean-stage survivor that belongs to a planted duplicate group, with what the keep rule looks at."""

    index: int  # position in the truth list
    pixels: int
    origin: str
    published_at: datetime
    sha_key: str  # identical bytes share a sha_key
    key: str  # the CLEAN key (RAW id); the final tie-break


def resolve_group(members: list[DupMember]) -> dict[int, str | None]:
    """Apply the clean stage's keep rule (pipeline/README.md); return index -> None (kept) / duplicate_exact /
    duplicate_near.

    A loser is duplicate_exact when a row with identical bytes beats it (exact dedup runs first and keeps the best
    of each identical-bytes set), otherwise duplicate_near.  published_at is unique per page on the demo site and
    every member sits on its own page, so the rule never reaches crawled_at.
    """

    def order(m: DupMember):
        return (-m.pixels, rank(m.origin), m.published_at, m.key)

    result: dict[int, str | None] = {}
    by_sha: dict[str, list[DupMember]] = {}
    for m in members:
        by_sha.setdefault(m.sha_key, []).append(m)
    survivors = []
    for same in by_sha.values():
        same.sort(key=order)
        survivors.append(same[0])
        for loser in same[1:]:
            result[loser.index] = R.DUPLICATE_EXACT
    survivors.sort(key=order)
    result[survivors[0].index] = None
    for loser in survivors[1:]:
        result[loser.index] = R.DUPLICATE_NEAR
    return result


def count(truth: list[PairTruth], stage: str | None) -> Counter:
    return Counter(t.reason for t in truth if t.stage == stage and t.reason)


def kept(truth: list[PairTruth]) -> list[PairTruth]:
    return [t for t in truth if t.stage is None]
