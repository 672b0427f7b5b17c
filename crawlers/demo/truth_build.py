"""Turning the plan into ground truth: one PairTruth per (page, image) pair, with the keep/drop decision."""

from __future__ import annotations

from crawlers.demo.html_pages import related_teaser
from crawlers.demo.model import Slot
from crawlers.demo.plan_base import Plan
from crawlers.demo.plan_text import candidates
from crawlers.demo.truth import DupMember, PairTruth, resolve_group
from data_schemas import reasons as R

PAGE_REASONS = {"robots": R.ROBOTS_DISALLOWED, "noai_header": R.OPT_OUT_PAGE, "noai_meta": R.OPT_OUT_PAGE,
                "tdm_section": R.OPT_OUT_TDMREP, "tdm_header": R.OPT_OUT_TDMREP}
SLOT_REASONS = {  # planted pair trouble -> (stage, reason)
    "noimageai": ("crawl", R.OPT_OUT_IMAGE), "http_404": ("clean", R.FETCH_FAILED),
    "not_image": ("clean", R.FETCH_FAILED), "truncated": ("clean", R.IMAGE_UNDECODABLE),
    "bomb": ("clean", R.IMAGE_DECOMPRESSION_BOMB), "tiny": ("clean", R.IMAGE_TOO_SMALL),
    "wide": ("clean", R.IMAGE_BAD_ASPECT), "boilerplate": ("clean", R.CAPTION_BOILERPLATE),
    "too_short": ("clean", R.CAPTION_TOO_SHORT), "short_text": ("clean", R.CAPTION_TOO_SHORT),
    "empty": ("clean", R.CAPTION_EMPTY), "too_long": ("clean", R.CAPTION_TOO_LONG),
}
UNDECODABLE = ("http_404", "not_image", "truncated", "bomb")


def _row(plan: Plan, slot: Slot, *, source_kind: str, page_url: str, published, page_reason: str | None) -> PairTruth:
    pic = plan.pictures[slot.pid]
    stage, reason = ("crawl", page_reason) if page_reason else SLOT_REASONS.get(slot.trouble, (None, None))
    broken = pic.serve in UNDECODABLE
    return PairTruth(
        source=f"demo-{source_kind}", source_kind=source_kind, page_url=page_url, image_url=slot.url,
        caption=slot.caption if stage is None else None, caption_candidates=candidates(slot), credit=slot.credit,
        lang=slot.lang, stage=stage, reason=reason, dup_group=pic.group if pic.group >= 0 else pic.pid,
        published_at=published, trouble=slot.trouble, width=0 if broken else pic.width,
        height=0 if broken else pic.height, caption_origin=slot.origin,
        role="lead" if slot.kind == "lead" else "body", noise=slot.noise,
        scene_group=pic.scene_of if pic.scene_of >= 0 else pic.pid if "reshoot" in slot.noise else -1)


def _teaser_row(plan: Plan, article, *, target, url: str) -> PairTruth:
    """A teaser card's picture (another story's lead, smaller): dropped by the crawl, counted as teaser_image."""
    lead = target.slots[0]
    pic = plan.pictures[lead.pid]
    width = int(url.rsplit("-", 1)[1].split("w.", 1)[0])
    return PairTruth(source="demo-news", source_kind="news", page_url=article.path, image_url=url, caption=None,
                     caption_candidates=((target.title, "title"),), credit=None, lang=target.lang, stage="crawl",
                     reason=R.TEASER_IMAGE, dup_group=pic.group if pic.group >= 0 else pic.pid,
                     published_at=article.published, trouble="teaser", role="teaser", width=width,
                     height=max(1, round(pic.height * width / pic.width)))


def build_truth(plan: Plan) -> list[PairTruth]:
    rows: list[PairTruth] = []
    for a in plan.articles:
        for slot in a.slots:
            rows.append(_row(plan, slot, source_kind="news", page_url=a.path, published=a.published,
                             page_reason=PAGE_REASONS.get(a.trouble)))
        teaser = related_teaser(a, plan)
        if teaser is not None:
            rows.append(_teaser_row(plan, a, target=teaser[0], url=teaser[1]))
    for s in plan.statuses:
        flag = R.SOCIAL_NOINDEX if s.account.noindex else R.SOCIAL_SENSITIVE if s.sensitive else None
        for slot in s.slots:
            rows.append(_row(plan, slot, source_kind="mastodon", page_url=s.path, published=s.created,
                             page_reason=flag))
    for p in plan.posts:
        flag = R.SOCIAL_NO_UNAUTHENTICATED if p.author.no_unauthenticated else None
        for slot in p.slots:
            rows.append(_row(plan, slot, source_kind="bluesky", page_url=p.path, published=p.created,
                             page_reason=flag))
    return _resolve_duplicates(plan, rows)


def _resolve_duplicates(plan: Plan, rows: list[PairTruth]) -> list[PairTruth]:
    from dataclasses import replace

    groups: dict[int, list[DupMember]] = {}
    for i, row in enumerate(rows):
        if row.stage is not None or row.dup_group == -1:
            continue
        pic_sha = _sha_key(plan, row)
        groups.setdefault(row.dup_group, []).append(DupMember(
            index=i, pixels=row.width * row.height, origin=row.caption_origin or "", published_at=row.published_at,
            sha_key=pic_sha, key=row.page_url + "\x00" + row.image_url))
    for members in groups.values():
        if len(members) < 2:
            continue
        for index, reason in resolve_group(members).items():
            if reason:
                rows[index] = replace(rows[index], stage="clean", reason=reason)
    return rows


def _sha_key(plan: Plan, row: PairTruth) -> str:
    """Rows share a key exactly when their served bytes are identical (same picture, native, same format)."""
    resolved = plan.aliases.get(row.image_url)
    if resolved is not None:
        return f"{resolved[0]}:{resolved[2]}"
    pid = int(row.image_url.rsplit("/", 1)[1].split("-", 1)[0])
    return f"{pid}:{plan.pictures[pid].fmt}"
